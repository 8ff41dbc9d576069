// Fuzz target: an upstream's raw HTTP/1.1 response as the client reads it.
// Beast's response parser is set up by reset_response_parser() exactly as in
// upstream/client.cpp and driven the same way (reads of varying size into a
// flat_buffer, interim 1xx heads skipped, body drained through a bounded scratch
// buffer, EOF-delimited bodies); the head and body then go through what the
// executor does with them: Retry-After, status/body classification, the upstream
// error message, and the SSE scanner for event streams.
// Byte 0 seeds the read sizes, byte 1 the scratch size, byte 2 bit 0 = HEAD.
#include "dispatch/executor.hpp"
#include "dispatch/sse.hpp"
#include "upstream/client.hpp"
#include "upstream/response_parser.hpp"

#include <boost/beast/core/flat_buffer.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace {

namespace http = boost::beast::http;
using boost::system::error_code;
using namespace tailgate;

struct Exchange {
    std::optional<upstream::ResponseHead> head;
    std::string error_body;   // kept for classification, bounded as in the executor
    dispatch::SseScanner sse;
    bool event_stream = false;

    void on_head(upstream::ResponseParser& p) {
        upstream::ResponseHead h;
        h.status = p.get().result_int();
        for (const auto& f : p.get().base()) {
            std::string name(f.name_string());
            for (auto& ch : name)
                if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
            h.headers.emplace_back(std::move(name), std::string(f.value()));
        }
        // -1 (absent) or a delay of at most an hour, whatever the upstream wrote.
        const int64_t retry_ms = dispatch::retry_after_ms(h);
        if (retry_ms < -1 || retry_ms > 3600 * 1000) std::abort();
        event_stream = h.header("content-type").find("text/event-stream") != std::string_view::npos;
        head = std::move(h);
    }
    void on_body(const char* data, size_t n) {
        if (head->status == 200 && event_stream) {
            sse.feed(std::string_view(data, n));
        } else if (error_body.size() < 64 * 1024) {
            error_body.append(data, std::min(n, 64 * 1024 - error_body.size()));
        }
    }
    void finish() {
        if (!head) return;
        if (head->status != 200) {
            (void)dispatch::classify_status(head->status, error_body);
            (void)dispatch::upstream_message(error_body);
        } else if (sse.saw_error()) {
            (void)dispatch::upstream_message(sse.error_event());
        } else if (!event_stream) {
            int64_t p = -1, c = -1;
            dispatch::read_usage(error_body, p, c);
        }
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 3) return 0;
    uint32_t seed = data[0] * 2654435761u + 1;
    const size_t scratch_size = 1 + (static_cast<size_t>(data[1]) * 257) % upstream::kScratchSize;
    const bool head_request = data[2] & 1;
    const char* in = reinterpret_cast<const char*>(data) + 3;
    size_t left = size - 3;

    std::vector<char> scratch(scratch_size);
    boost::beast::flat_buffer buf;
    std::optional<upstream::ResponseParser> parser;
    upstream::reset_response_parser(parser, head_request);
    Exchange ex;
    bool head_delivered = false;

    while (left > 0) {
        // One read of 1..64 bytes (the real client reads 4 KiB and more; small reads
        // exercise every split point of heads, chunk sizes and events).
        seed = seed * 1103515245u + 12345u;
        const size_t n = std::min<size_t>(1 + (seed >> 16) % 64, left);
        auto dst = buf.prepare(n);
        std::memcpy(dst.data(), in, n);
        buf.commit(n);
        in += n;
        left -= n;

        size_t filled = 0;
        for (;;) {
            auto& p = *parser;
            auto& body = p.get().body();
            body.data = scratch.data() + filled;
            body.size = scratch_size - filled;
            error_code ec;
            const size_t used = buf.size() ? p.put(buf.data(), ec) : 0;
            buf.consume(used);
            filled = static_cast<size_t>(static_cast<char*>(body.data) - scratch.data());

            if (!head_delivered && p.is_header_done()) {
                const int status = p.get().result_int();
                if (status >= 100 && status < 200 && status != 101) {
                    upstream::reset_response_parser(parser, head_request);
                    if (buf.size() == 0) break;
                    continue;
                }
                head_delivered = true;
                ex.on_head(p);
            }
            if (ec == http::error::need_buffer) {
                ex.on_body(scratch.data(), filled);
                filled = 0;
                continue;
            }
            if (ec == http::error::need_more) break;
            if (ec) {   // malformed: the client fails the call (Protocol)
                if (filled) ex.on_body(scratch.data(), filled);
                ex.finish();
                return 0;
            }
            if (p.is_done()) {
                if (filled) ex.on_body(scratch.data(), filled);
                ex.finish();
                return 0;
            }
            if (buf.size() == 0) break;
        }
        if (filled) ex.on_body(scratch.data(), filled);
    }
    error_code ec;
    parser->put_eof(ec);   // the upstream closed the connection
    if (!ec && parser->is_done()) ex.finish();
    return 0;
}
