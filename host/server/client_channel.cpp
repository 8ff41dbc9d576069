#include "server/client_channel.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>

namespace tailgate::server {

Waker::Waker() {
    fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd_ < 0) throw std::runtime_error("eventfd failed");
}

Waker::~Waker() { ::close(fd_); }

std::shared_ptr<Waker> Waker::for_this_thread() {
    thread_local std::shared_ptr<Waker> mine = std::make_shared<Waker>();
    return mine;
}

void Waker::signal() {
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(fd_, &one, sizeof one);
}

void Waker::drain() {
    uint64_t count;
    [[maybe_unused]] auto n = ::read(fd_, &count, sizeof count);
}

ClientChannel::ClientChannel(std::shared_ptr<Waker> waker) : waker_(std::move(waker)) {}

void ClientChannel::close() {
    std::function<void()> notify;  // destroyed outside the lock (it may hold the last reference to its owner)
    std::lock_guard lk(mu_);
    waker_.reset();
    notify.swap(notify_);
}

void ClientChannel::set_notify(std::function<void()> notify) {
    std::lock_guard lk(mu_);
    notify_ = std::move(notify);
}

bool ClientChannel::congested() {
    std::lock_guard lk(mu_);
    if (pending_.size() < kHighWater) return false;
    throttled_ = true;
    return true;
}

void ClientChannel::flush() {
    std::shared_ptr<Waker> w;
    std::function<void()> notify;
    {
        std::lock_guard lk(mu_);
        if (!wake_) return;
        wake_ = false;
        w = waker_;
        if (!w) notify = notify_;
    }
    if (w) w->signal();
    else if (notify) notify();
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
    {
        std::lock_guard lk(mu_);
        if (finished_) return false;
        finished_ = true;
        error_ = error;
        signal_locked();
    }
    flush();  // not called by the executor, so nobody else flushes: wake the thread now
    return true;
}

bool ClientChannel::take_locked(Batch& out) {
    bool fresh_commit = committed_ && !delivered_commit_;
    if (!fresh_commit && pending_.empty() && !finished_) return false;
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
    out.resume = throttled_;
    throttled_ = false;
    return true;
}

bool ClientChannel::take(Batch& out) {
    std::lock_guard lk(mu_);
    return take_locked(out);
}

ClientChannel::Wait ClientChannel::wait(int client_fd, std::chrono::milliseconds timeout, Batch& out) {
    bool drained = false;  // the wake-up that brought us here is consumed already
    for (;;) {
        int efd;
        {
            std::lock_guard lk(mu_);
            if (take_locked(out)) {
                if (waker_ && !drained) waker_->drain();
                return Wait::Ready;
            }
            if (!waker_) return Wait::ClientGone;  // closed: nobody would wake us
            efd = waker_->fd();
        }
        pollfd fds[2];
        fds[0] = {efd, POLLIN, 0};
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
        [[maybe_unused]] auto n = ::read(efd, &drain, sizeof drain);
        drained = true;
    }
}

}  // namespace tailgate::server
