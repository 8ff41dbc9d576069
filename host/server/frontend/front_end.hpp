// The client front end: the only part of the host that knows Poco.
//
// A request in, an exchange out. The front end accepts connections, reads
// each request head on a pool thread (strictly checked, http_head_validator.hpp;
// bounded in time and size, ClientLimits) and calls the Handler with a Request.
// The handler either answers on that thread (Request::respond: probes, errors,
// small pages) or hands the response out (Request::relay): the connection then
// leaves the pool and ClientRelay writes what the ResponseSource produces, as
// the Exchange renders it, from the Asio side, so an open stream costs a socket
// and a few buffers, not a thread. When the response is written the connection
// goes back to a pool thread for its next request; an idle keep-alive
// connection waits on Asio, not on a thread (parked).
//
// Inside this directory, and nowhere else in the host, Poco Net is adapted
// (tools/scripts/check_frontend.py, a ctest, keeps it so):
//   client_socket.hpp  the Poco socket subclass: deadlines, header budget, the
//                      strict framing check on every byte read, writes bounded in time;
//   session.hpp        Poco's session with one poll() between keep-alive requests;
//   connection.*       the per-connection loop that replaces HTTPServerConnection;
//   request.*          Request over Poco's request/response, and detach (relay);
//   resumer.*          the queue that replaces TCPServerDispatcher for connections
//                      coming back from a relay or a park;
//   client_relay.*     the Asio side: writes a relayed response, woken by the
//                      source (ClientChannel's notify) or by the client socket
//                      (hang-up), and parks idle keep-alive connections;
//   http_head_validator.*  the strict RFC 9112 head and chunked-body check.
#pragma once

