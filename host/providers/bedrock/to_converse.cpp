// Chat completions (or a legacy completions prompt) -> a Converse request.
//
// Only the members Converse has a word for are read, each parsed from its own
// span (no DOM of the whole body): system/developer messages become `system`;
// user and assistant turns `messages` (consecutive turns of one role merged, as
// Converse wants them alternating); tool calls toolUse blocks, tool messages
// user turns of toolResult blocks; data: URL images image blocks; tools and
// tool_choice `toolConfig`; max_tokens, temperature, top_p and stop
// `inferenceConfig`; top_k `additionalModelRequestFields`.
#include "providers/bedrock/codec.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>

namespace tailgate::providers::bedrock {

namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;
using Value = rapidjson::Value;

struct Chat {
    rapidjson::Document messages, prompt, tools, tool_choice, stop;  // null when absent
    std::string_view max_tokens, temperature, top_p, top_k;          // JSON numbers, as written
    int n = 1;
};

// The value of a member span ("key":value) as JSON text.
std::string_view value_of(const ParsedBody& body, const ParsedBody::Span& sp) {
    std::string_view m = std::string_view(body.members).substr(sp.begin, sp.end - sp.begin);
    // The key is a JSON string: skip it (escapes included), then the ':'.
    size_t i = 1;
    while (i < m.size() && m[i] != '"') i += m[i] == '\\' ? 2 : 1;
    i = m.find(':', i + 1);
    if (i == std::string_view::npos) return {};
    m.remove_prefix(i + 1);
    while (!m.empty() && (m.front() == ' ' || m.front() == '\t' || m.front() == '\n' || m.front() == '\r'))
        m.remove_prefix(1);
    return m;
}

void parse_into(rapidjson::Document& d, std::string_view json) {
    d.Parse(json.data(), json.size());
    if (d.HasParseError()) d.SetNull();
}

bool is_number(std::string_view json) {
    return !json.empty() && (json.front() == '-' || (json.front() >= '0' && json.front() <= '9'));
}

Chat read_chat(const ParsedBody& body, const std::vector<std::string>& dropped) {
    Chat c;
    for (const auto& sp : body.spans) {
        if (std::find(dropped.begin(), dropped.end(), sp.key) != dropped.end()) continue;
        const std::string_view v = value_of(body, sp);
        const std::string_view num = is_number(v) ? v : std::string_view();
        if (sp.key == "messages") parse_into(c.messages, v);
        else if (sp.key == "prompt") parse_into(c.prompt, v);
        else if (sp.key == "tools") parse_into(c.tools, v);
        else if (sp.key == "tool_choice") parse_into(c.tool_choice, v);
        else if (sp.key == "stop") parse_into(c.stop, v);
        else if (sp.key == "max_tokens" || sp.key == "max_completion_tokens") {
            if (!num.empty() && (c.max_tokens.empty() || sp.key == "max_completion_tokens")) c.max_tokens = num;
        } else if (sp.key == "temperature") c.temperature = num;
        else if (sp.key == "top_p") c.top_p = num;
        else if (sp.key == "top_k") c.top_k = num;
        else if (sp.key == "n" && !num.empty()) c.n = std::atoi(std::string(num).c_str());
    }
    return c;
}

std::string_view str(const Value& v) {
    return v.IsString() ? std::string_view(v.GetString(), v.GetStringLength()) : std::string_view();
}

const Value* member(const Value& v, const char* key) {
    if (!v.IsObject()) return nullptr;
    auto it = v.FindMember(key);
    return it == v.MemberEnd() || it->value.IsNull() ? nullptr : &it->value;
}

std::string_view str_member(const Value& v, const char* key) {
    const Value* m = member(v, key);
    return m ? str(*m) : std::string_view();
}

void put(Writer& w, std::string_view s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); }
void raw_number(Writer& w, std::string_view json) {
    w.RawValue(json.data(), json.size(), rapidjson::kNumberType);
}

void text_block(Writer& w, std::string_view text) {
    w.StartObject();
    w.Key("text");
    put(w, text);
    w.EndObject();
}

// "data:image/png;base64,AAAA" -> an image block; anything else is refused:
// Converse takes images inline only.
void image_block(Writer& w, std::string_view url) {
    constexpr std::string_view kData = "data:image/";
    const size_t semi = url.find(";base64,");
    if (url.substr(0, kData.size()) != kData || semi == std::string_view::npos)
        throw RequestRefused("Bedrock takes images inline only: image_url must be a data:image/...;base64, URL");
    std::string_view format = url.substr(kData.size(), semi - kData.size());
    if (format == "jpg") format = "jpeg";
    if (format != "png" && format != "jpeg" && format != "gif" && format != "webp")
        throw RequestRefused("Bedrock takes png, jpeg, gif or webp images, not '" + std::string(format) + "'");
    w.StartObject();
    w.Key("image");
    w.StartObject();
    w.Key("format");
    put(w, format);
    w.Key("source");
    w.StartObject();
    w.Key("bytes");
    put(w, url.substr(semi + 8));
    w.EndObject();
    w.EndObject();
    w.EndObject();
}

