// Chat completions (and legacy completions) -> a Messages request.
//
// Only the chat members Messages has a word for are read, each parsed on its
// own from the request's spans (no DOM of the whole body). system/developer
// messages become the top-level `system`; tool calls become tool_use blocks,
// tool messages user turns of tool_result blocks; image URLs and data URLs
// image (or PDF document) blocks; `cache_control` on parts and tools is kept.
#include "providers/anthropic/codec.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <optional>

namespace tailgate::providers::anthropic {

namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;
using Value = rapidjson::Value;

// The chat members the translation reads.
struct Chat {
    rapidjson::Document messages, prompt, tools, tool_choice, stop, thinking, response_format;  // null when absent
    std::string_view max_tokens, max_completion_tokens, temperature, top_p, top_k;  // JSON numbers, verbatim
    std::optional<bool> parallel_tool_calls;
    std::string user, reasoning_effort;
};

void parse_into(rapidjson::Document& d, std::string_view json) {
    d.Parse(json.data(), json.size());
    if (d.HasParseError()) d.SetNull();
}

// Numbers are forwarded as the client wrote them; anything else (null) is left out.
std::string_view number_or_empty(std::string_view json) {
    return !json.empty() && (json.front() == '-' || (json.front() >= '0' && json.front() <= '9')) ? json
                                                                                                  : std::string_view();
}

std::string string_value(std::string_view json) {
    rapidjson::Document d;
    parse_into(d, json);
    return d.IsString() ? std::string(d.GetString(), d.GetStringLength()) : std::string();
}

struct MemberReader {
    std::string_view key;
    void (*read)(std::string_view json, Chat& c);
};
constexpr MemberReader kReaders[] = {
    {"messages", [](std::string_view v, Chat& c) { parse_into(c.messages, v); }},
    {"prompt", [](std::string_view v, Chat& c) { parse_into(c.prompt, v); }},
    {"tools", [](std::string_view v, Chat& c) { parse_into(c.tools, v); }},
    {"tool_choice", [](std::string_view v, Chat& c) { parse_into(c.tool_choice, v); }},
    {"stop", [](std::string_view v, Chat& c) { parse_into(c.stop, v); }},
    {"thinking", [](std::string_view v, Chat& c) { parse_into(c.thinking, v); }},
    {"response_format", [](std::string_view v, Chat& c) { parse_into(c.response_format, v); }},
    {"max_tokens", [](std::string_view v, Chat& c) { c.max_tokens = number_or_empty(v); }},
    {"max_completion_tokens", [](std::string_view v, Chat& c) { c.max_completion_tokens = number_or_empty(v); }},
    {"temperature", [](std::string_view v, Chat& c) { c.temperature = number_or_empty(v); }},
    {"top_p", [](std::string_view v, Chat& c) { c.top_p = number_or_empty(v); }},
    {"top_k", [](std::string_view v, Chat& c) { c.top_k = number_or_empty(v); }},
    {"parallel_tool_calls",
     [](std::string_view v, Chat& c) {
         if (v == "true" || v == "false") c.parallel_tool_calls = v == "true";
     }},
    {"user", [](std::string_view v, Chat& c) { c.user = string_value(v); }},
    {"reasoning_effort", [](std::string_view v, Chat& c) { c.reasoning_effort = string_value(v); }},
};

Chat read_chat(const ParsedBody& body, const std::vector<std::string>& dropped) {
    Chat c;
    for (const auto& sp : body.spans) {
        if (std::find(dropped.begin(), dropped.end(), sp.key) != dropped.end()) continue;
        for (const auto& r : kReaders)
            if (r.key == sp.key) r.read(body.value_of(sp), c);
    }
    return c;
}

// ---- small readers and writers ----

std::string_view str(const Value& obj, const char* key) {
    if (!obj.IsObject()) return {};
    auto it = obj.FindMember(key);
    if (it == obj.MemberEnd() || !it->value.IsString()) return {};
    return {it->value.GetString(), it->value.GetStringLength()};
}

const Value* member(const Value& obj, const char* key) {
    if (!obj.IsObject()) return nullptr;
    auto it = obj.FindMember(key);
    return it == obj.MemberEnd() || it->value.IsNull() ? nullptr : &it->value;
}

void put(Writer& w, std::string_view s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); }
void key(Writer& w, std::string_view k) { w.Key(k.data(), static_cast<rapidjson::SizeType>(k.size())); }
void raw_number(Writer& w, std::string_view k, std::string_view json) {
    if (json.empty()) return;
    key(w, k);
    w.RawValue(json.data(), json.size(), rapidjson::kNumberType);
}

