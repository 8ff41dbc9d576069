// Keys and teams to and from LiteLLM's JSON shapes (keys/key_api.cpp).
#pragma once

#include "common/api_error.hpp"
#include "common/json_body.hpp"
#include "keys/records.hpp"

#include <rapidjson/document.h>

#include <map>
#include <optional>
#include <string>

namespace tailgate::keys {

// LiteLLM's key object (the "info" of /key/info), without the key itself.
std::string key_json(const KeyRecord& k, double live_spend);
std::string team_json(const TeamRecord& t, double live_spend);

// Applies the fields of a /key/generate or /key/update body (or of /team/new,
// /team/update) to a record; the error names the first bad field. `now` starts
// budget periods and `duration`s.
std::optional<ApiError> apply_key_fields(const rapidjson::Value& body, KeyRecord& k, TimeMs now);
std::optional<ApiError> apply_team_fields(const rapidjson::Value& body, TeamRecord& t, TimeMs now);

// The body as a JSON object, or the error to answer; an empty body counts as {}.
std::optional<ApiError> parse_object(const std::string& body, rapidjson::Document& doc);

// "a=1&b=x%20y" -> {a: "1", b: "x y"}.
std::map<std::string, std::string> parse_query(const std::string& query);

}  // namespace tailgate::keys
