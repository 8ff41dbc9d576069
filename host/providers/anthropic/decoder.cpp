// Reading Messages responses: the SSE event stream and whole bodies.
//
// Every event is parsed once, by its JSON `type`, for the summary dispatch needs:
// content (the first content_block_delta that carries anything: the commit
// point; never message_start), the end (message_stop), usage (message_start's
// input, message_delta's output) and error events. With a sink (a client of
// another wire) the same handlers hand on normalized Events; without one the
// upstream's bytes pass through untouched.
#include "providers/anthropic/codec.hpp"

#include "common/redact.hpp"
#include "providers/sse.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <optional>
#include <vector>

namespace tailgate::providers::anthropic {

namespace {

using Value = rapidjson::Value;

std::string_view str(const Value& obj, const char* key) {
    if (!obj.IsObject()) return {};
    auto it = obj.FindMember(key);
    if (it == obj.MemberEnd() || !it->value.IsString()) return {};
    return {it->value.GetString(), it->value.GetStringLength()};
}

const Value* object(const Value& obj, const char* key) {
    if (!obj.IsObject()) return nullptr;
    auto it = obj.FindMember(key);
    return it != obj.MemberEnd() && it->value.IsObject() ? &it->value : nullptr;
}

uint32_t index_of(const Value& ev) {
    auto it = ev.FindMember("index");
    return it != ev.MemberEnd() && it->value.IsUint() ? it->value.GetUint() : 0;
}

// A delta carries content when any member but its type is a non-empty string or an object.
bool carries_content(const Value& delta) {
    for (const auto& m : delta.GetObject()) {
        if (std::string_view(m.name.GetString(), m.name.GetStringLength()) == "type") continue;
        if ((m.value.IsString() && m.value.GetStringLength() > 0) || m.value.IsObject()) return true;
    }
    return false;
}

// Messages' usage, as reported; normalized (OpenAI's sense) on the way out.
struct Counts {
    int64_t input = -1, cache_creation = -1, cache_read = -1, output = -1;

    void read(const Value& usage) {
        auto num = [&](const char* k, int64_t& out) {
            auto it = usage.FindMember(k);
            if (it != usage.MemberEnd() && it->value.IsInt64()) out = it->value.GetInt64();
        };
        num("input_tokens", input);
        num("cache_creation_input_tokens", cache_creation);
        num("cache_read_input_tokens", cache_read);
        num("output_tokens", output);
    }
    Usage normalized() const {
        Usage u;
        auto plus = [](int64_t v) { return v < 0 ? 0 : v; };
        if (input >= 0) u.prompt_tokens = input + plus(cache_creation) + plus(cache_read);
        u.completion_tokens = output;
        u.cached_tokens = cache_read;
        u.cache_creation_tokens = cache_creation;
        return u;
    }
};

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
    std::string_view end_marker() const override { return "message_stop"; }
    const UpstreamError* stream_error() const override { return error_ ? &*error_ : nullptr; }
    const std::string& malformed_excerpt() const override { return malformed_; }
    Usage usage() const override { return counts_.normalized(); }
    BodyDecoded decode_body(std::string& body) override;

private:
    using Handler = void (Decoder::*)(const Value& ev, Decoded& r);
    struct Route {
        std::string_view type;
        Handler handle;
    };
    static const Route kRoutes[];

    bool on_data(std::string_view data, Decoded& r);
    void on_message_start(const Value& ev, Decoded& r);
    void on_block_start(const Value& ev, Decoded& r);
    void on_block_delta(const Value& ev, Decoded& r);
    void on_message_delta(const Value& ev, Decoded& r);
    void on_message_stop(const Value& ev, Decoded& r);
    void on_error(const Value& ev, Decoded& r);
    void on_ignored(const Value&, Decoded&) {}

    void emit(const Event& e) {
        if (sink_) sink_->on_event(e);
    }
    void emit_start(const Value& message);
    void emit_usage();
    void emit_tool(uint32_t block, std::string_view id, std::string_view name, std::string_view arguments);
    // The tool call a content block is (OpenAI numbers tool calls apart from text blocks).
    uint32_t tool_ordinal(uint32_t block);