void cache_control_of(Writer& w, const Value& from) {
    if (const Value* cc = member(from, "cache_control")) {
        key(w, "cache_control");
        cc->Accept(w);
    }
}

void text_block(Writer& w, std::string_view text, const Value* part) {
    w.StartObject();
    key(w, "type");
    put(w, "text");
    key(w, "text");
    put(w, text);
    if (part) cache_control_of(w, *part);
    w.EndObject();
}

// An image_url / file part's URL as a Messages source: a data URL's bytes
// (base64) or the URL itself.
void source(Writer& w, std::string_view url) {
    constexpr std::string_view kData = "data:", kBase64 = ";base64,";
    key(w, "source");
    w.StartObject();
    std::string_view media;
    const size_t b64 = url.find(kBase64);
    if (url.substr(0, kData.size()) == kData && b64 != std::string_view::npos) {
        media = url.substr(kData.size(), b64 - kData.size());
        key(w, "type");
        put(w, "base64");
        key(w, "media_type");
        put(w, media);
        key(w, "data");
        put(w, url.substr(b64 + kBase64.size()));
    } else {
        key(w, "type");
        put(w, "url");
        key(w, "url");
        put(w, url);
    }
    w.EndObject();
}

void media_block(Writer& w, std::string_view url, const Value& part) {
    const bool pdf = url.substr(0, 20) == "data:application/pdf";
    w.StartObject();
    key(w, "type");
    put(w, pdf ? "document" : "image");
    source(w, url);
    cache_control_of(w, part);
    w.EndObject();
}

// One chat content part as a block; parts Messages has no block for are left out.
void part_block(Writer& w, const Value& part) {
    const std::string_view type = str(part, "type");
    if (type == "text") {
        if (std::string_view text = str(part, "text"); !text.empty()) text_block(w, text, &part);
    } else if (type == "image_url") {
        const Value* iu = member(part, "image_url");
        const std::string_view url = !iu            ? std::string_view()
                                     : iu->IsString() ? std::string_view(iu->GetString(), iu->GetStringLength())
                                                      : str(*iu, "url");
        if (!url.empty()) media_block(w, url, part);
    } else if (type == "file") {
        const Value* f = member(part, "file");
        if (std::string_view data = f ? str(*f, "file_data") : std::string_view(); !data.empty())
            media_block(w, data, part);
    }
}

// Content (a string or parts) as blocks, inside an array the caller opened.
void blocks(Writer& w, const Value& content) {
    if (content.IsString()) {
        if (content.GetStringLength() > 0) text_block(w, {content.GetString(), content.GetStringLength()}, nullptr);
    } else if (content.IsArray()) {
        for (const auto& part : content.GetArray()) part_block(w, part);
    }
}

// Content as Messages takes it: a string stays a string.
void content(Writer& w, const Value* c) {
    key(w, "content");
    if (c && c->IsString()) {
        w.String(c->GetString(), c->GetStringLength());
        return;
    }
    w.StartArray();
    if (c) blocks(w, *c);
    w.EndArray();
}

void role(Writer& w, std::string_view r) {
    key(w, "role");
    put(w, r);
}

// ---- messages ----

// A call's `function` ({name, arguments}) as a tool_use block.
void tool_use(Writer& w, std::string_view id, const Value& fn) {
    w.StartObject();
    key(w, "type");
    put(w, "tool_use");
    key(w, "id");
    put(w, id);
    key(w, "name");
    put(w, str(fn, "name"));
    key(w, "input");
    // Arguments are JSON text in chat, an object in Messages.
    rapidjson::Document args;
    const std::string_view text = str(fn, "arguments");
    args.Parse(text.data(), text.size());
    if (args.HasParseError() || !args.IsObject()) args.SetObject();
    args.Accept(w);
    w.EndObject();
}

