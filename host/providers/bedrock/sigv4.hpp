// AWS Signature Version 4 (header form), on OpenSSL: what an AWS service checks
// to accept a request. The signer builds the canonical request from the parts
// the caller gives (already URI-encoded the way the service expects), derives
// the day's signing key from the secret, and returns the Authorization value.
#pragma once

#include "providers/crypto.hpp"

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tailgate::providers::bedrock {

struct AwsKeys {
    std::string access_key_id;
    std::string secret_access_key;
    std::string session_token;  // "" unless temporary credentials
};

// Owns its strings: the canonical forms are usually computed right where it is made.
struct SigV4Request {
    std::string method;
    std::string canonical_uri;    // e.g. "/model/x%253A0/converse" (see canonical_uri())
    std::string canonical_query;  // "" or sorted, encoded "a=1&b=2" (see canonical_query())
    // The headers to sign, in any order and case; values are trimmed and their
    // inner runs of spaces folded as the canonical form requires.
    std::vector<std::pair<std::string, std::string>> headers;
    std::string payload_sha256_hex;
    std::string amz_date;  // "20150830T123600Z"
    std::string region;
    std::string service;
};

using providers::uri_encode;  // providers/crypto.hpp
// The canonical URI of a path as sent: every segment URI-encoded once more
// (services other than S3 sign the path double-encoded).
std::string canonical_uri(std::string_view path);
// A query string, its parameters sorted by name then value, each encoded.
std::string canonical_query(std::string_view query);

std::string canonical_request(const SigV4Request& r);
std::string string_to_sign(const SigV4Request& r, std::string_view canonical_request_text);
// hex(HMAC(kSigning, string_to_sign)), kSigning derived from the secret, the date, region and service.
std::string signature(std::string_view secret, std::string_view date, std::string_view region,
                      std::string_view service, std::string_view string_to_sign_text);
// "AWS4-HMAC-SHA256 Credential=AKID/date/region/service/aws4_request, SignedHeaders=..., Signature=..."
std::string authorization(const AwsKeys& keys, const SigV4Request& r);

// "YYYYMMDDTHHMMSSZ" of a UTC time.
std::string amz_date(std::chrono::system_clock::time_point t);

}  // namespace tailgate::providers::bedrock
