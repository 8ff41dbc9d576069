// Fuzz target: the Responses API request parser and its chat translation
// (surfaces/responses/request.cpp, translate.cpp). When byte 0's low bit is
// set, the bytes up to the first newline are a stored turn's output items and
// the body follows (the previous_response_id replay path). An accepted body must give
// a forwarded body and, when translatable, a chat body that are JSON objects,
// and input items that are a JSON array; a rejection is a 400.
#include "surfaces/responses/request.hpp"

#include <rapidjson/document.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace {

void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "responses_input invariant violated: %s\n", what);
        std::abort();
    }
}

bool parses(std::string_view json, rapidjson::Type type) {
    rapidjson::Document d;
    d.Parse(json.data(), json.size());
    return !d.HasParseError() && d.GetType() == type;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace tailgate::surfaces::responses;
    if (size < 1) return 0;
    std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
    Turn turn{R"([{"role":"user","content":"earlier"}])", {}};
    std::span<const Turn> history;
    if (data[0] & 1) {
        const size_t nl = body.find('\n');
        if (nl == std::string_view::npos) return 0;
        turn.output = body.substr(0, nl);
        body.remove_prefix(nl + 1);
        history = std::span<const Turn>(&turn, 1);
    }
    auto result = parse_request(body, history);
    if (auto* err = std::get_if<tailgate::ApiError>(&result)) {
        check(err->status == 400 && !err->message.empty(), "a rejection is a 400 with a message");
        return 0;
    }
    const auto& parsed = std::get<tailgate::providers::ParsedBody>(result);
    check(parses(parsed.body_for("m"), rapidjson::kObjectType), "the forwarded body is a JSON object");
    check(parsed.as_chat || !parsed.as_chat_error.empty(), "a chat form or the reason there is none");
    if (parsed.as_chat) check(parses(parsed.as_chat->body_for("m"), rapidjson::kObjectType), "the chat body is a JSON object");
    const Context& ctx = context_of(parsed);
    check(parses(ctx.input_items, rapidjson::kArrayType), "input items are a JSON array");
    check(parses("{" + ctx.echo + "}", rapidjson::kObjectType), "the echoed fields are JSON members");
    return 0;
}
