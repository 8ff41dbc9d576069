// Asynchronous HTTP/1.1 (+TLS) client to upstream providers, on Boost.Asio/Beast.
//
// One Call = one request/response exchange on a pooled keep-alive connection.
// Responses are delivered incrementally (raw body bytes, de-chunked) so SSE can
// be relayed as it arrives. cancel() closes that call's socket at once — the
// connection is never returned to the pool — so the provider sees the
// disconnect and stops generating.
#pragma once

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tailgate::upstream {

using Millis = std::chrono::milliseconds;
using Headers = std::vector<std::pair<std::string, std::string>>;

struct Origin {
    std::string host;
    std::string port;
    bool tls = false;
    bool ssl_verify = true;
    bool operator==(const Origin&) const = default;
};

struct Request {
    Origin origin;
    std::string method = "POST";
    std::string target;          // path + query, e.g. "/v1/chat/completions"
    Headers headers;             // auth etc.; Host/Content-Length/Connection are added
    std::string body;
    std::string label;           // names the upstream in error messages (e.g. the deployment id)
    Millis connect_timeout{5000};   // DNS + TCP + TLS handshake
    Millis header_timeout{600000};  // from request sent until the response head
    Millis idle_timeout{600000};    // longest silence between two body reads
    Millis total_timeout{600000};   // whole exchange
};

enum class ErrorKind {
    Connect,   // resolve/connect/TLS handshake failed, or reset before any response byte
    Timeout,   // one of the timeouts above expired (the socket is closed)
    Protocol,  // malformed response, or connection lost mid-response
};

const char* to_string(ErrorKind);

struct ResponseHead {
    int status = 0;
    Headers headers;   // names lower-cased
    std::string_view header(std::string_view lower_name) const;
};

// Receives the outcome of one call. All callbacks run on the client's
// io_context, serially per call (on the call's strand). After on_done/on_error, or
// after cancel() returned, no further callback is made for that call. on_body's bytes
// are only valid during the callback. Callbacks must not throw: an exception ends the
// call as if cancel() had been called.
class Handler {
public:
    virtual ~Handler() = default;
    virtual void on_head(const ResponseHead& head) = 0;
    virtual void on_body(std::string_view bytes) = 0;
    virtual void on_done() = 0;
    virtual void on_error(ErrorKind kind, const std::string& message) = 0;
};

class Call {
public:
    virtual ~Call() = default;
    // Thread-safe, idempotent. Closes the socket (shutdown + close, no TLS close_notify);
    // the connection is discarded. Called on the io thread (e.g. from inside a callback of
    // this call) it takes effect before it returns. Called from another thread, no callback
    // starts after it returned; one already executing on an io thread runs to its end.
    virtual void cancel() = 0;
    // Back-pressure, thread-safe. pause(): stop reading the response once the bytes
    // already received are delivered (at most one more read's worth, 64 KiB). resume():
    // read again. While paused the idle timeout does not run (the client is the slow
    // one, not the upstream); the total timeout does.
    virtual void pause() {}
    virtual void resume() {}
};
using CallPtr = std::shared_ptr<Call>;

struct PoolStats {
    uint64_t connects = 0;     // new connections opened
    uint64_t reuses = 0;       // calls served by a pooled connection
    uint64_t discarded = 0;    // connections closed (cancel, error, server close)
    uint64_t idle = 0;         // currently idle pooled connections
};

// Keep-alive pool per Origin (LIFO, capped, idle connections closed after
// idle_keepalive by a sweep timer; while connections are idle that timer keeps
// io_context::run() busy). The Client must be destroyed before its io_context; the
// destructor closes idle connections, calls in flight finish on their own.
class Client {
public:
    struct Options {
        size_t max_idle_per_origin = 64;
        Millis idle_keepalive{30000};   // drop pooled connections idle longer than this
        std::string ca_file;            // extra CA bundle ("" = system default)
    };
    Client(boost::asio::io_context& io, Options opts);
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    // Starts the call; callbacks go to `handler` (kept alive until the last callback).
    CallPtr start(Request req, std::shared_ptr<Handler> handler);

    PoolStats stats() const;
    // The io_context its callbacks run on.
    boost::asio::io_context& io() const;

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace tailgate::upstream
