// What the router learns from attempts: each deployment's shared state
// (counters, latency, health as plugins publish it, carried over a reload by
// identity) and the executor's events turned into tg_event callbacks.
#include "router/router.hpp"
#include "plugin/abi_convert.hpp"

#include <algorithm>
#include <mutex>

namespace tailgate::router {

DeploymentStats DeploymentState::snapshot() const {
    DeploymentStats s;
    const AttemptCounters& c = *counters;
    s.in_flight = c.in_flight.load(std::memory_order_relaxed);
    s.attempts = c.attempts.load(std::memory_order_relaxed);
    s.successes = c.successes.load(std::memory_order_relaxed);
    s.failures = c.failures.load(std::memory_order_relaxed);
    std::lock_guard lk(mu);
    s.health = health;
    s.cooldown_until_ms = cooldown_until_ms;
    s.ttft = ttft;
    s.total = total;
    return s;
}

void DeploymentState::adopt(const DeploymentState& old, int64_t now_ms) {
    counters = old.counters;  // the old generation's attempts end into them
    std::scoped_lock lk(mu, old.mu);
    ttft = old.ttft;
    total = old.total;
    int64_t until = std::max(old.carried_cooldown_until_ms.load(std::memory_order_relaxed),
                             old.health == Health::Cooling ? old.cooldown_until_ms : 0);
    // Published health stays the new plugins' to set; the host enforces what is left of the cooldown.
    if (until > now_ms) carried_cooldown_until_ms.store(until, std::memory_order_relaxed);
}

std::optional<uint32_t> Router::index_of(std::string_view id) const {
    auto it = by_id_.find(id);
    if (it == by_id_.end()) return std::nullopt;
    return it->second;
}

void Router::adopt_state(const Router& previous) {
    const int64_t now = now_ms();
    for (uint32_t i = 0; i < states_.size(); ++i)
        if (auto old = previous.index_of(cfg_->deployments[i].id)) states_[i]->adopt(*previous.states_[*old], now);
}

namespace {

// A plugin's view of an attempt's outcome, this replica's or another's; the
// caller adds the request id, the time on this host's clock and what else differs.
tg_event abi_event(const fleet::Outcome& o, const tg_deployment& deployment) {
    tg_event e{};
    e.struct_size = sizeof e;
    e.type = plugin::to_abi(o.type);
    e.deployment = &deployment;
    e.model_group = deployment.model_group;  // the group the attempt served (fallbacks differ)
    e.stream = o.stream ? 1 : 0;
    e.attempt = o.attempt;
    e.elapsed_ms = o.elapsed_ms;
    e.ttft_ms = o.ttft_ms;
    e.error_class = plugin::to_abi(o.error_class);
    e.http_status = o.http_status;
    e.retry_after_ms = o.retry_after_ms;
    e.prompt_tokens = o.prompt_tokens;
    e.completion_tokens = o.completion_tokens;
    e.cancel_reason = plugin::to_abi(o.cancel_reason);
    e.launch = plugin::to_abi(o.launch);
    return e;
}

}  // namespace

// Turns executor events into stats and tg_event callbacks for every plugin.
class Router::RequestObserver final : public dispatch::Observer {
public:
    // Keeps only what the events need: RequestInfo also holds the overrides.
    RequestObserver(const Router& r, std::string request_id, bool stream, std::shared_ptr<RequestContexts> contexts,
                    std::vector<Launch> launches)
        : r_(r), request_id_(std::move(request_id)), stream_(stream), contexts_(std::move(contexts)),
          launches_(std::move(launches)) {}

