#include "router/router.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

namespace tailgate::router {

namespace {

// Collects notes from plugins while a request is routed (tg_route.host_private).
struct RouteScratch {
    std::string note;
};

int64_t steady_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

}  // namespace

tg_deployment_stats DeploymentState::snapshot() const {
    tg_deployment_stats s{};
    s.struct_size = sizeof s;
    s.in_flight = in_flight.load(std::memory_order_relaxed);
    s.attempts = attempts.load(std::memory_order_relaxed);
    s.successes = successes.load(std::memory_order_relaxed);
    s.failures = failures.load(std::memory_order_relaxed);
    std::lock_guard lk(mu);
    s.health = health;
    s.cooldown_until_ms = cooldown_until_ms;
    s.ttft = ttft;
    s.total = total;
    return s;
}

tg_host_api Router::make_host_api(Router* self) {
    tg_host_api api{};
    api.struct_size = sizeof api;
    api.host = self;
    api.log = [](void*, uint32_t level, const char* msg) {
        switch (level) {
            case TG_LOG_DEBUG: spdlog::debug("plugin: {}", msg); break;
            case TG_LOG_INFO: spdlog::info("plugin: {}", msg); break;
            case TG_LOG_WARN: spdlog::warn("plugin: {}", msg); break;
            default: spdlog::error("plugin: {}", msg); break;
        }
    };
    api.now_ms = [](void* h) { return static_cast<Router*>(h)->now_ms(); };
    api.publish_latency = [](void* h, uint32_t index, uint32_t which, const tg_latency_summary* s) {
        auto* r = static_cast<Router*>(h);
        if (index >= r->states_.size() || s == nullptr) return;
        auto& st = *r->states_[index];
        std::lock_guard lk(st.mu);
        (which == 0 ? st.ttft : st.total) = *s;
    };
    api.publish_health = [](void* h, uint32_t index, uint32_t health, int64_t until) {
        auto* r = static_cast<Router*>(h);
        if (index >= r->states_.size()) return;
        auto& st = *r->states_[index];
        std::lock_guard lk(st.mu);
        st.health = health;
        st.cooldown_until_ms = until;
    };
    api.route_note = [](tg_route* route, const char* text) {
        if (route == nullptr || route->host_private == nullptr || text == nullptr) return;
        auto* scratch = static_cast<RouteScratch*>(route->host_private);
        if (!scratch->note.empty()) scratch->note += "; ";
        scratch->note += text;
    };
    api.deployment_count = [](void* h) { return static_cast<uint32_t>(static_cast<Router*>(h)->views_.size()); };
    api.deployment_at = [](void* h, uint32_t i) -> const tg_deployment* {
        auto* r = static_cast<Router*>(h);
        return i < r->views_.size() ? &r->views_[i] : nullptr;
    };
    return api;
}

Router::Router(std::shared_ptr<const config::Config> cfg, const plugin::Registry& registry, Clock clock)
    : cfg_(std::move(cfg)), clock_(std::move(clock)) {
    const auto& deps = cfg_->deployments;
    views_.reserve(deps.size());
    for (uint32_t i = 0; i < deps.size(); ++i) {
        const auto& d = deps[i];
        tg_deployment v{};
        v.struct_size = sizeof v;
        v.index = i;
        v.id = d.id.c_str();
        v.model_group = d.model_name.c_str();
        v.provider = d.upstream.provider.c_str();
        v.upstream_model = d.upstream.model.c_str();
        v.api_base = d.api_base.c_str();
        v.weight = d.weight;
        v.rpm = d.rpm;
        v.tpm = d.tpm;
        v.input_cost_per_token = d.input_cost_per_token;
        v.output_cost_per_token = d.output_cost_per_token;
        views_.push_back(v);
        states_.push_back(std::make_unique<DeploymentState>());
        groups_[d.model_name].push_back(i);
    }
    host_api_ = make_host_api(this);
    for (const auto& spec : cfg_->router.strategies) {
        chain_.push_back(registry.create(spec.name, &host_api_, spec.args));
        chain_names_.push_back(spec.name);
    }
}

Router::~Router() {
    chain_.clear();  // destroy plugin instances before the tables they may point into
}

int64_t Router::now_ms() const { return clock_ ? clock_() : steady_ms(); }

std::variant<RoutedPlan, ApiError> Router::route(const RequestInfo& req) const {
    auto g = groups_.find(req.model_group);
    if (g == groups_.end()) {
        std::string known;
        for (const auto& name : cfg_->model_groups()) known += (known.empty() ? "" : ", ") + name;
        return ApiError::not_found("The model `" + req.model_group + "` does not exist. Available models: " + known,
                                   "model_not_found");
    }
    const auto& members = g->second;

    // Candidates with a stats snapshot each; both live on this stack frame.
    std::vector<tg_deployment_stats> stats;
    std::vector<tg_candidate> candidates;
    stats.reserve(members.size());
    candidates.reserve(members.size());
    for (uint32_t idx : members) stats.push_back(states_[idx]->snapshot());
    for (size_t k = 0; k < members.size(); ++k) candidates.push_back(tg_candidate{&views_[members[k]], &stats[k]});

    tg_attempt attempts[TG_MAX_ATTEMPTS] = {};
    RouteScratch scratch;
    tg_route route{};
    route.struct_size = sizeof route;
    route.candidates = candidates.data();
    route.count = static_cast<uint32_t>(candidates.size());
    route.attempts = attempts;
    route.attempt_count = 0;
    route.host_private = &scratch;

    tg_request treq{};
    treq.struct_size = sizeof treq;
    treq.request_id = req.request_id.c_str();
    treq.model_group = req.model_group.c_str();
    treq.endpoint = req.endpoint;
    treq.stream = req.stream ? 1 : 0;
    treq.overrides_json = req.overrides_json.c_str();
    treq.metadata_json = req.metadata_json.c_str();
    treq.now_ms = now_ms();

    std::vector<tg_candidate> saved;
    for (size_t k = 0; k < chain_.size(); ++k) {
        saved.assign(candidates.begin(), candidates.begin() + route.count);
        uint32_t saved_attempts = route.attempt_count;
        int32_t rc = chain_[k]->route(treq, route);
        if (rc == TG_ERR_NO_CANDIDATE) {
            return ApiError::unavailable("No deployment of model group '" + req.model_group +
                                         "' is available (strategy '" + chain_names_[k] + "' refused all)");
        }
        if (rc != TG_OK || route.count > saved.size() || route.attempt_count > TG_MAX_ATTEMPTS) {
            // A misbehaving plugin must not take requests down with it: undo its decision.
            spdlog::error("strategy '{}' failed (status {}) routing request {}; ignoring its decision",
                          chain_names_[k], rc, req.request_id);
            std::copy(saved.begin(), saved.end(), candidates.begin());
            route.candidates = candidates.data();
            route.count = static_cast<uint32_t>(saved.size());
            route.attempt_count = saved_attempts;
            continue;
        }
        if (route.count == 0) {
            return ApiError::unavailable("No deployment of model group '" + req.model_group +
                                         "' is available (strategy '" + chain_names_[k] + "' filtered out all)");
        }
    }

    RoutedPlan out;
    out.note = std::move(scratch.note);
    dispatch::Plan& plan = out.plan;
    plan.stream = req.stream;
    const auto& rs = cfg_->router;
    if (route.attempt_count > 0) {
        for (uint32_t a = 0; a < route.attempt_count; ++a) {
            const tg_attempt& at = attempts[a];
            if (at.candidate >= route.count) continue;  // stale position: drop it
            plan.attempts.push_back(dispatch::AttemptSpec{route.candidates[at.candidate].deployment->index,
                                                          static_cast<tg_launch>(at.launch),
                                                          config::Millis(at.delay_ms)});
        }
    }
    if (plan.attempts.empty()) {
        // Default: the first candidate, then retries over the next ones.
        int retries = req.num_retries.value_or(rs.num_retries);
        uint32_t total = 1 + static_cast<uint32_t>(std::clamp(retries, 0, int(TG_MAX_ATTEMPTS) - 1));
        for (uint32_t a = 0; a < total; ++a) {
            uint32_t pos = a % route.count;
            // Going back to a deployment already tried: back off a little first.
            uint32_t round = a / route.count;
            config::Millis backoff(round == 0 ? 0 : std::min<int64_t>(100LL << (round - 1), 5000));
            plan.attempts.push_back(dispatch::AttemptSpec{route.candidates[pos].deployment->index,
                                                          a == 0 ? TG_LAUNCH_AT_START : TG_LAUNCH_ON_FAILURE,
                                                          backoff});
        }
    }
    // Stream first-content timeout: request > deployment of the primary > router.
    const auto& primary = cfg_->deployments[plan.attempts.front().deployment];
    if (req.stream) {
        auto st = primary.stream_timeout ? primary.stream_timeout : rs.stream_timeout;
        if (st) plan.first_content_timeout = *st;
    }
    plan.max_body_bytes = 64u * 1024 * 1024;
    return out;
}

// Turns executor events into stats and tg_event callbacks for every plugin.
class Router::RequestObserver final : public dispatch::Observer {
public:
    RequestObserver(const Router& r, RequestInfo req, std::vector<uint32_t> deployments)
        : r_(r), req_(std::move(req)), deployments_(std::move(deployments)) {}

