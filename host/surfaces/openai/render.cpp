#include "surfaces/openai/render.hpp"

#include "common/api_error.hpp"

#include <algorithm>
#include <ctime>

namespace tailgate::surfaces::openai {

using providers::Event;

namespace {

void quoted(std::string& out, std::string_view s) {
    out += '"';
    json_escape_into(out, s);
    out += '"';
}

}  // namespace

Renderer::Renderer(Shape shape, bool stream)
    : shape_(shape), stream_(stream), created_(static_cast<int64_t>(std::time(nullptr))) {}

void Renderer::take(std::string& out) {
    out.append(out_);
    out_.clear();
}

void Renderer::on_event(const Event& e) {
    if (e.kind == Event::Kind::Start) {
        if (!e.text.empty()) id_.assign(e.text);
        model_.assign(e.model);
        return;
    }
    if (e.kind == Event::Kind::Usage) {
        // Streams: on the next finish chunk (or a chunk of its own before [DONE]),
        // so clients that read choices[0] of every chunk never meet an empty list.
        usage_ = e.usage;
        usage_pending_ = true;
        return;
    }
    if (stream_) stream_event(e);
    else collect_event(e);
}

void Renderer::frame_begin(std::string& out) const {
    const bool chat = shape_ == Shape::Chat;
    out += "data: {\"id\":";
    quoted(out, id_);
    out += chat ? ",\"object\":\"chat.completion.chunk\"" : ",\"object\":\"text_completion\"";
    out += ",\"created\":" + std::to_string(created_) + ",\"model\":";
    quoted(out, model_);
    out += ',';
}

void Renderer::usage_json(std::string& out) const {
    const auto n = [](int64_t v) { return std::to_string(v < 0 ? 0 : v); };
    const providers::Usage& u = usage_;
    out += "\"usage\":{\"prompt_tokens\":" + n(u.prompt_tokens) + ",\"completion_tokens\":" + n(u.completion_tokens) +
           ",\"total_tokens\":" + n(std::max<int64_t>(u.prompt_tokens, 0) + std::max<int64_t>(u.completion_tokens, 0));
    // Prompt caching: OpenAI's detail, and the names LiteLLM reports Anthropic's under.
    if (u.cached_tokens >= 0) out += ",\"prompt_tokens_details\":{\"cached_tokens\":" + n(u.cached_tokens) + '}';
    if (u.cache_creation_tokens >= 0) out += ",\"cache_creation_input_tokens\":" + n(u.cache_creation_tokens);
    if (u.cached_tokens >= 0) out += ",\"cache_read_input_tokens\":" + n(u.cached_tokens);
    out += '}';
}

// A chat chunk's delta members for one event.
void Renderer::chat_delta(const Event& e) {
    if (e.kind == Event::Kind::Content || e.kind == Event::Kind::Reasoning) {
        out_ += e.kind == Event::Kind::Content ? "\"content\":" : "\"reasoning_content\":";
        quoted(out_, e.text);
    } else if (e.kind == Event::Kind::ToolCall) {
        out_ += "\"tool_calls\":[{\"index\":" + std::to_string(e.tool.index);
        if (!e.tool.id.empty()) {
            out_ += ",\"id\":";
            quoted(out_, e.tool.id);
            out_ += ",\"type\":\"function\"";
        }
        out_ += ",\"function\":{";
        if (!e.tool.name.empty()) {
            out_ += "\"name\":";
            quoted(out_, e.tool.name);
            out_ += ',';
        }
        out_ += "\"arguments\":";
        quoted(out_, e.tool.arguments);
        out_ += "}}]";
    }
}

// Usage no finish chunk carried, then [DONE].
void Renderer::stream_end() {
    if (usage_pending_) {
        frame_begin(out_);
        out_ += "\"choices\":[],";
        usage_json(out_);
        out_ += "}\n\n";
    }
    out_ += "data: [DONE]\n\n";
}

// One SSE frame per event: the OpenAI SDK accumulates deltas itself.
void Renderer::stream_event(const Event& e) {
    const bool chat = shape_ == Shape::Chat;
    if (e.kind == Event::Kind::Done) return stream_end();
    // The executor ends the stream with an error; legacy completions have no reasoning.
    if (e.kind == Event::Kind::Error || (e.kind == Event::Kind::Reasoning && !chat)) return;
    frame_begin(out_);
    out_ += "\"choices\":[{\"index\":" + std::to_string(e.choice) + ',';
    if (chat) {
        out_ += "\"delta\":{";
        chat_delta(e);
        out_ += '}';
    } else {
        out_ += "\"text\":";
        quoted(out_, e.kind == Event::Kind::Content ? e.text : std::string_view());
    }
    out_ += ",\"finish_reason\":";
    if (e.kind == Event::Kind::Finish) quoted(out_, e.text);
    else out_ += "null";
    out_ += "}]";
    if (e.kind == Event::Kind::Finish && usage_pending_) {
        out_ += ',';
        usage_json(out_);
        usage_pending_ = false;
    }
    out_ += "}\n\n";
}

Renderer::Choice& Renderer::choice(uint32_t index) {
    if (index >= choices_.size()) choices_.resize(index + 1);
    return choices_[index];
}

void Renderer::collect_event(const Event& e) {
    switch (e.kind) {
        case Event::Kind::Content: choice(e.choice).text.append(e.text); break;
        case Event::Kind::Reasoning: choice(e.choice).reasoning.append(e.text); break;
        case Event::Kind::Finish: choice(e.choice).finish_reason.assign(e.text); break;
        case Event::Kind::ToolCall: {
            auto& tools = choice(e.choice).tools;
            if (tools.empty() || tools.back().index != e.tool.index) tools.push_back(Tool{e.tool.index, {}, {}, {}});
            Tool& t = tools.back();
            t.id.append(e.tool.id);
            t.name.append(e.tool.name);
            t.arguments.append(e.tool.arguments);
            break;
        }
        case Event::Kind::Done: write_body(); break;
        default: break;
    }
}

// The whole response object, once.
void Renderer::write_body() {
    const bool chat = shape_ == Shape::Chat;
    out_ += "{\"id\":";
    quoted(out_, id_);
    out_ += chat ? ",\"object\":\"chat.completion\"" : ",\"object\":\"text_completion\"";
    out_ += ",\"created\":" + std::to_string(created_) + ",\"model\":";
    quoted(out_, model_);
    out_ += ",\"choices\":[";
    for (size_t i = 0; i < choices_.size(); ++i) {
        const Choice& c = choices_[i];
        if (i) out_ += ',';
        out_ += "{\"index\":" + std::to_string(i) + ',';
        if (chat) {
            out_ += "\"message\":{\"role\":\"assistant\",\"content\":";
            quoted(out_, c.text);
            if (!c.reasoning.empty()) {
                out_ += ",\"reasoning_content\":";
                quoted(out_, c.reasoning);
            }
            if (!c.tools.empty()) {
                out_ += ",\"tool_calls\":[";
                for (size_t k = 0; k < c.tools.size(); ++k) {
                    if (k) out_ += ',';
                    out_ += "{\"id\":";
                    quoted(out_, c.tools[k].id);
                    out_ += ",\"type\":\"function\",\"function\":{\"name\":";
                    quoted(out_, c.tools[k].name);
                    out_ += ",\"arguments\":";
                    quoted(out_, c.tools[k].arguments);
                    out_ += "}}";
                }
                out_ += ']';
            }
            out_ += '}';
        } else {
            out_ += "\"text\":";
            quoted(out_, c.text);
        }
        out_ += ",\"finish_reason\":";
        quoted(out_, c.finish_reason.empty() ? std::string_view("stop") : std::string_view(c.finish_reason));
        out_ += '}';
    }
    out_ += "],";
    usage_json(out_);
    out_ += '}';
}

}  // namespace tailgate::surfaces::openai
