// Fuzz target: the request translations of issue 19's Anthropic part. Byte 0
// picks the direction: even, a Messages body through the Messages surface and
// its chat form (surfaces/anthropic/to_chat.cpp), then back to Messages; odd, a
// chat body through the chat surface to Messages (providers/anthropic/
// chat_to_messages.cpp). Whatever the client sent, every body the gateway would
// send upstream is a JSON object with the members its API requires.
#include "providers/anthropic/codec.hpp"
#include "surfaces/surface.hpp"

#include <rapidjson/document.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace {

using namespace tailgate;

void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "anthropic request invariant violated: %s\n", what);
        std::abort();
    }
}

// A Messages body: an object with model, max_tokens and a messages array.
void check_messages_body(std::string_view json) {
    rapidjson::Document d;
    d.Parse(json.data(), json.size());
    check(!d.HasParseError() && d.IsObject(), "a Messages body is a JSON object");
    check(d.HasMember("model") && d["model"].IsString(), "a Messages body names the model");
    check(d.HasMember("max_tokens"), "a Messages body has max_tokens");
    check(d.HasMember("messages") && d["messages"].IsArray(), "a Messages body has a messages array");
}

void from_messages(std::string_view body) {
    auto parsed = surfaces::surface_for(Endpoint::Messages).parse(body);
    if (std::holds_alternative<ApiError>(parsed)) return;
    const auto& messages = std::get<providers::ParsedBody>(parsed);
    const auto chat = surfaces::surface_for(Endpoint::Messages).to_chat(messages);
    check(chat != nullptr, "a Messages request always has a chat form");
    rapidjson::Document d;
    const std::string forwarded = chat->body_for("m");
    d.Parse(forwarded.data(), forwarded.size());
    check(!d.HasParseError() && d.IsObject(), "the chat form is a JSON object");
    check(d.HasMember("messages") && d["messages"].IsArray(), "the chat form has a messages array");
    check(chat->stream == messages.stream && chat->model == messages.model, "the gateway's reading is kept");
    check_messages_body(providers::anthropic::messages_body(*chat, "m", chat->stream, {}));
}

void from_chat(std::string_view body) {
    auto parsed = surfaces::surface_for(Endpoint::Chat).parse(body);
    if (std::holds_alternative<ApiError>(parsed)) return;
    check_messages_body(providers::anthropic::messages_body(std::get<providers::ParsedBody>(parsed), "m", false, {}));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
    if (data[0] % 2 == 0) from_messages(body);
    else from_chat(body);
    return 0;
}
