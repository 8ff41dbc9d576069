#include "server/frontend/connection.hpp"

#include "server/frontend/client_errors.hpp"
#include "server/frontend/client_relay.hpp"
#include "server/frontend/client_socket.hpp"
#include "server/frontend/request.hpp"
#include "server/frontend/session.hpp"

#include <Poco/Exception.h>
#include <Poco/String.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerResponseImpl.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/TCPServerConnection.h>
#include <spdlog/spdlog.h>

#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <mutex>
#include <optional>

namespace tailgate::server::frontend {

namespace {

// Closing a socket with unread request bytes makes the kernel send a reset,
// which can destroy an error response still on its way (a 413 or 431 answered
// before the request was read). So stop sending and read what the client still
// sends, for a bounded time and amount, before the close.
[[gnu::noinline]] void linger(Poco::Net::StreamSocket& s) {  // its buffer stays out of run()'s frame
    const int fd = static_cast<int>(s.impl()->sockfd());
    int pending = 0;
    if (fd < 0 || ::ioctl(fd, FIONREAD, &pending) != 0 || pending <= 0) return;
    ::shutdown(fd, SHUT_WR);
    const auto deadline = Clock::now() + std::chrono::milliseconds(500);
    char buf[4096];
    for (size_t total = 0; total < (1u << 20);) {
        auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
        pollfd p{fd, POLLIN, 0};
        if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) return;
        ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n <= 0) return;
        total += static_cast<size_t>(n);
    }
}

// How the body is delimited, checked before a handler reads it: ambiguous
// framing is how requests get smuggled, and a POST without a length would make
// Poco read until the client closes (holding the thread for the body timeout).
std::optional<ApiError> framing_error(const Poco::Net::HTTPServerRequest& req) {
    size_t lengths = 0;
    std::string first;
    for (auto it = req.find("Content-Length"); it != req.end() && Poco::icompare(it->first, "Content-Length") == 0;
         ++it) {
        if (lengths++ == 0) first = it->second;
        else if (it->second != first)
            return client_error(400, "Conflicting Content-Length headers", "invalid_http_request");
    }
    const bool has_te = req.has("Transfer-Encoding");
    if (has_te && !req.getChunkedTransferEncoding())
        return client_error(501, "Transfer-Encoding '" + req.getTransferEncoding().substr(0, 64) +
                                     "' is not supported (only chunked)",
                            "unsupported_transfer_encoding");
    if (has_te && lengths)
        return client_error(400, "Both Transfer-Encoding and Content-Length are set", "invalid_http_request");
    if (lengths && req.getContentLength64() < 0)
        return client_error(400, "Invalid Content-Length " + first.substr(0, 32), "invalid_http_request");
    const std::string& m = req.getMethod();
    const bool bodiless = m == "GET" || m == "HEAD" || m == "DELETE";
    // No handler of these reads a body: left unread on a kept-alive connection it
    // would be parsed as the next request (CL.0 smuggling behind a reusing proxy).
    if (bodiless && (has_te || (lengths && req.getContentLength64() > 0)))
        return client_error(400, "A " + m + " request must not have a body", "invalid_http_request");
    if (!has_te && !lengths && !bodiless)
        return client_error(411, "A " + m.substr(0, 16) + " request needs Content-Length or chunked Transfer-Encoding",
                            "length_required");
    return std::nullopt;
}

// The handler answers its own errors; one it let escape is a 500 when nothing
// was answered yet.
void run_handler(PocoRequest& call, Poco::Net::HTTPServerResponseImpl& response) {
    try {
        call.context().handler(call);
    } catch (const std::exception& e) {
        spdlog::error("internal error handling {} {}: {}", call.method(), call.uri(), e.what());
        if (response.sent()) return;
        try {
            call.respond(500, "application/json", ApiError::internal("internal gateway error").body());
        } catch (...) {
            // The client is gone as well: nobody to tell.
        }
    }
}

// Whether the handler read the declared body to its end. Bytes left unread
// must never be taken for the next request on this connection.
bool body_consumed(Poco::Net::HTTPServerRequest& req) {
    const bool declared = req.getChunkedTransferEncoding() || (req.hasContentLength() && req.getContentLength64() > 0);
    return !declared || req.stream().eof();
}

}  // namespace

