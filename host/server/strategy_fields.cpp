#include "server/strategy_fields.hpp"

#include <rapidjson/document.h>

#include <charconv>
#include <optional>

namespace tailgate::server {

namespace {

// A JSON string member of an object value (Messages' metadata.user_id); "" when absent.
std::string string_member(std::string_view object_json, const char* key) {
    rapidjson::Document d;
    d.Parse(object_json.data(), object_json.size());
    if (d.HasParseError() || !d.IsObject()) return {};
    auto it = d.FindMember(key);
    return it != d.MemberEnd() && it->value.IsString() ? std::string(it->value.GetString(), it->value.GetStringLength())
                                                      : std::string();
}

std::optional<int64_t> integer(std::string_view v) {
    int64_t n = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || n < 0) return std::nullopt;
    return n;
}

}  // namespace

void fill_strategy_fields(const ParsedBody& body, router::RequestInfo& info) {
    std::optional<int64_t> max_tokens, max_completion_tokens;
    size_t system_bytes = 0;  // Messages' top-level system prompt
    for (const auto& sp : body.spans) {
        const std::string& k = sp.key;
        if (k == "user") {
            std::string_view v = body.value_of(sp);
            if (v.empty() || v.front() != '"') continue;
            rapidjson::Document d;
            d.Parse(v.data(), v.size());
            if (!d.HasParseError() && d.IsString()) info.user.emplace(d.GetString(), d.GetStringLength());
        } else if (k == "max_tokens") {
            max_tokens = integer(body.value_of(sp));
        } else if (k == "max_completion_tokens" || k == "max_output_tokens") {  // the latter: Responses API
            max_completion_tokens = integer(body.value_of(sp));
        } else if (k == "tools" || k == "functions") {
            if (body.value_of(sp) != "null") info.has_tools = true;
        } else if (k == "response_format") {
            if (body.value_of(sp) != "null") info.has_response_format = true;
        } else if (k == "text") {  // the Responses API's text.format
            const std::string_view v = body.value_of(sp);
            if (v.find("\"json_schema\"") != std::string_view::npos || v.find("\"json_object\"") != std::string_view::npos)
                info.has_response_format = true;
        } else if (k == "metadata" && !info.user) {  // Messages' own metadata (the gateway's is no member)
            if (std::string id = string_member(body.value_of(sp), "user_id"); !id.empty()) info.user = std::move(id);
        } else if (k == "output_config") {  // Messages' structured output
            if (body.value_of(sp).find("\"format\"") != std::string_view::npos) info.has_response_format = true;
        } else if (k == "system") {
            system_bytes = sp.end - sp.begin;
        } else if (k == "messages" || k == "prompt" || k == "input") {
            // About four bytes of English per token; JSON punctuation makes this
            // an over-estimate, which is the safe side for budgets.
            info.prompt_tokens_estimate = static_cast<int64_t>((sp.end - sp.begin) / 4);
        }
    }
    if (info.prompt_tokens_estimate >= 0) info.prompt_tokens_estimate += static_cast<int64_t>(system_bytes / 4);
    if (max_completion_tokens) info.max_tokens = *max_completion_tokens;
    else if (max_tokens) info.max_tokens = *max_tokens;
}


}  // namespace tailgate::server