// A message's content (a string or parts) as Converse blocks; empty text is
// left out (Converse refuses blank text blocks).
void content_blocks(Writer& w, const Value* content) {
    if (!content) return;
    if (content->IsString()) {
        if (content->GetStringLength() > 0) text_block(w, str(*content));
        return;
    }
    if (!content->IsArray()) return;
    for (const auto& part : content->GetArray()) {
        const std::string_view type = str_member(part, "type");
        if (type == "text" && !str_member(part, "text").empty()) {
            text_block(w, str_member(part, "text"));
        } else if (type == "image_url") {
            const Value* iu = member(part, "image_url");
            image_block(w, iu && iu->IsObject() ? str_member(*iu, "url") : iu ? str(*iu) : std::string_view());
        }
    }
}

// The text of a content (string or text parts), for system prompts and tool results.
std::string content_text(const Value* content) {
    if (!content) return {};
    if (content->IsString()) return std::string(str(*content));
    std::string out;
    if (content->IsArray())
        for (const auto& part : content->GetArray()) {
            if (str_member(part, "type") != "text") continue;
            if (!out.empty()) out += '\n';
            out += str_member(part, "text");
        }
    return out;
}

void tool_use_block(Writer& w, const Value& call) {
    const Value* fn = member(call, "function");
    if (!fn) return;
    rapidjson::Document input;
    const std::string_view args = str_member(*fn, "arguments");
    input.Parse(args.data(), args.size());
    w.StartObject();
    w.Key("toolUse");
    w.StartObject();
    w.Key("toolUseId");
    put(w, str_member(call, "id"));
    w.Key("name");
    put(w, str_member(*fn, "name"));
    w.Key("input");
    if (input.HasParseError() || !input.IsObject()) {
        w.StartObject();  // Converse wants an object; unparsable arguments become {}
        w.EndObject();
    } else {
        input.Accept(w);
    }
    w.EndObject();
    w.EndObject();
}

void tool_result_block(Writer& w, const Value& msg) {
    w.StartObject();
    w.Key("toolResult");
    w.StartObject();
    w.Key("toolUseId");
    put(w, str_member(msg, "tool_call_id"));
    w.Key("content");
    w.StartArray();
    text_block(w, content_text(member(msg, "content")));
    w.EndArray();
    w.EndObject();
    w.EndObject();
}

// The Converse role of a chat message, "" for system prompts.
std::string_view converse_role(std::string_view role) {
    if (role == "system" || role == "developer") return "";
    if (role == "assistant") return "assistant";
    return "user";  // user, tool, function
}

// True when the history holds tool blocks: Converse then needs toolConfig.
bool has_tool_history(const Value& messages) {
    for (const auto& m : messages.GetArray())
        if (member(m, "tool_calls") || str_member(m, "role") == "tool") return true;
    return false;
}

void write_system(Writer& w, const Value& messages) {
    bool any = false;
    for (const auto& m : messages.GetArray()) {
        if (!converse_role(str_member(m, "role")).empty()) continue;
        const std::string text = content_text(member(m, "content"));
        if (text.empty()) continue;
        if (!any) {
            w.Key("system");
            w.StartArray();
            any = true;
        }
        text_block(w, text);
    }
    if (any) w.EndArray();
}

void write_message_blocks(Writer& w, const Value& m) {
    if (str_member(m, "role") == "tool") return tool_result_block(w, m);
    content_blocks(w, member(m, "content"));
    if (const Value* calls = member(m, "tool_calls"); calls && calls->IsArray())
        for (const auto& call : calls->GetArray()) tool_use_block(w, call);
}

void write_messages(Writer& w, const Value& messages) {
    w.Key("messages");
    w.StartArray();
    std::string_view open;  // the role of the turn being written
    for (const auto& m : messages.GetArray()) {
        const std::string_view role = converse_role(str_member(m, "role"));
        if (role.empty()) continue;
        if (role != open) {
            if (!open.empty()) w.EndArray(), w.EndObject();
            w.StartObject();
            w.Key("role");
            put(w, role);
            w.Key("content");
            w.StartArray();
            open = role;
        }
        write_message_blocks(w, m);
    }
    if (!open.empty()) w.EndArray(), w.EndObject();
    w.EndArray();
}