class ClientConnection final : public Poco::Net::TCPServerConnection {
public:
    ClientConnection(const Poco::Net::StreamSocket& s, std::shared_ptr<const ConnectionContext> ctx)
        : TCPServerConnection(s), ctx_(std::move(ctx)), params_(ctx_->params) {
        std::lock_guard lk(ctx_->registry->mu);
        ctx_->registry->live.insert(this);
        if (ctx_->registry->stopped) stop(true);
    }
    ~ClientConnection() override {
        std::lock_guard lk(ctx_->registry->mu);
        ctx_->registry->live.erase(this);
    }

    void run() override;
    // Called with the registry locked. Without abort, waits for the request in progress.
    void stop(bool abort) {
        stopped_ = true;
        std::unique_lock busy(busy_, std::defer_lock);
        if (!abort) busy.lock();
        try {
            socket().shutdown();
        } catch (...) {
            // Already shut down or reset by the peer: there is nothing left to stop.
        }
    }

private:
    // What the connection does after a request.
    enum class Step { Next, Close, Detached };
    // Runs what a relay left to do on this thread; false when the connection then closes.
    bool finish_resumed(const std::optional<ClientSocketImpl::Resume>& resumed);
    // Reads, checks and answers one request whose head is due by `head_due`.
    Step serve(Session& session, ClientSocketImpl& sock, Clock::time_point head_due);
    // Answers a head Poco could not read, from why the socket says it stopped.
    void refuse_head(Session& session, ClientSocketImpl& sock, const Poco::Exception& e);
    // What is wrong with a head Poco did read, or nullopt.
    std::optional<ApiError> head_error(Session& session, ClientSocketImpl& sock,
                                       const Poco::Net::HTTPServerRequestImpl& request) const;
    Step dispatch(Session& session, ClientSocketImpl& sock, Poco::Net::HTTPServerRequestImpl& request,
                  Poco::Net::HTTPServerResponseImpl& response);
    // Hands an idle keep-alive connection to the parker (off the pool).
    void park(Session& session, ClientSocketImpl& sock);
    // Answers a request whose head could not be read, then the connection closes.
    void reject(Poco::Net::HTTPServerSession& session, const ApiError& e);

    std::shared_ptr<const ConnectionContext> ctx_;
    Poco::Net::HTTPServerParams::Ptr params_;  // Poco's request wants it non-const
    std::atomic<bool> stopped_{false};
    std::mutex busy_;  // held while a request is read and answered
};

void Registry::stop_all(bool abort_current) {
    std::lock_guard lk(mu);
    stopped = true;
    for (ClientConnection* c : live) c->stop(abort_current);
}

void ClientConnection::reject(Poco::Net::HTTPServerSession& session, const ApiError& e) {
    try {
        Poco::Net::HTTPServerResponseImpl response(session);
        response.setVersion(Poco::Net::HTTPMessage::HTTP_1_1);
        response.setStatusAndReason(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(e.status));
        response.setKeepAlive(false);
        response.setContentType("application/json");
        const std::string body = e.body();
        response.setContentLength(static_cast<std::streamsize>(body.size()));
        // Not sendBuffer(): without a request attached it writes the head only.
        std::ostream& out = response.send();
        out.write(body.data(), static_cast<std::streamsize>(body.size()));
        out.flush();
    } catch (...) {
        // The client is gone; nothing to tell it.
    }
    session.setKeepAlive(false);
}

bool ClientConnection::finish_resumed(const std::optional<ClientSocketImpl::Resume>& resumed) {
    if (!resumed) return true;
    if (resumed->finish) {
        try {
            resumed->finish();
        } catch (...) {
            spdlog::debug("resumed client connection: its finish callback threw");
        }
    }
    return resumed->keep_alive;
}

