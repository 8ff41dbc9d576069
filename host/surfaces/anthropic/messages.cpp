#include "surfaces/anthropic/messages.hpp"

#include "surfaces/anthropic/render.hpp"
#include "surfaces/openai/parse.hpp"

#include <charconv>

namespace tailgate::surfaces::anthropic {

namespace {

// max_tokens is required by Messages (and every deployment of a group should
// answer the same request the same way, translated or not).
std::optional<ApiError> check_max_tokens(const providers::ParsedBody& body) {
    const providers::ParsedBody::Span* sp = body.find("max_tokens");
    if (!sp) return ApiError::bad_request("max_tokens: Field required", "max_tokens", "missing_required_parameter");
    const std::string_view v = body.value_of(*sp);
    int64_t n = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || end != v.data() + v.size() || n < 1)
        return ApiError::bad_request("max_tokens: Input should be a positive integer", "max_tokens", "invalid_value");
    return std::nullopt;
}

}  // namespace

std::variant<providers::ParsedBody, ApiError> Messages::parse(std::string_view body) const {
    auto parsed = openai::parse_members(body, openai::BodyRules{"messages", true, true, {}});
    auto* p = std::get_if<providers::ParsedBody>(&parsed);
    if (!p) return parsed;
    if (auto e = check_max_tokens(*p)) return *e;
    return parsed;
}

providers::EventSinkPtr Messages::renderer(bool stream) const { return std::make_unique<Renderer>(stream); }

// The Anthropic SDK raises the error of an `event: error` (APIStatusError by its type).
void Messages::stream_error(const ApiError& e, std::string& out) const {
    out += "event: error\ndata: ";
    out += error_body(e);
    out += "\n\n";
}

std::string Messages::error_body(const ApiError& e) const {
    std::string out = "{\"type\":\"error\",\"error\":{\"type\":\"";
    out += error_type(e.status);
    out += "\",\"message\":";
    out += json_quote(e.message);
    out += "}}";
    return out;
}

std::shared_ptr<const providers::ParsedBody> Messages::to_chat(const providers::ParsedBody& request) const {
    return std::make_shared<const providers::ParsedBody>(messages_to_chat(request));
}

}  // namespace tailgate::surfaces::anthropic
