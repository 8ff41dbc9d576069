// Poco's server session with a cheaper wait for the next keep-alive request.
// Front-end internal.
#pragma once

#include "server/frontend/client_socket.hpp"

#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerSession.h>

#include <poll.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <optional>
#include <string>

namespace tailgate::server::frontend {

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

}  // namespace tailgate::server::frontend
