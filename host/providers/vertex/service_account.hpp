// A Google service-account key (the JSON file `gcloud iam service-accounts keys
// create` writes) and the signed JWT it exchanges for an OAuth access token
// (RFC 7523: grant_type jwt-bearer), signed RS256 with OpenSSL.
#pragma once

#include <openssl/evp.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace tailgate::providers::vertex {

struct PkeyDeleter {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

struct ServiceAccount {
    std::string client_email;
    std::string project_id;
    std::string private_key_id;
    std::string token_uri = "https://oauth2.googleapis.com/token";
    std::string private_key_pem;  // kept for the redaction list only
    PkeyPtr key;                  // the parsed private key (RSA)
};

// Parses the key file's JSON; std::nullopt with `error` set (never quoting the key).
std::optional<ServiceAccount> parse_service_account(std::string_view json, std::string& error);

inline constexpr std::string_view kCloudPlatformScope = "https://www.googleapis.com/auth/cloud-platform";

// header.claims.signature, base64url: iss = client_email, aud = token_uri,
// scope, iat = now, exp = now + 1 h. Empty when signing fails.
std::string signed_jwt(const ServiceAccount& sa, std::string_view scope, std::chrono::system_clock::time_point now);

// The token endpoint's form body for `jwt`.
std::string token_request_body(std::string_view jwt);

}  // namespace tailgate::providers::vertex
