// A stable, one-way identity for an API key: the first 16 hex digits of its
// SHA-256 ("" for an empty key). Logs, change records and strategies see this,
// never the key.
#pragma once

#include <string>
#include <string_view>

namespace tailgate {

std::string key_hash_prefix(std::string_view key);

// The whole SHA-256 of a key, 64 lower-case hex digits: what the key store
// keeps instead of a virtual key (LiteLLM's "token", so its hashes import as is).
std::string key_token_hash(std::string_view key);

}  // namespace tailgate
