// The router: deployments, their live stats, the strategy chain, and the host
// side of the plugin ABI (tg_host_api). Built once from the config; routing a
// request only reads immutable tables plus per-deployment stats.
#pragma once

#include "common/api_error.hpp"
#include "common/vocabulary.hpp"
#include "config/config.hpp"
#include "dispatch/executor.hpp"
#include "fleet/link.hpp"
#include "plugin/loader.hpp"
#include "plugin/plugin_metrics.hpp"

#include <tailgate/plugin_abi.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

namespace tailgate::router {

// What the server knows about a request before routing.
struct RouteScratch;

struct RequestInfo {
    std::string request_id;
    std::string model_group;
    Endpoint endpoint = Endpoint::Chat;
    bool stream = false;
    std::string overrides_json = "{}";
    std::vector<std::pair<std::string, std::string>> overrides;  // the same, flattened
    std::string metadata_json = "{}";
    std::optional<int> num_retries;        // per-request override
    std::optional<config::Millis> timeout;  // per-request override
    std::optional<std::vector<std::string>> fallbacks;  // per-request override of router fallbacks
    std::vector<std::string> strategies;    // per-request chain (when the config allows it)
    // model="a,b" with fastest_response: race one deployment of each listed group.
    std::vector<std::string> race_groups;

    // What strategies may read of the request (tg_request 1.1 members).
    std::optional<std::string> user;          // OpenAI `user`
    int64_t max_tokens = -1;                  // max_completion_tokens, else max_tokens
    bool has_tools = false;                   // `tools` or `functions`
    bool has_response_format = false;
    int64_t prompt_tokens_estimate = -1;
    std::vector<std::pair<std::string, std::string>> headers;  // allow-listed, names lower-case
    std::string caller_key_hash;              // "" without a key
    // A dry run (admin preview, routing state): plugins are told
    // (TG_REQUEST_PREVIEW) to plan without changing state; nothing is sent.
    bool preview = false;
    std::string caller_key_alias;             // a virtual key's key_alias ("" none)
    std::string caller_team;                  // a virtual key's team_id ("" none)
};

// The per-request contexts strategies leave in tg_route.request_ctx, one per
// instance, handed back in that request's events. Shared by the routed plan and
// the request's observer: the last of them to go releases every context
// through its instance (tg_plugin_release_request), which must outlive this.
class RequestContexts {
public:
    RequestContexts() = default;
    RequestContexts(const RequestContexts&) = delete;
    RequestContexts& operator=(const RequestContexts&) = delete;
    ~RequestContexts();

    void* get(const plugin::Instance* p) const {
        for (const auto& [inst, ctx] : slots_)
            if (inst == p) return ctx;
        return nullptr;
    }
    void set(plugin::Instance* p, void* ctx);

private:
    std::vector<std::pair<plugin::Instance*, void*>> slots_;  // a chain is short: a vector beats a map
};

struct RoutedPlan {
    dispatch::Plan plan;
    std::vector<std::string> groups;  // AttemptSpec::group indexes this: [requested, fallbacks..., cw fallbacks...]
    // Per entry of `groups`: what a '*' in a deployment's upstream model stands
    // for (the wildcard's match for a pattern group, else the name itself).
    std::vector<std::string> captures;
    std::string note;                 // strategy decisions, for the request log
    // Every deployment was cooling: the plan is one attempt at the deployment
    // whose cooldown ends first (router_settings.panic_routing). Its failure is
    // final: the client is told not to retry on top of it.
    bool panic = false;
    // Contexts strategies set for this request (null when none did); give the
    // plan to observer_for so events carry them.
    std::shared_ptr<RequestContexts> contexts;
};

// Attempt counters of one deployment identity, shared by every generation
// that has it: attempts still running on an older generation stay in_flight
// here and end into the same totals.
struct AttemptCounters {
    std::atomic<uint32_t> in_flight{0};
    std::atomic<uint64_t> attempts{0};
    std::atomic<uint64_t> successes{0};
    std::atomic<uint64_t> failures{0};
    std::atomic<uint64_t> cancelled{0};
};

// Per-deployment counters and published values. Counters are atomics; the
// published latency/health values sit behind a small mutex.
struct DeploymentState {
    // Replaced only by adopt(), before the generation serves.
    std::shared_ptr<AttemptCounters> counters = std::make_shared<AttemptCounters>();
    mutable std::mutex mu;
    LatencySummary ttft;
    LatencySummary total;
    Health health = Health::Healthy;
    int64_t cooldown_until_ms = 0;
    // Host-owned, keyed by deployment identity across reloads (control plane):
    std::atomic<bool> drained{false};  // taken out by an operator: no new requests
    // A cooldown carried over a reload: the new generation's health instance
    // starts fresh, so the host skips the deployment until then (unless nothing
    // else is left in its group).
    std::atomic<int64_t> carried_cooldown_until_ms{0};

