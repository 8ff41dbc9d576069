// Small JSON helpers of the key store (RapidJSON underneath).
#pragma once

#include <string>
#include <vector>

namespace tailgate::keys {

// A JSON array of strings -> the strings (non-strings and malformed text: skipped / empty).
std::vector<std::string> string_list(const std::string& json);
std::string string_list_json(const std::vector<std::string>& v);
// A number as JSON (finite; "null" otherwise), shortest text that reads back the same.
std::string number_json(double v);

}  // namespace tailgate::keys
