#include "upstream/call.hpp"

#include <boost/asio/ssl/error.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>

#include <openssl/ssl.h>

#include <algorithm>
#include <array>

namespace tailgate::upstream::detail {

namespace http = beast::http;

namespace {

// Per-thread buffer that receives parsed body bytes for the duration of one handler.
struct Scratch {
    char* data = nullptr;
    bool borrowed = false;   // true: owned by the thread, release on destruction
    std::unique_ptr<char[]> own;

    Scratch() {
        thread_local std::unique_ptr<char[]> buffer;
        thread_local bool busy = false;
        if (!busy) {
            if (!buffer) buffer = std::make_unique<char[]>(kScratchSize);
            busy = true;
            busy_flag = &busy;
            data = buffer.get();
            borrowed = true;
        } else {  // re-entered from inside a callback on this thread (rare)
            own = std::make_unique<char[]>(kScratchSize);
            data = own.get();
        }
    }
    ~Scratch() {
        if (borrowed) *busy_flag = false;
    }
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;

private:
    bool* busy_flag = nullptr;
};

}  // namespace

void UpstreamCall::send() {
    set_phase(Phase::Header, req_.header_timeout);
    // From written_ on: the fast path may have sent a first part already.
    const size_t skip_head = std::min(written_, head_.size());
    const size_t skip_body = written_ - skip_head;
    std::array<asio::const_buffer, 2> buffers{asio::buffer(head_) + skip_head, asio::buffer(req_.body) + skip_body};
    auto done = on_strand([self = shared_from_this()](error_code e, size_t) { self->on_write(e); });
    if (conn_->tls) {
        asio::async_write(*conn_->tls, buffers, std::move(done));
    } else {
        asio::async_write(*conn_->plain, buffers, std::move(done));
    }
}

void UpstreamCall::on_write(error_code ec) {
    if (finished_) return;
    if (ec) {
        if (reused_ && !retried_) {
            retry();
        } else {
            fail(ErrorKind::Connect, "sending the request to " + where() + " failed: " + ec.message());
        }
        return;
    }
    set_phase(Phase::Header, req_.header_timeout);   // the header timeout starts now
    received_any_ = false;
    head_delivered_ = false;
    reset_response_parser(parser_, req_.method == "HEAD");
    read_more();
}

// The stale keep-alive race: a pooled connection the server had already closed. Nothing
// of the response was received, so the request goes once more on a fresh connection.
void UpstreamCall::retry() {
    retried_ = true;
    written_ = 0;
    core_->discard(*conn_);
    conn_.reset();   // no operation is pending on it: its last one just completed
    connect();
}

void UpstreamCall::read_more() {
    auto& c = *conn_;
    auto buffers = c.buf.prepare(c.read_size);
    auto done = on_strand([self = shared_from_this()](error_code e, size_t n) { self->on_read(e, n); });
    if (c.tls) {
        c.tls->async_read_some(buffers, std::move(done));
    } else {
        c.plain->async_read_some(buffers, std::move(done));
    }
}

void UpstreamCall::on_read(error_code ec, size_t n) {
    if (finished_) return;
    if (ec) {
        if (ec == asio::error::eof || ec == ssl::error::stream_truncated) {
            on_eof();
        } else {
            on_read_error(ec);
        }
        return;
    }
    auto& c = *conn_;
    c.buf.commit(n);
    received_any_ = true;
    if (n == c.read_size && c.read_size < kMaxReadSize) c.read_size *= 2;
    if (head_delivered_) phase_deadline_ = deadline_after(Clock::now(), req_.idle_timeout);
    parse();
}

// Parses everything buffered; delivers head and body; then completes or reads again.
void UpstreamCall::parse() {
    auto& c = *conn_;
    Scratch scratch;
    char* const out = scratch.data;
    size_t filled = 0;
    for (;;) {
        auto& p = *parser_;
        auto& body = p.get().body();
        body.data = out + filled;
        body.size = kScratchSize - filled;
        error_code ec;
        const size_t used = c.buf.size() ? p.put(c.buf.data(), ec) : 0;
        c.buf.consume(used);
        filled = static_cast<size_t>(static_cast<char*>(body.data) - out);

        if (!head_delivered_ && p.is_header_done()) {
            const int status = p.get().result_int();
            if (status >= 100 && status < 200 && status != 101) {
                // Interim response (100 Continue, 103 Early Hints): skip it.
                reset_response_parser(parser_, req_.method == "HEAD");
                if (c.buf.size() == 0) break;
                continue;
            }
            if (!deliver_head(p)) return;
        }
        if (ec == http::error::need_buffer) {
            if (!deliver_body(out, filled)) return;
            filled = 0;
            continue;
        }
        if (ec == http::error::need_more) break;
        if (ec) {
            if (filled && !deliver_body(out, filled)) return;
            fail(ErrorKind::Protocol, "malformed response from " + where() + ": " + ec.message());
            return;
        }
        if (p.is_done()) {
            if (filled && !deliver_body(out, filled)) return;
            complete();
            return;
        }
        if (c.buf.size() == 0) break;
    }
    if (filled && !deliver_body(out, filled)) return;
    if (paused_.load(std::memory_order_acquire)) {
        stopped_reading_ = true;  // resume_reading() picks up from here
        phase_deadline_ = kNoDeadline;
        return;
    }
    read_more();
}

void UpstreamCall::resume_reading() {
    if (finished_ || !stopped_reading_) return;
    stopped_reading_ = false;
    phase_deadline_ = deadline_after(Clock::now(), head_delivered_ ? req_.idle_timeout : req_.header_timeout);
    arm_timer();
    read_more();
}

bool UpstreamCall::deliver_head(ResponseParser& p) {
    head_delivered_ = true;
    ResponseHead head;
    head.status = p.get().result_int();
    const auto& fields = p.get().base();
    head.headers.reserve(static_cast<size_t>(std::distance(fields.begin(), fields.end())));
    for (const auto& f : fields) {
        const auto n = f.name_string();
        const auto v = f.value();
        std::string name(n.data(), n.size());
        for (auto& ch : name) {
            if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
        }
        head.headers.emplace_back(std::move(name), std::string(v.data(), v.size()));
    }
    set_phase(Phase::Idle, req_.idle_timeout);
    return notify([&](Handler& h) { h.on_head(head); });
}

bool UpstreamCall::deliver_body(const char* data, size_t size) {
    return notify([&](Handler& h) { h.on_body(std::string_view(data, size)); });
}

void UpstreamCall::on_eof() {
    if (!received_any_) {
        if (reused_ && !retried_) {
            retry();
        } else {
            fail(ErrorKind::Connect, where() + " closed the connection before sending a response");
        }
        return;
    }
    error_code ec;
    parser_->put_eof(ec);
    if (!ec && parser_->is_done()) {   // body delimited by EOF
        complete();
        return;
    }
    if (!head_delivered_) {
        fail(ErrorKind::Protocol, where() + " closed the connection inside the response head");
    } else {
        fail(ErrorKind::Protocol, "connection to " + where() + " closed mid-body");
    }
}

void UpstreamCall::on_read_error(error_code ec) {
    if (!received_any_) {
        if (reused_ && !retried_) {
            retry();
        } else {
            fail(ErrorKind::Connect, "connection to " + where() + " failed before any response: " + ec.message());
        }
        return;
    }
    fail(ErrorKind::Protocol, std::string("connection to ") + where() + " lost " +
                                  (head_delivered_ ? "mid-body" : "inside the response head") + ": " +
                                  ec.message());
}

void UpstreamCall::complete() {
    finished_ = true;
    timer_.cancel();
    const bool reusable = parser_->keep_alive() && conn_->buf.size() == 0 && !cancelled();
    if (reusable) {
        core_->give_back(key_, std::move(conn_));   // before on_done: the next call may use it
    } else {
        core_->discard(*conn_);
    }
    notify_final([](Handler& h) { h.on_done(); });
}

}  // namespace tailgate::upstream::detail
