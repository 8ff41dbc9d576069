#include "providers/anthropic/codec.hpp"

#include "common/redact.hpp"
#include "providers/openai/codec.hpp"

#include <rapidjson/document.h>

#include <algorithm>
#include <cctype>

namespace tailgate::providers::anthropic {

namespace {

bool ends_with(std::string_view s, std::string_view tail) {
    return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

bool icontains(std::string_view hay, std::string_view needle) {
    return std::search(hay.begin(), hay.end(), needle.begin(), needle.end(), [](char a, char b) {
               return std::tolower(static_cast<unsigned char>(a)) == b;
           }) != hay.end();
}

// The `error.type` of an Anthropic error body ({"type":"error","error":{"type","message"}}).
std::string error_type_of(std::string_view body) {
    rapidjson::Document d;
    d.Parse(body.data(), body.size());
    if (d.HasParseError() || !d.IsObject()) return {};
    auto e = d.FindMember("error");
    if (e == d.MemberEnd() || !e->value.IsObject()) return {};
    auto t = e->value.FindMember("type");
    return t != e->value.MemberEnd() && t->value.IsString() ? t->value.GetString() : std::string();
}

struct StopMapping {
    std::string_view stop_reason, finish_reason;
};
// First match wins in either direction (so "stop" goes back to end_turn).
constexpr StopMapping kStops[] = {
    {"end_turn", "stop"},     {"stop_sequence", "stop"},           {"pause_turn", "stop"},
    {"max_tokens", "length"}, {"model_context_window_exceeded", "length"},
    {"tool_use", "tool_calls"}, {"tool_use", "function_call"}, {"refusal", "content_filter"},
};

}  // namespace

const providers::Codec& codec() {
    static const Codec instance;
    return instance;
}

std::string Codec::resolve(std::string& base_path, std::string& api_version, std::string_view model) const {
    (void)model;
    if (ends_with(base_path, "/messages")) base_path.resize(base_path.size() - 9);
    if (!ends_with(base_path, "/v1")) base_path += "/v1";
    if (api_version.empty()) api_version = kDefaultVersion;
    return {};
}

void Codec::build(const CallSpec& call, upstream::Request& out) const {
    const Target& t = call.target;
    out.origin = upstream::Origin{std::string(t.host), std::string(t.port), t.tls, t.ssl_verify};
    out.target = t.base_path;
    out.target += "/messages";
    if (!t.api_key.empty()) out.headers.emplace_back("x-api-key", std::string(t.api_key));
    out.headers.emplace_back("anthropic-version", t.api_version.empty() ? kDefaultVersion : t.api_version);
    if (call.stream) out.headers.emplace_back("Accept", "text/event-stream");
    // A Messages client's body as it came; any other operation arrives as chat (UpstreamTransport::sent).
    out.body = call.op == Endpoint::Messages ? call.request.body_for(call.model, call.dropped)
                                             : messages_body(call.request, call.model, call.stream, call.dropped);
}

UpstreamError Codec::decode_error(const upstream::ResponseHead& head, std::string_view body) const {
    UpstreamError e;
    e.http_status = head.status;
    e.message = openai::upstream_message(body);  // error.message: the same place in both shapes
    e.error_class = classify(head.status, error_type_of(body), e.message);
    e.retry_after_ms = retry_after_ms(head);
    return e;
}

ErrorClass classify(int status, std::string_view type, std::string_view message) {
    if (type == "rate_limit_error") return ErrorClass::RateLimit;
    if (type == "overloaded_error" || type == "api_error") return ErrorClass::Server;
    if (type == "authentication_error" || type == "permission_error") return ErrorClass::Auth;
    if (type == "not_found_error") return ErrorClass::NotFound;
    if (type == "timeout_error") return ErrorClass::Timeout;
    if (type == "request_too_large") return ErrorClass::BadRequest;
    if (icontains(message, "prompt is too long") || icontains(message, "context window"))
        return ErrorClass::ContextWindow;
    if (type == "invalid_request_error") return ErrorClass::BadRequest;
    // No (known) type: the status says it, as for any HTTP API; a stream's error event has none.
    return status ? openai::classify_status(status, message) : ErrorClass::Server;
}

std::string_view finish_reason(std::string_view stop) {
    for (const auto& m : kStops)
        if (m.stop_reason == stop) return m.finish_reason;
    return "stop";
}

std::string_view stop_reason(std::string_view finish) {
    for (const auto& m : kStops)
        if (m.finish_reason == finish) return m.stop_reason;
    return "end_turn";
}

}  // namespace tailgate::providers::anthropic
