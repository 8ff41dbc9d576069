// Vertex AI: the service-account key, the RS256 JWT it signs (verified here with
// the public half through OpenSSL), the token request, the refresh schedule,
// and the request the codec builds.
#include "providers/crypto.hpp"
#include "providers/vertex/codec.hpp"
#include "providers/vertex/service_account.hpp"
#include "providers/vertex/token_source.hpp"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <rapidjson/document.h>

using namespace tailgate;
using namespace tailgate::providers;
using namespace std::chrono_literals;

namespace {

struct KeyPair {
    std::string private_pem, public_pem;
};

KeyPair generate_rsa() {
    EVP_PKEY* key = EVP_RSA_gen(2048);
    BIO* priv = BIO_new(BIO_s_mem());
    BIO* pub = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(priv, key, nullptr, nullptr, 0, nullptr, nullptr);
    PEM_write_bio_PUBKEY(pub, key);
    char* p = nullptr;
    KeyPair out;
    out.private_pem.assign(p, BIO_get_mem_data(priv, &p));
    out.public_pem.assign(p, BIO_get_mem_data(pub, &p));
    BIO_free(priv);
    BIO_free(pub);
    EVP_PKEY_free(key);
    return out;
}

const KeyPair& keys() {
    static const KeyPair k = generate_rsa();
    return k;
}

std::string key_json(const std::string& pem, const std::string& extra = "") {
    std::string escaped;
    for (char c : pem) escaped += c == '\n' ? std::string("\\n") : std::string(1, c);
    return R"({"type":"service_account","project_id":"p-1","private_key_id":"kid","client_email":"sa@p-1.iam.gserviceaccount.com","private_key":")" +
           escaped + "\"" + extra + "}";
}

bool verify(const std::string& public_pem, std::string_view signed_part, const std::string& sig) {
    BIO* bio = BIO_new_mem_buf(public_pem.data(), static_cast<int>(public_pem.size()));
    EVP_PKEY* key = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    const bool ok = EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
                    EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                                     reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size()) == 1;
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(key);
    BIO_free(bio);
    return ok;
}

}  // namespace

