#include "server/client_channel.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>

namespace tailgate::server {

ClientChannel::ClientChannel() {
    efd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd_ < 0) throw std::runtime_error("eventfd failed");
}

ClientChannel::~ClientChannel() {
    if (efd_ >= 0) ::close(efd_);
}

void ClientChannel::signal_locked() {
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(efd_, &one, sizeof one);
}

void ClientChannel::commit(uint32_t attempt, const upstream::ResponseHead& head, std::string bytes) {
    std::lock_guard lk(mu_);
    committed_ = true;
    attempt_ = attempt;
    head_ = head;
    if (pending_.empty()) pending_ = std::move(bytes);
    else pending_.append(bytes);
    signal_locked();
}

void ClientChannel::data(std::string_view bytes) {
    std::lock_guard lk(mu_);
    bool was_empty = pending_.empty();
    pending_.append(bytes);
    if (was_empty) signal_locked();  // the reader drains everything at once
}

void ClientChannel::finish(const ApiError* error) {
    std::lock_guard lk(mu_);
    finished_ = true;
    if (error) error_ = *error;
    signal_locked();
}

void ClientChannel::fail(const ApiError& error) {
    std::lock_guard lk(mu_);
    finished_ = true;
    error_ = error;
    signal_locked();
}

bool ClientChannel::abort(const ApiError& error) {
    std::lock_guard lk(mu_);
    if (finished_) return false;
    finished_ = true;
    error_ = error;
    signal_locked();
    return true;
}

ClientChannel::Wait ClientChannel::wait(int client_fd, std::chrono::milliseconds timeout, Batch& out) {
    for (;;) {
        {
            std::lock_guard lk(mu_);
            bool fresh_commit = committed_ && !delivered_commit_;
            if (fresh_commit || !pending_.empty() || finished_) {
                out.committed = committed_;
                out.attempt.reset();
                if (fresh_commit) {
                    out.attempt = attempt_;
                    out.head = head_;
                    delivered_commit_ = true;
                }
                out.bytes.clear();
                out.bytes.swap(pending_);
                out.finished = finished_;
                out.error = error_;
                uint64_t drain;
                [[maybe_unused]] auto n = ::read(efd_, &drain, sizeof drain);
                return Wait::Ready;
            }
        }
        pollfd fds[2];
        fds[0] = {efd_, POLLIN, 0};
        int nfds = 1;
        if (client_fd >= 0) {
            fds[1] = {client_fd, POLLRDHUP, 0};
            nfds = 2;
        }
        int rc = ::poll(fds, nfds, static_cast<int>(timeout.count()));
        if (rc < 0 && errno == EINTR) continue;
        if (rc == 0) return Wait::TimedOut;
        if (nfds == 2 && (fds[1].revents & (POLLRDHUP | POLLHUP | POLLERR))) {
            // Deliver what is already there first? No: the client cannot read it.
            return Wait::ClientGone;
        }
        uint64_t drain;
        [[maybe_unused]] auto n = ::read(efd_, &drain, sizeof drain);
    }
}

}  // namespace tailgate::server
