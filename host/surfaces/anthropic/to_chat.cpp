// Messages request -> chat request, for deployments of the OpenAI wire.
//
// Each Messages member Chat has a word for is parsed on its own (no DOM of the
// whole body) and written as its chat member(s), with the spans the OpenAI
// codec splices the upstream body from. A stream asks for usage
// (stream_options.include_usage): Messages reports it in message_delta.
#include "surfaces/anthropic/messages.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace tailgate::surfaces::anthropic {

namespace {

using providers::ParsedBody;
using Writer = rapidjson::Writer<rapidjson::StringBuffer>;
using Value = rapidjson::Value;

// The Messages members the translation reads.
struct Request {
    rapidjson::Document system, messages, tools, tool_choice, stop_sequences, metadata, output_config;  // or null
    std::string_view max_tokens, temperature, top_p;  // JSON numbers, verbatim
};

void parse_into(rapidjson::Document& d, std::string_view json) {
    d.Parse(json.data(), json.size());
    if (d.HasParseError()) d.SetNull();
}

std::string_view number_or_empty(std::string_view json) {
    return !json.empty() && (json.front() == '-' || (json.front() >= '0' && json.front() <= '9')) ? json
                                                                                                  : std::string_view();
}

struct MemberReader {
    std::string_view key;
    void (*read)(std::string_view json, Request& r);
};
constexpr MemberReader kReaders[] = {
    {"system", [](std::string_view v, Request& r) { parse_into(r.system, v); }},
    {"messages", [](std::string_view v, Request& r) { parse_into(r.messages, v); }},
    {"tools", [](std::string_view v, Request& r) { parse_into(r.tools, v); }},
    {"tool_choice", [](std::string_view v, Request& r) { parse_into(r.tool_choice, v); }},
    {"stop_sequences", [](std::string_view v, Request& r) { parse_into(r.stop_sequences, v); }},
    {"metadata", [](std::string_view v, Request& r) { parse_into(r.metadata, v); }},
    {"output_config", [](std::string_view v, Request& r) { parse_into(r.output_config, v); }},
    {"max_tokens", [](std::string_view v, Request& r) { r.max_tokens = number_or_empty(v); }},
    {"temperature", [](std::string_view v, Request& r) { r.temperature = number_or_empty(v); }},
    {"top_p", [](std::string_view v, Request& r) { r.top_p = number_or_empty(v); }},
};

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

// Appends `"key":value` members to a ParsedBody and records their spans.
class ChatMembers {
public:
    explicit ChatMembers(ParsedBody& out) : out_(out) {}
    template <class Fill>
    void add(std::string_view name, Fill&& fill) {
        if (!out_.members.empty()) out_.members += ',';
        const size_t begin = out_.members.size();
        out_.members += json_quote(name);
        out_.members += ':';
        rapidjson::StringBuffer sb;
        Writer w(sb);
        fill(w);
        out_.members.append(sb.GetString(), sb.GetSize());
        out_.spans.push_back(ParsedBody::Span{std::string(name), begin, out_.members.size()});
    }
    void raw(std::string_view name, std::string_view json) {
        if (json.empty()) return;
        add(name, [&](Writer& w) { w.RawValue(json.data(), json.size(), rapidjson::kNumberType); });
    }

private:
    ParsedBody& out_;
};

// Text of a string or of text blocks, concatenated.
std::string text_of(const Value& content, std::string_view separator) {
    if (content.IsString()) return {content.GetString(), content.GetStringLength()};
    std::string out;
    if (!content.IsArray()) return out;
    for (const auto& b : content.GetArray()) {
        if (str(b, "type") != "text") continue;
        if (!out.empty()) out += separator;
        out += str(b, "text");
    }
    return out;
}

// ---- content parts ----

// An image / document block's source as a chat URL: data URL for base64, else the URL.
std::string url_of(const Value& block) {
    const Value* src = member(block, "source");
    if (!src) return {};
    if (str(*src, "type") == "base64")
        return "data:" + std::string(str(*src, "media_type")) + ";base64," + std::string(str(*src, "data"));
    return std::string(str(*src, "url"));
}

void part(Writer& w, const Value& b) {
    const std::string_view type = str(b, "type");
    if (type == "text") {
        w.StartObject();
        key(w, "type");
        put(w, "text");
        key(w, "text");
        put(w, str(b, "text"));
        w.EndObject();
    } else if (type == "image") {
        w.StartObject();
        key(w, "type");
        put(w, "image_url");
        key(w, "image_url");
        w.StartObject();
        key(w, "url");
        put(w, url_of(b));
        w.EndObject();
        w.EndObject();
    } else if (type == "document" && member(b, "source") && str(*member(b, "source"), "type") == "base64") {
        w.StartObject();
        key(w, "type");
        put(w, "file");
        key(w, "file");
        w.StartObject();
        key(w, "file_data");
        put(w, url_of(b));
        w.EndObject();
        w.EndObject();
    }
}

bool is_part(const Value& b) {
    const std::string_view t = str(b, "type");
    return t == "text" || t == "image" || t == "document";
}

// ---- messages ----

void tool_message(Writer& w, const Value& result) {
    w.StartObject();
    key(w, "role");
    put(w, "tool");
    key(w, "tool_call_id");
    put(w, str(result, "tool_use_id"));
    key(w, "content");
    const Value* c = member(result, "content");
    put(w, c ? text_of(*c, "\n") : std::string());
    w.EndObject();
}

// A user turn: its tool results first (chat wants them right after the call), then the rest.
void user_turn(Writer& w, const Value& m) {
    const Value* c = member(m, "content");
    bool rest = c && c->IsString();
    if (c && c->IsArray())
        for (const auto& b : c->GetArray()) {
            if (str(b, "type") == "tool_result") tool_message(w, b);
            else rest = rest || is_part(b);
        }
    if (!rest) return;
    w.StartObject();
    key(w, "role");
    put(w, "user");
    key(w, "content");
    if (c->IsString()) {
        w.String(c->GetString(), c->GetStringLength());
    } else {
        w.StartArray();
        for (const auto& b : c->GetArray()) part(w, b);
        w.EndArray();
    }
    w.EndObject();
}

void tool_call(Writer& w, const Value& b) {
    w.StartObject();
    key(w, "id");
    put(w, str(b, "id"));
    key(w, "type");
    put(w, "function");
    key(w, "function");
    w.StartObject();
    key(w, "name");
    put(w, str(b, "name"));
    key(w, "arguments");  // an object in Messages, JSON text in chat
    rapidjson::StringBuffer args;
    Writer aw(args);
    if (const Value* input = member(b, "input")) input->Accept(aw);
    w.String(args.GetSize() ? args.GetString() : "{}");
    w.EndObject();
    w.EndObject();
}

void assistant_turn(Writer& w, const Value& m) {
    const Value* c = member(m, "content");
    w.StartObject();
    key(w, "role");
    put(w, "assistant");
    key(w, "content");
    const std::string text = c ? text_of(*c, "") : std::string();
    if (text.empty()) w.Null();
    else put(w, text);
    bool calls = false;
    if (c && c->IsArray())
        for (const auto& b : c->GetArray()) {
            if (str(b, "type") != "tool_use") continue;
            if (!calls) {
                key(w, "tool_calls");
                w.StartArray();
                calls = true;
            }
            tool_call(w, b);
        }
    if (calls) w.EndArray();
    w.EndObject();
}

void messages(ChatMembers& out, const Request& r) {
    out.add("messages", [&](Writer& w) {
        w.StartArray();
        if (const std::string system = text_of(r.system, "\n\n"); !system.empty()) {
            w.StartObject();
            key(w, "role");
            put(w, "system");
            key(w, "content");
            put(w, system);
            w.EndObject();
        }
        if (r.messages.IsArray())
            for (const auto& m : r.messages.GetArray()) {
                if (str(m, "role") == "assistant") assistant_turn(w, m);
                else user_turn(w, m);
            }
        w.EndArray();
    });
}

// ---- tools ----

void tools(ChatMembers& out, const Request& r) {
    if (!r.tools.IsArray() || r.tools.Empty()) return;
    out.add("tools", [&](Writer& w) {
        w.StartArray();
        for (const auto& t : r.tools.GetArray()) {
            const std::string_view type = str(t, "type");
            if (!type.empty() && type != "custom") continue;  // server tools (web_search, ...): Anthropic's own
            w.StartObject();
            key(w, "type");
            put(w, "function");
            key(w, "function");
            w.StartObject();
            key(w, "name");
            put(w, str(t, "name"));
            if (std::string_view d = str(t, "description"); !d.empty()) {
                key(w, "description");
                put(w, d);
            }
            if (const Value* schema = member(t, "input_schema")) {
                key(w, "parameters");
                schema->Accept(w);
            }
            w.EndObject();
            w.EndObject();
        }
        w.EndArray();
    });
    const Value& tc = r.tool_choice;
    const std::string_view type = str(tc, "type");
    if (type == "any" || type == "none" || type == "auto")
        out.add("tool_choice", [&](Writer& w) { put(w, type == "any" ? "required" : type); });
    else if (type == "tool")
        out.add("tool_choice", [&](Writer& w) {
            w.StartObject();
            key(w, "type");
            put(w, "function");
            key(w, "function");
            w.StartObject();
            key(w, "name");
            put(w, str(tc, "name"));
            w.EndObject();
            w.EndObject();
        });
    if (const Value* d = member(tc, "disable_parallel_tool_use"); d && d->IsTrue())
        out.add("parallel_tool_calls", [](Writer& w) { w.Bool(false); });
}

// output_config's format (a JSON schema) and effort as response_format and reasoning_effort.
void output_config(ChatMembers& out, const Request& r) {
    const Value* format = member(r.output_config, "format");
    if (const Value* schema = format ? member(*format, "schema") : nullptr; schema && str(*format, "type") == "json_schema")
        out.add("response_format", [&](Writer& w) {
            w.StartObject();
            key(w, "type");
            put(w, "json_schema");
            key(w, "json_schema");
            w.StartObject();
            key(w, "name");
            put(w, "output");
            key(w, "schema");
            schema->Accept(w);
            w.EndObject();
            w.EndObject();
        });
    const std::string_view effort = str(r.output_config, "effort");
    if (effort == "low" || effort == "medium" || effort == "high")
        out.add("reasoning_effort", [&](Writer& w) { put(w, effort); });
    else if (effort == "xhigh" || effort == "max")
        out.add("reasoning_effort", [](Writer& w) { put(w, "high"); });  // chat's highest
}

// Everything but the members: the gateway's reading of the request.
ParsedBody without_members(const ParsedBody& b) {
    ParsedBody out;
    out.model = b.model;
    out.stream = b.stream;
    out.fastest_response = b.fastest_response;
    out.num_retries = b.num_retries;
    out.timeout_s = b.timeout_s;
    out.stream_timeout_s = b.stream_timeout_s;
    out.fallbacks = b.fallbacks;
    out.strategies = b.strategies;
    out.overrides_json = b.overrides_json;
    out.metadata_json = b.metadata_json;
    out.client_credential = b.client_credential;
    return out;
}

}  // namespace

ParsedBody messages_to_chat(const ParsedBody& in) {
    Request r;
    for (const auto& sp : in.spans)
        for (const auto& reader : kReaders)
            if (reader.key == sp.key) reader.read(in.value_of(sp), r);

    ParsedBody chat = without_members(in);
    ChatMembers out(chat);
    messages(out, r);
    out.raw("max_tokens", r.max_tokens);
    out.raw("temperature", r.temperature);
    out.raw("top_p", r.top_p);
    if (r.stop_sequences.IsArray() && !r.stop_sequences.Empty())
        out.add("stop", [&](Writer& w) { r.stop_sequences.Accept(w); });
    tools(out, r);
    output_config(out, r);
    if (const std::string_view user = str(r.metadata, "user_id"); !user.empty())
        out.add("user", [&](Writer& w) { put(w, user); });
    if (in.stream) {
        out.add("stream", [](Writer& w) { w.Bool(true); });
        out.add("stream_options", [](Writer& w) {
            w.StartObject();
            key(w, "include_usage");
            w.Bool(true);
            w.EndObject();
        });
    }
    return chat;
}

}  // namespace tailgate::surfaces::anthropic
