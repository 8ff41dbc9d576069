#include "google.hpp"

#include "json_writer.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

namespace tailgate::mock::google {
namespace {

using Clock = std::chrono::system_clock;

// Tokens issued so far, with their expiry (this process is one mock).
struct Issued {
  std::mutex mu;
  std::map<std::string, Clock::time_point> tokens;
  std::uint64_t next = 1;
};
Issued& issued() {
  static Issued i;
  return i;
}

bool b64url_decode(std::string_view in, std::string& out) {
  out.clear();
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? c - 'a' + 26 : c >= '0' && c <= '9' ? c - '0' + 52
          : c == '-' ? 62 : c == '_' ? 63 : -1;
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return true;
}

std::string form_value(std::string_view body, std::string_view name) {
  std::size_t pos = 0;
  while (pos <= body.size()) {
    std::size_t amp = body.find('&', pos);
    if (amp == std::string_view::npos) amp = body.size();
    std::string_view kv = body.substr(pos, amp - pos);
    if (kv.substr(0, name.size() + 1) == std::string(name) + "=") {
      std::string out;
      std::string_view v = kv.substr(name.size() + 1);
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (v[i] == '%' && i + 2 < v.size()) {
          out += static_cast<char>(std::stoi(std::string(v.substr(i + 1, 2)), nullptr, 16));
          i += 2;
        } else {
          out += v[i] == '+' ? ' ' : v[i];
        }
      }
      return out;
    }
    pos = amp + 1;
  }
  return {};
}

EVP_PKEY* public_key(const std::string& path) {
  static std::mutex mu;
  static std::map<std::string, EVP_PKEY*> cache;  // lives as long as the process
  std::lock_guard lk(mu);
  if (auto it = cache.find(path); it != cache.end()) return it->second;
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string pem = ss.str();
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* key = bio ? PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr) : nullptr;
  BIO_free(bio);
  return cache[path] = key;
}

bool verify_rs256(EVP_PKEY* key, std::string_view signed_part, std::string_view sig) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok = ctx && EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
                  EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                                   reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

// Why the assertion is not acceptable, "" when it is.
std::string check_assertion(const Settings& s, std::string_view jwt) {
  const std::size_t a = jwt.find('.'), b = jwt.rfind('.');
  if (a == std::string_view::npos || a == b) return "assertion is not a JWT";
  std::string header, claims, sig;
  if (!b64url_decode(jwt.substr(0, a), header) || !b64url_decode(jwt.substr(a + 1, b - a - 1), claims) ||
      !b64url_decode(jwt.substr(b + 1), sig))
    return "assertion is not base64url";
  rapidjson::Document h, c;
  h.Parse(header.data(), header.size());
  c.Parse(claims.data(), claims.size());
  if (!h.IsObject() || !c.IsObject() || str_member(h, "alg") != "RS256") return "assertion must be an RS256 JWT";
  EVP_PKEY* key = public_key(s.google_public_key);
  if (!key) return "mock: cannot read --google-public-key";
  if (!verify_rs256(key, jwt.substr(0, b), sig)) return "Invalid JWT Signature.";
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(Clock::now().time_since_epoch()).count();
  const auto num = [&](const char* k) { return c.HasMember(k) && c[k].IsInt64() ? c[k].GetInt64() : -1; };
  if (str_member(c, "iss").empty()) return "JWT has no iss";
  if (str_member(c, "scope").find("https://www.googleapis.com/auth/cloud-platform") == std::string_view::npos)
    return "JWT lacks the cloud-platform scope";
  const std::string_view aud = str_member(c, "aud");
  if (aud.size() < 6 || aud.substr(aud.size() - 6) != "/token") return "JWT aud is not this token endpoint";
  if (num("iat") > now + 60 || num("exp") <= now || num("exp") - num("iat") > 3600) return "Invalid JWT: iat/exp";
  return {};
}

}  // namespace

bool is_token_path(std::string_view path) { return path == "/token"; }

Reply token_reply(const Settings& s, std::string_view form_body) {
  Reply r;
  if (form_value(form_body, "grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer") {
    r.status = 400;
    r.body = R"({"error":"unsupported_grant_type","error_description":"Invalid grant_type"})";
    return r;
  }
  if (std::string why = check_assertion(s, form_value(form_body, "assertion")); !why.empty()) {
    r.status = 400;
    r.body = to_json([&](Writer& w) {
      w.StartObject();
      key(w, "error");
      put(w, "invalid_grant");
      key(w, "error_description");
      put(w, why);
      w.EndObject();
    });
    return r;
  }
  std::string token;
  {
    Issued& i = issued();
    std::lock_guard lk(i.mu);
    token = "ya29.mock-" + std::to_string(i.next++);
    i.tokens[token] = Clock::now() + std::chrono::milliseconds(static_cast<long>(s.token_ttl_s * 1000));
  }
  r.body = to_json([&](Writer& w) {
    w.StartObject();
    key(w, "access_token");
    put(w, token);
    key(w, "expires_in");
    w.Int(static_cast<int>(s.token_ttl_s));
    key(w, "token_type");
    put(w, "Bearer");
    w.EndObject();
  });
  return r;
}

std::string_view strip_vertex_prefix(std::string_view path, bool& vertex) {
  constexpr std::string_view kMarker = "/endpoints/openapi";
  vertex = false;
  if (path.substr(0, 13) != "/v1/projects/" && path.substr(0, 18) != "/v1beta1/projects/") return path;
  const std::size_t at = path.find(kMarker);
  if (at == std::string_view::npos) return path;
  vertex = true;
  return path.substr(at + kMarker.size());
}

std::string check_token(const Settings& s, const Headers& headers) {
  if (s.google_public_key.empty()) return {};
  std::string auth;
  for (const auto& [k, v] : headers)
    if (k == "authorization") auth = v;
  if (auth.substr(0, 7) != "Bearer ") return "Request is missing required authentication credential.";
  Issued& i = issued();
  std::lock_guard lk(i.mu);
  auto it = i.tokens.find(auth.substr(7));
  if (it == i.tokens.end()) return "Request had invalid authentication credentials.";
  if (it->second <= Clock::now()) return "Request had invalid authentication credentials: the access token expired.";
  return {};
}

std::string error_body(int status, std::string_view message) {
  return error_object([&](Writer& w) {
    key(w, "code");
    w.Int(status);
    key(w, "message");
    put(w, message);
    key(w, "status");
    put(w, status == 401 ? "UNAUTHENTICATED" : status == 429 ? "RESOURCE_EXHAUSTED" : "INVALID_ARGUMENT");
  });
}

}  // namespace tailgate::mock::google
