#include "common/key_hash.hpp"

#include <openssl/sha.h>

namespace tailgate {

namespace {

std::string sha256_hex(std::string_view key, size_t bytes) {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), digest);
    static const char* const kHex = "0123456789abcdef";
    std::string out(2 * bytes, '0');
    for (size_t i = 0; i < bytes; ++i) {
        out[2 * i] = kHex[digest[i] >> 4];
        out[2 * i + 1] = kHex[digest[i] & 0xf];
    }
    return out;
}

}  // namespace

std::string key_hash_prefix(std::string_view key) { return key.empty() ? std::string() : sha256_hex(key, 8); }

std::string key_token_hash(std::string_view key) { return sha256_hex(key, SHA256_DIGEST_LENGTH); }

}  // namespace tailgate