    SseFramer framer_;
    EventSinkPtr sink_;
    std::string out_;  // rendered client bytes (with a sink)
    bool done_ = false;
    std::optional<UpstreamError> error_;
    std::string malformed_;
    Counts counts_;
    std::vector<uint32_t> tool_blocks_;  // block index of each tool call so far, in order
    std::string scratch_;  // a whole body's tool input, serialised
};

const Decoder::Route Decoder::kRoutes[] = {
    {"message_start", &Decoder::on_message_start},
    {"content_block_start", &Decoder::on_block_start},
    {"content_block_delta", &Decoder::on_block_delta},
    {"content_block_stop", &Decoder::on_ignored},
    {"message_delta", &Decoder::on_message_delta},
    {"message_stop", &Decoder::on_message_stop},
    {"ping", &Decoder::on_ignored},
    {"error", &Decoder::on_error},
};

// One event's data; false when it is malformed (not a JSON object with a type).
// Unknown types are passed over: Anthropic may add event types.
bool Decoder::on_data(std::string_view data, Decoded& r) {
    rapidjson::Document d;
    d.Parse(data.data(), data.size());
    const std::string_view type = str(d, "type");
    if (d.HasParseError() || type.empty()) {
        r.malformed = true;
        malformed_.assign(data.substr(0, 100));
        return false;
    }
    for (const auto& route : kRoutes)
        if (route.type == type) (this->*route.handle)(d, r);
    return true;
}

void Decoder::emit_start(const Value& message) {
    Event e = make_event(Event::Kind::Start);
    e.text = str(message, "id");
    e.model = str(message, "model");
    emit(e);
}

void Decoder::emit_usage() {
    Event e = make_event(Event::Kind::Usage);
    e.usage = counts_.normalized();
    emit(e);
}

uint32_t Decoder::tool_ordinal(uint32_t block) {
    for (uint32_t i = 0; i < tool_blocks_.size(); ++i)
        if (tool_blocks_[i] == block) return i;
    tool_blocks_.push_back(block);
    return static_cast<uint32_t>(tool_blocks_.size() - 1);
}

void Decoder::emit_tool(uint32_t block, std::string_view id, std::string_view name, std::string_view arguments) {
    Event e = make_event(Event::Kind::ToolCall);
    e.tool.index = tool_ordinal(block);
    e.tool.id = id;
    e.tool.name = name;
    e.tool.arguments = arguments;
    emit(e);
}

void Decoder::on_message_start(const Value& ev, Decoded&) {
    const Value* message = object(ev, "message");
    if (!message) return;
    if (const Value* u = object(*message, "usage")) counts_.read(*u);
    emit_start(*message);
}

void Decoder::on_block_start(const Value& ev, Decoded&) {
    const Value* block = object(ev, "content_block");
    if (!block) return;
    const std::string_view type = str(*block, "type");
    if (type == "tool_use") {
        emit_tool(index_of(ev), str(*block, "id"), str(*block, "name"), {});
    } else if (type == "text" || type == "thinking") {
        Event e = make_event(type == "text" ? Event::Kind::Content : Event::Kind::Reasoning);
        e.text = str(*block, type == "text" ? "text" : "thinking");
        if (!e.text.empty()) emit(e);
    }
}

void Decoder::on_block_delta(const Value& ev, Decoded& r) {
    const Value* delta = object(ev, "delta");
    if (!delta) return;
    if (!r.content && carries_content(*delta)) r.content = true;
    const std::string_view type = str(*delta, "type");
    if (type == "text_delta") {
        Event e = make_event(Event::Kind::Content);
        e.text = str(*delta, "text");
        if (!e.text.empty()) emit(e);
    } else if (type == "input_json_delta") {
        emit_tool(index_of(ev), {}, {}, str(*delta, "partial_json"));
    } else if (type == "thinking_delta") {
        Event e = make_event(Event::Kind::Reasoning);
        e.text = str(*delta, "thinking");
        if (!e.text.empty()) emit(e);
    }
    // signature_delta, citations_delta: nothing chat can carry.
}

void Decoder::on_message_delta(const Value& ev, Decoded&) {
    if (const Value* u = object(ev, "usage")) {
        counts_.read(*u);
        emit_usage();
    }
    const Value* delta = object(ev, "delta");
    if (const std::string_view stop = delta ? str(*delta, "stop_reason") : std::string_view(); !stop.empty()) {
        Event f = make_event(Event::Kind::Finish);
        f.text = finish_reason(stop);
        emit(f);
    }
}

void Decoder::on_message_stop(const Value&, Decoded& r) {
    done_ = r.done = true;
    emit(make_event(Event::Kind::Done));
}

void Decoder::on_error(const Value& ev, Decoded& r) {
    if (!error_) {  // the first one tells
        const Value* err = object(ev, "error");
        const std::string_view message = err ? str(*err, "message") : std::string_view();
        error_ = UpstreamError{classify(0, err ? str(*err, "type") : std::string_view(), message), 0,
                               redact(message.empty() ? std::string("upstream error event") : std::string(message)),
                               -1};
        emit(error_event(*error_));
    }
    r.error = &*error_;
}

BodyDecoded Decoder::decode_body(std::string& body) {
    BodyDecoded out;
    rapidjson::Document d;
    d.Parse(body.data(), body.size());
    auto content = d.IsObject() ? d.FindMember("content") : d.MemberEnd();
    if (d.HasParseError() || !d.IsObject() || content == d.MemberEnd() || !content->value.IsArray()) {
        out.problem = "upstream returned a 2xx body that is not a Messages response: " + excerpt(body);
        return out;
    }
    out.ok = true;
    if (const Value* u = object(d, "usage")) counts_.read(*u);
    out.usage = counts_.normalized();
    if (!sink_) return out;  // the client speaks Messages: the body as it came
    emit_start(d);
    uint32_t block = 0;
    for (const auto& b : content->value.GetArray()) {
        const std::string_view type = str(b, "type");
        if (type == "text" || type == "thinking") {
            Event e = make_event(type == "text" ? Event::Kind::Content : Event::Kind::Reasoning);
            e.text = str(b, type == "text" ? "text" : "thinking");
            emit(e);
        } else if (type == "tool_use") {
            rapidjson::StringBuffer sb;
            rapidjson::Writer<rapidjson::StringBuffer> w(sb);
            if (const Value* input = object(b, "input")) input->Accept(w);
            scratch_.assign(sb.GetSize() ? std::string_view(sb.GetString(), sb.GetSize()) : std::string_view("{}"));
            emit_tool(block, str(b, "id"), str(b, "name"), scratch_);
        }
        ++block;
    }
    emit_usage();
    Event f = make_event(Event::Kind::Finish);
    f.text = finish_reason(str(d, "stop_reason"));
    emit(f);
    emit(make_event(Event::Kind::Done));
    body.clear();
    sink_->take(body);
    return out;
}

}  // namespace

ResponseDecoderPtr Codec::decoder(EventSinkPtr sink) const { return std::make_unique<Decoder>(std::move(sink)); }

}  // namespace tailgate::providers::anthropic
