// Fuzz target: the Anthropic Messages event parser (providers/anthropic/
// decoder.cpp), passing through and translating (to chat chunks, and back to
// Messages events), and the same bytes read as a whole body.
// Bytes 0-3 seed the chunking; the rest is the stream, fed in chunks of
// fuzzer-chosen sizes and, separately, in one piece: both must agree, and what
// the renderers write must always be well-formed JSON, whatever came in.
#include "providers/anthropic/codec.hpp"
#include "surfaces/surface.hpp"

#include <rapidjson/document.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

namespace {

using namespace tailgate;

void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "anthropic events invariant violated: %s\n", what);
        std::abort();
    }
}

enum class Client { Messages, Chat, TranslatedMessages };

providers::EventSinkPtr sink(Client c, bool stream) {
    switch (c) {
        case Client::Messages: return nullptr;  // pass-through
        case Client::Chat: return surfaces::surface_for(Endpoint::Chat).renderer(stream);
        default: return surfaces::surface_for(Endpoint::Messages).renderer(stream);
    }
}

struct Seen {
    bool content = false, done = false, malformed = false, error = false;
    providers::Usage usage;
    std::string client;
};

// In one piece, or in chunks of 0..16 bytes drawn from the seed (zero-length feeds included).
Seen decode(std::string_view stream, std::optional<uint32_t> seed, Client c) {
    auto dec = providers::anthropic::codec().decoder(sink(c, true));
    Seen s;
    size_t pos = 0;
    do {
        size_t n = stream.size();
        if (seed) {
            *seed = *seed * 1103515245u + 12345u;
            n = std::min<size_t>((*seed >> 16) % 17, stream.size() - pos);
        }
        const providers::Decoded r = dec->feed(stream.substr(pos, n));
        s.content |= r.content;
        s.done |= r.done;
        s.malformed |= r.malformed;
        s.error |= r.error != nullptr;
        s.client.append(r.client);
        pos += n;
    } while (pos < stream.size());
    s.usage = dec->usage();
    return s;
}

bool same_usage(const providers::Usage& a, const providers::Usage& b) {
    return a.prompt_tokens == b.prompt_tokens && a.completion_tokens == b.completion_tokens &&
           a.cached_tokens == b.cached_tokens && a.cache_creation_tokens == b.cache_creation_tokens;
}

// Chat chunks carry the gateway's clock ("created"): the same bytes but for it.
std::string without_created(std::string s) {
    constexpr std::string_view kCreated = "\"created\":";
    for (size_t pos = 0; (pos = s.find(kCreated, pos)) != std::string::npos;) {
        pos += kCreated.size();
        size_t end = pos;
        while (end < s.size() && s[end] >= '0' && s[end] <= '9') ++end;
        s.erase(pos, end - pos);
    }
    return s;
}

bool is_json(std::string_view text) {
    rapidjson::Document d;
    d.Parse(text.data(), text.size());
    return !d.HasParseError();
}

// Every data line of rendered SSE is JSON (or chat's [DONE]).
bool well_formed_sse(std::string_view sse) {
    for (size_t pos = 0; (pos = sse.find("data: ", pos)) != std::string_view::npos;) {
        const size_t end = sse.find('\n', pos);
        const std::string_view data = sse.substr(pos + 6, end - pos - 6);
        if (data != "[DONE]" && !is_json(data)) return false;
        pos = end;
    }
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 4) return 0;
    const uint32_t seed = data[0] | (data[1] << 8) | (data[2] << 16) | (static_cast<uint32_t>(data[3]) << 24);
    const std::string_view stream(reinterpret_cast<const char*>(data) + 4, size - 4);

    for (Client c : {Client::Messages, Client::Chat, Client::TranslatedMessages}) {
        const Seen whole = decode(stream, std::nullopt, c), chunked = decode(stream, seed, c);
        check(whole.content == chunked.content, "content seen regardless of chunking");
        check(whole.done == chunked.done, "message_stop seen regardless of chunking");
        check(whole.malformed == chunked.malformed, "a malformed event seen regardless of chunking");
        check(whole.error == chunked.error, "an error event seen regardless of chunking");
        check(same_usage(whole.usage, chunked.usage), "usage is the same regardless of chunking");
        check(without_created(whole.client) == without_created(chunked.client),
              "the client bytes are the same regardless of chunking");
        if (c == Client::Messages)
            check(stream.substr(0, whole.client.size()) == whole.client, "pass-through relays a prefix, unchanged");
        else
            check(well_formed_sse(whole.client), "rendered events are JSON");
    }

    // The same bytes as a whole (non-stream) body.
    for (Client c : {Client::Messages, Client::Chat, Client::TranslatedMessages}) {
        std::string body(stream);
        const providers::BodyDecoded b = providers::anthropic::codec().decoder(sink(c, false))->decode_body(body);
        if (b.ok && c != Client::Messages) check(is_json(body), "a rendered body is JSON");
        if (c == Client::Messages) check(body == stream, "a pass-through body is untouched");
    }
    return 0;
}
