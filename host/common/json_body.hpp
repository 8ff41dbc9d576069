// Request bodies that must be a JSON object: the admin API's and the key API's.
#pragma once

#include "common/api_error.hpp"

#include <rapidjson/document.h>

#include <optional>
#include <string>
#include <string_view>

namespace tailgate {

// Parses `body` into `doc`; the 400 to answer when it is not a JSON object.
std::optional<ApiError> parse_json_object(std::string_view body, rapidjson::Document& doc);

// The string member `name` of an object; "" when absent or not a string.
std::string string_member(const rapidjson::Value& o, const char* name);

}  // namespace tailgate
