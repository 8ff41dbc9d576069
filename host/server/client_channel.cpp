#include "server/client_channel.hpp"


namespace tailgate::server {

void ClientChannel::close() {
    std::function<void()> notify;  // destroyed outside the lock (it may hold the last reference to its owner)
    std::lock_guard lk(mu_);
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
    std::function<void()> notify;
    {
        std::lock_guard lk(mu_);
        if (!wake_) return;
        wake_ = false;
        notify = notify_;
    }
    if (notify) notify();
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

}  // namespace tailgate::server
