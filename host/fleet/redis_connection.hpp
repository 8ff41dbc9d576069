// One connection to Redis, driven by Asio on a strand: hiredis formats the
// commands and parses the replies (its protocol reader), Asio owns the socket,
// the name resolution and every timeout.
//
// Why not hiredis's own async context (redisAsyncContext + an Asio adapter):
// in Debian 12's hiredis 0.14 it resolves host names with a blocking
// getaddrinfo() inside redisAsyncConnect, has no connect or reply timeouts,
// and frees every pending callback from inside redisAsyncFree. Here a
// paused or unreachable Redis only ever costs an Asio timer, never a thread.
//
// TLS (rediss://): the same socket wrapped in Asio's ssl::stream (OpenSSL),
// handshaken right after the TCP connect under the same connect timeout; the
// peer's chain and name are verified inside OpenSSL's verifier. The plain
// path stays a bare tcp::socket (one branch per read and write).
//
// Commands are pipelined: each command() appends to the output buffer, one
// write carries everything queued meanwhile, and replies are matched to
// callbacks in order. Not thread-safe: call everything on the strand.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

struct redisReply;
struct redisReader;

namespace tailgate::fleet {

using Strand = boost::asio::strand<boost::asio::io_context::executor_type>;
using Millis = std::chrono::milliseconds;

// A reply, or null when the connection failed before it came.
using ReplyFn = std::function<void(const redisReply*)>;

struct RedisEndpoint {
    std::string host;
    int port = 6379;
    std::string username;  // "" = the default user
    std::string password;  // "" = no AUTH; never logged
    int db = 0;
    Millis connect_timeout{1000};
    // TLS: null = plain TCP. Shared by every connection to this endpoint.
    std::shared_ptr<boost::asio::ssl::context> tls;
    std::string tls_server_name;  // SNI and the name/IP to verify; "" = host
    bool tls_verify = true;
};

// A client context for rediss://: TLS 1.2+, peer verification against
// `ca_file` (PEM) or the system's default verify paths when it is "".
// Throws std::runtime_error when the CA file cannot be loaded.
std::shared_ptr<boost::asio::ssl::context> make_tls_context(const std::string& ca_file, bool verify);

class RedisConnection : public std::enable_shared_from_this<RedisConnection> {
public:
    using Done = std::function<void(const std::string& error)>;  // "" on success

    RedisConnection(Strand strand, RedisEndpoint endpoint);
    ~RedisConnection();
    RedisConnection(const RedisConnection&) = delete;
    RedisConnection& operator=(const RedisConnection&) = delete;

    // Resolves, connects, authenticates and selects the database; `done` once.
    void connect(Done done);
    // Queues one command; `fn` gets its reply (or null if the connection fails first).
    void command(std::vector<std::string> argv, ReplyFn fn);
    // Fails every pending reply; `on_closed` is not called for a close asked here.
    void close();
    bool open() const { return state_ == State::Open; }
    // Age of the oldest reply still awaited (0 when none): a paused Redis shows here.
    Millis oldest_pending(std::chrono::steady_clock::time_point now) const;
    size_t pending() const { return pending_.size(); }
    uint64_t commands_sent() const { return commands_; }
    // Called once when an open connection fails on its own (read/write error, bad reply).
    std::function<void(const std::string& why)> on_closed;

private:
    enum class State { Idle, Connecting, Open, Closed };
    struct Pending {
        ReplyFn fn;
        std::chrono::steady_clock::time_point sent;
    };
    void on_resolved(const boost::system::error_code& ec, boost::asio::ip::tcp::resolver::results_type results);
    void on_connected(const boost::system::error_code& ec);
    void start_tls();
    void handshake();
    void finish_connect(const std::string& error);
    void start_write();
    void start_read();
    void on_read(const boost::system::error_code& ec, size_t n);
    void fail(const std::string& why);
    void fail_pending();

    Strand strand_;
    RedisEndpoint ep_;
    boost::asio::ip::tcp::resolver resolver_;
    boost::asio::ip::tcp::socket socket_;
    // Over socket_ when TLS is on; declared after it so it goes first.
    std::optional<boost::asio::ssl::stream<boost::asio::ip::tcp::socket&>> tls_;
    boost::asio::steady_timer connect_timer_;
    State state_ = State::Idle;
    Done done_;
    redisReader* reader_ = nullptr;
    std::string out_;      // formatted commands not yet handed to a write
    std::string writing_;  // the buffer of the write in progress
    bool write_busy_ = false;
    std::vector<char> in_;
    std::deque<Pending> pending_;
    uint64_t commands_ = 0;
};

// Small helpers over replies.
bool is_error(const redisReply* r);
bool is_nil(const redisReply* r);
// The reply's text for STRING/STATUS/ERROR, "" otherwise.
std::string reply_text(const redisReply* r);
// INTEGER, or a STRING holding an integer; `def` otherwise.
long long reply_integer(const redisReply* r, long long def = 0);

}  // namespace tailgate::fleet
