#include "common/json_body.hpp"

namespace tailgate {

std::optional<ApiError> parse_json_object(std::string_view body, rapidjson::Document& doc) {
    doc.Parse(body.data(), body.size());
    if (doc.HasParseError() || !doc.IsObject())
        return ApiError::bad_request("The request body must be a JSON object", "", "invalid_json");
    return std::nullopt;
}

std::string string_member(const rapidjson::Value& o, const char* name) {
    auto it = o.FindMember(name);
    return it != o.MemberEnd() && it->value.IsString() ? std::string(it->value.GetString(), it->value.GetStringLength())
                                                        : std::string();
}

}  // namespace tailgate
