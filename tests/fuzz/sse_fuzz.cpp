// Fuzz target: the SSE scanner (dispatch/sse.cpp) and the upstream error
// message extraction applied to a stream's error event (dispatch/executor.cpp).
// Bytes 0-3 seed the chunking; the rest is the stream, fed in chunks of
// fuzzer-chosen sizes and, separately, in one piece: both must agree.
#include "dispatch/executor.hpp"
#include "dispatch/sse.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace {

using tailgate::dispatch::SseScanner;

void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "sse invariant violated: %s\n", what);
        std::abort();
    }
}

struct Seen {
    bool content = false, done = false, error = false;
};

void feed(SseScanner& s, std::string_view bytes, Seen& seen) {
    auto r = s.feed(bytes);
    seen.content |= r.content;
    seen.done |= r.done;
    seen.error |= r.error;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 4) return 0;
    uint32_t seed = data[0] | (data[1] << 8) | (data[2] << 16) | (static_cast<uint32_t>(data[3]) << 24);
    std::string_view stream(reinterpret_cast<const char*>(data) + 4, size - 4);

    SseScanner whole;
    Seen w;
    feed(whole, stream, w);

    SseScanner chunked;
    Seen c;
    size_t pos = 0;
    while (pos < stream.size()) {
        seed = seed * 1103515245u + 12345u;          // chunk sizes 0..16, zero-length feeds included
        const size_t n = std::min<size_t>((seed >> 16) % 17, stream.size() - pos);
        feed(chunked, stream.substr(pos, n), c);
        pos += n;
    }

    check(w.content == c.content, "content seen regardless of chunking");
    check(w.done == c.done && whole.saw_done() == chunked.saw_done(), "[DONE] seen regardless of chunking");
    check(w.error == c.error && whole.error_event() == chunked.error_event(),
          "the error event is the same regardless of chunking");
    check(whole.prompt_tokens() == chunked.prompt_tokens() &&
              whole.completion_tokens() == chunked.completion_tokens(),
          "usage is the same regardless of chunking");
    if (whole.saw_error()) {
        // What the executor makes of an in-stream error (it becomes the client's message).
        (void)tailgate::dispatch::upstream_message(whole.error_event());
    }
    return 0;
}