#include "common/api_error.hpp"
#include "dispatch/executor.hpp"
#include "server/client_channel.hpp"

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace tailgate::server::frontend {

struct ClientLimits {
    std::chrono::milliseconds header_timeout{10000};
    std::chrono::milliseconds body_timeout{60000};
    size_t max_header_bytes = 64 * 1024;
    size_t max_body_bytes = SIZE_MAX;  // a declared length over it gets no "100 Continue"
    // How long a pool thread waits for a keep-alive connection's next request
    // before handing the idle connection to the parker (when parking is on). A
    // busy connection's next request is read without a hand-off; an idle one
    // holds no thread.
    std::chrono::milliseconds idle_hold{250};
};

// Where a relayed response comes from: one executor through its channel
// (ExecutorSource), or several fanned in (the model-list answer). Called on
// the relay's strand, except set_notify (before anything runs).
class ResponseSource {
public:
    virtual ~ResponseSource() = default;
    // `notify` must be called (outside every lock) whenever take() may have something new.
    virtual void set_notify(std::function<void()> notify) = 0;
    // What is new for the client, without waiting; false when nothing is.
    virtual bool take(ClientChannel::Batch& out) = 0;
    virtual void cancel() = 0;          // the client is gone: stop every upstream attempt
    virtual void resume_reading() = 0;  // the client took the backlog: let a paused upstream read again
    virtual void close() = 0;           // the exchange is over: no more notifications
};

// One executor's output, as its channel hands it over.
class ExecutorSource final : public ResponseSource {
public:
    ExecutorSource(std::shared_ptr<ClientChannel> channel, dispatch::ExecutorPtr executor)
        : channel_(std::move(channel)), executor_(std::move(executor)) {}
    void set_notify(std::function<void()> notify) override { channel_->set_notify(std::move(notify)); }
    bool take(ClientChannel::Batch& out) override { return channel_->take(out); }
    void cancel() override { executor_->cancel(); }
    void resume_reading() override { executor_->resume_reading(); }
    void close() override { channel_->close(); }

private:
    std::shared_ptr<ClientChannel> channel_;
    dispatch::ExecutorPtr executor_;
};

// The HTTP side of a relayed response: what the relay writes.
class Exchange {
public:
    virtual ~Exchange() = default;
    // Appends what `batch` means for the client to `out` (status line and
    // headers the first time, then body or chunk framing). True when the
    // response is complete with these bytes. On the relay's strand.
    virtual bool render(ClientChannel::Batch& batch, std::string& out) = 0;
    // The connection may be reused after the response.
    virtual bool keep_alive() const = 0;
    // The client went away (hang-up, failed write, write timeout) before the
    // end; the relay cancels the source. On the relay's strand.
    virtual void client_gone(const char* why) = 0;
    // The exchange is over (the last byte was written or the client is gone).
    // Runs on a pool thread before the connection serves anything else:
    // logging and other bookkeeping that may block.
    virtual void finish() = 0;
};

// One request, its head read and checked, its body not read yet; valid for
// the handler call only. Answer it once: respond() or relay().
class Request {
public:
    virtual ~Request() = default;

    virtual const std::string& method() const = 0;
    virtual const std::string& uri() const = 0;      // as sent, query included
    virtual const std::string& version() const = 0;  // "HTTP/1.1" or "HTTP/1.0"
    // The first field named `name` (any case); "" when there is none.
    virtual const std::string& header(const std::string& name) const = 0;
    virtual bool has_header(const std::string& name) const = 0;
    // Every field named `name` (any case), in the order sent, with the name as sent.
    virtual void each_header(const std::string& name,
                             const std::function<void(const std::string&, const std::string&)>& fn) const = 0;

    // Reads the body into `body`, never more than max_body_bytes + 1. The
    // error to answer when it cannot (413, the body timeout's 408, broken
    // chunked framing's 400); the connection must then close.
    virtual std::optional<ApiError> read_body(std::string& body) = 0;
    // Reads and drops the body before an early answer, so the connection can
    // serve the next request; one over max_body_bytes closes it instead.
    virtual void discard_body() = 0;

    // The response, answered on this thread.
    virtual void set_header(const std::string& name, const std::string& value) = 0;
    virtual void set_keep_alive(bool keep_alive) = 0;
    virtual bool keep_alive() const = 0;
    virtual int status() const = 0;  // as answered (200 until then)
    virtual void respond(int status, const std::string& content_type, std::string_view body) = 0;
    // Every header set so far but Connection, as "Name: value\r\n" lines.
    virtual std::string header_lines() const = 0;

    // Hands the response out: the connection leaves the pool, and `exchange`
    // renders what `source` produces from the Asio side. Nothing may be
    // answered through this Request afterwards.
    virtual void relay(std::shared_ptr<ResponseSource> source, std::shared_ptr<Exchange> exchange) = 0;
};

using Handler = std::function<void(Request&)>;

struct Options {
    ClientLimits limits;
    int max_threads = 256;  // pool threads per dispatcher (new and resumed connections)
    std::chrono::milliseconds keep_alive_timeout{5000};
    // A blocked read or write on a client socket gives up after this long
    // (pool-thread reads and writes, and a relay's write).
    std::chrono::milliseconds io_timeout{60000};
    std::string software_version;  // the Server header
    bool park_idle = true;         // idle keep-alive connections wait on Asio, not on a thread
};

class FrontEnd {
public:
    // Binds and listens on host:port (0: any free port); `io` runs relays and
    // parked connections and must outlive stop().
    FrontEnd(Handler handler, const Options& options, boost::asio::io_context& io, const std::string& host, int port);
    ~FrontEnd();
    FrontEnd(const FrontEnd&) = delete;
    FrontEnd& operator=(const FrontEnd&) = delete;

    int port() const;
    void start();
    // Stops accepting (once; later calls do nothing) and waits for the pool
    // threads. abort_current shuts every connection down at once; otherwise
    // each is shut down once its current request is answered.
    void stop(bool abort_current = true);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// The HTTP reason phrase of `status` ("OK", "Not Found"...).
const std::string& reason_phrase(int status);
// True when `host` names this machine only (localhost, 127.0.0.0/8, ::1).
bool is_loopback_host(const std::string& host);

}  // namespace tailgate::server::frontend
