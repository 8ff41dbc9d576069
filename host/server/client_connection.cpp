#include "server/client_connection.hpp"

#include "server/http_head_validator.hpp"

#include <Poco/Exception.h>
#include <Poco/String.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerResponseImpl.h>
#include <Poco/Net/HTTPServerSession.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/ServerSocketImpl.h>
#include <Poco/Net/StreamSocketImpl.h>
#include <Poco/Net/TCPServer.h>
#include <Poco/Net/TCPServerConnection.h>
#include <Poco/Net/TCPServerConnectionFactory.h>
#include <spdlog/spdlog.h>

#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <condition_variable>
#include <deque>
#include <cstring>
#include <functional>
#include <mutex>
#include <optional>
#include <unordered_set>

namespace tailgate::server {

namespace {

using Clock = std::chrono::steady_clock;

// An accepted connection whose reads can run against a deadline (and, for the
// headers, a byte budget). Poco reads the request line, headers and body through
// receiveBytes(), so every read of the request passes here.
class ClientSocketImpl final : public Poco::Net::StreamSocketImpl {
public:
    enum class Phase { Free, Header, Body };

    explicit ClientSocketImpl(poco_socket_t fd) : StreamSocketImpl(fd) {}

    // A connection coming back from a detached response (see ConnectionResumer).
    struct Resume {
        int requests_left = -1;
        bool keep_alive = true;
        std::function<void()> finish;
    };
    ClientSocketImpl(poco_socket_t fd, DetachedClient&& c, Resume r)
        : StreamSocketImpl(fd),
          local_(std::move(c.local)),
          peer_(std::move(c.peer)),
          prefix_(std::move(c.buffered)),
          resume_(std::move(r)) {}
    std::optional<Resume> take_resume() {
        auto r = std::move(resume_);
        resume_.reset();
        return r;
    }
    bool has_prefix() const { return prefix_at_ < prefix_.size(); }
    std::string take_prefix() {
        std::string rest = prefix_.substr(prefix_at_);
        prefix_.clear();
        prefix_at_ = 0;
        return rest;
    }
    // Puts bytes read ahead (by Poco, past the last request) back in front of
    // the unread ones, so the next head is read, and validated, from here.
    void unread(std::string bytes) {
        if (bytes.empty()) return;
        received_ -= bytes.size();
        prefix_ = has_prefix() ? bytes + take_prefix() : std::move(bytes);
        prefix_at_ = 0;
    }
    // Hands the descriptor over (the response goes on elsewhere); Poco then
    // neither reads, writes nor closes it.
    int release() {
        const int fd = static_cast<int>(sockfd());
        reset();
        detached_ = true;
        return fd;
    }
    bool detached() const { return detached_; }

    // Asked by Poco for every request (getsockname + getpeername): ask once.
    Poco::Net::SocketAddress address() override {
        if (!local_) local_ = StreamSocketImpl::address();
        return *local_;
    }
    Poco::Net::SocketAddress peerAddress() override {
        if (!peer_) peer_ = StreamSocketImpl::peerAddress();
        return *peer_;
    }
    void addresses_to(DetachedClient& d) const {
        d.local = local_;
        d.peer = peer_;
    }

    // Once the Asio side has waited on the descriptor it is non-blocking
    // (Asio sets O_NONBLOCK and leaves it), so Poco's writes must wait for room
    // themselves: for up to the send timeout, as a blocking send would.
    int sendBytes(const void* buffer, int length, int flags) override {
        const auto* p = static_cast<const char*>(buffer);
        size_t sent = 0;
        auto deadline = Clock::now() + send_timeout_;
        while (sent < static_cast<size_t>(length)) {  // all of it, as StreamSocketImpl's does
            const ssize_t n = ::send(sockfd(), p + sent, static_cast<size_t>(length) - sent, flags | MSG_NOSIGNAL);
            if (n >= 0) {
                sent += static_cast<size_t>(n);
                deadline = Clock::now() + send_timeout_;  // progress
                continue;
            }
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) error(errno);
            if (!wait_ready(POLLOUT, deadline)) throw Poco::TimeoutException("client not reading");
        }
        return length;
    }
    using StreamSocketImpl::sendBytes;
    // Kept here, not set on the socket: every read goes through receiveBytes'
    // own deadline (one setsockopt less per connection served).
    void setReceiveTimeout(const Poco::Timespan& t) override {
        recv_timeout_ = std::chrono::milliseconds(t.totalMilliseconds());
    }
    Poco::Timespan getReceiveTimeout() override { return Poco::Timespan(recv_timeout_.count() * 1000); }
    void setSendTimeout(const Poco::Timespan& t) override {
        send_timeout_ = std::chrono::milliseconds(t.totalMilliseconds());
    }
    Poco::Timespan getSendTimeout() override { return Poco::Timespan(send_timeout_.count() * 1000); }