void user_message(Writer& w, const Value& m) {
    w.StartObject();
    role(w, "user");
    content(w, member(m, "content"));
    w.EndObject();
}

void assistant_message(Writer& w, const Value& m) {
    const Value* c = member(m, "content");
    const Value* calls = member(m, "tool_calls");
    const Value* legacy = member(m, "function_call");
    const Value* thinking = member(m, "thinking_blocks");  // LiteLLM's: signed thinking to send back
    w.StartObject();
    role(w, "assistant");
    if (!calls && !legacy && !thinking) {
        content(w, c);
        w.EndObject();
        return;
    }
    key(w, "content");
    w.StartArray();
    if (thinking && thinking->IsArray())
        for (const auto& b : thinking->GetArray()) b.Accept(w);
    if (c) blocks(w, *c);
    if (calls && calls->IsArray())
        for (const auto& call : calls->GetArray())
            if (const Value* fn = member(call, "function")) tool_use(w, str(call, "id"), *fn);
    if (legacy) tool_use(w, str(*legacy, "name"), *legacy);
    w.EndArray();
    w.EndObject();
}

// role "tool" (or legacy "function"): a user turn holding one tool_result.
void tool_result_message(Writer& w, const Value& m) {
    w.StartObject();
    role(w, "user");
    key(w, "content");
    w.StartArray();
    w.StartObject();
    key(w, "type");
    put(w, "tool_result");
    key(w, "tool_use_id");
    put(w, !str(m, "tool_call_id").empty() ? str(m, "tool_call_id") : str(m, "name"));
    content(w, member(m, "content"));
    w.EndObject();
    w.EndArray();
    w.EndObject();
}

struct RoleWriter {
    std::string_view role;
    void (*write)(Writer& w, const Value& m);
};
constexpr RoleWriter kRoles[] = {
    {"user", user_message},
    {"assistant", assistant_message},
    {"tool", tool_result_message},
    {"function", tool_result_message},
};

bool is_system(const Value& m) { return str(m, "role") == "system" || str(m, "role") == "developer"; }

// system/developer messages: one string, or text blocks when there are several or parts.
void system(Writer& w, const Value& msgs) {
    const Value* only = nullptr;
    size_t count = 0;
    for (const auto& m : msgs.GetArray())
        if (is_system(m)) only = count++ == 0 ? member(m, "content") : nullptr;
    if (count == 0) return;
    key(w, "system");
    if (only && only->IsString()) {
        w.String(only->GetString(), only->GetStringLength());
        return;
    }
    w.StartArray();
    for (const auto& m : msgs.GetArray())
        if (const Value* c = is_system(m) ? member(m, "content") : nullptr) blocks(w, *c);
    w.EndArray();
}

void messages(Writer& w, const Chat& c) {
    key(w, "messages");
    w.StartArray();
    if (c.messages.IsArray()) {
        for (const auto& m : c.messages.GetArray())
            for (const auto& r : kRoles)
                if (r.role == str(m, "role")) r.write(w, m);
    } else {
        // Legacy completions: the prompt (a string, or the first of a list) as one user turn.
        const Value* p = c.prompt.IsArray() && !c.prompt.Empty() ? &c.prompt[0] : &c.prompt;
        w.StartObject();
        role(w, "user");
        key(w, "content");
        put(w, p->IsString() ? std::string_view(p->GetString(), p->GetStringLength()) : std::string_view());
        w.EndObject();
    }
    w.EndArray();
}

// ---- tools ----

void tool(Writer& w, const Value& t) {
    const Value* fn = member(t, "function");
    if (str(t, "type") != "function" || !fn) {
        t.Accept(w);  // a Messages tool already (server tools: web_search, ...)
        return;
    }
    w.StartObject();
    key(w, "name");
    put(w, str(*fn, "name"));
    if (std::string_view d = str(*fn, "description"); !d.empty()) {
        key(w, "description");
        put(w, d);
    }
    key(w, "input_schema");
    if (const Value* params = member(*fn, "parameters")) {
        params->Accept(w);
    } else {
        constexpr std::string_view kNoParameters = R"({"type":"object","properties":{}})";
        w.RawValue(kNoParameters.data(), kNoParameters.size(), rapidjson::kObjectType);
    }
    cache_control_of(w, t);
    w.EndObject();
}

