// Reading OpenAI Responses API answers from deployments that serve it natively.
//
// Always pass-through: the client speaks the same wire, so its bytes are the
// upstream's. Each typed event is still parsed once, for what dispatch needs:
// the commit point (the first generated text or tool-call arguments, never
// `response.created` or an empty item), the end (`response.completed` /
// `response.incomplete`), usage, and errors (`error`, `response.failed`).
#include "providers/openai/codec.hpp"
#include "providers/sse.hpp"
#include "common/redact.hpp"

#include <array>

namespace tailgate::providers::openai {

namespace {

std::string_view string_of(const rapidjson::Value& obj, const char* key) {
    if (!obj.IsObject()) return {};
    auto it = obj.FindMember(key);
    if (it == obj.MemberEnd() || !it->value.IsString()) return {};
    return {it->value.GetString(), it->value.GetStringLength()};
}

const rapidjson::Value* object_of(const rapidjson::Value& obj, const char* key) {
    if (!obj.IsObject()) return nullptr;
    auto it = obj.FindMember(key);
    return it != obj.MemberEnd() && it->value.IsObject() ? &it->value : nullptr;
}

// Deltas of generated output: the commit point of a race or hedge.
constexpr std::array<std::string_view, 6> kContentDeltas = {
    "response.output_text.delta",    "response.function_call_arguments.delta",
    "response.refusal.delta",        "response.reasoning_text.delta",
    "response.reasoning_summary_text.delta", "response.custom_tool_call_input.delta"};

bool is_content(std::string_view type, const rapidjson::Value& event) {
    for (auto t : kContentDeltas)
        if (type == t) return !string_of(event, "delta").empty();
    return false;
}

ErrorClass class_of_code(std::string_view code) {
    if (code == "rate_limit_exceeded") return ErrorClass::RateLimit;
    if (code == "context_length_exceeded") return ErrorClass::ContextWindow;
    if (code == "invalid_prompt" || code == "invalid_request_error") return ErrorClass::BadRequest;
    return ErrorClass::Server;
}

// The error of an `error` event ({code, message}) or of a failed Response ({error: {code, message}}).
UpstreamError error_of(const rapidjson::Value& err) {
    UpstreamError e;
    e.error_class = class_of_code(string_of(err, "code"));
    std::string_view msg = string_of(err, "message");
    e.message = redact(msg.empty() ? std::string("the upstream reported a failed response") : std::string(msg));
    return e;
}

class ResponsesDecoder final : public ResponseDecoder {
public:
    Decoded feed(std::string_view bytes) override {
        Decoded r;
        r.client = framer_.feed(bytes, [&](std::string_view data) { return on_data(data, r); });
        return r;
    }
    size_t pending() const override { return framer_.pending(); }
    bool saw_done() const override { return done_; }
    std::string_view end_marker() const override { return "response.completed"; }
    const UpstreamError* stream_error() const override { return error_ ? &*error_ : nullptr; }
    const std::string& malformed_excerpt() const override { return malformed_; }
    Usage usage() const override { return usage_; }

    BodyDecoded decode_body(std::string& body) override {
        BodyDecoded out;
        rapidjson::Document d;
        d.Parse(body.data(), body.size());
        if (d.HasParseError() || !d.IsObject()) {
            out.problem = "upstream returned a 2xx body that is not a JSON object: " + excerpt(body);
            return out;
        }
        if (string_of(d, "status") == "failed") {
            const rapidjson::Value* err = object_of(d, "error");
            out.problem = "upstream response failed: " + (err ? error_of(*err).message : std::string("no reason given"));
            return out;
        }
        out.ok = true;
        read_response_usage(d, out.usage);
        return out;
    }

private:
    // One event's data; false when it is not JSON.
    bool on_data(std::string_view data, Decoded& r) {
        if (data == "[DONE]") return true;  // some compatible servers end with it; the typed end tells
        rapidjson::Document d;
        d.Parse(data.data(), data.size());
        if (d.HasParseError() || !d.IsObject()) {
            r.malformed = true;
            malformed_.assign(data.substr(0, 100));
            return false;
        }
        const std::string_view type = string_of(d, "type");
        if (!r.content && is_content(type, d)) r.content = true;
        if (type == "response.completed" || type == "response.incomplete") {
            done_ = r.done = true;
            if (const rapidjson::Value* resp = object_of(d, "response")) read_response_usage(*resp, usage_);
        } else if (type == "error") {
            on_error(d, r);
        } else if (type == "response.failed") {
            const rapidjson::Value* resp = object_of(d, "response");
            const rapidjson::Value* err = resp ? object_of(*resp, "error") : nullptr;
            on_error(err ? *err : d, r);
        }
        return true;
    }

    void on_error(const rapidjson::Value& err, Decoded& r) {
        if (!error_) error_ = error_of(err);  // the first one tells
        r.error = &*error_;
    }

    SseFramer framer_;
    bool done_ = false;
    std::optional<UpstreamError> error_;
    std::string malformed_;
    Usage usage_;
};

}  // namespace

void read_response_usage(const rapidjson::Value& response, Usage& u) {
    const rapidjson::Value* usage = object_of(response, "usage");
    if (!usage) return;
    auto in = usage->FindMember("input_tokens");
    if (in != usage->MemberEnd() && in->value.IsInt64()) u.prompt_tokens = in->value.GetInt64();
    auto out = usage->FindMember("output_tokens");
    if (out != usage->MemberEnd() && out->value.IsInt64()) u.completion_tokens = out->value.GetInt64();
}

ResponseDecoderPtr responses_decoder() { return std::make_unique<ResponsesDecoder>(); }

}  // namespace tailgate::providers::openai