    void begin(Phase p, Clock::time_point deadline, size_t budget = SIZE_MAX) {
        phase_ = p;
        deadline_ = deadline;
        budget_ = limit_ = budget;
        expired_ = over_budget_ = false;
        if (p == Phase::Header) {  // a new request: its head comes next
            head_.reset();
            chunks_.reset();
            stage_ = Stage::Head;
            head_error_ = body_error_ = nullptr;
            head_end_ = body_end_ = kUnknown;
        }
    }
    Phase phase() const { return phase_; }
    bool expired() const { return expired_; }
    bool over_budget() const { return over_budget_; }
    // Why the head failed the strict check (nullptr: it did not); 501 when the
    // reason is a transfer coding other than chunked.
    const char* head_error() const { return head_error_; }
    bool head_unsupported_coding() const { return head_.unsupported_coding(); }
    // True when Poco's head ended where the strict one did, given the bytes
    // Poco holds read but unparsed. (Poco 1.11 can end a head early: when one
    // of its reads stops just before a line's CRLF, it takes that CRLF for the
    // empty line.)
    bool head_read_as_sent(size_t poco_buffered) const {
        return head_end_ != kUnknown && received_ - poco_buffered == head_end_;
    }
    // How many of the bytes Poco holds still belong to the last request (a
    // body the handler left unread, trailer fields Poco does not read): they
    // are dropped, so the next request is read from where it starts. Nullopt
    // when that cannot be told: the request's end has not arrived yet, or
    // Poco read past it.
    std::optional<size_t> unread_part_of_request(size_t poco_buffered) const {
        const uint64_t at = received_ - poco_buffered;  // where Poco stands
        if (body_end_ == kUnknown || body_end_ > received_ || at > body_end_) return std::nullopt;
        return static_cast<size_t>(body_end_ - at);
    }
    // Why the chunked body's framing is broken (nullptr: it is not, so far).
    const char* body_error() const { return body_error_; }
    size_t consumed() const { return limit_ - budget_; }  // bytes of this head read so far