void tool_choice(Writer& w, const Chat& c) {
    const Value& tc = c.tool_choice;
    std::string_view type = "auto", name;
    if (tc.IsString()) {
        const std::string_view s(tc.GetString(), tc.GetStringLength());
        type = s == "required" ? "any" : s == "none" ? "none" : "auto";
    } else if (const Value* fn = member(tc, "function")) {
        type = "tool";
        name = str(*fn, "name");
    } else if (!c.parallel_tool_calls || *c.parallel_tool_calls) {
        return;  // nothing to say: Messages defaults to auto
    }
    key(w, "tool_choice");
    w.StartObject();
    key(w, "type");
    put(w, type);
    if (!name.empty()) {
        key(w, "name");
        put(w, name);
    }
    if (c.parallel_tool_calls && !*c.parallel_tool_calls && type != "none") {
        key(w, "disable_parallel_tool_use");
        w.Bool(true);
    }
    w.EndObject();
}

void tools(Writer& w, const Chat& c) {
    if (!c.tools.IsArray() || c.tools.Empty()) return;
    key(w, "tools");
    w.StartArray();
    for (const auto& t : c.tools.GetArray()) tool(w, t);
    w.EndArray();
    tool_choice(w, c);
}

// response_format and reasoning_effort as Messages' output_config (format, effort).
void output_config(Writer& w, const Chat& c) {
    const std::string_view format = str(c.response_format, "type");
    const Value* spec = member(c.response_format, "json_schema");
    const Value* schema = spec ? member(*spec, "schema") : nullptr;
    const bool json = (format == "json_schema" && schema) || format == "json_object";
    const std::string& e = c.reasoning_effort;
    const std::string_view effort = e == "minimal" || e == "none" ? "low"
                                    : e == "low" || e == "medium" || e == "high" || e == "xhigh"
                                        ? std::string_view(e)
                                        : std::string_view();
    if (!json && effort.empty()) return;
    key(w, "output_config");
    w.StartObject();
    if (!effort.empty()) {
        key(w, "effort");
        put(w, effort);
    }
    if (json) {
        key(w, "format");
        w.StartObject();
        key(w, "type");
        put(w, "json_schema");
        key(w, "schema");
        if (schema) schema->Accept(w);
        else w.RawValue(R"({"type":"object"})", 17, rapidjson::kObjectType);
        w.EndObject();
    }
    w.EndObject();
}

void stop_sequences(Writer& w, const Value& stop) {
    if (!stop.IsString() && !stop.IsArray()) return;
    key(w, "stop_sequences");
    w.StartArray();
    if (stop.IsString()) w.String(stop.GetString(), stop.GetStringLength());
    else
        for (const auto& s : stop.GetArray())
            if (s.IsString()) w.String(s.GetString(), s.GetStringLength());
    w.EndArray();
}

}  // namespace

std::string messages_body(const ParsedBody& body, std::string_view model, bool stream,
                          const std::vector<std::string>& dropped) {
    const Chat c = read_chat(body, dropped);
    rapidjson::StringBuffer sb;
    Writer w(sb);
    w.StartObject();
    key(w, "model");
    put(w, model);
    const std::string_view max = !c.max_completion_tokens.empty() ? c.max_completion_tokens : c.max_tokens;
    if (!max.empty()) raw_number(w, "max_tokens", max);
    else {
        key(w, "max_tokens");
        w.Int64(kDefaultMaxTokens);
    }
    if (c.messages.IsArray()) system(w, c.messages);
    messages(w, c);
    stop_sequences(w, c.stop);
    raw_number(w, "temperature", c.temperature);
    raw_number(w, "top_p", c.top_p);
    raw_number(w, "top_k", c.top_k);
    tools(w, c);
    if (!c.user.empty()) {
        key(w, "metadata");
        w.StartObject();
        key(w, "user_id");
        put(w, c.user);
        w.EndObject();
    }
    output_config(w, c);
    if (c.thinking.IsObject()) {
        key(w, "thinking");
        c.thinking.Accept(w);
    }
    if (stream) {
        key(w, "stream");
        w.Bool(true);
    }
    w.EndObject();
    return std::string(sb.GetString(), sb.GetSize());
}

}  // namespace tailgate::providers::anthropic
