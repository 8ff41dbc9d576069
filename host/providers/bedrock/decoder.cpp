// Reading Converse answers: a JSON body, or ConverseStream's binary event
// stream, frame by frame, into normalized events for the client surface's
// renderer (reasoning as chat's reasoning_content). The commit point is the
// first text, reasoning or tool-use delta.
//
// Stream events: messageStart, contentBlockStart (a tool use's id and name),
// contentBlockDelta (text / toolUse.input / reasoningContent), contentBlockStop,
// messageStop (stopReason), metadata (usage; the last event, our Done).
// Exceptions arrive as messages of :message-type "exception".
#include "providers/bedrock/codec.hpp"

#include "common/redact.hpp"
#include "providers/bedrock/event_stream.hpp"
#include "providers/openai/codec.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <atomic>
#include <map>

namespace tailgate::providers::bedrock {

namespace {

using Value = rapidjson::Value;

std::string_view str_member(const Value& v, const char* key) {
    if (!v.IsObject()) return {};
    auto it = v.FindMember(key);
    return it != v.MemberEnd() && it->value.IsString() ? std::string_view(it->value.GetString(), it->value.GetStringLength())
                                                       : std::string_view();
}

const Value* object_member(const Value& v, const char* key) {
    if (!v.IsObject()) return nullptr;
    auto it = v.FindMember(key);
    return it != v.MemberEnd() && it->value.IsObject() ? &it->value : nullptr;
}

int64_t int_member(const Value& v, const char* key) {
    if (!v.IsObject()) return -1;
    auto it = v.FindMember(key);
    return it != v.MemberEnd() && it->value.IsInt64() ? it->value.GetInt64() : -1;
}

Usage usage_of(const Value& doc) {
    Usage u;
    if (const Value* usage = object_member(doc, "usage")) {
        u.prompt_tokens = int_member(*usage, "inputTokens");
        u.completion_tokens = int_member(*usage, "outputTokens");
    }
    return u;
}

// A response id in OpenAI's style: Converse has none.
std::string new_id() {
    static std::atomic<uint64_t> seq{0};
    const uint64_t n = seq.fetch_add(1) ^ static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    char buf[40];
    std::snprintf(buf, sizeof buf, "chatcmpl-bedrock-%016llx", static_cast<unsigned long long>(n));
    return buf;
}

class Decoder final : public ResponseDecoder {
public:
    Decoder(EventSinkPtr sink, std::string model) : sink_(std::move(sink)), model_(std::move(model)) {}

    Decoded feed(std::string_view bytes) override {
        Decoded r;
        reader_.feed(bytes, [&](const EventMessage& m) { return on_message(m, r); });
        if (reader_.stopped() && !r.error && !done_) {
            r.malformed = true;
            if (malformed_.empty()) malformed_ = reader_.error();
        }
        out_.clear();
        if (sink_) sink_->take(out_);
        r.client = out_;
        return r;
    }
    size_t pending() const override { return reader_.pending(); }
    bool saw_done() const override { return done_; }
    std::string_view end_marker() const override { return "the metadata event"; }
    const UpstreamError* stream_error() const override { return error_ ? &*error_ : nullptr; }
    const std::string& malformed_excerpt() const override { return malformed_; }
    Usage usage() const override { return usage_; }

    BodyDecoded decode_body(std::string& body) override;

private:
    bool on_message(const EventMessage& m, Decoded& r);
    bool on_event(std::string_view type, const Value& payload, Decoded& r);
    void on_exception(std::string_view type, std::string_view payload, Decoded& r);
    void emit(const Event& e) {
        if (sink_) sink_->on_event(e);
    }
    void start() {
        if (started_) return;
        started_ = true;
        Event e = make_event(Event::Kind::Start);
        e.text = id_;
        e.model = model_;
        emit(e);
    }
    void delta(const Value& payload, Decoded& r);
    void block_start(const Value& payload, Decoded& r);
    void finish(std::string_view stop_reason) {
        Event f = make_event(Event::Kind::Finish);
        f.text = finish_reason(stop_reason);
        emit(f);
    }
    void usage_and_done(const Usage& u) {
        usage_ = u;
        Event e = make_event(Event::Kind::Usage);
        e.usage = u;
        emit(e);
        done_ = true;
        emit(make_event(Event::Kind::Done));
    }
    // The OpenAI tool index of a Converse content block (tool blocks counted in order).
    uint32_t tool_index(int64_t block) {
        auto [it, fresh] = tools_.emplace(block, static_cast<uint32_t>(tools_.size()));
        return it->second;
    }

