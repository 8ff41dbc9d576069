#include "surfaces/anthropic/render.hpp"

#include "common/api_error.hpp"
#include "providers/anthropic/codec.hpp"

#include <rapidjson/document.h>

#include <algorithm>

namespace tailgate::surfaces::anthropic {

using providers::Event;

namespace {

void quoted(std::string& out, std::string_view s) {
    out += '"';
    json_escape_into(out, s);
    out += '"';
}

// One SSE event: `event: <type>` and its data, whose JSON starts with the same type.
void event(std::string& out, std::string_view type, std::string_view rest_of_json) {
    out += "event: ";
    out += type;
    out += "\ndata: {\"type\":\"";
    out += type;
    out += '"';
    out += rest_of_json;
    out += "}\n\n";
}

std::string n(int64_t v) { return std::to_string(v < 0 ? 0 : v); }

}  // namespace

const char* error_type(int status) {
    switch (status) {
        case 400: return "invalid_request_error";
        case 401: return "authentication_error";
        case 402: return "billing_error";
        case 403: return "permission_error";
        case 404: return "not_found_error";
        case 413: return "request_too_large";
        case 429: return "rate_limit_error";
        case 503:
        case 529: return "overloaded_error";
        case 504: return "timeout_error";
        default: return status >= 500 ? "api_error" : "invalid_request_error";
    }
}

void Renderer::take(std::string& out) {
    out.append(out_);
    out_.clear();
}

void Renderer::on_event(const Event& e) {
    if (e.choice != 0) return;
    switch (e.kind) {
        case Event::Kind::Start:
            if (!e.text.empty()) id_.assign(e.text);
            model_.assign(e.model);
            if (stream_) message_start();
            return;
        case Event::Kind::Usage: usage_ = e.usage; return;
        case Event::Kind::Finish: stop_reason_.assign(providers::anthropic::stop_reason(e.text)); return;
        case Event::Kind::Error: return;  // the executor ends the stream with the error
        default: break;
    }
    if (stream_) stream_event(e);
    else collect(e);
}

// Input as Messages counts it: without the cached part. Output alone in a
// stream's message_start, where nothing is known yet.
void Renderer::usage_json(std::string& out, bool with_input) const {
    const providers::Usage& u = usage_;
    out += "\"usage\":{";
    if (with_input) {
        const int64_t cached = std::max<int64_t>(u.cached_tokens, 0) + std::max<int64_t>(u.cache_creation_tokens, 0);
        out += "\"input_tokens\":" + n(u.prompt_tokens - cached) + ',';
        if (u.cache_creation_tokens >= 0) out += "\"cache_creation_input_tokens\":" + n(u.cache_creation_tokens) + ',';
        if (u.cached_tokens >= 0) out += "\"cache_read_input_tokens\":" + n(u.cached_tokens) + ',';
    }
    out += "\"output_tokens\":" + n(u.completion_tokens) + '}';
}

// ---- streams ----

void Renderer::message_start() {
    if (started_) return;
    started_ = true;
    std::string rest = ",\"message\":{\"id\":";
    quoted(rest, id_);
    rest += ",\"type\":\"message\",\"role\":\"assistant\",\"model\":";
    quoted(rest, model_);
    rest += ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":0,\"output_tokens\":0}}";
    event(out_, "message_start", rest);
}

void Renderer::open_block(Open kind) {
    if (open_ == kind) return;
    close_block();
    open_ = kind;
    event(out_, "content_block_start",
          ",\"index\":" + std::to_string(blocks_) + ",\"content_block\":" +
              (kind == Open::Text ? R"({"type":"text","text":""})" : R"({"type":"thinking","thinking":""})"));
}

void Renderer::delta(std::string_view type, std::string_view field, std::string_view text) {
    std::string rest = ",\"index\":" + std::to_string(blocks_) + ",\"delta\":{\"type\":\"";
    rest += type;
    rest += "\",\"";
    rest += field;
    rest += "\":";
    quoted(rest, text);
    event(out_, "content_block_delta", rest + '}');
}

void Renderer::open_tool(const Event::ToolCall& t) {
    if (open_ == Open::Tool && open_tool_ == t.index) return;
    close_block();
    open_ = Open::Tool;
    open_tool_ = t.index;
    std::string rest = ",\"index\":" + std::to_string(blocks_) + ",\"content_block\":{\"type\":\"tool_use\",\"id\":";
    quoted(rest, t.id);
    rest += ",\"name\":";
    quoted(rest, t.name);
    rest += ",\"input\":{}}";
    event(out_, "content_block_start", rest);
}

void Renderer::close_block() {
    if (open_ == Open::None) return;
    event(out_, "content_block_stop", ",\"index\":" + std::to_string(blocks_));
    open_ = Open::None;
    ++blocks_;
}

void Renderer::stream_event(const Event& e) {
    message_start();
    if (e.kind == Event::Kind::Content) {
        open_block(Open::Text);
        delta("text_delta", "text", e.text);
    } else if (e.kind == Event::Kind::Reasoning) {
        open_block(Open::Thinking);
        delta("thinking_delta", "thinking", e.text);
    } else if (e.kind == Event::Kind::ToolCall) {
        open_tool(e.tool);
        if (!e.tool.arguments.empty()) delta("input_json_delta", "partial_json", e.tool.arguments);
    } else if (e.kind == Event::Kind::Done) {
        message_end();
    }
}

void Renderer::message_end() {
    close_block();
    std::string rest = ",\"delta\":{\"stop_reason\":";
    quoted(rest, stop_reason_);
    rest += ",\"stop_sequence\":null},";
    usage_json(rest, true);
    event(out_, "message_delta", rest);
    event(out_, "message_stop", "");
}

// ---- whole bodies ----

void Renderer::collect(const Event& e) {
    if (e.kind == Event::Kind::Content || e.kind == Event::Kind::Reasoning) {
        const Open kind = e.kind == Event::Kind::Content ? Open::Text : Open::Thinking;
        if (content_.empty() || content_.back().kind != kind) content_.push_back(Block{kind, {}, {}, {}});
        content_.back().text.append(e.text);
    } else if (e.kind == Event::Kind::ToolCall) {
        if (!e.tool.id.empty() || content_.empty() || content_.back().kind != Open::Tool)
            content_.push_back(Block{Open::Tool, {}, std::string(e.tool.id), std::string(e.tool.name)});
        content_.back().text.append(e.tool.arguments);
    } else if (e.kind == Event::Kind::Done) {
        write_message();
    }
}

void Renderer::write_block(const Block& b) {
    if (b.kind == Open::Text) {
        out_ += "{\"type\":\"text\",\"text\":";
        quoted(out_, b.text);
        out_ += '}';
    } else if (b.kind == Open::Thinking) {
        // No signature: the thinking came from another provider and cannot be verified by Anthropic.
        out_ += "{\"type\":\"thinking\",\"thinking\":";
        quoted(out_, b.text);
        out_ += ",\"signature\":\"\"}";
    } else {
        out_ += "{\"type\":\"tool_use\",\"id\":";
        quoted(out_, b.id);
        out_ += ",\"name\":";
        quoted(out_, b.name);
        // Chat carries arguments as JSON text; Messages wants the object.
        rapidjson::Document args;
        args.Parse(b.text.data(), b.text.size());
        out_ += ",\"input\":";
        out_ += !args.HasParseError() && args.IsObject() ? std::string_view(b.text) : std::string_view("{}");
        out_ += '}';
    }
}

void Renderer::write_message() {
    out_ += "{\"id\":";
    quoted(out_, id_);
    out_ += ",\"type\":\"message\",\"role\":\"assistant\",\"model\":";
    quoted(out_, model_);
    out_ += ",\"content\":[";
    for (size_t i = 0; i < content_.size(); ++i) {
        if (i) out_ += ',';
        write_block(content_[i]);
    }
    out_ += "],\"stop_reason\":";
    quoted(out_, stop_reason_);
    out_ += ",\"stop_sequence\":null,";
    usage_json(out_, true);
    out_ += '}';
}

}  // namespace tailgate::surfaces::anthropic