    using StreamSocketImpl::receiveBytes;
    int receiveBytes(void* buffer, int length, int flags) override {
        if (phase_ == Phase::Free) deadline_ = Clock::now() + recv_timeout_;
        if (phase_ == Phase::Header) {
            // Never read past the budget: the headers either end within it or are too large.
            if (budget_ == 0) {
                over_budget_ = true;
                throw Poco::Net::MessageException("request headers too large");
            }
            length = static_cast<int>(std::min<size_t>(static_cast<size_t>(length), budget_));
        }
        if (has_prefix()) {  // read before the connection was resumed: serve those first
            const size_t n = std::min(prefix_.size() - prefix_at_, static_cast<size_t>(length));
            std::memcpy(buffer, prefix_.data() + prefix_at_, n);
            prefix_at_ += n;
            if (phase_ == Phase::Header) budget_ -= n;
            inspect(static_cast<const char*>(buffer), n);
            return static_cast<int>(n);
        }
        for (;;) {
            // Usually the bytes are there already (the connection polled readable):
            // try first, wait only when there is nothing (one syscall, not two).
            const ssize_t n = ::recv(sockfd(), buffer, static_cast<size_t>(length), flags | MSG_DONTWAIT);
            if (n >= 0) {
                if (phase_ == Phase::Header) budget_ -= static_cast<size_t>(n);
                inspect(static_cast<const char*>(buffer), static_cast<size_t>(n));
                return static_cast<int>(n);
            }
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) error(errno);
            if (!wait_ready(POLLIN, deadline_)) {
                expired_ = true;
                throw Poco::TimeoutException("client too slow");
            }
        }
    }

private:
    // Checks the request's framing on the bytes Poco is about to get. A broken
    // head throws before Poco sees any of these bytes. A broken chunked body
    // throws once the handler reads it (Phase::Body); found among the bytes read
    // with the head, it is only recorded, for run() to answer once the head is
    // parsed. Bytes past the message are not looked at: if Poco reads them as
    // the next request, run() hands them back (unread) to be validated as a head.
    void inspect(const char* p, size_t n) {
        const uint64_t base = received_;  // the stream offset of p[0]
        received_ += n;
        if (phase_ == Phase::Free || n == 0) return;
        const char* const start = p;
        if (stage_ == Stage::Head) {
            const size_t used = head_.feed(p, n);
            if (head_.state() == Framing::Invalid) {
                stage_ = Stage::Done;
                head_error_ = head_.error();
                throw Poco::Net::MessageException(head_error_);
            }
            if (head_.state() != Framing::Complete) return;
            head_end_ = base + used;
            if (head_.chunked()) {
                stage_ = Stage::Chunks;
            } else {  // without a length the body is empty (or the request refused: 411)
                stage_ = Stage::Done;
                body_end_ = head_end_ + (head_.has_content_length() ? head_.content_length() : 0);
            }
            p += used;
            n -= used;
        }
        if (stage_ == Stage::Chunks && n > 0) {
            const size_t used = chunks_.feed(p, n);
            if (chunks_.state() == Framing::Complete) {
                stage_ = Stage::Done;
                body_end_ = base + static_cast<uint64_t>(p - start) + used;
            } else if (chunks_.state() == Framing::Invalid) {
                stage_ = Stage::Done;
                body_error_ = chunks_.error();
                if (phase_ == Phase::Body) throw Poco::Net::MessageException(body_error_);
            }
        }
    }

    // Waits for `events` on the socket until `deadline`; false once it has passed.
    bool wait_ready(short events, Clock::time_point deadline) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) return false;
        pollfd p{sockfd(), events, 0};
        if (::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, INT_MAX))) < 0 && errno != EINTR) error();
        return true;
    }

    Phase phase_ = Phase::Free;
    Clock::time_point deadline_{};
    size_t budget_ = SIZE_MAX;
    size_t limit_ = SIZE_MAX;
    bool expired_ = false;
    bool over_budget_ = false;
    std::optional<Poco::Net::SocketAddress> local_, peer_;
    std::chrono::milliseconds recv_timeout_{60000};
    std::chrono::milliseconds send_timeout_{60000};
    std::string prefix_;
    size_t prefix_at_ = 0;
    std::optional<Resume> resume_;
    bool detached_ = false;
    // Which part of the current request the next bytes belong to.
    enum class Stage : uint8_t { Head, Chunks, Done };
    Stage stage_ = Stage::Done;
    HttpHeadValidator head_;
    ChunkedBodyValidator chunks_;
    const char* head_error_ = nullptr;
    const char* body_error_ = nullptr;
    // Stream offsets (bytes handed to Poco on this socket; unread() gives some
    // back): where the current request's head and body end, once known.
    static constexpr uint64_t kUnknown = UINT64_MAX;
    uint64_t received_ = 0;
    uint64_t head_end_ = kUnknown;
    uint64_t body_end_ = kUnknown;
};

constexpr size_t kMaxUriLength = 16384;  // Poco's HTTPRequest::MAX_URI_LENGTH (private)

class ListenSocketImpl final : public Poco::Net::ServerSocketImpl {
public:
    Poco::Net::SocketImpl* acceptConnection(Poco::Net::SocketAddress& client) override {
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        int fd;
        do {
            len = sizeof ss;
            fd = ::accept4(sockfd(), reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC);
        } while (fd < 0 && errno == EINTR);
        if (fd < 0) error();
        client = Poco::Net::SocketAddress(reinterpret_cast<sockaddr*>(&ss), len);
        return new ClientSocketImpl(fd);
    }
};

