#include "providers/openai/codec.hpp"

#include "common/redact.hpp"
#include "providers/operations.hpp"

#include <algorithm>
#include <cctype>

namespace tailgate::providers::openai {

namespace {

bool ieq_contains(std::string_view hay, std::string_view needle) {
    auto it = std::search(hay.begin(), hay.end(), needle.begin(), needle.end(),
                          [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == b; });
    return it != hay.end();
}

std::string raw_upstream_message(std::string_view body) {
    rapidjson::Document d;
    d.Parse(body.data(), body.size());
    if (!d.HasParseError() && d.IsObject()) {
        auto e = d.FindMember("error");
        if (e != d.MemberEnd()) {
            if (e->value.IsObject()) {
                auto m = e->value.FindMember("message");
                if (m != e->value.MemberEnd() && m->value.IsString()) return m->value.GetString();
            } else if (e->value.IsString()) {
                return e->value.GetString();
            }
        }
        auto m = d.FindMember("message");
        if (m != d.MemberEnd() && m->value.IsString()) return m->value.GetString();
    }
    return excerpt(body);
}

// An error status whose body is not JSON (an HTML page from a proxy, plain text):
// say so, with the start of the body, rather than pass markup off as a message.
std::string error_message(int status, std::string_view content_type, std::string_view body) {
    if (content_type.substr(0, 16) == "application/json" || body.empty() || body.front() == '{')
        return upstream_message(body);
    std::string ct(content_type.substr(0, content_type.find(';')));
    return redact("upstream returned HTTP " + std::to_string(status) + " with a non-JSON body" +
                  (ct.empty() ? std::string() : " (" + ct + ")") + ": " + excerpt(body));
}

}  // namespace

const providers::Codec& codec() {
    static const Codec instance;
    return instance;
}

const providers::Codec& native_codec() {
    static const Codec instance(true);
    return instance;
}

const char* Codec::path_for(Endpoint op) {
    return operation(op).path.data();  // string literals: NUL-terminated
}

void Codec::address(const CallSpec& call, upstream::Request& out) const {
    if (!call.target.api_key.empty()) {
        std::string auth = "Bearer ";
        auth += call.target.api_key;
        out.headers.emplace_back("Authorization", std::move(auth));
    }
}

void Codec::build(const CallSpec& call, upstream::Request& out) const {
    const Target& t = call.target;
    out.origin = upstream::Origin{std::string(t.host), std::string(t.port), t.tls, t.ssl_verify};
    path(call, out);
    address(call, out);
    // Pass-through streams (audio) are whatever the upstream sends, not SSE.
    if (call.stream && !operation(call.op).raw_stream()) out.headers.emplace_back("Accept", "text/event-stream");
    out.body = call.request.body_for(call.model, call.dropped);
    if (std::string ct = call.request.content_type(); !ct.empty())  // a multipart form's boundary
        out.headers.emplace_back("Content-Type", std::move(ct));
}

void Codec::path(const CallSpec& call, upstream::Request& out) const {
    out.target = call.target.base_path;
    out.target += path_for(call.op);
}

ResponseDecoderPtr Codec::decoder(Endpoint op, EventSinkPtr sink) const {
    if (const Operation& o = operation(op); o.pass_through())  // same wire: never a sink
        return passthrough_decoder(o.response == ResponseForm::JsonBody);
    if (wire_for(op) == Wire::OpenAIResponses) return responses_decoder();  // same wire: never a sink
    return decoder(std::move(sink));
}

UpstreamError Codec::decode_error(const upstream::ResponseHead& head, std::string_view body) const {
    UpstreamError e;
    e.http_status = head.status;
    e.error_class = classify_status(head.status, body);
    e.message = error_message(head.status, head.header("content-type"), body);
    e.retry_after_ms = retry_after_ms(head);
    return e;
}

ErrorClass classify_status(int status, std::string_view body) {
    if (status == 429) return ErrorClass::RateLimit;
    if (status == 401 || status == 403) return ErrorClass::Auth;
    if (status == 404) return ErrorClass::NotFound;
    if (status == 408) return ErrorClass::Timeout;
    if (status >= 500) return ErrorClass::Server;
    if (status == 409) return ErrorClass::Server;  // conflict/lock: worth another try, as the OpenAI SDK does
    if (status >= 400) {
        if (ieq_contains(body, "context_length_exceeded") || ieq_contains(body, "maximum context length") ||
            ieq_contains(body, "context window"))
            return ErrorClass::ContextWindow;
        return ErrorClass::BadRequest;
    }
    return ErrorClass::Protocol;
}

// Scrubbed: an upstream may quote the api key it was sent.
std::string upstream_message(std::string_view body) { return redact(raw_upstream_message(body)); }

}  // namespace tailgate::providers::openai
