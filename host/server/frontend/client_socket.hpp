// The accepted client socket as Poco sees it: every read of a request passes
// here, against a deadline and (for the head) a byte budget, through the
// strict framing check; writes wait for room themselves. Front-end internal.
#pragma once

#include "server/frontend/detached_client.hpp"
#include "server/frontend/http_head_validator.hpp"

#include <Poco/Exception.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/ServerSocketImpl.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/Net/StreamSocketImpl.h>

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <string>

namespace tailgate::server::frontend {

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

inline ClientSocketImpl* client_impl(Poco::Net::StreamSocket& s) { return dynamic_cast<ClientSocketImpl*>(s.impl()); }

}  // namespace tailgate::server::frontend
