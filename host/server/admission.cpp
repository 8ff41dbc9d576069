#include "server/admission.hpp"

#include <algorithm>

namespace tailgate::server {

namespace {

bool full(int limit, int used) { return limit > 0 && used >= limit; }

}  // namespace

ApiError rejection_error(Rejection r, const std::string& group, long retry_after_s) {
    ApiError e;
    e.retry_after_s = retry_after_s;
    e.type = "api_error";
    e.status = 503;
    switch (r) {
        case Rejection::MaxConcurrentRequests:
            e.message = "The gateway is at its limit of concurrent requests; retry later";
            e.code = "gateway_overloaded";
            break;
        case Rejection::MaxOpenStreams:
            e.message = "The gateway is at its limit of open streams; retry later";
            e.code = "gateway_overloaded";
            break;
        case Rejection::GroupMaxConcurrentRequests:
        case Rejection::GroupMaxOpenStreams:
            e.status = 429;
            e.type = "rate_limit_error";
            e.code = "model_group_overloaded";
            e.message = std::string("Model group '") + group + "' is at its limit of " +
                        (r == Rejection::GroupMaxOpenStreams ? "open streams" : "concurrent requests") +
                        "; retry later";
            break;
        case Rejection::Draining:
            e.message = "The gateway is shutting down; retry on another instance";
            e.code = "gateway_draining";
            break;
    }
    return e;
}

Admission::Admission(const config::GeneralSettings& g) { set_limits(g); }

void Admission::set_limits(const config::GeneralSettings& g) {
    auto none = [](const config::GeneralSettings::Limits& l) {
        return l.max_concurrent_requests == 0 && l.max_open_streams == 0;
    };
    std::lock_guard lk(mu_);
    global_.limit = g.limits;
    bool any = !none(g.limits);
    for (auto& s : groups_) s.limit = {};  // a group no longer listed has no cap
    for (const auto& [name, l] : g.group_limits) {
        if (none(l)) continue;
        auto [it, added] = index_.emplace(name, static_cast<uint32_t>(groups_.size()));
        if (added) {
            names_.push_back(name);
            groups_.push_back(Slot{l, {}});
        } else {
            groups_[it->second].limit = l;
        }
        any = true;
    }
    unlimited_.store(!any, std::memory_order_relaxed);
}

std::optional<Admission::Refused> Admission::admit(std::span<const std::string> groups, bool stream, Ticket& out) {
    out = Ticket();
    if (unlimited()) return std::nullopt;
    std::vector<uint32_t> held;
    std::lock_guard lk(mu_);
    for (const auto& name : groups) {
        auto it = index_.find(name);
        if (it != index_.end() && std::find(held.begin(), held.end(), it->second) == held.end())
            held.push_back(it->second);
    }
    if (full(global_.limit.max_concurrent_requests, global_.used.requests))
        return Refused{Rejection::MaxConcurrentRequests, {}};
    if (stream && full(global_.limit.max_open_streams, global_.used.streams))
        return Refused{Rejection::MaxOpenStreams, {}};
    for (uint32_t g : held) {
        const Slot& s = groups_[g];
        if (full(s.limit.max_concurrent_requests, s.used.requests))
            return Refused{Rejection::GroupMaxConcurrentRequests, names_[g]};
        if (stream && full(s.limit.max_open_streams, s.used.streams))
            return Refused{Rejection::GroupMaxOpenStreams, names_[g]};
    }
    auto take = [stream](Slot& s) {
        ++s.used.requests;
        if (stream) ++s.used.streams;
    };
    take(global_);
    for (uint32_t g : held) take(groups_[g]);
    out.owner_ = this;
    out.stream_ = stream;
    out.groups_ = std::move(held);
    return std::nullopt;
}

void Admission::release(const Ticket& t) noexcept {
    auto give = [&t](Slot& s) {
        --s.used.requests;
        if (t.stream_) --s.used.streams;
    };
    std::lock_guard lk(mu_);
    give(global_);
    for (uint32_t g : t.groups_) give(groups_[g]);
}

Admission::Counts Admission::global() const {
    std::lock_guard lk(mu_);
    return global_.used;
}

Admission::Ticket::Ticket(Ticket&& o) noexcept
    : owner_(o.owner_), stream_(o.stream_), groups_(std::move(o.groups_)) {
    o.owner_ = nullptr;
}

Admission::Ticket& Admission::Ticket::operator=(Ticket&& o) noexcept {
    if (this != &o) {
        release();
        owner_ = o.owner_;
        stream_ = o.stream_;
        groups_ = std::move(o.groups_);
        o.owner_ = nullptr;
    }
    return *this;
}

Admission::Ticket::~Ticket() { release(); }

void Admission::Ticket::release() noexcept {
    if (owner_) owner_->release(*this);
    owner_ = nullptr;
}

}  // namespace tailgate::server
