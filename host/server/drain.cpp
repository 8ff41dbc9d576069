#include "server/drain.hpp"

namespace tailgate::server {

Drain::Request::Request(Drain& d) : d_(d) {
    // Counted before the flag is read: once begin() has set it, active()
    // covers every request that saw it unset.
    d_.active_.fetch_add(1);
    admitted_ = !d_.draining_.load();
    if (!admitted_) d_.active_.fetch_sub(1);
}

Drain::Request::~Request() {
    if (!tracked_.empty()) {
        std::lock_guard lk(d_.mu_);
        for (auto it : tracked_) d_.exchanges_.erase(it);
    }
    if (admitted_) d_.active_.fetch_sub(1);
}

void Drain::Request::track(dispatch::ExecutorPtr executor, std::shared_ptr<ClientChannel> channel) {
    std::lock_guard lk(d_.mu_);
    tracked_.push_back(d_.exchanges_.insert(d_.exchanges_.end(), Exchange{std::move(executor), std::move(channel)}));
}

size_t Drain::abort_all(const ApiError& error) {
    std::lock_guard lk(mu_);
    size_t n = 0;
    for (auto& x : exchanges_) {
        // The channel first: if the exchange already ended it keeps its own outcome.
        if (!x.channel->abort(error)) continue;
        x.executor->cancel();
        ++n;
    }
    return n;
}

}  // namespace tailgate::server
