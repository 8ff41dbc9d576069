// A stable, one-way identity for an API key: the first 16 hex digits of its
// SHA-256 ("" for an empty key). Logs, change records and strategies see this,
// never the key.
#pragma once

#include <string>
#include <string_view>

namespace tailgate {

std::string key_hash_prefix(std::string_view key);

}  // namespace tailgate
