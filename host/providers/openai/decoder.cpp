// Reading OpenAI-wire responses: SSE chunks and whole bodies.
//
// Pass-through (no sink): each chunk is parsed once to find the commit point
// (the first content), the end marker, usage and error events; the client gets
// the upstream's bytes. With a sink (a client surface of another wire), the
// chunk's deltas are also handed on as Events.
#include "providers/openai/codec.hpp"
#include "providers/sse.hpp"

namespace tailgate::providers::openai {

namespace {

bool nonempty_string(const rapidjson::Value& obj, const char* key) {
    auto it = obj.FindMember(key);
    return it != obj.MemberEnd() && it->value.IsString() && it->value.GetStringLength() > 0;
}

bool nonempty_array(const rapidjson::Value& obj, const char* key) {
    auto it = obj.FindMember(key);
    return it != obj.MemberEnd() && it->value.IsArray() && !it->value.Empty();
}

std::string_view string_of(const rapidjson::Value& obj, const char* key) {
    auto it = obj.FindMember(key);
    if (it == obj.MemberEnd() || !it->value.IsString()) return {};
    return {it->value.GetString(), it->value.GetStringLength()};
}

uint32_t uint_of(const rapidjson::Value& obj, const char* key, uint32_t fallback) {
    auto it = obj.FindMember(key);
    return it != obj.MemberEnd() && it->value.IsUint() ? it->value.GetUint() : fallback;
}

void emit_tool_calls(const rapidjson::Value& calls, uint32_t choice, EventSink& sink) {
    uint32_t position = 0;
    for (const auto& call : calls.GetArray()) {
        if (!call.IsObject()) continue;
        Event t = make_event(Event::Kind::ToolCall, choice);
        t.tool.index = uint_of(call, "index", position++);  // a whole body's calls have no index
        t.tool.id = string_of(call, "id");
        if (auto fn = call.FindMember("function"); fn != call.MemberEnd() && fn->value.IsObject()) {
            t.tool.name = string_of(fn->value, "name");
            t.tool.arguments = string_of(fn->value, "arguments");
        }
        sink.on_event(t);
    }
}

// A chunk's deltas (`part` = "delta") or a whole body's messages ("message") as
// Events; only when a sink wants them.
void emit_choices(const rapidjson::Value& d, const char* part, EventSink& sink) {
    auto choices = d.FindMember("choices");
    if (choices == d.MemberEnd() || !choices->value.IsArray()) return;
    for (const auto& ch : choices->value.GetArray()) {
        if (!ch.IsObject()) continue;
        Event ev = make_event(Event::Kind::Reasoning, uint_of(ch, "index", 0));
        auto pv = ch.FindMember(part);
        const rapidjson::Value& dv = pv != ch.MemberEnd() && pv->value.IsObject() ? pv->value : ch;
        ev.text = string_of(dv, "reasoning_content");  // DeepSeek's, vLLM's and LiteLLM's name for thinking
        if (!ev.text.empty()) sink.on_event(ev);
        ev.kind = Event::Kind::Content;
        ev.text = string_of(dv, "content");
        if (ev.text.empty()) ev.text = string_of(ch, "text");  // legacy completions
        if (!ev.text.empty()) sink.on_event(ev);
        if (auto tc = dv.FindMember("tool_calls"); tc != dv.MemberEnd() && tc->value.IsArray())
            emit_tool_calls(tc->value, ev.choice, sink);
        if (auto fr = string_of(ch, "finish_reason"); !fr.empty()) {
            Event f = make_event(Event::Kind::Finish, ev.choice);
            f.text = fr;
            sink.on_event(f);
        }
    }
}

void emit_start(const rapidjson::Value& d, EventSink& sink) {
    Event e = make_event(Event::Kind::Start);
    e.text = string_of(d, "id");
    e.model = string_of(d, "model");
    sink.on_event(e);
}

void emit_usage(const Usage& u, EventSink& sink) {
    Event e = make_event(Event::Kind::Usage);
    e.usage = u;
    sink.on_event(e);
}

class Decoder final : public ResponseDecoder {
public:
    explicit Decoder(EventSinkPtr sink) : sink_(std::move(sink)) {}

    Decoded feed(std::string_view bytes) override {
        Decoded r;
        const std::string_view ready = framer_.feed(bytes, [&](std::string_view data) { return on_data(data, r); });
        if (sink_) {
            out_.clear();
            sink_->take(out_);
            r.client = out_;
        } else {
            r.client = ready;
        }
        return r;
    }
    size_t pending() const override { return framer_.pending(); }
    bool saw_done() const override { return done_; }
    const UpstreamError* stream_error() const override { return error_ ? &*error_ : nullptr; }
    const std::string& malformed_excerpt() const override { return malformed_; }
    Usage usage() const override { return usage_; }