void write_prompt(Writer& w, const Value& prompt) {
    w.Key("messages");
    w.StartArray();
    w.StartObject();
    w.Key("role");
    put(w, "user");
    w.Key("content");
    w.StartArray();
    if (prompt.IsString()) text_block(w, str(prompt));
    else if (prompt.IsArray() && prompt.Size() == 1 && prompt[0].IsString()) text_block(w, str(prompt[0]));
    else throw RequestRefused("Bedrock takes one prompt string per request");
    w.EndArray();
    w.EndObject();
    w.EndArray();
}

void write_inference_config(Writer& w, const Chat& c) {
    const bool stop = c.stop.IsString() || (c.stop.IsArray() && !c.stop.Empty());
    if (c.max_tokens.empty() && c.temperature.empty() && c.top_p.empty() && !stop) return;
    w.Key("inferenceConfig");
    w.StartObject();
    if (!c.max_tokens.empty()) w.Key("maxTokens"), raw_number(w, c.max_tokens);
    if (!c.temperature.empty()) w.Key("temperature"), raw_number(w, c.temperature);
    if (!c.top_p.empty()) w.Key("topP"), raw_number(w, c.top_p);
    if (stop) {
        w.Key("stopSequences");
        w.StartArray();
        if (c.stop.IsString()) put(w, str(c.stop));
        else
            for (const auto& s : c.stop.GetArray())
                if (s.IsString()) put(w, str(s));
        w.EndArray();
    }
    w.EndObject();
}

void write_tool_spec(Writer& w, const Value& tool) {
    const Value* fn = member(tool, "function");
    if (!fn) return;
    w.StartObject();
    w.Key("toolSpec");
    w.StartObject();
    w.Key("name");
    put(w, str_member(*fn, "name"));
    if (const std::string_view d = str_member(*fn, "description"); !d.empty()) w.Key("description"), put(w, d);
    w.Key("inputSchema");
    w.StartObject();
    w.Key("json");
    if (const Value* params = member(*fn, "parameters"); params && params->IsObject()) {
        params->Accept(w);
    } else {
        w.StartObject();
        w.Key("type");
        put(w, "object");
        w.EndObject();
    }
    w.EndObject();
    w.EndObject();
    w.EndObject();
}

// tool_choice: "auto" -> auto, "required" -> any, a named function -> tool;
// "none" keeps the tools only when the history needs them, with no choice.
void write_tool_config(Writer& w, const Chat& c, bool tool_history) {
    const bool none = str(c.tool_choice) == "none";
    if (!c.tools.IsArray() || c.tools.Empty() || (none && !tool_history)) return;
    w.Key("toolConfig");
    w.StartObject();
    w.Key("tools");
    w.StartArray();
    for (const auto& t : c.tools.GetArray()) write_tool_spec(w, t);
    w.EndArray();
    const std::string_view choice = str(c.tool_choice);
    const Value* fn = member(c.tool_choice, "function");
    if (choice == "required" || choice == "auto" || fn) {
        w.Key("toolChoice");
        w.StartObject();
        if (fn) {
            w.Key("tool");
            w.StartObject();
            w.Key("name");
            put(w, str_member(*fn, "name"));
            w.EndObject();
        } else {
            w.Key(choice == "required" ? "any" : "auto");
            w.StartObject();
            w.EndObject();
        }
        w.EndObject();
    }
    w.EndObject();
}

}  // namespace

std::string to_converse(const ParsedBody& request, Endpoint op, const std::vector<std::string>& dropped) {
    if (op != Endpoint::Chat && op != Endpoint::Completions)
        throw RequestRefused("bedrock/ deployments serve chat completions (and legacy completions) only");
    const Chat c = read_chat(request, dropped);
    if (c.n > 1) throw RequestRefused("Bedrock's Converse API returns one choice: 'n' must be 1");
    rapidjson::StringBuffer sb;
    Writer w(sb);
    w.StartObject();
    bool tool_history = false;
    if (op == Endpoint::Chat) {
        if (!c.messages.IsArray()) throw RequestRefused("'messages' must be an array");
        tool_history = has_tool_history(c.messages);
        write_system(w, c.messages);
        write_messages(w, c.messages);
    } else {
        write_prompt(w, c.prompt);
    }
    write_inference_config(w, c);
    write_tool_config(w, c, tool_history);
    if (!c.top_k.empty()) {
        w.Key("additionalModelRequestFields");
        w.StartObject();
        w.Key("top_k");
        raw_number(w, c.top_k);
        w.EndObject();
    }
    w.EndObject();
    return {sb.GetString(), sb.GetSize()};
}

}  // namespace tailgate::providers::bedrock
