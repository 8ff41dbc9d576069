// Upstream HTTP/1.1 (+TLS) client: see client.hpp for the contract.
//
// Shape
//   Client::Impl (= Core)   ssl::context, keep-alive pool (mutex-guarded map origin-key ->
//                           idle connections, LIFO), stats, one sweep timer that closes idle
//                           connections once they are older than idle_keepalive.
//   UpstreamCall            one exchange. All its work runs on its own strand; one
//                           steady_timer per call, re-armed lazily to the nearest deadline.
//   Conn                    socket (plain or beast::ssl_stream) + read buffer; moves between
//                           the pool and calls as a unique_ptr. No operation is ever pending
//                           on a pooled connection.
//
// Reading does not use beast's composed read operations: the call reads the socket itself
// (one async_read_some per wake-up) and feeds http::response_parser<buffer_body> in place,
// so every byte that arrives is parsed and delivered in the same handler, before the next
// socket read (no extra posts, no accumulation; several SSE events that arrive in one
// segment become one on_body). Body bytes are parsed into a per-thread scratch buffer that
// is only used for the duration of that handler.
#include "upstream/client.hpp"
#include "upstream/response_parser.hpp"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <limits>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <unordered_map>

namespace tailgate::upstream {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;
using error_code = boost::system::error_code;
using Clock = std::chrono::steady_clock;

const char* to_string(ErrorKind kind) {
    switch (kind) {
        case ErrorKind::Connect: return "connect";
        case ErrorKind::Timeout: return "timeout";
        case ErrorKind::Protocol: return "protocol";
    }
    return "unknown";
}

std::string_view ResponseHead::header(std::string_view lower_name) const {
    for (const auto& [name, value] : headers) {
        if (name == lower_name) return value;
    }
    return {};
}

namespace {

constexpr size_t kInitialReadSize = 4096;       // grows x2 while reads fill it
constexpr size_t kMaxReadSize = 64 * 1024;
constexpr auto kNoDeadline = Clock::time_point::max();

Clock::time_point deadline_after(Clock::time_point now, Millis d) {
    // <= 0 disables the timeout; absurdly large values saturate instead of overflowing.
    if (d.count() <= 0 || d > std::chrono::hours(24 * 365)) return kNoDeadline;
    return now + d;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

bool is_token_char(char c) {
    if (c >= 'a' && c <= 'z') return true;
    if (c >= 'A' && c <= 'Z') return true;
    if (c >= '0' && c <= '9') return true;
    switch (c) {
        case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
        case '-': case '.': case '^': case '_': case '`': case '|': case '~':
            return true;
        default:
            return false;
    }
}

bool valid_token(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), is_token_char);
}

bool valid_field_value(std::string_view s) {
    return std::none_of(s.begin(), s.end(), [](char c) { return c == '\r' || c == '\n' || c == '\0'; });
}

bool valid_target(std::string_view s) {
    return std::none_of(s.begin(), s.end(), [](char c) {
        return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f;
    });
}

// "[::1]" -> "::1"; anything else unchanged.
std::string_view bare_host(std::string_view host) {
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') return host.substr(1, host.size() - 2);
    return host;
}

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

// One upstream connection. Either `plain` or `tls` holds the socket.
struct Conn {
    explicit Conn(const asio::any_io_executor& ex) { plain.emplace(ex); }

    std::optional<tcp::socket> plain;
    std::optional<beast::ssl_stream<tcp::socket>> tls;
    beast::flat_buffer buf;                  // bytes read but not parsed yet
    size_t read_size = kInitialReadSize;
    Clock::time_point idle_since{};

    tcp::socket& sock() { return tls ? tls->next_layer() : *plain; }

    // Hard close: FIN now (shutdown), then release the descriptor. No TLS close_notify,
    // nothing to wait for. Pending operations complete with operation_aborted.
    void close() {
        error_code ec;
        auto& s = sock();
        if (!s.is_open()) return;
        s.shutdown(tcp::socket::shutdown_both, ec);
        s.close(ec);
    }