    BodyDecoded decode_body(std::string& body) override {
        BodyDecoded out;
        rapidjson::Document d;
        if (read_object_body(body, d, out) && sink_) {
            // Another client wire: the whole body as events, rendered by the surface.
            emit_start(d, *sink_);
            emit_choices(d, "message", *sink_);
            if (out.usage.prompt_tokens >= 0 || out.usage.completion_tokens >= 0) emit_usage(out.usage, *sink_);
            sink_->on_event(make_event(Event::Kind::Done));
            body.clear();
            sink_->take(body);
        }
        return out;
    }

private:
    // One event's data; false when it is malformed (neither JSON nor [DONE]).
    bool on_data(std::string_view data, Decoded& r) {
        if (data == "[DONE]") {
            done_ = r.done = true;
            if (sink_) sink_->on_event(make_event(Event::Kind::Done));
            return true;
        }
        rapidjson::Document d;
        d.Parse(data.data(), data.size());
        if (d.HasParseError() || !d.IsObject()) {
            r.malformed = true;
            malformed_.assign(data.substr(0, 100));
            return false;
        }
        if (auto e = d.FindMember("error"); e != d.MemberEnd() && !e->value.IsNull()) {
            on_error_event(data);
            r.error = &*error_;
            return true;
        }
        const Usage before = usage_;
        read_usage(d, usage_);
        if (!r.content && has_content(d)) r.content = true;
        if (sink_) {
            if (!started_) emit_start(d, *sink_);
            started_ = true;
            emit_choices(d, "delta", *sink_);
            if (usage_.prompt_tokens != before.prompt_tokens || usage_.completion_tokens != before.completion_tokens)
                emit_usage(usage_, *sink_);
        }
        return true;
    }

    void on_error_event(std::string_view data) {
        if (error_) return;  // the first one tells
        error_ = UpstreamError{ErrorClass::Server, 0, upstream_message(data), -1};
        if (sink_) sink_->on_event(error_event(*error_));
    }

    SseFramer framer_;
    EventSinkPtr sink_;
    std::string out_;  // rendered client bytes (with a sink)
    bool done_ = false;
    bool started_ = false;  // Start emitted (with a sink)
    std::optional<UpstreamError> error_;
    std::string malformed_;
    Usage usage_;
};

}  // namespace

bool has_content(const rapidjson::Value& d) {
    if (!d.IsObject()) return false;
    auto choices = d.FindMember("choices");
    if (choices == d.MemberEnd() || !choices->value.IsArray()) return false;
    for (const auto& ch : choices->value.GetArray()) {
        if (!ch.IsObject()) continue;
        if (nonempty_string(ch, "text")) return true;  // legacy completions
        auto delta = ch.FindMember("delta");
        if (delta == ch.MemberEnd() || !delta->value.IsObject()) continue;
        const auto& dv = delta->value;
        if (nonempty_string(dv, "content") || nonempty_string(dv, "refusal") ||
            nonempty_string(dv, "reasoning_content") || nonempty_array(dv, "tool_calls"))
            return true;
        auto fc = dv.FindMember("function_call");
        if (fc != dv.MemberEnd() && fc->value.IsObject()) return true;
    }
    return false;
}

void read_usage(const rapidjson::Value& d, Usage& u) {
    if (!d.IsObject()) return;
    auto it = d.FindMember("usage");
    if (it == d.MemberEnd() || !it->value.IsObject()) return;
    auto p = it->value.FindMember("prompt_tokens");
    if (p != it->value.MemberEnd() && p->value.IsInt64()) u.prompt_tokens = p->value.GetInt64();
    auto c = it->value.FindMember("completion_tokens");
    if (c != it->value.MemberEnd() && c->value.IsInt64()) u.completion_tokens = c->value.GetInt64();
    // Prompt caching: OpenAI's detail, and the cache writes LiteLLM-style upstreams report.
    auto details = it->value.FindMember("prompt_tokens_details");
    if (details != it->value.MemberEnd() && details->value.IsObject()) {
        auto cached = details->value.FindMember("cached_tokens");
        if (cached != details->value.MemberEnd() && cached->value.IsInt64()) u.cached_tokens = cached->value.GetInt64();
    }
    auto written = it->value.FindMember("cache_creation_input_tokens");
    if (written != it->value.MemberEnd() && written->value.IsInt64())
        u.cache_creation_tokens = written->value.GetInt64();
}

bool read_object_body(std::string_view body, rapidjson::Document& d, BodyDecoded& out) {
    d.Parse(body.data(), body.size());
    if (d.HasParseError() || !d.IsObject()) {
        out.problem = "upstream returned a 2xx body that is not a JSON object: " + excerpt(body);
        return false;
    }
    out.ok = true;
    read_usage(d, out.usage);
    return true;
}

ResponseDecoderPtr Codec::decoder(EventSinkPtr sink) const { return std::make_unique<Decoder>(std::move(sink)); }

}  // namespace tailgate::providers::openai
