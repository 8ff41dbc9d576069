#include "providers/vertex/service_account.hpp"

#include "common/api_error.hpp"
#include "providers/crypto.hpp"

#include <openssl/pem.h>
#include <rapidjson/document.h>

namespace tailgate::providers::vertex {

namespace {

struct BioDeleter {
    void operator()(BIO* b) const { BIO_free(b); }
};
struct MdCtxDeleter {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

std::string string_member(const rapidjson::Value& d, const char* key) {
    auto it = d.FindMember(key);
    return it != d.MemberEnd() && it->value.IsString() ? std::string(it->value.GetString(), it->value.GetStringLength())
                                                       : std::string();
}

PkeyPtr read_private_key(const std::string& pem) {
    std::unique_ptr<BIO, BioDeleter> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    if (!bio) return nullptr;
    return PkeyPtr(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

std::string sign_rs256(EVP_PKEY* key, std::string_view data) {
    std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
    size_t len = 0;
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1 ||
        EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1)
        return {};
    std::string sig(len, '\0');
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                       reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1)
        return {};
    sig.resize(len);
    return sig;
}

}  // namespace

std::optional<ServiceAccount> parse_service_account(std::string_view json, std::string& error) {
    rapidjson::Document d;
    d.Parse(json.data(), json.size());
    if (d.HasParseError() || !d.IsObject()) {
        error = "vertex_credentials is not a service-account JSON key (neither a JSON object nor a readable file)";
        return std::nullopt;
    }
    if (const std::string type = string_member(d, "type"); !type.empty() && type != "service_account") {
        error = "vertex_credentials is a '" + type + "' credential; only service-account keys are supported";
        return std::nullopt;
    }
    ServiceAccount sa;
    sa.client_email = string_member(d, "client_email");
    sa.project_id = string_member(d, "project_id");
    sa.private_key_id = string_member(d, "private_key_id");
    sa.private_key_pem = string_member(d, "private_key");
    if (auto uri = string_member(d, "token_uri"); !uri.empty()) sa.token_uri = uri;
    if (sa.client_email.empty() || sa.private_key_pem.empty()) {
        error = "vertex_credentials lacks client_email or private_key";
        return std::nullopt;
    }
    sa.key = read_private_key(sa.private_key_pem);
    if (!sa.key || EVP_PKEY_base_id(sa.key.get()) != EVP_PKEY_RSA) {
        error = "vertex_credentials: private_key is not a PEM RSA private key";
        return std::nullopt;
    }
    return sa;
}

std::string signed_jwt(const ServiceAccount& sa, std::string_view scope, std::chrono::system_clock::time_point now) {
    const auto iat = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    std::string header = R"({"alg":"RS256","typ":"JWT")";
    if (!sa.private_key_id.empty()) header += ",\"kid\":" + json_quote(sa.private_key_id);
    header += '}';
    const std::string claims = "{\"iss\":" + json_quote(sa.client_email) + ",\"scope\":" + json_quote(scope) +
                               ",\"aud\":" + json_quote(sa.token_uri) + ",\"iat\":" + std::to_string(iat) +
                               ",\"exp\":" + std::to_string(iat + 3600) + '}';
    const std::string input = base64url(header) + '.' + base64url(claims);
    const std::string sig = sign_rs256(sa.key.get(), input);
    return sig.empty() ? std::string() : input + '.' + base64url(sig);
}

std::string token_request_body(std::string_view jwt) {
    // application/x-www-form-urlencoded values: RFC 3986's unreserved characters kept.
    return "grant_type=" + uri_encode("urn:ietf:params:oauth:grant-type:jwt-bearer", true) + "&assertion=" +
           uri_encode(jwt, true);
}

}  // namespace tailgate::providers::vertex