    // Non-blocking check before reusing an idle connection: the server must not have sent
    // anything (EOF, a TLS alert, or stray bytes all mean "do not reuse").
    bool looks_alive() {
        auto& s = sock();
        if (!s.is_open() || buf.size() != 0) return false;
        char byte;
        ssize_t n = ::recv(s.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
};
using ConnPtr = std::unique_ptr<Conn>;

std::string pool_key(const Origin& o) {
    std::string key;
    key.reserve(o.host.size() + o.port.size() + 4);
    key += o.tls ? (o.ssl_verify ? 'S' : 's') : 'p';
    key += o.host;
    key += '|';
    key += o.port;
    return key;
}

// The system trust store, parsed once per process (OpenSSL 3 takes ~0.2 s to load the
// default CA bundle) and shared by every Client without a ca_file. X509_STORE is
// reference-counted and safe for concurrent verification; it is never freed.
X509_STORE* system_trust_store() {
    static X509_STORE* const store = [] {
        X509_STORE* s = X509_STORE_new();
        X509_STORE_set_default_paths(s);   // a missing system store is not fatal
        ERR_clear_error();
        return s;
    }();
    return store;
}

// Shared state of one Client; in-flight calls keep it alive.
class Core : public std::enable_shared_from_this<Core> {
public:
    Core(asio::io_context& io, Client::Options opts)
        : io_(io), opts_(std::move(opts)), ssl_ctx_(ssl::context::tls_client), sweep_timer_(io) {
        ssl_ctx_.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                             ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
        ssl_ctx_.set_verify_mode(ssl::verify_peer);
        if (opts_.ca_file.empty()) {
            SSL_CTX_set1_cert_store(ssl_ctx_.native_handle(), system_trust_store());
        } else {
            error_code ec;
            ssl_ctx_.load_verify_file(opts_.ca_file, ec);
            if (ec) {
                throw std::runtime_error("upstream client: cannot load CA file '" + opts_.ca_file +
                                         "': " + ec.message());
            }
            ssl_ctx_.set_default_verify_paths(ec);   // missing system store is not fatal
            ERR_clear_error();
        }
        // Keep sessions cheap: no client-side session cache to manage.
        SSL_CTX_set_session_cache_mode(ssl_ctx_.native_handle(), SSL_SESS_CACHE_OFF);
    }

    ~Core() { shutdown(); }

    asio::io_context& io() { return io_; }
    ssl::context& ssl_ctx() { return ssl_ctx_; }

    void count_connect() { connects_.fetch_add(1, std::memory_order_relaxed); }
    void count_reuse() { reuses_.fetch_add(1, std::memory_order_relaxed); }

    // Counted before the close, so whoever sees the close also sees the count.
    void discard(Conn& c) {
        discarded_.fetch_add(1, std::memory_order_relaxed);
        c.close();
    }

    // An idle connection for `key`, or null. Drops expired / server-closed ones on the way.
    ConnPtr take(const std::string& key) {
        const auto now = Clock::now();
        for (;;) {
            ConnPtr c;
            {
                std::lock_guard lock(mu_);
                auto it = idle_.find(key);
                if (it == idle_.end() || it->second.empty()) return nullptr;
                c = std::move(it->second.back());   // LIFO: the warmest connection
                it->second.pop_back();
                idle_count_.fetch_sub(1, std::memory_order_relaxed);
            }
            if (now - c->idle_since < opts_.idle_keepalive && c->looks_alive()) return c;
            discard(*c);
        }
    }

    void give_back(const std::string& key, ConnPtr c) {
        c->idle_since = Clock::now();
        if (c->buf.capacity() > 4 * kInitialReadSize) {   // after a large body: don't park 64 KiB
            c->buf.shrink_to_fit();
            c->read_size = kInitialReadSize;
        }
        {
            std::lock_guard lock(mu_);
            if (!closed_ && opts_.max_idle_per_origin > 0) {
                auto& list = idle_[key];
                if (list.size() < opts_.max_idle_per_origin) {
                    list.push_back(std::move(c));
                    idle_count_.fetch_add(1, std::memory_order_relaxed);
                    arm_sweep_locked(Clock::now() + opts_.idle_keepalive);
                    return;
                }
            }
        }
        discard(*c);
    }

    // Closes every idle connection; later give_back() calls close instead of pooling.
    void shutdown() {
        std::vector<ConnPtr> doomed;
        {
            std::lock_guard lock(mu_);
            closed_ = true;
            for (auto& [key, list] : idle_) {
                for (auto& c : list) doomed.push_back(std::move(c));
            }
            idle_.clear();
            idle_count_.store(0, std::memory_order_relaxed);
            sweep_timer_.cancel();
        }
        for (auto& c : doomed) discard(*c);
    }

    PoolStats stats() const {
        PoolStats s;
        s.connects = connects_.load(std::memory_order_relaxed);
        s.reuses = reuses_.load(std::memory_order_relaxed);
        s.discarded = discarded_.load(std::memory_order_relaxed);
        s.idle = idle_count_.load(std::memory_order_relaxed);
        return s;
    }

private:
    void arm_sweep_locked(Clock::time_point when) {
        if (sweep_armed_ && when >= sweep_at_) return;
        sweep_armed_ = true;
        sweep_at_ = when;
        sweep_timer_.expires_at(when);
        sweep_timer_.async_wait([weak = weak_from_this()](error_code ec) {
            if (ec == asio::error::operation_aborted) return;
            if (auto self = weak.lock()) self->sweep();
        });
    }

    void sweep() {
        std::vector<ConnPtr> doomed;
        {
            std::lock_guard lock(mu_);
            sweep_armed_ = false;
            if (closed_) return;
            const auto now = Clock::now();
            auto next = kNoDeadline;
            for (auto& [key, list] : idle_) {
                // Oldest first; also drop the ones the server has closed meanwhile.
                auto keep = list.begin();
                for (auto& c : list) {
                    if (now - c->idle_since >= opts_.idle_keepalive || !c->looks_alive()) {
                        doomed.push_back(std::move(c));
                    } else {
                        next = std::min(next, c->idle_since + opts_.idle_keepalive);
                        if (&*keep != &c) *keep = std::move(c);
                        ++keep;
                    }
                }
                list.erase(keep, list.end());
            }
            idle_count_.fetch_sub(doomed.size(), std::memory_order_relaxed);
            if (next != kNoDeadline) arm_sweep_locked(next);
        }
        for (auto& c : doomed) discard(*c);
    }

    asio::io_context& io_;
    const Client::Options opts_;
    ssl::context ssl_ctx_;   // declared before the pool: streams die first

    std::atomic<uint64_t> connects_{0};
    std::atomic<uint64_t> reuses_{0};
    std::atomic<uint64_t> discarded_{0};
    std::atomic<uint64_t> idle_count_{0};

    std::mutex mu_;   // guards everything below
    std::unordered_map<std::string, std::vector<ConnPtr>> idle_;
    bool closed_ = false;
    asio::steady_timer sweep_timer_;
    bool sweep_armed_ = false;
    Clock::time_point sweep_at_{};
};

class UpstreamCall final : public Call, public std::enable_shared_from_this<UpstreamCall> {
public:
    UpstreamCall(std::shared_ptr<Core> core, Request req, std::shared_ptr<Handler> handler)
        : core_(std::move(core)),
          strand_(asio::make_strand(core_->io())),
          timer_(strand_),
          req_(std::move(req)),
          handler_(std::move(handler)) {}

private:
    // Every handler of the call runs on its strand and under entry_mu_, which only
    // start_inline() contends for: a completion can come in on the io thread while the
    // caller's thread is still finishing the fast path.
    template <class F>
    auto locked(F&& f) {
        return [this, f = std::forward<F>(f)](auto&&... args) mutable {
            std::lock_guard lk(entry_mu_);
            f(std::forward<decltype(args)>(args)...);
        };
    }
    template <class F>
    auto on_strand(F&& f) {
        return asio::bind_executor(strand_, locked(std::forward<F>(f)));
    }

public:
    void start() {
        {
            std::lock_guard lk(entry_mu_);
            if (start_inline()) return;
        }
        asio::post(strand_, locked([self = shared_from_this()] { self->begin(); }));
    }

    void pause() override { paused_.store(true, std::memory_order_release); }

    void resume() override {
        if (!paused_.exchange(false, std::memory_order_acq_rel)) return;
        asio::post(strand_, locked([self = shared_from_this()] { self->resume_reading(); }));
    }

    void cancel() override {
        if (cancel_requested_.exchange(true, std::memory_order_acq_rel)) return;
        if (strand_.running_in_this_thread()) {
            do_cancel();   // synchronous: the socket is closed before cancel() returns
        } else {
            asio::post(strand_, locked([self = shared_from_this()] { self->do_cancel(); }));
        }
    }

private:
    enum class Phase { Connect, Header, Idle };

    // ---- helpers ------------------------------------------------------------------------

    bool cancelled() const { return cancel_requested_.load(std::memory_order_acquire); }

    std::string where() const {
        std::string s;
        s.reserve(req_.label.size() + req_.origin.host.size() + req_.origin.port.size() + 16);
        if (!req_.label.empty()) {
            s += "deployment '";
            s += req_.label;
            s += "' (";
        }
        s += req_.origin.host;
        s += ':';
        s += req_.origin.port;
        if (!req_.label.empty()) s += ')';
        return s;
    }

    // Non-final callback. Returns false when the call must stop (cancelled meanwhile).
    template <class F>
    bool notify(F&& f) {
        if (cancelled() || !handler_) {
            if (!finished_) do_cancel();
            return false;
        }
        in_callback_ = true;
        bool threw = false;
        try {
            f(*handler_);
        } catch (...) {   // a throwing handler ends its call, never the io thread
            threw = true;
        }
        in_callback_ = false;
        if (threw) cancel_requested_.store(true, std::memory_order_release);
        if (cancelled()) {
            if (!finished_) do_cancel();
            handler_.reset();
            return false;
        }
        return true;
    }

    // Final callback: the handler reference is dropped once it returns.
    template <class F>
    void notify_final(F&& f) {
        auto h = std::move(handler_);
        if (!h || cancelled()) return;
        in_callback_ = true;
        try {
            f(*h);
        } catch (...) {
            // A throwing handler must not unwind into the io thread; its call is over anyway.
        }
        in_callback_ = false;
    }

    void release_io() {
        timer_.cancel();
        if (resolver_) resolver_->cancel();
        if (conn_) {
            if (conn_counted_) {
                core_->discard(*conn_);
            } else {
                conn_->close();
            }
        }
        // conn_ itself stays: pending operations still reference its stream and buffer.
    }

    void do_cancel() {
        if (finished_) return;
        finished_ = true;
        release_io();
        if (!in_callback_) handler_.reset();   // else dropped by notify() after the callback
    }

    void fail(ErrorKind kind, std::string message) {
        if (finished_) return;
        finished_ = true;
        release_io();
        notify_final([&](Handler& h) { h.on_error(kind, message); });
    }

    // ---- deadlines ------------------------------------------------------------------------

    void set_phase(Phase phase, Millis timeout) {
        phase_ = phase;
        phase_timeout_ = timeout;
        phase_deadline_ = deadline_after(Clock::now(), timeout);
        arm_timer();
    }

    // One timer per call. Deadlines only move later on the hot path (idle), which costs a
    // field update; the timer fires at the old time, finds nothing expired and re-arms.
    void arm_timer() {
        const auto when = std::min(phase_deadline_, total_deadline_);
        if (when == kNoDeadline) return;
        if (timer_armed_ && when >= timer_expiry_) return;
        timer_armed_ = true;
        timer_expiry_ = when;
        timer_.expires_at(when);
        timer_.async_wait(on_strand([self = shared_from_this()](error_code ec) { self->on_timer(ec); }));
    }

    void on_timer(error_code ec) {
        if (ec == asio::error::operation_aborted || finished_) return;
        timer_armed_ = false;
        const auto now = Clock::now();
        if (now >= total_deadline_) {
            fail(ErrorKind::Timeout, "total timeout after " + std::to_string(req_.total_timeout.count()) +
                                         " ms (" + where() + ")");
        } else if (now >= phase_deadline_) {
            const char* what = phase_ == Phase::Connect  ? "connect timeout"
                               : phase_ == Phase::Header ? "first byte (response header) timeout"
                                                         : "idle timeout";
            const char* detail = phase_ == Phase::Connect  ? "resolve/connect/TLS handshake"
                                 : phase_ == Phase::Header ? "waiting for the response head"
                                                           : "no body data";
            fail(ErrorKind::Timeout, std::string(what) + " after " + std::to_string(phase_timeout_.count()) +
                                         " ms (" + detail + ", " + where() + ")");
        } else {
            arm_timer();
        }
    }

    // ---- request --------------------------------------------------------------------------

    // Serializes the request head once, into one preallocated string. The body is sent
    // from req_.body directly (gather write), never copied.
    bool build_head() {
        const auto& o = req_.origin;
        if (!valid_token(req_.method) || !valid_target(req_.target)) return false;
        size_t size = req_.method.size() + req_.target.size() + o.host.size() + o.port.size() + 128;
        bool has_host = false, has_type = false;
        for (const auto& [name, value] : req_.headers) {
            if (!valid_token(name) || !valid_field_value(value)) return false;
            size += name.size() + value.size() + 4;
            if (iequals(name, "host")) has_host = true;
            if (iequals(name, "content-type")) has_type = true;
        }
        head_.reserve(size);
        head_ += req_.method;
        head_ += ' ';
        head_ += req_.target.empty() ? std::string_view("/") : std::string_view(req_.target);
        head_ += " HTTP/1.1\r\n";
        if (!has_host) {
            head_ += "Host: ";
            const bool v6 = o.host.find(':') != std::string::npos && o.host.front() != '[';
            if (v6) head_ += '[';
            head_ += o.host;
            if (v6) head_ += ']';
            const bool default_port = o.port.empty() || (o.tls ? o.port == "443" : o.port == "80");
            if (!default_port) {
                head_ += ':';
                head_ += o.port;
            }
            head_ += "\r\n";
        }
        for (const auto& [name, value] : req_.headers) {
            // Framing and connection management are ours.
            if (iequals(name, "content-length") || iequals(name, "connection") ||
                iequals(name, "transfer-encoding") || iequals(name, "keep-alive")) {
                continue;
            }
            head_ += name;
            head_ += ": ";
            head_ += value;
            head_ += "\r\n";
        }
        if (!has_type && !req_.body.empty()) head_ += "Content-Type: application/json\r\n";
        const bool bodyless = req_.method == "GET" || req_.method == "HEAD" || req_.method == "DELETE" ||
                              req_.method == "OPTIONS";
        if (!req_.body.empty() || !bodyless) {
            char digits[24];
            auto [end, ec] = std::to_chars(digits, digits + sizeof digits, req_.body.size());
            (void)ec;
            head_ += "Content-Length: ";
            head_.append(digits, end);
            head_ += "\r\n";
        }
        head_ += "Connection: keep-alive\r\n\r\n";
        return true;
    }

    // ---- connection -----------------------------------------------------------------------

    void begin() {
        if (finished_) return;
        if (cancelled()) {
            do_cancel();
            return;
        }
        if (!handler_) {
            finished_ = true;
            return;
        }
        total_deadline_ = deadline_after(Clock::now(), req_.total_timeout);
        if (head_.empty() && (req_.origin.host.empty() || !build_head())) {
            fail(ErrorKind::Protocol, "invalid request (method, target, header name or value)");
            return;
        }
        if (req_.origin.port.empty()) req_.origin.port = req_.origin.tls ? "443" : "80";
        key_ = pool_key(req_.origin);
        conn_ = core_->take(key_);
        if (conn_) {
            reused_ = true;
            conn_counted_ = true;
            core_->count_reuse();
            send();
        } else {
            connect();
        }
    }

    // The fast path, on the caller's thread (under entry_mu_): with an idle plain
    // connection in the pool, send the request with one non-blocking sendmsg and start
    // reading, so the io thread is not woken just to send (an epoll interrupt and a
    // context switch per request). It never calls the handler (the caller may hold
    // the executor's lock); whatever it cannot finish continues on the strand.
    // False: nothing was started, begin() does it all.
    bool start_inline() {
        if (finished_ || cancelled() || !handler_ || req_.origin.tls || req_.origin.host.empty()) return false;
        if (req_.origin.port.empty()) req_.origin.port = "80";
        if (!build_head()) {
            head_.clear();  // begin() reports it
            return false;
        }
        key_ = pool_key(req_.origin);
        conn_ = core_->take(key_);
        if (!conn_) return false;  // begin() connects
        total_deadline_ = deadline_after(Clock::now(), req_.total_timeout);
        reused_ = true;
        conn_counted_ = true;
        core_->count_reuse();
        iovec iov[2] = {{head_.data(), head_.size()}, {const_cast<char*>(req_.body.data()), req_.body.size()}};
        msghdr msg{};
        msg.msg_iov = iov;
        msg.msg_iovlen = req_.body.empty() ? 1 : 2;
        const ssize_t n = ::sendmsg(conn_->plain->native_handle(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
        const int err = n < 0 ? errno : 0;
        if (n == static_cast<ssize_t>(head_.size() + req_.body.size())) {
            on_write({});  // arms the header timer and starts reading
        } else if (n < 0 && err != EAGAIN && err != EWOULDBLOCK && err != EINTR) {
            error_code ec(err, boost::system::system_category());
            asio::post(strand_, locked([self = shared_from_this(), ec] { self->on_write(ec); }));  // stale: retry
        } else {
            written_ = n > 0 ? static_cast<size_t>(n) : 0;
            asio::post(strand_, locked([self = shared_from_this()] { self->send(); }));
        }
        return true;
    }

    void connect() {
        reused_ = false;
        conn_counted_ = false;
        conn_ = std::make_unique<Conn>(core_->io().get_executor());
        set_phase(Phase::Connect, req_.connect_timeout);
        error_code ec;
        const auto host = bare_host(req_.origin.host);
        const auto addr = asio::ip::make_address(std::string(host), ec);
        if (!ec) {   // literal IP: no resolver
            uint16_t port = 0;
            auto [p, perr] = std::from_chars(req_.origin.port.data(), req_.origin.port.data() + req_.origin.port.size(), port);
            if (perr != std::errc() || p != req_.origin.port.data() + req_.origin.port.size()) {
                fail(ErrorKind::Connect, "invalid port '" + req_.origin.port + "'");
                return;
            }
            conn_->plain->async_connect(tcp::endpoint(addr, port),
                                        on_strand([self = shared_from_this()](error_code e) { self->on_connect(e); }));
            return;
        }
        if (!resolver_) resolver_.emplace(strand_);
        resolver_->async_resolve(
            std::string(host), req_.origin.port,
            on_strand([self = shared_from_this()](error_code e, tcp::resolver::results_type results) {
                self->on_resolve(e, std::move(results));
            }));
    }

    void on_resolve(error_code ec, tcp::resolver::results_type results) {
        if (finished_) return;
        if (ec) {
            fail(ErrorKind::Connect, "resolving " + where() + " failed: " + ec.message());
            return;
        }
        asio::async_connect(*conn_->plain, results,
                            on_strand([self = shared_from_this()](error_code e, const tcp::endpoint&) {
                                self->on_connect(e);
                            }));
    }

    void on_connect(error_code ec) {
        if (finished_) return;
        if (ec) {
            fail(ErrorKind::Connect, "connect to " + where() + " failed: " + ec.message());
            return;
        }
        core_->count_connect();
        conn_counted_ = true;
        error_code ignored;
        conn_->plain->set_option(tcp::no_delay(true), ignored);
        if (req_.origin.tls) {
            start_tls();
        } else {
            send();
        }
    }

    void start_tls() {
        auto& c = *conn_;
        c.tls.emplace(std::move(*c.plain), core_->ssl_ctx());
        c.plain.reset();
        SSL* ssl = c.tls->native_handle();
        const std::string host(bare_host(req_.origin.host));
        error_code ec;
        asio::ip::make_address(host, ec);
        const bool ip_ok = !ec;
        if (!ip_ok) SSL_set_tlsext_host_name(ssl, host.c_str());   // SNI: names only (RFC 6066)
        if (req_.origin.ssl_verify) {
            c.tls->set_verify_mode(ssl::verify_peer);
            // Hostname / IP check inside OpenSSL's verifier: a mismatch surfaces as a proper
            // verify result (X509_V_ERR_HOSTNAME_MISMATCH / IP_ADDRESS_MISMATCH).
            X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
            X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            if (ip_ok) {
                X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
            } else {
                X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
            }
        } else {
            c.tls->set_verify_mode(ssl::verify_none);
        }
        c.tls->async_handshake(ssl::stream_base::client,
                               on_strand([self = shared_from_this()](error_code e) { self->on_handshake(e); }));
    }

    void on_handshake(error_code ec) {
        if (finished_) return;
        if (ec) {
            const long result = SSL_get_verify_result(conn_->tls->native_handle());
            if (req_.origin.ssl_verify && result != X509_V_OK) {
                fail(ErrorKind::Connect, "TLS certificate verification failed for " + where() + ": " +
                                             X509_verify_cert_error_string(result));
            } else {
                fail(ErrorKind::Connect, "TLS handshake with " + where() + " failed: " + ec.message());
            }
            return;
        }
        send();
    }

    // ---- exchange -------------------------------------------------------------------------

    void send() {
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

    void on_write(error_code ec) {
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
    void retry() {
        retried_ = true;
        written_ = 0;
        core_->discard(*conn_);
        conn_.reset();   // no operation is pending on it: its last one just completed
        connect();
    }

    void read_more() {
        auto& c = *conn_;
        auto buffers = c.buf.prepare(c.read_size);
        auto done = on_strand([self = shared_from_this()](error_code e, size_t n) { self->on_read(e, n); });
        if (c.tls) {
            c.tls->async_read_some(buffers, std::move(done));
        } else {
            c.plain->async_read_some(buffers, std::move(done));
        }
    }

    void on_read(error_code ec, size_t n) {
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
    void parse() {
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

    void resume_reading() {
        if (finished_ || !stopped_reading_) return;
        stopped_reading_ = false;
        phase_deadline_ = deadline_after(Clock::now(), head_delivered_ ? req_.idle_timeout : req_.header_timeout);
        arm_timer();
        read_more();
    }

    bool deliver_head(ResponseParser& p) {
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

    bool deliver_body(const char* data, size_t size) {
        return notify([&](Handler& h) { h.on_body(std::string_view(data, size)); });
    }

    void on_eof() {
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

    void on_read_error(error_code ec) {
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

    void complete() {
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

    // Declaration order matters for destruction: the connection (and its ssl stream) dies
    // before core_ (which owns the ssl::context).
    std::shared_ptr<Core> core_;
    asio::strand<asio::io_context::executor_type> strand_;
    asio::steady_timer timer_;
    Request req_;
    std::shared_ptr<Handler> handler_;
    std::atomic<bool> cancel_requested_{false};
    std::mutex entry_mu_;  // see locked()
    std::atomic<bool> paused_{false};  // pause() asked; read by the strand
    bool stopped_reading_ = false;     // paused with no read pending (strand)
    size_t written_ = 0;   // request bytes the fast path sent

    std::string key_;
    std::string head_;
    std::optional<tcp::resolver> resolver_;
    ConnPtr conn_;
    std::optional<ResponseParser> parser_;

    Phase phase_ = Phase::Connect;
    Millis phase_timeout_{0};
    Clock::time_point phase_deadline_ = kNoDeadline;
    Clock::time_point total_deadline_ = kNoDeadline;
    Clock::time_point timer_expiry_{};
    bool timer_armed_ = false;

    bool finished_ = false;       // no more I/O and no more callbacks
    bool in_callback_ = false;
    bool reused_ = false;         // conn_ came from the pool
    bool retried_ = false;        // the one transparent retry is spent
    bool conn_counted_ = false;   // conn_ is established (counts in stats when discarded)
    bool received_any_ = false;   // any response byte on this attempt
    bool head_delivered_ = false;
};

}  // namespace

struct Client::Impl : Core {
    using Core::Core;
};

Client::Client(boost::asio::io_context& io, Options opts) : impl_(std::make_shared<Impl>(io, std::move(opts))) {}

Client::~Client() {
    if (impl_) impl_->shutdown();
}

CallPtr Client::start(Request req, std::shared_ptr<Handler> handler) {
    auto call = std::make_shared<UpstreamCall>(std::static_pointer_cast<Core>(impl_), std::move(req),
                                               std::move(handler));
    call->start();
    return call;
}

PoolStats Client::stats() const { return impl_->stats(); }

}  // namespace tailgate::upstream