    EventStreamReader reader_;
    EventSinkPtr sink_;
    std::string model_;
    std::string id_ = new_id();
    std::string out_;
    std::string malformed_;
    std::map<int64_t, uint32_t> tools_;  // content block index -> tool call index
    std::optional<UpstreamError> error_;
    Usage usage_;
    bool started_ = false, done_ = false;
};

bool Decoder::on_message(const EventMessage& m, Decoded& r) {
    const std::string_view kind = m.header(":message-type");
    if (kind == "exception") {
        on_exception(m.header(":exception-type"), m.payload, r);
        return true;
    }
    if (kind == "error") {
        on_exception(m.header(":error-code"), m.header(":error-message"), r);
        return true;
    }
    rapidjson::Document d;
    d.Parse(m.payload.data(), m.payload.size());
    if (d.HasParseError() || !d.IsObject()) {
        malformed_ = "event " + std::string(m.header(":event-type")) + " has a payload that is not a JSON object";
        r.malformed = true;
        return false;
    }
    return on_event(m.header(":event-type"), d, r);
}

bool Decoder::on_event(std::string_view type, const Value& payload, Decoded& r) {
    start();
    if (type == "contentBlockDelta") delta(payload, r);
    else if (type == "contentBlockStart") block_start(payload, r);
    else if (type == "messageStop") finish(str_member(payload, "stopReason"));
    else if (type == "metadata") {
        usage_and_done(usage_of(payload));
        r.done = true;
    }
    // messageStart and contentBlockStop carry nothing the client needs.
    return true;
}

void Decoder::block_start(const Value& payload, Decoded& r) {
    const Value* start = object_member(payload, "start");
    const Value* use = start ? object_member(*start, "toolUse") : nullptr;
    if (!use) return;
    Event t = make_event(Event::Kind::ToolCall);
    t.tool.index = tool_index(int_member(payload, "contentBlockIndex"));
    t.tool.id = str_member(*use, "toolUseId");
    t.tool.name = str_member(*use, "name");
    emit(t);
    r.content = true;
}

void Decoder::delta(const Value& payload, Decoded& r) {
    const Value* d = object_member(payload, "delta");
    if (!d) return;
    if (auto text = str_member(*d, "text"); !text.empty()) {
        Event e = make_event(Event::Kind::Content);
        e.text = text;
        emit(e);
        r.content = true;
    } else if (const Value* use = object_member(*d, "toolUse")) {
        Event t = make_event(Event::Kind::ToolCall);
        t.tool.index = tool_index(int_member(payload, "contentBlockIndex"));
        t.tool.arguments = str_member(*use, "input");
        emit(t);
        r.content = true;
    } else if (const Value* reasoning = object_member(*d, "reasoningContent")) {
        r.content = true;  // generated tokens: the commit point
        if (auto text = str_member(*reasoning, "text"); !text.empty()) {
            Event e = make_event(Event::Kind::Reasoning);
            e.text = text;
            emit(e);
        }
    }
}

void Decoder::on_exception(std::string_view type, std::string_view payload, Decoded& r) {
    if (error_) return;  // the first one tells
    std::string message(payload);
    rapidjson::Document d;
    d.Parse(payload.data(), payload.size());
    if (!d.HasParseError() && d.IsObject() && !str_member(d, "message").empty()) message = str_member(d, "message");
    error_ = UpstreamError{exception_class(type), 0, redact(std::string(type) + ": " + message), -1};
    emit(error_event(*error_));
    r.error = &*error_;
}

BodyDecoded Decoder::decode_body(std::string& body) {
    BodyDecoded out;
    rapidjson::Document d;
    d.Parse(body.data(), body.size());
    const Value* output = d.HasParseError() ? nullptr : object_member(d, "output");
    const Value* message = output ? object_member(*output, "message") : nullptr;
    auto content = message ? message->FindMember("content") : Value::ConstMemberIterator();
    if (!message || content == message->MemberEnd() || !content->value.IsArray()) {
        out.problem = "upstream returned a 2xx body that is not a Converse response: " + excerpt(body);
        return out;
    }
    out.ok = true;
    out.usage = usage_of(d);
    start();
    uint32_t tools = 0;
    for (const auto& block : content->value.GetArray()) {
        if (auto text = str_member(block, "text"); !text.empty()) {
            Event e = make_event(Event::Kind::Content);
            e.text = text;
            emit(e);
        } else if (const Value* rc = object_member(block, "reasoningContent")) {
            const Value* rt = object_member(*rc, "reasoningText");
            Event e = make_event(Event::Kind::Reasoning);
            e.text = rt ? str_member(*rt, "text") : std::string_view();
            if (!e.text.empty()) emit(e);
        } else if (const Value* use = object_member(block, "toolUse")) {
            std::string args = "{}";
            if (auto in = use->FindMember("input"); in != use->MemberEnd()) {
                rapidjson::StringBuffer sb;
                rapidjson::Writer<rapidjson::StringBuffer> w(sb);
                in->value.Accept(w);
                args.assign(sb.GetString(), sb.GetSize());
            }
            Event t = make_event(Event::Kind::ToolCall);
            t.tool.index = tools++;
            t.tool.id = str_member(*use, "toolUseId");
            t.tool.name = str_member(*use, "name");
            t.tool.arguments = args;
            emit(t);
        }
    }
    finish(str_member(d, "stopReason"));
    usage_and_done(out.usage);
    if (sink_) {
        body.clear();
        sink_->take(body);
    }
    return out;
}

}  // namespace

std::string_view finish_reason(std::string_view stop) {
    if (stop == "tool_use") return "tool_calls";
    if (stop == "max_tokens" || stop == "model_context_window_exceeded") return "length";
    if (stop == "guardrail_intervened" || stop == "content_filtered") return "content_filter";
    return "stop";  // end_turn, stop_sequence
}

ResponseDecoderPtr Codec::decoder(EventSinkPtr sink) const { return decoder_for(Endpoint::Chat, std::move(sink), {}); }

ResponseDecoderPtr Codec::decoder_for(Endpoint, EventSinkPtr sink, std::string_view model) const {
    return std::make_unique<Decoder>(std::move(sink), std::string(model_id(model)));
}

}  // namespace tailgate::providers::bedrock