class ListenSocket final : public Poco::Net::ServerSocket {
public:
    ListenSocket() : ServerSocket(new ListenSocketImpl, true) {}
};

ClientSocketImpl* client_impl(Poco::Net::StreamSocket& s) { return dynamic_cast<ClientSocketImpl*>(s.impl()); }

ApiError client_error(int status, std::string message, std::string code) {
    ApiError e;
    e.status = status;
    e.type = "invalid_request_error";
    e.message = std::move(message);
    e.code = std::move(code);
    return e;
}

std::string seconds_text(std::chrono::milliseconds d) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g s", static_cast<double>(d.count()) / 1000.0);
    return buf;
}

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

// Whether the handler read the declared body to its end. Bytes left unread
// must never be taken for the next request on this connection.
bool body_consumed(Poco::Net::HTTPServerRequest& req) {
    const bool declared = req.getChunkedTransferEncoding() || (req.hasContentLength() && req.getContentLength64() > 0);
    return !declared || req.stream().eof();
}

class ClientConnection;

// Poco's HTTPServerSession, waiting for the next keep-alive request with one
// poll(): Poco 1.11's Socket::poll() creates, fills, waits on and closes an
// epoll instance per call (four syscalls and an fd per request).
class Session final : public Poco::Net::HTTPServerSession {
public:
    // resumed_left: the connection comes back from a detached response with
    // this many requests still allowed; it waits as between two requests.
    Session(const Poco::Net::StreamSocket& s, const Poco::Net::HTTPServerParams::Ptr& params, ClientSocketImpl* sock,
            std::optional<int> resumed_left)
        : HTTPServerSession(s, params),
          sock_(sock),
          first_(!resumed_left),
          keep_alive_ms_(params->getKeepAliveTimeout().totalMilliseconds()),
          left_(resumed_left ? *resumed_left : params->getMaxKeepAliveRequests()) {}

    enum class Next { Request, Close, Idle };
    // Waits for the next request. Idle: none came within `hold` (when given),
    // though the keep-alive time (idle_left()) is not over.
    Next next_request(std::optional<std::chrono::milliseconds> hold) {
        if (first_) {
            first_ = false;
            if (left_ > 0) --left_;
            else if (left_ == 0) left_ = -1;  // 0: unlimited, as in Poco
            return hasMoreRequests() ? Next::Request : Next::Close;  // once per connection: Poco's own wait
        }
        if (left_ == 0 || !getKeepAlive()) return Next::Close;
        if (buffered() > 0 || sock_->has_prefix()) return take();  // a pipelined request is read already
        idle_until_ = Clock::now() + std::chrono::milliseconds(keep_alive_ms_);
        const auto deadline = hold ? std::min(idle_until_, Clock::now() + *hold) : idle_until_;
        for (;;) {
            pollfd p{static_cast<int>(socket().impl()->sockfd()), POLLIN, 0};
            const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
            const int rc = ::poll(&p, 1, static_cast<int>(std::clamp<int64_t>(left, 0, INT_MAX)));
            if (rc < 0 && errno == EINTR) continue;
            if (rc != 0) return take();  // readable, closed or failed: the read tells which
            return deadline < idle_until_ ? Next::Idle : Next::Close;
        }
    }
    std::chrono::milliseconds idle_left() const {
        return std::chrono::ceil<std::chrono::milliseconds>(idle_until_ - Clock::now());
    }
    bool can_keep_alive() const { return left_ != 0; }
    Next take() {
        if (left_ > 0) --left_;
        return Next::Request;
    }
    int requests_left() const { return left_; }
    size_t pending() const { return static_cast<size_t>(buffered()); }  // read, not yet parsed
    // What was read past the current request (pipelined bytes), taken out.
    std::string take_buffered() {
        std::string s(static_cast<size_t>(buffered()), '\0');
        if (!s.empty()) read(s.data(), static_cast<std::streamsize>(s.size()));  // from the buffer only
        return s;
    }

private:
    ClientSocketImpl* sock_;
    bool first_ = true;
    int64_t keep_alive_ms_;
    int left_;  // requests still allowed on this connection; < 0: unlimited
    Clock::time_point idle_until_{};
};

