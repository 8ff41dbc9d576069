#include "surfaces/responses/request.hpp"

#include "common/fast_rng.hpp"
#include "surfaces/openai/parse.hpp"
#include "surfaces/responses/json.hpp"
#include "surfaces/responses/translate.hpp"

#include <ctime>
#include <optional>

namespace tailgate::surfaces::responses {

using namespace json;

namespace {

ApiError invalid(std::string message, std::string param, std::string code = "invalid_value") {
    return ApiError::bad_request(std::move(message), std::move(param), std::move(code));
}

// What the gateway cannot serve, and the shapes it relies on.
std::optional<ApiError> check_fields(const Value& d) {
    const Value* input = member(d, "input");
    if (!input || !(input->IsString() || input->IsArray()))
        return invalid("'input' must be a string or an array of input items", "input", "invalid_type");
    if (const Value* b = member(d, "background"); b && (!b->IsBool() || b->GetBool()))
        return invalid("background responses are not supported by this gateway", "background", "unsupported_parameter");
    if (member(d, "conversation"))
        return invalid("'conversation' is not supported by this gateway; chain responses with previous_response_id",
                       "conversation", "unsupported_parameter");
    if (const Value* s = member(d, "store"); s && !s->IsBool()) return invalid("'store' must be a boolean", "store", "invalid_type");
    if (const Value* p = member(d, "previous_response_id"); p && (!p->IsString() || p->GetStringLength() == 0))
        return invalid("'previous_response_id' must be a response id", "previous_response_id", "invalid_type");
    if (const Value* t = member(d, "tools"); t && !t->IsArray()) return invalid("'tools' must be an array", "tools", "invalid_type");
    for (const char* k : {"text", "reasoning"})
        if (const Value* v = member(d, k); v && !v->IsObject())
            return invalid(std::string("'") + k + "' must be an object", k, "invalid_type");
    if (const Value* i = member(d, "instructions"); i && !i->IsString())
        return invalid("'instructions' must be a string", "instructions", "invalid_type");
    return std::nullopt;
}

// This request's own input as an array of items ("hi" is one user message).
void write_own_items(const Value& input, Writer& w) {
    if (input.IsString()) {
        w.StartObject();
        key(w, "type"), put(w, "message");
        key(w, "role"), put(w, "user");
        key(w, "content"), input.Accept(w);
        w.EndObject();
        return;
    }
    for (const auto& item : input.GetArray()) item.Accept(w);
}

// A stored output item as input for the next turn: ids and statuses go (the
// next deployment may be another account that never saw them), and reasoning
// only stays when it travels encrypted.
void write_replayed(const Value& item, Writer& w) {
    const std::string_view type = str(item, "type");
    if (type == "reasoning" && !member(item, "encrypted_content")) return;
    if (type == "reasoning" || !item.IsObject()) {
        item.Accept(w);
        return;
    }
    w.StartObject();
    for (const auto& m : item.GetObject()) {
        const std::string_view k(m.name.GetString(), m.name.GetStringLength());
        if (k == "id" || k == "status") continue;
        key(w, k);
        m.value.Accept(w);
    }
    w.EndObject();
}

void write_turn(const Turn& t, Writer& w) {
    rapidjson::Document in, out;
    in.Parse(t.input_items.data(), t.input_items.size());
    out.Parse(t.output.data(), t.output.size());
    if (in.IsArray())
        for (const auto& item : in.GetArray()) item.Accept(w);
    if (out.IsArray())
        for (const auto& item : out.GetArray()) write_replayed(item, w);
}

// The request fields a Response object repeats, with OpenAI's defaults.
std::string echo_of(const Value& d, const Context& ctx) {
    auto field = [&](std::string& out, const char* k, std::string_view fallback) {
        if (!out.empty()) out += ',';
        out += json_quote(k);
        out += ':';
        const Value* v = member(d, k);
        out += v ? text(*v) : std::string(fallback);
    };
    std::string out;
    field(out, "instructions", "null");
    field(out, "max_output_tokens", "null");
    field(out, "parallel_tool_calls", "true");
    out += ",\"previous_response_id\":";
    out += ctx.previous_response_id.empty() ? "null" : json_quote(ctx.previous_response_id);
    field(out, "reasoning", R"({"effort":null,"summary":null})");
    out += ctx.store ? ",\"store\":true" : ",\"store\":false";
    field(out, "temperature", "1");
    field(out, "text", R"({"format":{"type":"text"}})");
    field(out, "tool_choice", "\"auto\"");
    field(out, "tools", "[]");
    field(out, "top_p", "1");
    field(out, "truncation", "\"disabled\"");
    field(out, "user", "null");
    field(out, "metadata", "{}");
    return out;
}

// The forwarded members with `input` replaced by the whole conversation and
// previous_response_id left out: the gateway, not the upstream, keeps history.
void expand_members(providers::ParsedBody& p, const std::string& conversation) {
    std::string members;
    std::vector<providers::ParsedBody::Span> spans;
    for (const auto& sp : p.spans) {
        if (sp.key == "previous_response_id") continue;
        if (!members.empty()) members += ',';
        const size_t begin = members.size();
        if (sp.key == "input") members += "\"input\":" + conversation;
        else members.append(p.members, sp.begin, sp.end - sp.begin);
        spans.push_back({sp.key, begin, members.size()});
    }
    p.members = std::move(members);
    p.spans = std::move(spans);
}

std::shared_ptr<Context> context(const Value& d, const providers::ParsedBody& p, const Value& input) {
    auto ctx = std::make_shared<Context>();
    ctx->id = new_id("resp_");
    ctx->created_at = static_cast<int64_t>(std::time(nullptr));
    ctx->model = p.model;
    ctx->stream = p.stream;
    if (const Value* s = member(d, "store")) ctx->store = s->GetBool();
    ctx->previous_response_id = str(d, "previous_response_id");
    ctx->input_items = build([&](Writer& w) {
        w.StartArray();
        write_own_items(input, w);
        w.EndArray();
    });
    ctx->echo = echo_of(d, *ctx);
    return ctx;
}

}  // namespace

std::string new_id(std::string_view prefix) {
    static const char* hex = "0123456789abcdef";
    auto& rng = FastRng::for_this_thread();
    std::string id(prefix);
    const uint64_t a = rng(), b = rng();
    for (int i = 0; i < 16; ++i) id += hex[(a >> (i * 4)) & 15];
    for (int i = 0; i < 8; ++i) id += hex[(b >> (i * 4)) & 15];
    return id;
}

const Context& context_of(const providers::ParsedBody& body) {
    return static_cast<const Context&>(*body.context);
}

std::variant<providers::ParsedBody, ApiError> parse_request(std::string_view body, std::span<const Turn> history) {
    auto scanned = openai::parse_body(body, Endpoint::Responses);
    if (auto* e = std::get_if<ApiError>(&scanned)) return std::move(*e);
    providers::ParsedBody p = std::move(std::get<providers::ParsedBody>(scanned));
    rapidjson::Document d;
    d.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());  // valid: the scan above said so
    if (auto e = check_fields(d)) return std::move(*e);
    const Value& input = *member(d, "input");
    auto ctx = context(d, p, input);

    // The conversation: earlier turns (previous_response_id), then this input.
    const std::string conversation = build([&](Writer& w) {
        w.StartArray();
        for (const Turn& t : history) write_turn(t, w);
        write_own_items(input, w);
        w.EndArray();
    });
    if (!ctx->previous_response_id.empty()) expand_members(p, conversation);
    rapidjson::Document items;
    items.Parse(conversation.data(), conversation.size());
    auto chat = to_chat(d, items, p.stream);
    if (auto* why = std::get_if<std::string>(&chat)) {
        p.as_chat_error = std::move(*why);
    } else {
        auto c = std::make_shared<providers::ParsedBody>(std::move(std::get<providers::ParsedBody>(chat)));
        c->model = p.model;
        p.as_chat = std::move(c);
    }
    p.context = std::move(ctx);
    return p;
}

}  // namespace tailgate::surfaces::responses