void ClientConnection::run() {
    ClientSocketImpl& sock = *client_impl(socket());
    const auto resumed = sock.take_resume();
    if (!finish_resumed(resumed)) {
        linger(socket());
        return;
    }
    Session session(socket(), ctx_->params, &sock, resumed ? std::optional<int>(resumed->requests_left) : std::nullopt);
    const auto connected = Clock::now();
    for (bool first = !resumed; !stopped_; first = false) {
        // The first request's head is due header_timeout after the connection is
        // served; a later one's after its first byte (keep_alive_timeout bounds the gap).
        if (first && !socket().poll(Poco::Timespan(ctx_->limits.header_timeout.count() * 1000),
                                    Poco::Net::Socket::SELECT_READ))
            break;
        const auto next = session.next_request(ctx_->park_idle ? std::optional(ctx_->limits.idle_hold) : std::nullopt);
        if (next == Session::Next::Close) break;
        if (next == Session::Next::Idle) return park(session, sock);
        const Step step = serve(session, sock, (first ? connected : Clock::now()) + ctx_->limits.header_timeout);
        if (step == Step::Detached) return;  // the response goes on on the Asio side
        if (step == Step::Close) break;
        sock.begin(ClientSocketImpl::Phase::Free, Clock::time_point::max());
    }
    sock.begin(ClientSocketImpl::Phase::Free, Clock::time_point::max());
    linger(socket());
}

void ClientConnection::park(Session& session, ClientSocketImpl& sock) {
    // Nothing is buffered (the wait saw no byte), so only the descriptor
    // and the request budget go along.
    DetachedClient idle;
    idle.requests_left = session.requests_left();
    sock.addresses_to(idle);
    const auto left = session.idle_left();
    idle.fd = sock.release();
    if (auto resumer = ctx_->resumer.lock()) park_idle_client(ctx_->io, std::move(idle), std::move(resumer), left);
    else ::close(idle.fd);  // the front end is gone: nothing would resume it
}

ClientConnection::Step ClientConnection::serve(Session& session, ClientSocketImpl& sock, Clock::time_point head_due) {
    std::lock_guard busy(busy_);
    if (stopped_) return Step::Close;
    // What Poco read past the last request goes back to the socket, so
    // that the head validator sees every byte Poco will parse as this head.
    sock.unread(session.take_buffered());
    sock.begin(ClientSocketImpl::Phase::Header, head_due, ctx_->limits.max_header_bytes);
    Poco::Net::HTTPServerResponseImpl response(session);
    std::optional<Poco::Net::HTTPServerRequestImpl> request;
    try {
        request.emplace(response, session, params_.get());
    } catch (const Poco::Exception& e) {
        refuse_head(session, sock, e);
        return Step::Close;
    }
    if (auto e = head_error(session, sock, *request)) {
        reject(session, *e);
        return Step::Close;
    }
    sock.begin(ClientSocketImpl::Phase::Body, Clock::now() + ctx_->limits.body_timeout);
    try {
        return dispatch(session, sock, *request, response);
    } catch (const Poco::Exception& e) {
        // The handler answers its own errors; what reaches here is a dead socket.
        spdlog::debug("client connection ended: {}", e.displayText());
        return sock.detached() ? Step::Detached : Step::Close;
    }
}

// Poco's stream wrappers turn a failed read into a short (malformed) header,
// so the socket's own record says why the read stopped.
void ClientConnection::refuse_head(Session& session, ClientSocketImpl& sock, const Poco::Exception& e) {
    const ClientLimits& limits = ctx_->limits;
    if (const char* why = sock.head_error()) {
        if (sock.head_unsupported_coding())
            reject(session, client_error(501, why, "unsupported_transfer_encoding"));
        else
            reject(session, client_error(400, std::string("Malformed HTTP request: ") + why, "invalid_http_request"));
    } else if (sock.expired()) {
        reject(session, client_error(408, "Request headers not received within " +
                                              seconds_text(limits.header_timeout) +
                                              " (general_settings.client_header_timeout)",
                                     "request_timeout"));
    } else if (sock.over_budget() || e.message().rfind("Field", 0) == 0 ||
               e.message().rfind("Too many header fields", 0) == 0) {
        reject(session, client_error(431, "Request headers are too large (limit " +
                                              std::to_string(limits.max_header_bytes) +
                                              " bytes, general_settings.max_header_bytes; at most 100 "
                                              "fields of 8192 bytes each)",
                                     "request_header_fields_too_large"));
    } else if (e.message().find("URI invalid or too long") != std::string::npos && sock.consumed() >= kMaxUriLength) {
        reject(session, client_error(414, "Request URI is longer than " + std::to_string(kMaxUriLength) + " bytes",
                                     "uri_too_long"));
    } else if (!dynamic_cast<const Poco::Net::NoMessageException*>(&e) && !session.networkException()) {
        reject(session, client_error(400, "Malformed HTTP request: " + e.message(), "invalid_http_request"));
    }
    // NoMessageException: the client closed between requests; nothing to answer.
}