TEST(Vertex, SignsAJwtTheTokenEndpointCanVerify) {
    std::string error;
    auto sa = vertex::parse_service_account(key_json(keys().private_pem, R"(,"token_uri":"http://127.0.0.1:9/token")"), error);
    ASSERT_TRUE(sa) << error;
    EXPECT_EQ(sa->token_uri, "http://127.0.0.1:9/token");
    const auto now = std::chrono::system_clock::from_time_t(1700000000);
    const std::string jwt = vertex::signed_jwt(*sa, vertex::kCloudPlatformScope, now);
    const size_t a = jwt.find('.'), b = jwt.rfind('.');
    ASSERT_NE(a, b);
    std::string header, claims, sig;
    ASSERT_TRUE(base64_decode(jwt.substr(0, a), header));
    ASSERT_TRUE(base64_decode(jwt.substr(a + 1, b - a - 1), claims));
    ASSERT_TRUE(base64_decode(jwt.substr(b + 1), sig));
    EXPECT_EQ(header, R"({"alg":"RS256","typ":"JWT","kid":"kid"})");
    EXPECT_EQ(claims, R"({"iss":"sa@p-1.iam.gserviceaccount.com","scope":"https://www.googleapis.com/auth/cloud-platform",)"
                      R"("aud":"http://127.0.0.1:9/token","iat":1700000000,"exp":1700003600})");
    EXPECT_TRUE(verify(keys().public_pem, std::string_view(jwt).substr(0, b), sig));
    EXPECT_FALSE(verify(keys().public_pem, std::string_view(jwt).substr(0, b - 1), sig)) << "a changed claim fails";
    EXPECT_EQ(jwt.find('='), std::string::npos) << "base64url without padding";
    EXPECT_EQ(vertex::token_request_body("a.b-_c"),
              "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=a.b-_c");
}

TEST(Vertex, RefusesKeysItCannotUseWithoutQuotingThem) {
    std::string error;
    EXPECT_FALSE(vertex::parse_service_account("not json", error));
    EXPECT_NE(error.find("not a service-account JSON key"), std::string::npos);
    EXPECT_FALSE(vertex::parse_service_account(R"({"type":"authorized_user"})", error));
    EXPECT_NE(error.find("authorized_user"), std::string::npos);
    const std::string broken = key_json("-----BEGIN PRIVATE KEY-----\nSECRETSECRET\n-----END PRIVATE KEY-----\n");
    EXPECT_FALSE(vertex::parse_service_account(broken, error));
    EXPECT_EQ(error, "vertex_credentials: private_key is not a PEM RSA private key");
    EXPECT_EQ(error.find("SECRET"), std::string::npos);
}

TEST(Vertex, RefreshesAheadOfExpiry) {
    using vertex::TokenSource;
    // The usual hour: refreshed five minutes early, handed out until a minute before.
    EXPECT_EQ(TokenSource::refresh_lead(3600s), 5min);
    EXPECT_EQ(TokenSource::expiry_margin(3600s), 1min);
    // Short-lived tokens: refreshed half-way, handed out until 80 % of their life.
    EXPECT_EQ(TokenSource::refresh_lead(4s), 2s);
    EXPECT_EQ(TokenSource::expiry_margin(4s), std::chrono::milliseconds(800));
    for (auto life : {4s, 60s, 600s, 3600s})
        EXPECT_LT(life - TokenSource::refresh_lead(life), life - TokenSource::expiry_margin(life))
            << "the refresh comes before the token stops being used";
}

TEST(Vertex, BuildsTheOpenAICompatibleRequestWithTheAccessToken) {
    std::string error;
    const std::string json = key_json(keys().private_pem);
    auto none = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
    DeploymentParams p{"gemini-2.0-flash", "",
                       [&](const std::string& k) -> std::optional<std::string> {
                           if (k == "vertex_credentials") return json;
                           if (k == "vertex_location") return "europe-west4";
                           return std::nullopt;
                       },
                       none};
    const Codec& c = vertex::codec();
    EXPECT_EQ(c.default_base(p),
              "https://europe-west4-aiplatform.googleapis.com/v1/projects/p-1/locations/europe-west4/endpoints/openapi")
        << "the project comes from the key when vertex_project is absent";
    const CredentialsPtr creds = c.credentials(p, error);
    ASSERT_TRUE(creds) << error;
    EXPECT_EQ(creds, c.credentials(p, error)) << "one token source per service account";
    EXPECT_EQ(creds->secrets(), std::vector<std::string>{keys().private_pem});
    EXPECT_NE(creds->unavailable().find("no access token for sa@p-1.iam.gserviceaccount.com"), std::string::npos);

    ParsedBody body;
    body.members = R"("messages":[])";
    body.spans = {{"messages", 0, body.members.size()}};
    const std::vector<std::string> dropped;
    Target t{true, "europe-west4-aiplatform.googleapis.com", "443", "/v1/projects/p-1/locations/europe-west4/endpoints/openapi",
             "", "", true, creds.get()};
    upstream::Request req;
    c.build(CallSpec{t, Endpoint::Chat, false, "gemini-2.0-flash", body, dropped}, req);
    EXPECT_EQ(req.target, "/v1/projects/p-1/locations/europe-west4/endpoints/openapi/chat/completions");
    EXPECT_EQ(req.body, R"({"model":"google/gemini-2.0-flash","messages":[]})");
    upstream::Request other;
    c.build(CallSpec{t, Endpoint::Chat, false, "meta/llama-3.1-405b-instruct-maas", body, dropped}, other);
    EXPECT_EQ(other.body, R"({"model":"meta/llama-3.1-405b-instruct-maas","messages":[]})");

    DeploymentParams missing{"m", "", none, none};
    EXPECT_EQ(c.credentials(missing, error), nullptr);
    EXPECT_NE(error.find("vertex_credentials"), std::string::npos);
    EXPECT_EQ(c.default_base(missing), "") << "no project: api_base is required";
}

TEST(Crypto, Base64AndHmac) {
    EXPECT_EQ(base64("any carnal pleas"), "YW55IGNhcm5hbCBwbGVhcw==");
    EXPECT_EQ(base64url("\xfb\xff"), "-_8");
    std::string out;
    EXPECT_TRUE(base64_decode("YW55IGNhcm5hbCBwbGVhcw==", out));
    EXPECT_EQ(out, "any carnal pleas");
    EXPECT_FALSE(base64_decode("a b", out));
    // RFC 4231 test case 2.
    EXPECT_EQ(hex(bytes_of(hmac_sha256("Jefe", "what do ya want for nothing?"))),
              "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}
