// The digests and encodings the request signers need (AWS SigV4, Google's
// service-account JWT), on OpenSSL.
#pragma once

#include <array>
#include <string>
#include <string_view>

namespace tailgate::providers {

using Digest = std::array<unsigned char, 32>;

Digest sha256(std::string_view data);
Digest hmac_sha256(std::string_view key, std::string_view data);
inline std::string_view bytes_of(const Digest& d) { return {reinterpret_cast<const char*>(d.data()), d.size()}; }

std::string hex(std::string_view bytes);  // lower case
std::string base64(std::string_view bytes);      // standard alphabet, padded
std::string base64url(std::string_view bytes);   // URL-safe alphabet, unpadded (JWT)
// Standard or URL-safe base64, padded or not, no whitespace; false on anything else.
bool base64_decode(std::string_view text, std::string& out);
// RFC 3986 unreserved characters kept, every other byte %XX (upper case); '/'
// kept unless encode_slash. SigV4's URI encoding, and form values (encode_slash).
std::string uri_encode(std::string_view s, bool encode_slash);

}  // namespace tailgate::providers
