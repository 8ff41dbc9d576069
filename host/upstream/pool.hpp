// The upstream client's shared state: the keep-alive pool of connections (per
// origin, LIFO, capped, swept when idle too long), the TLS context and the
// stats. Internal to host/upstream (client.hpp is the interface).
#pragma once

#include "upstream/client.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace tailgate::upstream::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;
using error_code = boost::system::error_code;
using Clock = std::chrono::steady_clock;

constexpr size_t kInitialReadSize = 4096;       // grows x2 while reads fill it
constexpr size_t kMaxReadSize = 64 * 1024;
constexpr auto kNoDeadline = Clock::time_point::max();

inline Clock::time_point deadline_after(Clock::time_point now, Millis d) {
    // <= 0 disables the timeout; absurdly large values saturate instead of overflowing.
    if (d.count() <= 0 || d > std::chrono::hours(24 * 365)) return kNoDeadline;
    return now + d;
}

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

// The pool's key of an origin: scheme, verification, host and port.
std::string pool_key(const Origin& o);

// Shared state of one Client; in-flight calls keep it alive.
class Core : public std::enable_shared_from_this<Core> {
public:
    Core(asio::io_context& io, Client::Options opts);

    ~Core() { shutdown(); }

    asio::io_context& io() { return io_; }
    ssl::context& ssl_ctx() { return ssl_ctx_; }

    void count_connect() { connects_.fetch_add(1, std::memory_order_relaxed); }
    void count_reuse() { reuses_.fetch_add(1, std::memory_order_relaxed); }

    // Counted before the close, so whoever sees the close also sees the count.
    void discard(Conn& c);
    // An idle connection for `key`, or null. Drops expired / server-closed ones on the way.
    ConnPtr take(const std::string& key);
    void give_back(const std::string& key, ConnPtr c);
    // Closes every idle connection; later give_back() calls close instead of pooling.
    void shutdown();
    PoolStats stats() const;

private:
    void arm_sweep_locked(Clock::time_point when);
    void sweep();

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

}  // namespace tailgate::upstream::detail