    DeploymentStats snapshot() const;
    // Shares `old`'s counters and takes its published values (same deployment identity).
    void adopt(const DeploymentState& old, int64_t now_ms);
};

class Router {
public:
    using Clock = std::function<int64_t()>;  // monotonic ms; injectable for tests

    // Loads the chain's plugins. Throws plugin::PluginError / config::ConfigError.
    // Plugin series come from `plugin_series` (kept across reloads; a private
    // store when null).
    Router(std::shared_ptr<const config::Config> cfg, const plugin::Registry& registry, Clock clock = {},
           std::shared_ptr<plugin::PluginMetrics::Store> plugin_series = nullptr);
    ~Router();
    Router(const Router&) = delete;
    Router& operator=(const Router&) = delete;

    const config::Config& config() const { return *cfg_; }
    const config::Deployment& deployment(uint32_t i) const { return cfg_->deployments[i]; }
    const DeploymentState& state(uint32_t i) const { return *states_[i]; }
    // The deployment with this model_info.id (identity), if any.
    std::optional<uint32_t> index_of(std::string_view id) const;
    // Hot reload: every deployment whose identity `previous` also has takes
    // over its state (counters, latency, health). Call before serving.
    void adopt_state(const Router& previous);
    // Drained deployments get no new requests (in-flight ones finish).
    void set_drained(uint32_t i, bool drained) const { states_[i]->drained.store(drained, std::memory_order_relaxed); }
    size_t deployment_count() const { return cfg_->deployments.size(); }
    const std::vector<std::string>& chain_names() const { return chain_names_; }
    // Every plugin instance the router made (chain first, then the request-only
    // ones of router_settings.request_strategies), each once.
    const std::vector<plugin::Instance*>& instances() const { return all_; }
    // The args instances()[i] was created with (its own, then the router.* ones).
    const std::vector<std::pair<std::string, std::string>>& instance_args(size_t i) const {
        return plugin_hosts_.at(i)->args;
    }
    // What a request's `strategies` may name (when the config allows it), comma-separated.
    const std::string& allowed_request_strategies() const { return allowed_names_; }

    // Reload handover: every instance of this (new, not yet serving) router
    // takes over the state of the `previous` router's instance of the same
    // strategy name — the k-th of a name to the k-th — through
    // tg_plugin_adopt_state (Instance::adopt_state_from). Call it before this
    // router serves. `previous` is still serving meanwhile (it routes until
    // this one is published, and its last requests deliver events after):
    // plugins share state that locks itself rather than moving it.
    // Returns how many instances took over state; refusals are logged at debug.
    size_t adopt_state_from(Router& previous);

    // Runs the chain for one model group and returns the plan, or the error
    // the client should get (unknown group, every deployment refused, ...).
    std::variant<RoutedPlan, ApiError> route(const RequestInfo& req) const;
    // The model group serving `name`: itself when a group has that name, else
    // the group it is an alias of (router_settings.model_group_alias), else
    // the most specific wildcard group matching it ("openai/*" before "*"), with
    // what its '*' stands for in `capture`. Null when nothing serves it.
    const std::string* resolve_group(const std::string& name, std::string* capture = nullptr) const;
    // Wildcard group names, most specific first.
    const std::vector<std::string>& wildcard_groups() const { return patterns_; }
    // The cross-group race of LiteLLM's fastest_response: every listed group's
    // best deployment at t=0 (a group listed twice contributes two different
    // deployments when it has them); their retries follow as failover.
    std::variant<RoutedPlan, ApiError> route_race(const RequestInfo& req) const;

    // Observer for the executor of one request: updates stats, tells plugins.
    // With `routed`, events carry the request contexts its strategies set.
    std::shared_ptr<dispatch::Observer> observer_for(const RequestInfo& req, const RoutedPlan* routed = nullptr) const;

    // Appends the plugin series (tailgate_plugin_failures_total{plugin}) in
    // Prometheus text format.
    void append_plugin_metrics(std::string& out) const;

    int64_t now_ms() const;

    // Shared state (issue 18): attempt outcomes and health changes go to the
    // fleet's link, plugins may ask it for the half-open probe lease. Set
    // before serving; null (the default) for a process alone.
    void set_fleet(fleet::LinkPtr link) { fleet_ = std::move(link); }
    // Other replicas' outcomes, to every instance exporting
    // tg_plugin_observe_remote (TG_EVENT_FLAG_REMOTE). Unknown ids are skipped.
    void observe_remote(const std::vector<fleet::RemoteOutcome>& outcomes) const;
    // A cooldown another replica started (read back after a (re)connect): the
    // host skips deployment `i` until `until_ms` (router clock), like a
    // cooldown carried over a reload.
    void carry_cooldown(uint32_t i, int64_t until_ms) const;

