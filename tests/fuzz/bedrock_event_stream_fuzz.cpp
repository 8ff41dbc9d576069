// Fuzz target: Bedrock's ConverseStream reading (providers/bedrock): the
// event-stream frame reader (prelude, headers, both CRCs) and the Converse
// events decoded into OpenAI chat chunks by the chat surface's renderer. Bytes
// 0-3 seed the chunking; the rest is the stream, fed in chunks of fuzzer-chosen
// sizes and, separately, in one piece: both must agree. The same bytes are also
// read as a whole (non-stream) Converse body.
#include "providers/bedrock/codec.hpp"
#include "providers/bedrock/event_stream.hpp"
#include "surfaces/surface.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

using namespace tailgate;

void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "bedrock event-stream invariant violated: %s\n", what);
        std::abort();
    }
}

struct Seen {
    bool content = false, done = false, malformed = false, error = false;
    std::string client;
};

providers::ResponseDecoderPtr decoder(bool stream) {
    const auto& surface = surfaces::surface_for(Endpoint::Chat);
    const auto& codec = providers::bedrock::codec();
    return codec.decoder_for(Endpoint::Chat, surfaces::sink_for(surface, codec, stream), "m");
}

void feed(providers::ResponseDecoder& d, std::string_view bytes, Seen& seen) {
    const providers::Decoded r = d.feed(bytes);
    seen.content |= r.content;
    seen.done |= r.done;
    seen.malformed |= r.malformed;
    seen.error |= r.error != nullptr;
    seen.client.append(r.client);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 4) return 0;
    uint32_t seed = data[0] | (data[1] << 8) | (data[2] << 16) | (static_cast<uint32_t>(data[3]) << 24);
    std::string_view stream(reinterpret_cast<const char*>(data) + 4, size - 4);

    auto whole = decoder(true);
    Seen w;
    feed(*whole, stream, w);

    auto chunked = decoder(true);
    Seen c;
    size_t pos = 0;
    while (pos < stream.size()) {
        seed = seed * 1103515245u + 12345u;  // chunk sizes 0..64, zero-length feeds included
        const size_t n = std::min<size_t>((seed >> 16) % 65, stream.size() - pos);
        feed(*chunked, stream.substr(pos, n), c);
        pos += n;
    }
    check(w.content == c.content, "content seen regardless of chunking");
    check(w.done == c.done && whole->saw_done() == chunked->saw_done(), "the end seen regardless of chunking");
    check(w.malformed == c.malformed, "a bad frame is found regardless of chunking");
    check(w.error == c.error, "an exception is seen regardless of chunking");
    check(whole->usage().completion_tokens == chunked->usage().completion_tokens, "usage regardless of chunking");
    // The ids differ per decoder; the rest of the rendered text must not.
    check(w.client.size() == c.client.size(), "the client bytes are the same regardless of chunking");

    // Frames straight from the reader: sizes add up, nothing is read past the input.
    providers::bedrock::EventStreamReader reader;
    size_t payloads = 0;
    reader.feed(stream, [&](const providers::bedrock::EventMessage& m) {
        check(m.payload.data() >= stream.data() && m.payload.data() + m.payload.size() <= stream.data() + stream.size(),
              "a payload lies inside the input");
        payloads += m.payload.size();
        return true;
    });
    check(payloads <= stream.size(), "payloads fit in the input");

    std::string body(stream);
    (void)decoder(false)->decode_body(body);  // a whole Converse body: never crashes
    return 0;
}
