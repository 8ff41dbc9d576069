#include "surfaces/responses/translate.hpp"

#include "common/api_error.hpp"
#include "surfaces/responses/json.hpp"

#include <vector>

namespace tailgate::surfaces::responses {

using namespace json;

namespace {

struct ToolCall {
    std::string id, name, arguments;
};

// One chat message as it is assembled (function calls join the assistant
// message before them).
struct Message {
    explicit Message(std::string r, std::string c = "null") : role(std::move(r)), content(std::move(c)) {}
    std::string role;
    std::string content;  // a JSON value
    std::vector<ToolCall> calls;
    std::string tool_call_id;
};

using Why = std::string;

// A user message's content part in chat's shape; false (and why) when it has none.
bool write_part(const Value& part, Writer& w, Why& why) {
    const std::string_view type = str(part, "type");
    if (type == "input_text" || type == "output_text" || type == "text") {
        w.StartObject();
        key(w, "type"), put(w, "text");
        key(w, "text"), put(w, str(part, "text"));
        w.EndObject();
    } else if (type == "input_image") {
        if (str(part, "image_url").empty()) {
            why = "an input_image without image_url (a file_id) cannot be sent as chat completions";
            return false;
        }
        w.StartObject();
        key(w, "type"), put(w, "image_url");
        key(w, "image_url"), w.StartObject();
        key(w, "url"), put(w, str(part, "image_url"));
        if (auto d = str(part, "detail"); !d.empty()) key(w, "detail"), put(w, d);
        w.EndObject();
        w.EndObject();
    } else if (type == "input_file") {
        if (!str(part, "file_url").empty()) {
            why = "an input_file given by file_url cannot be sent as chat completions";
            return false;
        }
        w.StartObject();
        key(w, "type"), put(w, "file");
        key(w, "file"), w.StartObject();
        for (const char* k : {"file_data", "file_id", "filename"})
            if (auto v = str(part, k); !v.empty()) key(w, k), put(w, v);
        w.EndObject();
        w.EndObject();
    } else if (type == "input_audio") {
        const Value* audio = member(part, "input_audio");
        if (!audio || !audio->IsObject()) {
            why = "an input_audio part needs an input_audio object";
            return false;
        }
        w.StartObject();
        key(w, "type"), put(w, "input_audio");
        key(w, "input_audio"), audio->Accept(w);
        w.EndObject();
    } else {
        why = "content part type '" + std::string(type) + "' cannot be sent as chat completions";
        return false;
    }
    return true;
}

// A user message's content: a string as is, parts one by one.
bool user_content(const Value& content, std::string& out, Why& why) {
    if (content.IsString()) {
        out = text(content);
        return true;
    }
    if (!content.IsArray()) {
        why = "message content must be a string or an array of parts";
        return false;
    }
    bool ok = true;
    out = build([&](Writer& w) {
        w.StartArray();
        for (const auto& part : content.GetArray())
            if (ok) ok = write_part(part, w, why);
        w.EndArray();
    });
    return ok;
}

bool add_message(const Value& item, std::vector<Message>& out, Why& why) {
    const std::string_view role = str(item, "role");
    const Value* content = member(item, "content");
    Message m{""};
    if (role == "user") {
        m.role = "user";
        if (content && !user_content(*content, m.content, why)) return false;
    } else if (role == "assistant" || role == "system" || role == "developer") {
        // Chat providers take plain text here; "developer" is OpenAI's newer name for system.
        m.role = role == "assistant" ? "assistant" : "system";
        m.content = json_quote(content ? joined_text(*content) : std::string());
    } else {
        why = "message role '" + std::string(role) + "' is not one of user, assistant, system, developer";
        return false;
    }
    out.push_back(std::move(m));
    return true;
}

void add_function_call(const Value& item, std::vector<Message>& out) {
    ToolCall call{std::string(str(item, "call_id")), std::string(str(item, "name")),
                  std::string(str(item, "arguments"))};
    if (out.empty() || out.back().role != "assistant") out.push_back(Message{"assistant"});
    out.back().calls.push_back(std::move(call));
}

void add_function_output(const Value& item, std::vector<Message>& out) {
    Message m{"tool"};
    m.tool_call_id = str(item, "call_id");
    const Value* output = member(item, "output");
    m.content = json_quote(output ? joined_text(*output) : std::string());
    out.push_back(std::move(m));
}

bool add_item(const Value& item, std::vector<Message>& out, Why& why) {
    if (!item.IsObject()) {
        why = "input items must be objects";
        return false;
    }
    std::string_view type = str(item, "type");
    if (type.empty() || type == "message") return add_message(item, out, why);
    if (type == "function_call") {
        add_function_call(item, out);
        return true;
    }
    if (type == "function_call_output") {
        add_function_output(item, out);
        return true;
    }
    if (type == "reasoning") return true;  // a chat model cannot take it back; it is only context
    why = "input item type '" + std::string(type) + "' cannot be sent as chat completions";
    return false;
}

void write_message(const Message& m, Writer& w) {
    w.StartObject();
    key(w, "role"), put(w, m.role);
    key(w, "content"), w.RawValue(m.content.data(), m.content.size(), rapidjson::kObjectType);
    if (!m.calls.empty()) {
        key(w, "tool_calls"), w.StartArray();
        for (const ToolCall& c : m.calls) {
            w.StartObject();
            key(w, "id"), put(w, c.id);
            key(w, "type"), put(w, "function");
            key(w, "function"), w.StartObject();
            key(w, "name"), put(w, c.name);
            key(w, "arguments"), put(w, c.arguments);
            w.EndObject();
            w.EndObject();
        }
        w.EndArray();
    }
    if (!m.tool_call_id.empty()) key(w, "tool_call_id"), put(w, m.tool_call_id);
    w.EndObject();
}

bool messages(const Value& request, const Value& items, std::string& out, Why& why) {
    std::vector<Message> list;
    if (auto ins = str(request, "instructions"); !ins.empty()) list.push_back(Message{"system", json_quote(ins)});
    for (const auto& item : items.GetArray())
        if (!add_item(item, list, why)) return false;
    out = build([&](Writer& w) {
        w.StartArray();
        for (const Message& m : list) write_message(m, w);
        w.EndArray();
    });
    return true;
}

bool tools(const Value& list, std::string& out, Why& why) {
    if (!list.IsArray()) {
        why = "'tools' must be an array";
        return false;
    }
    bool ok = true;
    out = build([&](Writer& w) {
        w.StartArray();
        for (const auto& t : list.GetArray()) {
            if (str(t, "type") != "function") {
                if (ok) why = "tool type '" + std::string(str(t, "type")) + "' has no chat completions equivalent";
                ok = false;
                continue;
            }
            w.StartObject();
            key(w, "type"), put(w, "function");
            key(w, "function"), w.StartObject();
            key(w, "name"), put(w, str(t, "name"));
            for (const char* k : {"description", "parameters", "strict"})
                if (const Value* v = member(t, k)) key(w, k), v->Accept(w);
            w.EndObject();
            w.EndObject();
        }
        w.EndArray();
    });
    return ok;
}

bool tool_choice(const Value& choice, std::string& out, Why& why) {
    if (choice.IsString()) {
        out = text(choice);
        return true;
    }
    if (str(choice, "type") == "function" && !str(choice, "name").empty()) {
        out = "{\"type\":\"function\",\"function\":{\"name\":" + json_quote(str(choice, "name")) + "}}";
        return true;
    }
    why = "this tool_choice has no chat completions equivalent";
    return false;
}

// text.format -> response_format; "" when plain text.
std::string response_format(const Value& format) {
    const std::string_view type = str(format, "type");
    if (type == "json_object") return R"({"type":"json_object"})";
    if (type != "json_schema") return {};
    return build([&](Writer& w) {
        w.StartObject();
        key(w, "type"), put(w, "json_schema");
        key(w, "json_schema"), w.StartObject();
        for (const char* k : {"name", "description", "schema", "strict"})
            if (const Value* v = member(format, k)) key(w, k), v->Accept(w);
        w.EndObject();
        w.EndObject();
    });
}

// Appends members to a chat body, recording where each lies (drop_params).
struct Members {
    providers::ParsedBody& body;
    void add(std::string_view name, std::string_view value) {
        if (!body.members.empty()) body.members += ',';
        const size_t begin = body.members.size();
        body.members += json_quote(name);
        body.members += ':';
        body.members += value;
        body.spans.push_back(providers::ParsedBody::Span{std::string(name), begin, body.members.size()});
    }
    void copy(const Value& request, const char* from, std::string_view to) {
        if (const Value* v = member(request, from)) add(to, text(*v));
    }
};

bool tool_members(const Value& request, Members& m, Why& why) {
    const Value* list = member(request, "tools");
    if (!list || (list->IsArray() && list->Empty())) return true;
    std::string out;
    if (!tools(*list, out, why)) return false;
    m.add("tools", out);
    if (const Value* choice = member(request, "tool_choice")) {
        if (!tool_choice(*choice, out, why)) return false;
        m.add("tool_choice", out);
    }
    m.copy(request, "parallel_tool_calls", "parallel_tool_calls");
    return true;
}

void option_members(const Value& request, Members& m) {
    m.copy(request, "temperature", "temperature");
    m.copy(request, "top_p", "top_p");
    m.copy(request, "user", "user");
    m.copy(request, "max_output_tokens", "max_tokens");
    if (const Value* t = member(request, "text")) {
        if (const Value* f = member(*t, "format"))
            if (auto rf = response_format(*f); !rf.empty()) m.add("response_format", rf);
        m.copy(*t, "verbosity", "verbosity");
    }
    if (const Value* r = member(request, "reasoning")) m.copy(*r, "effort", "reasoning_effort");
    if (const Value* n = member(request, "top_logprobs")) {
        m.add("logprobs", "true");
        m.add("top_logprobs", text(*n));
    }
}

}  // namespace

std::variant<providers::ParsedBody, std::string> to_chat(const Value& request, const Value& items, bool stream) {
    providers::ParsedBody chat;
    chat.model = str(request, "model");
    chat.stream = stream;
    Members m{chat};
    Why why;
    std::string msgs;
    if (!messages(request, items, msgs, why)) return why;
    m.add("messages", msgs);
    if (!tool_members(request, m, why)) return why;
    option_members(request, m);
    if (stream) {
        m.add("stream", "true");
        m.add("stream_options", R"({"include_usage":true})");  // usage arrives in the stream's last chunk
    }
    return chat;
}

}  // namespace tailgate::surfaces::responses