    // Called on every health state a plugin publishes, e.g. to count
    // cooldowns. Set before serving; must be quick.
    using HealthListener =
        std::function<void(uint32_t deployment, Health from, Health to, int64_t cooldown_until_ms)>;
    void set_health_listener(HealthListener fn) { health_listener_ = std::move(fn); }

private:
    class RequestObserver;
    friend class RequestObserver;
    using Chain = std::vector<plugin::Instance*>;
    struct GroupRoute;
    class RequestView;
    GroupRoute route_group(const std::string& group, const RequestInfo& req, const RequestView& view,
                           const Chain& chain, std::string& note, std::shared_ptr<RequestContexts>& contexts) const;
    std::variant<Chain, ApiError> chain_for(const RequestInfo& req) const;
    std::vector<uint32_t> host_eligible(const std::vector<uint32_t>& members, int64_t now) const;
    static void refuse_group(GroupRoute& out, const std::string& why, const std::vector<tg_deployment_stats>& stats,
                             int64_t now, const RouteScratch& scratch);
    static void read_plan(const tg_route& route, GroupRoute& out);
    void default_plan(const tg_route& route, const RequestInfo& req, std::vector<dispatch::AttemptSpec>& attempts) const;
    // The requested group's fallbacks (per request, else from the config).
    std::vector<std::string> fallback_groups(const RequestInfo& req, const std::string& requested) const;
    // Panic routing: the plan for the deployment closest to recovery, or the refusal.
    std::variant<RoutedPlan, ApiError> panic_or_refuse(const RequestInfo& req, const std::vector<std::string>& groups,
                                                       RoutedPlan out, const std::string& refusal,
                                                       int64_t retry_after, bool at_limit) const;
    // Hands hedges to the strategy that planned them (plan.admit; load budgets).
    void attach_admit(const RequestInfo& req, RoutedPlan& out, std::vector<plugin::Instance*> owners) const;
    plugin::InstancePtr make_instance(const config::StrategySpec& spec) const;
    void dispatch_event(tg_event& ev, const RequestContexts* contexts) const;
    ApiError unknown_group(const std::string& group) const;
    // The deployment of `groups` whose cooldown ends first (half-open ones first
    // of all); nullopt when none is cooling.
    std::optional<uint32_t> panic_target(const std::vector<std::string>& groups) const;
    static tg_host_api make_host_api();
    static void add_metric_callbacks(tg_host_api& api);
    // What a plugin instance's tg_host_api.host points at: the router, the
    // strategy's name (its log lines) and its metrics.
    struct PluginHost {
        Router* router = nullptr;
        std::string name;
        std::unique_ptr<plugin::PluginMetrics> metrics;
        std::vector<std::pair<std::string, std::string>> args;  // as handed to create(), router.* last
    };
    static Router& router_of(void* host) { return *static_cast<PluginHost*>(host)->router; }
    struct Quota {
        std::string_view id;
        fleet::QuotaKind kind;
        int64_t limit;
    };
    static std::optional<Quota> quota_of(const Router& r, uint32_t index, uint32_t kind);

    std::shared_ptr<const config::Config> cfg_;
    Clock clock_;
    std::shared_ptr<plugin::PluginMetrics::Store> plugin_series_;
    std::vector<tg_deployment> views_;                       // C views of cfg_->deployments
    std::vector<std::unique_ptr<DeploymentState>> states_;
    std::unordered_map<std::string, std::vector<uint32_t>> groups_;
    std::unordered_map<std::string_view, uint32_t> by_id_;  // views into cfg_->deployments[].id
    std::vector<std::string> patterns_;  // wildcard groups, most specific (longest literal part) first
    tg_host_api host_api_{};  // host member set per instance (PluginHost)
    // One per instance, in creation order; declared before the instances so
    // they outlive them (destroy() may still log).
    mutable std::vector<std::unique_ptr<PluginHost>> plugin_hosts_;  // grows in make_instance (construction only)
    HealthListener health_listener_;
    fleet::LinkPtr fleet_;  // null: no shared state
    const plugin::Registry& registry_;
    std::vector<plugin::InstancePtr> chain_;
    std::vector<std::string> chain_names_;
    // Instances only a request's `strategies` list can name (request_strategies
    // entries not in the chain). Like everything below, fixed at construction.
    std::vector<plugin::InstancePtr> request_only_;
    // Names a request may use, each mapped to the instance it gets: the chain's
    // first instance of that name, else the request-only one.
    std::vector<std::pair<std::string, plugin::Instance*>> by_name_;
    std::string allowed_names_;         // by_name_'s names, for error messages
    std::vector<plugin::Instance*> all_;  // chain_ then request_only_: who observes events
};

}  // namespace tailgate::router