    void on_attempt(const dispatch::AttemptEvent& ev) override {
        auto& st = *r_.states_[ev.deployment]->counters;
        switch (ev.type) {
            case EventType::Started:
                st.in_flight.fetch_add(1, std::memory_order_relaxed);
                st.attempts.fetch_add(1, std::memory_order_relaxed);
                break;
            case EventType::Success:
                st.in_flight.fetch_sub(1, std::memory_order_relaxed);
                st.successes.fetch_add(1, std::memory_order_relaxed);
                break;
            case EventType::Failure:
                st.in_flight.fetch_sub(1, std::memory_order_relaxed);
                st.failures.fetch_add(1, std::memory_order_relaxed);
                break;
            case EventType::Cancelled:
                st.in_flight.fetch_sub(1, std::memory_order_relaxed);
                st.cancelled.fetch_add(1, std::memory_order_relaxed);
                break;
            case EventType::ShadowDone:
                st.in_flight.fetch_sub(1, std::memory_order_relaxed);
                break;
            default: break;
        }
        const Launch launch = ev.attempt < launches_.size() ? launches_[ev.attempt] : Launch::AtStart;
        const fleet::Outcome o = outcome(ev, launch);
        tg_event e = abi_event(o, r_.views_[ev.deployment]);
        e.request_id = request_id_.c_str();
        e.at_ms = r_.now_ms();
        r_.dispatch_event(e, contexts_.get());
        if (r_.fleet_) r_.fleet_->record(r_.cfg_->deployments[ev.deployment].id, o);
    }

private:
    fleet::Outcome outcome(const dispatch::AttemptEvent& ev, Launch launch) const {
        fleet::Outcome o;
        o.type = ev.type;
        o.attempt = ev.attempt;
        o.launch = launch;
        o.stream = stream_;
        o.elapsed_ms = ev.elapsed_ms;
        o.ttft_ms = ev.ttft_ms;
        o.error_class = ev.error_class;
        o.http_status = ev.http_status;
        o.retry_after_ms = ev.retry_after_ms;
        o.prompt_tokens = ev.prompt_tokens;
        o.completion_tokens = ev.completion_tokens;
        o.cancel_reason = ev.cancel_reason;
        o.at_wall_ms = fleet::wall_ms();
        return o;
    }

    const Router& r_;
    std::string request_id_;
    bool stream_;
    std::shared_ptr<RequestContexts> contexts_;  // released after the last event
    std::vector<Launch> launches_;                // per attempt of the plan
};

// Every instance sees every attempt, whichever chain routed the request, so
// health and latency stay current for all of them. No lock: all_ is fixed.
// Each instance gets its own request_ctx in the event.
void Router::dispatch_event(tg_event& ev, const RequestContexts* contexts) const {
    for (plugin::Instance* p : all_) {
        ev.request_ctx = contexts ? contexts->get(p) : nullptr;
        p->observe(ev);
    }
}

std::shared_ptr<dispatch::Observer> Router::observer_for(const RequestInfo& req, const RoutedPlan* routed) const {
    std::vector<Launch> launches;
    if (routed) {
        launches.reserve(routed->plan.attempts.size());
        for (const auto& a : routed->plan.attempts) launches.push_back(a.launch);
        if (!launches.empty()) launches.front() = Launch::AtStart;  // attempt 0 always starts at once
    }
    return std::make_shared<RequestObserver>(*this, req.request_id, req.stream, routed ? routed->contexts : nullptr,
                                             std::move(launches));
}

void Router::observe_remote(const std::vector<fleet::RemoteOutcome>& outcomes) const {
    bool any = false;
    for (const plugin::Instance* p : all_) any |= p->has_observe_remote();
    if (!any) return;
    const int64_t now = now_ms();
    const int64_t wall = fleet::wall_ms();
    for (const auto& ro : outcomes) {
        const auto idx = index_of(ro.deployment);
        if (!idx) continue;  // not in this replica's config (yet)
        const fleet::Outcome& o = ro.outcome;
        tg_event e = abi_event(o, views_[*idx]);
        e.request_id = "";
        e.at_ms = now - std::max<int64_t>(0, wall - o.at_wall_ms);  // on this host's clock
        e.request_ctx = nullptr;
        e.flags = TG_EVENT_FLAG_REMOTE;
        e.replica = ro.replica.c_str();
        for (plugin::Instance* p : all_) p->observe_remote(e);
    }
}

void Router::carry_cooldown(uint32_t i, int64_t until_ms) const {
    if (i >= states_.size()) return;
    auto& carried = states_[i]->carried_cooldown_until_ms;
    int64_t cur = carried.load(std::memory_order_relaxed);
    while (until_ms > cur && !carried.compare_exchange_weak(cur, until_ms, std::memory_order_relaxed)) {
    }
}


}  // namespace tailgate::router
