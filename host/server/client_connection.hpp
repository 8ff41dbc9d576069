// The HTTP/1.x front end: the listening socket and the per-connection loop.
//
// It replaces Poco's HTTPServer/HTTPServerConnection pair (same request and
// response objects, same handler factory) so that a faulty client costs a
// bounded amount of a pool thread and gets an OpenAI-shaped answer:
//   - request line + headers must arrive within `header_timeout` (else 408) and
//     fit in `max_header_bytes` (else 431); malformed ones get a JSON 400,
//     and so do lenient ones (checked strictly before Poco parses them,
//     http_head_validator.hpp), and chunked bodies with broken framing;
//   - the body must arrive within `body_timeout` of the headers (else 408).
// Poco alone bounds only each recv() (a client dribbling a byte a second holds
// a thread for ever) and answers header errors with an empty 400.
#pragma once

#include "common/api_error.hpp"

#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/ThreadPool.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace tailgate::server {

struct ClientLimits {
    std::chrono::milliseconds header_timeout{10000};
    std::chrono::milliseconds body_timeout{60000};
    size_t max_header_bytes = 64 * 1024;
    size_t max_body_bytes = SIZE_MAX;  // a declared length over it gets no "100 Continue"
    // How long a pool thread waits for a keep-alive connection's next request
    // before handing the idle connection to the parker (when there is one). A
    // busy connection's next request is read without a hand-off; an idle one
    // holds no thread.
    std::chrono::milliseconds idle_hold{250};
};

// A client connection taken out of Poco after its request was read (the
// response is then written on the Asio side, where no thread waits for it).
struct DetachedClient {
    int fd = -1;           // owned: whoever holds it closes it or resumes it
    std::string buffered;  // bytes read past this request (a pipelined next one)
    int requests_left = -1;  // keep-alive requests still allowed; < 0: unlimited
    // Both ends' addresses, once known (Poco asks for them on every request).
    std::optional<Poco::Net::SocketAddress> local, peer;
};

// Takes the connection of `req` (being handled on a pool thread) out of Poco:
// the handler must not answer through Poco afterwards, and the connection loop
// ends without closing the socket. Null when the request is not ours.
std::optional<DetachedClient> detach_client(Poco::Net::HTTPServerRequest& req);

// Gives detached connections back to Poco's pool once their response is written.
// Shared with the relays, so it stays valid (and refuses) after the front end stopped.
class ConnectionResumer {
public:
    virtual ~ConnectionResumer() = default;
    // `finish` runs first on a pool thread (bookkeeping that may block: logs).
    // Then, with keep_alive, the connection waits for its next request as usual;
    // without, it is closed. After stop() the fd is closed and `finish` runs here.
    virtual void resume(DetachedClient client, bool keep_alive, std::function<void()> finish) = 0;
};

// Watches an idle keep-alive connection off the pool (for at most the given
// time, then closes it) and resumes it when its next request arrives.
using IdleParker = std::function<void(DetachedClient, std::chrono::milliseconds)>;

class HttpFrontEnd {
public:
    // Binds and listens on host:port (0: any free port).
    HttpFrontEnd(Poco::Net::HTTPRequestHandlerFactory::Ptr handlers, Poco::Net::HTTPServerParams::Ptr params,
                 const ClientLimits& limits, Poco::ThreadPool& pool, const std::string& host, int port,
                 IdleParker parker = {});
    ~HttpFrontEnd();
    HttpFrontEnd(const HttpFrontEnd&) = delete;
    HttpFrontEnd& operator=(const HttpFrontEnd&) = delete;

    int port() const { return port_; }
    std::shared_ptr<ConnectionResumer> resumer() const;
    void start();
    // Stops accepting (once; later calls do nothing). As Poco's HTTPServer::stopAll:
    // abort_current shuts every connection down at once; otherwise each is shut
    // down once its current request is answered.
    void stop(bool abort_current = true);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    int port_ = 0;
};

// True when reading this request's body stopped at the body timeout; the
// handler then answers request_timeout_error() and closes the connection.
bool body_timed_out(Poco::Net::HTTPServerRequest& req);
ApiError request_timeout_error(const std::string& what, std::chrono::milliseconds limit);

// Set when this request's chunked body broke the strict framing check (see
// http_head_validator.hpp): reading it stopped there, and the handler answers
// this 400 and closes the connection.
std::optional<ApiError> body_framing_error(Poco::Net::HTTPServerRequest& req);

}  // namespace tailgate::server
