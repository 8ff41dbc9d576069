#include "server/strategy_fields.hpp"

#include <rapidjson/document.h>

#include <charconv>
#include <optional>

namespace tailgate::server {

namespace {

std::string_view value_of(const ParsedBody& body, const ParsedBody::Span& sp) { return body.value_of(sp); }

std::optional<int64_t> integer(std::string_view v) {
    int64_t n = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || n < 0) return std::nullopt;
    return n;
}

}  // namespace

void fill_strategy_fields(const ParsedBody& body, router::RequestInfo& info) {
    std::optional<int64_t> max_tokens, max_completion_tokens;
    for (const auto& sp : body.spans) {
        const std::string& k = sp.key;
        if (k == "user") {
            std::string_view v = value_of(body, sp);
            if (v.empty() || v.front() != '"') continue;
            rapidjson::Document d;
            d.Parse(v.data(), v.size());
            if (!d.HasParseError() && d.IsString()) info.user.emplace(d.GetString(), d.GetStringLength());
        } else if (k == "max_tokens") {
            max_tokens = integer(value_of(body, sp));
        } else if (k == "max_completion_tokens" || k == "max_output_tokens") {  // the latter: Responses API
            max_completion_tokens = integer(value_of(body, sp));
        } else if (k == "tools" || k == "functions") {
            if (value_of(body, sp) != "null") info.has_tools = true;
        } else if (k == "response_format") {
            if (value_of(body, sp) != "null") info.has_response_format = true;
        } else if (k == "text") {  // the Responses API's text.format
            const std::string_view v = value_of(body, sp);
            if (v.find("\"json_schema\"") != std::string_view::npos || v.find("\"json_object\"") != std::string_view::npos)
                info.has_response_format = true;
        } else if (k == "messages" || k == "prompt" || k == "input") {
            // About four bytes of English per token; JSON punctuation makes this
            // an over-estimate, which is the safe side for budgets.
            info.prompt_tokens_estimate = static_cast<int64_t>((sp.end - sp.begin) / 4);
        }
    }
    if (max_completion_tokens) info.max_tokens = *max_completion_tokens;
    else if (max_tokens) info.max_tokens = *max_tokens;
}


}  // namespace tailgate::server
