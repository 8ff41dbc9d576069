#include "common/key_hash.hpp"

#include <openssl/sha.h>

namespace tailgate {

std::string key_hash_prefix(std::string_view key) {
    if (key.empty()) return {};
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), digest);
    static const char* const kHex = "0123456789abcdef";
    std::string out(16, '0');
    for (size_t i = 0; i < 8; ++i) {
        out[2 * i] = kHex[digest[i] >> 4];
        out[2 * i + 1] = kHex[digest[i] & 0xf];
    }
    return out;
}

}  // namespace tailgate