// The live connections, so that stop() can abort them (shut their sockets down).
struct Registry {
    std::mutex mu;
    bool stopped = false;
    std::unordered_set<ClientConnection*> live;
    void stop_all(bool abort_current);
};

class ClientConnection final : public Poco::Net::TCPServerConnection {
public:
    ClientConnection(const Poco::Net::StreamSocket& s, Poco::Net::HTTPServerParams::Ptr params,
                     Poco::Net::HTTPRequestHandlerFactory::Ptr handlers, const ClientLimits& limits,
                     std::shared_ptr<Registry> registry, const IdleParker& parker)
        : TCPServerConnection(s),
          params_(std::move(params)),
          handlers_(std::move(handlers)),
          limits_(limits),
          registry_(std::move(registry)),
          parker_(parker) {
        std::lock_guard lk(registry_->mu);
        registry_->live.insert(this);
        if (registry_->stopped) stop(true);
    }
    ~ClientConnection() override {
        std::lock_guard lk(registry_->mu);
        registry_->live.erase(this);
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
    // Answers a request whose head could not be read, then the connection closes.
    void reject(Poco::Net::HTTPServerSession& session, const ApiError& e);

    Poco::Net::HTTPServerParams::Ptr params_;
    Poco::Net::HTTPRequestHandlerFactory::Ptr handlers_;
    ClientLimits limits_;
    std::shared_ptr<Registry> registry_;
    IdleParker parker_;
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

void ClientConnection::run() {
    ClientSocketImpl* sock = client_impl(socket());
    auto resumed = sock->take_resume();
    if (resumed && resumed->finish) {
        try {
            resumed->finish();
        } catch (...) {
            spdlog::debug("resumed client connection: its finish callback threw");
        }
    }
    if (resumed && !resumed->keep_alive) {
        linger(socket());
        return;
    }
    Session session(socket(), params_, sock, resumed ? std::optional<int>(resumed->requests_left) : std::nullopt);
    const std::string server = params_->getSoftwareVersion();
    const auto connected = Clock::now();
    for (bool first = !resumed; !stopped_; first = false) {
        // The first request's head is due header_timeout after the connection is
        // served; a later one's after its first byte (keep_alive_timeout bounds the gap).
        if (first && !socket().poll(Poco::Timespan(limits_.header_timeout.count() * 1000), Poco::Net::Socket::SELECT_READ))
            break;
        const auto next = session.next_request(parker_ ? std::optional(limits_.idle_hold) : std::nullopt);
        if (next == Session::Next::Close) break;
        if (next == Session::Next::Idle) {
            // Nothing is buffered (the wait saw no byte), so only the descriptor
            // and the request budget go along.
            DetachedClient idle;
            idle.requests_left = session.requests_left();
            sock->addresses_to(idle);
            const auto left = session.idle_left();
            idle.fd = sock->release();
            parker_(std::move(idle), left);
            return;
        }
        std::lock_guard busy(busy_);
        if (stopped_) break;
        // What Poco read past the last request goes back to the socket, so
        // that the head validator sees every byte Poco will parse as this head.
        sock->unread(session.take_buffered());
        sock->begin(ClientSocketImpl::Phase::Header, (first ? connected : Clock::now()) + limits_.header_timeout,
                    limits_.max_header_bytes);
        Poco::Net::HTTPServerResponseImpl response(session);
        std::optional<Poco::Net::HTTPServerRequestImpl> request;
        try {
            request.emplace(response, session, params_.get());
        } catch (const Poco::Exception& e) {
            // Poco's stream wrappers turn a failed read into a short (malformed)
            // header, so the socket's own record says why the read stopped.
            if (const char* why = sock->head_error()) {
                if (sock->head_unsupported_coding())
                    reject(session, client_error(501, why, "unsupported_transfer_encoding"));
                else
                    reject(session, client_error(400, std::string("Malformed HTTP request: ") + why,
                                                 "invalid_http_request"));
            } else if (sock->expired()) {
                reject(session, client_error(408, "Request headers not received within " +
                                                      seconds_text(limits_.header_timeout) +
                                                      " (general_settings.client_header_timeout)",
                                             "request_timeout"));
            } else if (sock->over_budget() || e.message().rfind("Field", 0) == 0 ||
                       e.message().rfind("Too many header fields", 0) == 0) {
                reject(session, client_error(431, "Request headers are too large (limit " +
                                                      std::to_string(limits_.max_header_bytes) +
                                                      " bytes, general_settings.max_header_bytes; at most 100 "
                                                      "fields of 8192 bytes each)",
                                             "request_header_fields_too_large"));
            } else if (e.message().find("URI invalid or too long") != std::string::npos &&
                       sock->consumed() >= kMaxUriLength) {
                reject(session, client_error(414, "Request URI is longer than " +
                                                      std::to_string(kMaxUriLength) + " bytes",
                                             "uri_too_long"));
            } else if (!dynamic_cast<const Poco::Net::NoMessageException*>(&e) && !session.networkException()) {
                reject(session, client_error(400, "Malformed HTTP request: " + e.message(), "invalid_http_request"));
            }
            break;  // NoMessageException: the client closed between requests
        }
        // Poco's head must be the one the strict check passed, ending at the same
        // byte (see head_read_as_sent); and the chunked body read along with it
        // may already be known to be broken.
        if (!sock->head_read_as_sent(session.pending()) || sock->body_error()) {
            reject(session, client_error(400, std::string("Malformed HTTP request: ") +
                                                  (sock->body_error() ? sock->body_error()
                                                                      : "the request head could not be read as sent"),
                                         "invalid_http_request"));
            break;
        }
        const std::string& version = request->getVersion();
        if (version != Poco::Net::HTTPMessage::HTTP_1_1 && version != Poco::Net::HTTPMessage::HTTP_1_0) {
            reject(session, client_error(505, "HTTP version " + version.substr(0, 16) + " is not supported",
                                         "http_version_not_supported"));
            break;
        }
        if (auto e = framing_error(*request)) {
            reject(session, *e);
            break;
        }
        sock->begin(ClientSocketImpl::Phase::Body, Clock::now() + limits_.body_timeout);
        try {
            response.setDate(Poco::Timestamp());
            response.setVersion(request->getVersion());
            response.setKeepAlive(params_->getKeepAlive() && request->getKeepAlive() && session.can_keep_alive());
            if (!server.empty()) response.set("Server", server);
            std::unique_ptr<Poco::Net::HTTPRequestHandler> handler(handlers_->createRequestHandler(*request));
            // No "100 Continue" for a body the handler will refuse (413) unread.
            const bool too_big = request->hasContentLength() &&
                                 static_cast<uint64_t>(request->getContentLength64()) > limits_.max_body_bytes;
            if (request->getExpectContinue() && !too_big && response.getStatus() == Poco::Net::HTTPResponse::HTTP_OK)
                response.sendContinue();
            handler->handleRequest(*request, response);
            if (sock->detached()) return;  // the response goes on on the Asio side
            session.setKeepAlive(params_->getKeepAlive() && response.getKeepAlive() && session.can_keep_alive() &&
                                 body_consumed(*request));
            if (session.getKeepAlive()) {
                // The next request starts where this one ends, not where Poco stopped reading it.
                if (auto skip = sock->unread_part_of_request(session.pending())) {
                    if (*skip) sock->unread(session.take_buffered().substr(*skip));
                } else {
                    session.setKeepAlive(false);  // its end is still to come: it cannot be told from the next
                }
            }
        } catch (const Poco::Exception& e) {
            // The handler answers its own errors; what reaches here is a dead socket.
            spdlog::debug("client connection ended: {}", e.displayText());
            if (sock->detached()) return;
            break;
        }
        sock->begin(ClientSocketImpl::Phase::Free, Clock::time_point::max());
    }
    sock->begin(ClientSocketImpl::Phase::Free, Clock::time_point::max());
    linger(socket());
}

class ConnectionFactory final : public Poco::Net::TCPServerConnectionFactory {
public:
    ConnectionFactory(Poco::Net::HTTPServerParams::Ptr params, Poco::Net::HTTPRequestHandlerFactory::Ptr handlers,
                      const ClientLimits& limits, std::shared_ptr<Registry> registry, IdleParker parker)
        : params_(std::move(params)),
          handlers_(std::move(handlers)),
          limits_(limits),
          registry_(std::move(registry)),
          parker_(std::move(parker)) {}
    Poco::Net::TCPServerConnection* createConnection(const Poco::Net::StreamSocket& s) override {
        return new ClientConnection(s, params_, handlers_, limits_, registry_, parker_);
    }

private:
    Poco::Net::HTTPServerParams::Ptr params_;
    Poco::Net::HTTPRequestHandlerFactory::Ptr handlers_;
    ClientLimits limits_;
    std::shared_ptr<Registry> registry_;
    IdleParker parker_;
};

// Detached connections come back to pool threads through this queue (one per
// response on a keep-alive connection, so it is on every request's path).
// Poco's TCPServerDispatcher would do, but its hand-off wakes the thread while
// holding the queue's locks: about ten futex calls per request where this
// makes two. Never refuses for a full queue: that would drop the request's
// bookkeeping along with the connection.
class Resumer final : public ConnectionResumer, public std::enable_shared_from_this<Resumer> {
public:
    Resumer(Poco::Net::TCPServerConnectionFactory::Ptr factory, Poco::ThreadPool& pool, int max_threads)
        : factory_(std::move(factory)), pool_(pool), max_workers_(std::max(1, max_threads)) {}

    void resume(DetachedClient c, bool keep_alive, std::function<void()> finish) override {
        bool start_worker = false;
        {
            std::unique_lock lk(mu_);
            if (stopped_) {
                lk.unlock();
                ::close(c.fd);
                if (finish) finish();
                return;
            }
            const int fd = c.fd;
            ClientSocketImpl::Resume r{c.requests_left, keep_alive, std::move(finish)};
            queue_.emplace_back(new ClientSocketImpl(fd, std::move(c), std::move(r)));
            if (idle_ == 0 && workers_ < max_workers_) {
                ++workers_;
                start_worker = true;
            }
        }
        if (!start_worker) {
            cv_.notify_one();  // after the unlock: the woken thread finds the lock free
            return;
        }
        struct Worker final : Poco::Runnable {
            std::shared_ptr<Resumer> owner;
            void run() override {
                owner->serve();
                delete this;
            }
        };
        auto* w = new Worker;
        w->owner = shared_from_this();
        try {
            pool_.start(*w);
        } catch (const Poco::Exception&) {
            // No thread free right now: a running worker takes the connection when it is done.
            delete w;
            std::lock_guard lk(mu_);
            --workers_;
        }
    }

    void stop() {
        {
            std::lock_guard lk(mu_);
            stopped_ = true;
            queue_.clear();
        }
        cv_.notify_all();
    }

private:
    void serve() {
        std::unique_lock lk(mu_);
        for (;;) {
            while (queue_.empty() && !stopped_) {
                ++idle_;
                const bool woken = cv_.wait_for(lk, std::chrono::seconds(10)) == std::cv_status::no_timeout;
                --idle_;
                if (!woken && queue_.empty() && workers_ > 1) break;  // keep one worker warm
            }
            if (queue_.empty() || stopped_) break;
            Poco::Net::StreamSocket socket = std::move(queue_.front());
            queue_.pop_front();
            lk.unlock();
            try {
                std::unique_ptr<Poco::Net::TCPServerConnection> conn(factory_->createConnection(socket));
                conn->run();  // as TCPServerDispatcher does (start() is its friend-only wrapper)
            } catch (...) {
                spdlog::debug("resumed client connection ended by an exception");
            }
            lk.lock();
        }
        --workers_;
    }

    Poco::Net::TCPServerConnectionFactory::Ptr factory_;
    Poco::ThreadPool& pool_;
    const int max_workers_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Poco::Net::StreamSocket> queue_;
    int workers_ = 0;  // started, not yet returned
    int idle_ = 0;     // waiting for a connection
    bool stopped_ = false;
};

}  // namespace

std::optional<DetachedClient> detach_client(Poco::Net::HTTPServerRequest& req) {
    auto* impl = dynamic_cast<Poco::Net::HTTPServerRequestImpl*>(&req);
    if (!impl) return std::nullopt;
    auto* session = dynamic_cast<Session*>(&impl->session());
    ClientSocketImpl* sock = client_impl(impl->socket());
    if (!session || !sock) return std::nullopt;
    DetachedClient d;
    // What Poco left of this request (trailer fields) is dropped; when that
    // cannot be told, the connection closes after the response.
    const auto skip = sock->unread_part_of_request(session->pending());
    d.buffered = session->take_buffered().substr(skip.value_or(0)) + sock->take_prefix();  // in the order sent
    d.requests_left = skip ? session->requests_left() : 0;
    sock->addresses_to(d);
    sock->begin(ClientSocketImpl::Phase::Free, Clock::time_point::max());
    impl->detachSocket();
    d.fd = sock->release();
    return d;
}

struct HttpFrontEnd::Impl {
    std::shared_ptr<Registry> registry = std::make_shared<Registry>();
    std::unique_ptr<Poco::Net::TCPServer> tcp;
    std::shared_ptr<Resumer> resumer;
    bool stopped = false;
};

HttpFrontEnd::HttpFrontEnd(Poco::Net::HTTPRequestHandlerFactory::Ptr handlers, Poco::Net::HTTPServerParams::Ptr params,
                           const ClientLimits& limits, Poco::ThreadPool& pool, const std::string& host, int port,
                           IdleParker parker)
    : impl_(std::make_unique<Impl>()) {
    ListenSocket sock;
    sock.bind(Poco::Net::SocketAddress(host, static_cast<Poco::UInt16>(port)), true);
    // Accepted sockets inherit it (Linux): SSE events are small, never let Nagle
    // hold them, and no setsockopt per request.
    sock.setNoDelay(true);
    sock.listen(1024);
    port_ = sock.address().port();
    Poco::Net::TCPServerConnectionFactory::Ptr factory(new ConnectionFactory(params, handlers, limits, impl_->registry, std::move(parker)));
    impl_->tcp = std::make_unique<Poco::Net::TCPServer>(factory, pool, sock, params);
    impl_->resumer = std::make_shared<Resumer>(factory, pool, params->getMaxThreads());
}

std::shared_ptr<ConnectionResumer> HttpFrontEnd::resumer() const { return impl_->resumer; }

HttpFrontEnd::~HttpFrontEnd() { stop(); }

void HttpFrontEnd::start() { impl_->tcp->start(); }

void HttpFrontEnd::stop(bool abort_current) {
    if (impl_->stopped) return;
    impl_->stopped = true;
    impl_->tcp->stop();
    impl_->resumer->stop();
    impl_->registry->stop_all(abort_current);
}

bool body_timed_out(Poco::Net::HTTPServerRequest& req) {
    auto* impl = dynamic_cast<Poco::Net::HTTPServerRequestImpl*>(&req);
    ClientSocketImpl* sock = impl ? client_impl(impl->socket()) : nullptr;
    return sock && sock->phase() == ClientSocketImpl::Phase::Body && sock->expired();
}

std::optional<ApiError> body_framing_error(Poco::Net::HTTPServerRequest& req) {
    auto* impl = dynamic_cast<Poco::Net::HTTPServerRequestImpl*>(&req);
    ClientSocketImpl* sock = impl ? client_impl(impl->socket()) : nullptr;
    if (!sock || !sock->body_error()) return std::nullopt;
    return client_error(400, std::string("Malformed HTTP request: ") + sock->body_error(), "invalid_http_request");
}

ApiError request_timeout_error(const std::string& what, std::chrono::milliseconds limit) {
    return client_error(408, what + " not received within " + seconds_text(limit), "request_timeout");
}

}  // namespace tailgate::server