std::optional<ApiError> ClientConnection::head_error(Session& session, ClientSocketImpl& sock,
                                                     const Poco::Net::HTTPServerRequestImpl& request) const {
    // Poco's head must be the one the strict check passed, ending at the same
    // byte (see head_read_as_sent); and the chunked body read along with it
    // may already be known to be broken.
    if (!sock.head_read_as_sent(session.pending()) || sock.body_error())
        return client_error(400, std::string("Malformed HTTP request: ") +
                                     (sock.body_error() ? sock.body_error()
                                                        : "the request head could not be read as sent"),
                            "invalid_http_request");
    const std::string& version = request.getVersion();
    if (version != Poco::Net::HTTPMessage::HTTP_1_1 && version != Poco::Net::HTTPMessage::HTTP_1_0)
        return client_error(505, "HTTP version " + version.substr(0, 16) + " is not supported",
                            "http_version_not_supported");
    return framing_error(request);
}

ClientConnection::Step ClientConnection::dispatch(Session& session, ClientSocketImpl& sock,
                                                  Poco::Net::HTTPServerRequestImpl& request,
                                                  Poco::Net::HTTPServerResponseImpl& response) {
    const Poco::Net::HTTPServerParams& params = *ctx_->params;
    response.setDate(Poco::Timestamp());
    response.setVersion(request.getVersion());
    response.setKeepAlive(params.getKeepAlive() && request.getKeepAlive() && session.can_keep_alive());
    const std::string& server = params.getSoftwareVersion();
    if (!server.empty()) response.set("Server", server);
    // No "100 Continue" for a body the handler will refuse (413) unread.
    const bool too_big = request.hasContentLength() &&
                         static_cast<uint64_t>(request.getContentLength64()) > ctx_->limits.max_body_bytes;
    if (request.getExpectContinue() && !too_big && response.getStatus() == Poco::Net::HTTPResponse::HTTP_OK)
        response.sendContinue();
    PocoRequest call(request, response, session, sock, *ctx_);
    run_handler(call, response);
    if (sock.detached()) return Step::Detached;
    session.setKeepAlive(params.getKeepAlive() && response.getKeepAlive() && session.can_keep_alive() &&
                         body_consumed(request));
    if (!session.getKeepAlive()) return Step::Next;  // the loop ends: the session says no
    // The next request starts where this one ends, not where Poco stopped reading it.
    if (auto skip = sock.unread_part_of_request(session.pending())) {
        if (*skip) sock.unread(session.take_buffered().substr(*skip));
    } else {
        session.setKeepAlive(false);  // its end is still to come: it cannot be told from the next
    }
    return Step::Next;
}

namespace {

class ConnectionFactory final : public Poco::Net::TCPServerConnectionFactory {
public:
    explicit ConnectionFactory(std::shared_ptr<const ConnectionContext> ctx) : ctx_(std::move(ctx)) {}
    Poco::Net::TCPServerConnection* createConnection(const Poco::Net::StreamSocket& s) override {
        return new ClientConnection(s, ctx_);
    }

private:
    std::shared_ptr<const ConnectionContext> ctx_;
};

}  // namespace

Poco::Net::TCPServerConnectionFactory::Ptr make_connection_factory(std::shared_ptr<const ConnectionContext> ctx) {
    return new ConnectionFactory(std::move(ctx));
}

}  // namespace tailgate::server::frontend
