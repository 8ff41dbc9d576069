#include "fleet/link.hpp"

#include <algorithm>

namespace tailgate::fleet {

namespace {

// At 2,000 requests/s and three events each, about eight seconds of traffic:
// only reached when the synchroniser cannot keep up; then events are dropped.
constexpr size_t kMaxBufferedEvents = 50000;
constexpr size_t kMaxBufferedMessages = 10000;

}  // namespace

int64_t wall_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

Link::Link(std::string replica_id, std::chrono::milliseconds probe_lease, std::chrono::milliseconds quota_lease,
           std::chrono::milliseconds quota_horizon)
    : replica_(std::move(replica_id)), lease_time_(probe_lease), quota_lease_(quota_lease),
      quotas_(quota_lease, quota_horizon) {}

QuotaAnswer Link::quota_take(std::string_view id, QuotaKind k, int64_t limit, int64_t n, int64_t* free_in_ms) {
    const auto now = std::chrono::steady_clock::now();
    QuotaAnswer a;
    {
        std::lock_guard lk(mu_);
        a = quotas_.take(id, k, limit, n, now);
        if (a == QuotaAnswer::Exhausted && free_in_ms != nullptr) *free_in_ms = quotas_.free_in_ms(id, k, now);
    }
    auto& c = a == QuotaAnswer::Granted ? quota_counts_.granted
              : a == QuotaAnswer::Exhausted ? quota_counts_.exhausted : quota_counts_.local;
    c.fetch_add(1, std::memory_order_relaxed);
    return a;
}

void Link::quota_settle(std::string_view id, QuotaKind k, int64_t limit, int64_t n) {
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lk(mu_);
    quotas_.settle(id, k, limit, n, now);
}

int64_t Link::quota_allowance(std::string_view id, QuotaKind k) const {
    std::lock_guard lk(mu_);
    return quotas_.allowance(id, k, std::chrono::steady_clock::now());
}

void Link::quota_prime_all(const std::vector<QuotaBook::Limit>& limits) {
    std::lock_guard lk(mu_);
    quotas_.prime_all(limits, std::chrono::steady_clock::now());
}

std::vector<QuotaRefill> Link::quota_refills(std::chrono::steady_clock::time_point now) {
    std::lock_guard lk(mu_);
    auto out = quotas_.refills(now);
    quota_counts_.refills.fetch_add(out.size(), std::memory_order_relaxed);
    return out;
}

std::vector<QuotaReturn> Link::quota_expired(std::chrono::steady_clock::time_point now) {
    std::lock_guard lk(mu_);
    auto out = quotas_.expired(now);
    quota_counts_.returns.fetch_add(out.size(), std::memory_order_relaxed);
    return out;
}

void Link::quota_granted(const QuotaRefill& r, int64_t granted, int64_t free_in_ms, int64_t replicas,
                         std::chrono::steady_clock::time_point sent) {
    quota_counts_.units_granted.fetch_add(static_cast<uint64_t>(std::max<int64_t>(0, granted)),
                                          std::memory_order_relaxed);
    std::lock_guard lk(mu_);
    quotas_.granted(r, granted, free_in_ms, replicas, sent, std::chrono::steady_clock::now());
}

uint32_t Link::intern(std::string_view id) {
    if (auto it = ids_.find(id); it != ids_.end()) return it->second;
    const auto n = static_cast<uint32_t>(out_.deployments.size());
    out_.deployments.emplace_back(id);
    ids_.emplace(std::string(id), n);
    return n;
}

void Link::record(std::string_view deployment, const Outcome& o) {
    if (!active()) return;  // nobody to tell: local state is all there is
    std::lock_guard lk(mu_);
    if (out_.events.size() >= kMaxBufferedEvents) {
        ++out_.dropped;
        return;
    }
    out_.events.push_back(Outbox::Event{intern(deployment), o});
}

bool Link::probe_lease(std::string_view deployment) {
    if (!active()) return true;
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lk(mu_);
    auto it = leases_.find(deployment);
    if (it == leases_.end()) it = leases_.emplace(std::string(deployment), Lease{}).first;
    if (it->second.held_until > now) return true;
    if (!it->second.wanted) {
        it->second.wanted = true;
        out_.lease_wanted.emplace_back(deployment);
    }
    return false;
}

void Link::health_changed(std::string_view deployment, Health to, int64_t cooldown_until_wall_ms) {
    if (to == Health::HalfOpen) return;  // derived from the cooldown's end on every replica
    std::lock_guard lk(mu_);
    if (auto it = leases_.find(deployment); it != leases_.end()) {
        const bool held = it->second.held_until > std::chrono::steady_clock::now();
        it->second = Lease{};
        if (held && active()) out_.lease_released.emplace_back(deployment);
    }
    if (active()) out_.cooldowns.emplace_back(std::string(deployment), to == Health::Cooling ? cooldown_until_wall_ms : 0);
}

void Link::lease_granted(const std::string& deployment, std::chrono::steady_clock::time_point until) {
    std::lock_guard lk(mu_);
    auto& l = leases_[deployment];
    l.wanted = false;
    l.held_until = until;
}

void Link::publish(std::string topic, std::string payload) {
    if (!active()) return;
    std::lock_guard lk(mu_);
    if (out_.messages.size() < kMaxBufferedMessages) out_.messages.push_back(Message{std::move(topic), std::move(payload)});
}

void Link::subscribe(std::string topic, Subscriber fn) {
    std::lock_guard lk(mu_);
    subscribers_[std::move(topic)].push_back(std::move(fn));
}

void Link::on_round(std::function<void()> fn) {
    std::lock_guard lk(mu_);
    round_hooks_.push_back(std::move(fn));
}

void Link::on_state(std::function<void(bool)> fn) {
    std::lock_guard lk(mu_);
    state_hooks_.push_back(std::move(fn));
}

void Link::deliver(const Message& m) const {
    std::vector<Subscriber> fns;
    {
        std::lock_guard lk(mu_);
        if (auto it = subscribers_.find(m.topic); it != subscribers_.end()) fns = it->second;
    }
    for (const auto& fn : fns) fn(m);
}

std::optional<uint64_t> Link::allocate_revision(std::chrono::milliseconds timeout) {
    if (!active()) return std::nullopt;
    auto p = std::make_shared<std::promise<uint64_t>>();
    auto f = p->get_future();
    std::function<void()> wake;
    {
        std::lock_guard lk(mu_);
        allocations_.push_back(p);
        wake = wake_;
    }
    if (wake) wake();
    if (f.wait_for(timeout) != std::future_status::ready) return std::nullopt;
    try {
        return f.get();
    } catch (...) {
        return std::nullopt;  // the connection failed before INCR answered
    }
}

void Link::publish_revision(Revision r) {
    std::lock_guard lk(mu_);
    known_[r.number] = r.json;
    out_.revisions.push_back(std::move(r));
}

void Link::set_active(bool on) {
    const bool was = active_.exchange(on, std::memory_order_acq_rel);
    if (was != on) {
        std::vector<std::function<void(bool)>> hooks;
        {
            std::lock_guard lk(mu_);
            hooks = state_hooks_;
        }
        for (const auto& fn : hooks) fn(on);
    }
    std::lock_guard lk(mu_);
    quotas_.set_active(on, std::chrono::steady_clock::now());
    if (on) return;
    // Down: what was buffered goes nowhere, and no lease is held any more.
    out_.events.clear();
    out_.messages.clear();
    out_.cooldowns.clear();
    out_.lease_wanted.clear();
    out_.lease_released.clear();
    leases_.clear();
}

Outbox Link::take() {
    std::vector<std::function<void()>> hooks;
    {
        std::lock_guard lk(mu_);
        hooks = round_hooks_;
    }
    for (const auto& fn : hooks) fn();  // they publish() into the outbox taken below
    std::lock_guard lk(mu_);
    Outbox o = std::move(out_);
    out_ = Outbox{};
    ids_.clear();
    return o;
}

std::vector<Revision> Link::known_revisions() const {
    std::lock_guard lk(mu_);
    std::vector<Revision> out;
    out.reserve(known_.size());
    for (const auto& [n, json] : known_) out.push_back(Revision{n, json});
    return out;
}

std::vector<std::shared_ptr<std::promise<uint64_t>>> Link::take_allocations() {
    std::lock_guard lk(mu_);
    auto out = std::move(allocations_);
    allocations_.clear();
    return out;
}

void Link::set_wake(std::function<void()> wake) {
    std::lock_guard lk(mu_);
    wake_ = std::move(wake);
}

}  // namespace tailgate::fleet
