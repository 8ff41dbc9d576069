#include "surfaces/responses/render.hpp"

#include "common/api_error.hpp"

namespace tailgate::surfaces::responses {

using providers::Event;

namespace {

std::string quoted(std::string_view s) { return json_quote(s); }

std::string usage_json(const providers::Usage& u) {
    if (u.prompt_tokens < 0 && u.completion_tokens < 0) return "null";
    const int64_t in = u.prompt_tokens < 0 ? 0 : u.prompt_tokens;
    const int64_t out = u.completion_tokens < 0 ? 0 : u.completion_tokens;
    return "{\"input_tokens\":" + std::to_string(in) + ",\"input_tokens_details\":{\"cached_tokens\":0}" +
           ",\"output_tokens\":" + std::to_string(out) + ",\"output_tokens_details\":{\"reasoning_tokens\":0}" +
           ",\"total_tokens\":" + std::to_string(in + out) + '}';
}

std::string text_part(std::string_view text) {
    return "{\"type\":\"output_text\",\"text\":" + quoted(text) + ",\"annotations\":[],\"logprobs\":[]}";
}

// Where an item's events point: "item_id":…,"output_index":…
std::string where(const std::string& id, uint32_t index) {
    return "\"item_id\":" + json_quote(id) + ",\"output_index\":" + std::to_string(index);
}

}  // namespace

Renderer::Renderer(std::shared_ptr<const Context> ctx, bool stream)
    : ctx_(std::move(ctx)), stream_(stream), model_(ctx_->model) {}

void Renderer::take(std::string& out) {
    out.append(out_);
    out_.clear();
}

void Renderer::on_event(const Event& e) {
    if (e.choice != 0) return;  // a Response has one answer
    switch (e.kind) {
        case Event::Kind::Start:
            if (!e.model.empty()) model_.assign(e.model);
            begin();
            break;
        case Event::Kind::Content: text_delta(e.text); break;
        case Event::Kind::ToolCall: tool_delta(e.tool); break;
        case Event::Kind::Finish: finish_.assign(e.text); break;
        case Event::Kind::Usage: usage_ = e.usage; break;
        case Event::Kind::Done: end(); break;
        case Event::Kind::Error: break;  // the executor ends the stream with the surface's error event
        case Event::Kind::Reasoning: break;  // not rendered: no reasoning items yet
    }
}

void Renderer::event(std::string_view type, const std::string& body) {
    if (!stream_) return;
    out_ += "event: ";
    out_ += type;
    out_ += "\ndata: {\"type\":\"";
    out_ += type;
    out_ += "\",\"sequence_number\":";
    out_ += std::to_string(seq_++);
    if (!body.empty()) {
        out_ += ',';
        out_ += body;
    }
    out_ += "}\n\n";
}

void Renderer::begin() {
    if (begun_) return;
    begun_ = true;
    const std::string r = "\"response\":" + response_json("in_progress");
    event("response.created", r);
    event("response.in_progress", r);
}

std::string Renderer::item_json(const Item& item) const {
    const char* st = item.done ? "completed" : "in_progress";
    if (item.call)
        return "{\"id\":" + quoted(item.id) + ",\"type\":\"function_call\",\"status\":\"" + st +
               "\",\"arguments\":" + quoted(item.done ? std::string_view(item.text) : std::string_view()) +
               ",\"call_id\":" + quoted(item.call_id) + ",\"name\":" + quoted(item.name) + '}';
    return "{\"id\":" + quoted(item.id) + ",\"type\":\"message\",\"status\":\"" + st +
           "\",\"role\":\"assistant\",\"content\":[" + (item.done ? text_part(item.text) : std::string()) + "]}";
}

void Renderer::text_delta(std::string_view delta) {
    begin();
    if (items_.empty() || items_.back().call || items_.back().done) {
        close_all();
        items_.emplace_back().id = new_id("msg_");
        const Item& m = items_.back();
        event("response.output_item.added",
              "\"output_index\":" + std::to_string(output_index(m)) + ",\"item\":" + item_json(m));
        event("response.content_part.added",
              where(m.id, output_index(m)) + ",\"content_index\":0,\"part\":" + text_part(""));
    }
    Item& m = items_.back();
    m.text.append(delta);
    event("response.output_text.delta",
          where(m.id, output_index(m)) + ",\"content_index\":0,\"delta\":" + quoted(delta) + ",\"logprobs\":[]");
}

// Calls stay open until the answer ends: a provider may interleave the deltas of
// parallel calls (each carries its index), and the Responses stream can follow
// them by output_index. Text before a call is over when the call starts.
void Renderer::tool_delta(const Event::ToolCall& t) {
    begin();
    Item* open = nullptr;
    for (Item& it : items_)
        if (it.call && !it.done && it.tool_index == t.index) open = &it;
    if (!open) {
        if (!items_.empty() && !items_.back().call) close(items_.back());
        Item c;
        c.call = true;
        c.id = new_id("fc_");
        c.tool_index = t.index;
        c.call_id = t.id.empty() ? new_id("call_") : std::string(t.id);
        c.name = t.name;
        items_.push_back(std::move(c));
        const Item& added = items_.back();
        event("response.output_item.added",
              "\"output_index\":" + std::to_string(output_index(added)) + ",\"item\":" + item_json(added));
        open = &items_.back();
    } else if (!t.name.empty() && open->name.empty()) {
        open->name = t.name;
    }
    Item& c = *open;
    if (t.arguments.empty()) return;
    c.text.append(t.arguments);
    event("response.function_call_arguments.delta", where(c.id, output_index(c)) + ",\"delta\":" + quoted(t.arguments));
}

void Renderer::close_all() {
    for (Item& it : items_) close(it);
}

// An item's closing events, once.
void Renderer::close(Item& it) {
    if (it.done) return;
    it.done = true;
    const std::string at = where(it.id, output_index(it));
    if (it.call) {
        event("response.function_call_arguments.done",
              at + ",\"name\":" + quoted(it.name) + ",\"arguments\":" + quoted(it.text));
    } else {
        event("response.output_text.done", at + ",\"content_index\":0,\"text\":" + quoted(it.text) + ",\"logprobs\":[]");
        event("response.content_part.done", at + ",\"content_index\":0,\"part\":" + text_part(it.text));
    }
    event("response.output_item.done",
          "\"output_index\":" + std::to_string(output_index(it)) + ",\"item\":" + item_json(it));
}

std::string Renderer::status() const {
    return finish_ == "length" || finish_ == "content_filter" ? "incomplete" : "completed";
}

void Renderer::end() {
    begin();
    close_all();
    const std::string st = status();
    if (stream_) event("response." + st, "\"response\":" + response_json(st));
    else out_ += response_json(st);
}

std::string Renderer::response_json(std::string_view st) const {
    std::string out = "{\"id\":" + quoted(ctx_->id) + ",\"object\":\"response\",\"created_at\":" +
                      std::to_string(ctx_->created_at) + ",\"status\":\"" + std::string(st) +
                      "\",\"error\":null,\"incomplete_details\":";
    if (st == "incomplete")
        out += finish_ == "length" ? R"({"reason":"max_output_tokens"})" : R"({"reason":"content_filter"})";
    else
        out += "null";
    out += ",\"model\":" + quoted(model_) + ",\"output\":[";
    if (st != "in_progress") {
        for (size_t i = 0; i < items_.size(); ++i) {
            if (i) out += ',';
            out += item_json(items_[i]);
        }
    }
    out += "],";
    out += ctx_->echo;
    out += ",\"usage\":";
    out += st == "in_progress" ? std::string("null") : usage_json(usage_);
    out += '}';
    return out;
}

}  // namespace tailgate::surfaces::responses