    void on_attempt(const dispatch::AttemptEvent& ev) override {
        auto& st = *r_.states_[ev.deployment];
        switch (ev.type) {
            case TG_EVENT_STARTED:
                st.in_flight.fetch_add(1, std::memory_order_relaxed);
                st.attempts.fetch_add(1, std::memory_order_relaxed);
                break;
            case TG_EVENT_SUCCESS:
                st.in_flight.fetch_sub(1, std::memory_order_relaxed);
                st.successes.fetch_add(1, std::memory_order_relaxed);
                break;
            case TG_EVENT_FAILURE:
                st.in_flight.fetch_sub(1, std::memory_order_relaxed);
                st.failures.fetch_add(1, std::memory_order_relaxed);
                break;
            case TG_EVENT_CANCELLED:
                st.in_flight.fetch_sub(1, std::memory_order_relaxed);
                st.cancelled.fetch_add(1, std::memory_order_relaxed);
                break;
            default: break;
        }
        tg_event e{};
        e.struct_size = sizeof e;
        e.type = ev.type;
        e.deployment = &r_.views_[ev.deployment];
        e.request_id = req_.request_id.c_str();
        e.model_group = req_.model_group.c_str();
        e.stream = req_.stream ? 1 : 0;
        e.attempt = ev.attempt;
        e.at_ms = r_.now_ms();
        e.elapsed_ms = ev.elapsed_ms;
        e.ttft_ms = ev.ttft_ms;
        e.error_class = ev.error_class;
        e.http_status = ev.http_status;
        e.retry_after_ms = ev.retry_after_ms;
        e.prompt_tokens = ev.prompt_tokens;
        e.completion_tokens = ev.completion_tokens;
        r_.dispatch_event(e);
    }

private:
    const Router& r_;
    RequestInfo req_;
    std::vector<uint32_t> deployments_;
};

void Router::dispatch_event(const tg_event& ev) const {
    for (const auto& p : chain_) p->observe(ev);
}

std::shared_ptr<dispatch::Observer> Router::observer_for(const RequestInfo& req, const dispatch::Plan& plan) const {
    std::vector<uint32_t> deps;
    deps.reserve(plan.attempts.size());
    for (const auto& a : plan.attempts) deps.push_back(a.deployment);
    return std::make_shared<RequestObserver>(*this, req, std::move(deps));
}

}  // namespace tailgate::router
