// The host side of the plugin boundary for the router: the tg_host_api table
// each instance gets (through its PluginHost: name, metrics, args), instance
// creation with the router.* settings, per-request contexts, reload handover
// and the plugin series of /metrics.
#include "common/prometheus_text.hpp"
#include "plugin/abi_convert.hpp"
#include "router/router.hpp"
#include "router/route_scratch.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>

namespace tailgate::router {

RequestContexts::~RequestContexts() {
    for (auto& [inst, ctx] : slots_) inst->release_request(ctx);
}

void RequestContexts::set(plugin::Instance* p, void* ctx) {
    for (auto& slot : slots_)
        if (slot.first == p) {
            // A plugin replacing its context without freeing the old one would
            // leak it: release what it leaves behind.
            if (slot.second != ctx) p->release_request(slot.second);
            slot.second = ctx;
            return;
        }
    if (ctx != nullptr) slots_.emplace_back(p, ctx);
}

// The fleet quota a deployment's limit of `kind` has, if any: a fleet, a
// known deployment, a limit of that kind.
std::optional<Router::Quota> Router::quota_of(const Router& r, uint32_t index, uint32_t kind) {
    if (!r.fleet_ || index >= r.cfg_->deployments.size() || kind > TG_QUOTA_TOKENS) return std::nullopt;
    const auto& d = r.cfg_->deployments[index];
    const int64_t limit = kind == TG_QUOTA_TOKENS ? d.tpm : d.rpm;
    if (limit <= 0) return std::nullopt;
    return Quota{d.id, kind == TG_QUOTA_TOKENS ? fleet::QuotaKind::Tokens : fleet::QuotaKind::Requests, limit};
}

tg_host_api Router::make_host_api() {
    tg_host_api api{};
    api.struct_size = sizeof api;
    api.host = nullptr;  // a PluginHost, set per instance by make_instance
    api.log = [](void* h, uint32_t level, const char* msg) {
        const std::string& name = static_cast<PluginHost*>(h)->name;
        if (msg == nullptr) return;
        switch (level) {
            case TG_LOG_DEBUG: spdlog::debug("plugin {}: {}", name, msg); break;
            case TG_LOG_INFO: spdlog::info("plugin {}: {}", name, msg); break;
            case TG_LOG_WARN: spdlog::warn("plugin {}: {}", name, msg); break;
            default: spdlog::error("plugin {}: {}", name, msg); break;
        }
    };
    api.now_ms = [](void* h) { return router_of(h).now_ms(); };
    api.publish_latency = [](void* h, uint32_t index, uint32_t which, const tg_latency_summary* s) {
        auto* r = &router_of(h);
        if (index >= r->states_.size() || s == nullptr) return;
        auto& st = *r->states_[index];
        std::lock_guard lk(st.mu);
        (which == 0 ? st.ttft : st.total) = plugin::from_abi(*s);
    };
    api.publish_health = [](void* h, uint32_t index, uint32_t health, int64_t until) {
        auto* r = &router_of(h);
        const auto to = plugin::from_abi<Health>(health);
        if (index >= r->states_.size() || !to) return;  // no state the host could act on
        auto& st = *r->states_[index];
        std::lock_guard lk(st.mu);
        const Health from = st.health;
        st.health = *to;
        st.cooldown_until_ms = until;
        // A plugin publishing this deployment's health (one that carried its
        // state over the reload does at once) takes over from the host's
        // carried cooldown.
        st.carried_cooldown_until_ms.store(0, std::memory_order_relaxed);
        if (r->health_listener_) r->health_listener_(index, from, *to, until);
        if (r->fleet_) {
            const int64_t until_wall = *to == Health::Cooling ? fleet::wall_ms() + (until - r->now_ms()) : 0;
            r->fleet_->health_changed(r->cfg_->deployments[index].id, *to, until_wall);
        }
    };
    api.probe_lease = [](void* h, uint32_t index) -> int32_t {
        const Router& r = router_of(h);
        if (!r.fleet_ || index >= r.views_.size()) return 1;
        return r.fleet_->probe_lease(r.cfg_->deployments[index].id) ? 1 : 0;
    };
    api.quota_take = [](void* h, uint32_t index, uint32_t kind, int64_t amount, int64_t* retry_after) -> int32_t {
        const Router& r = router_of(h);
        if (retry_after != nullptr) *retry_after = -1;
        const auto q = quota_of(r, index, kind);
        if (!q) return TG_QUOTA_NONE;
        switch (r.fleet_->quota_take(q->id, q->kind, q->limit, std::max<int64_t>(0, amount), retry_after)) {
            case fleet::QuotaAnswer::Granted: return TG_QUOTA_GRANTED;
            case fleet::QuotaAnswer::Exhausted: return TG_QUOTA_EXHAUSTED;
            default: return TG_QUOTA_LOCAL;
        }
    };
    api.quota_settle = [](void* h, uint32_t index, uint32_t kind, int64_t amount) {
        const Router& r = router_of(h);
        if (const auto q = quota_of(r, index, kind); q && amount != 0)
            r.fleet_->quota_settle(q->id, q->kind, q->limit, amount);
    };
    api.route_note = [](tg_route* route, const char* text) {
        if (route == nullptr || route->host_private == nullptr || text == nullptr) return;
        auto* scratch = static_cast<RouteScratch*>(route->host_private);
        if (!scratch->note.empty()) scratch->note += "; ";
        scratch->note += text;
    };
    api.route_retry_after = [](tg_route* route, int64_t ms) {
        if (route == nullptr || route->host_private == nullptr || ms < 0) return;
        auto* scratch = static_cast<RouteScratch*>(route->host_private);
        if (scratch->retry_after_ms < 0 || ms < scratch->retry_after_ms) scratch->retry_after_ms = ms;
    };
    api.deployment_count = [](void* h) { return static_cast<uint32_t>(router_of(h).views_.size()); };
    api.deployment_at = [](void* h, uint32_t i) -> const tg_deployment* {
        const auto& views = router_of(h).views_;
        return i < views.size() ? &views[i] : nullptr;
    };
    api.log_enabled = [](void*, uint32_t level) -> int32_t {
        const auto lvl = level == TG_LOG_DEBUG  ? spdlog::level::debug
                         : level == TG_LOG_INFO ? spdlog::level::info
                         : level == TG_LOG_WARN ? spdlog::level::warn
                                                : spdlog::level::err;
        return spdlog::should_log(lvl) ? 1 : 0;
    };
    add_metric_callbacks(api);
    return api;
}

// tg_host_api.metric_register / metric_update: the instance's PluginMetrics.
void Router::add_metric_callbacks(tg_host_api& api) {
    api.metric_register = [](void* h, uint32_t kind, const char* name, const char* help, const char* label_name,
                             const char* const* values, uint32_t value_count, const double* buckets,
                             uint32_t bucket_count) -> int32_t {
        auto* ph = static_cast<PluginHost*>(h);
        std::string why;
        int32_t id = -1;
        try {
            id = ph->metrics->add(kind, name, help, label_name, values, value_count, buckets, bucket_count, why);
        } catch (...) {
            why = "out of memory";
        }
        if (id < 0) spdlog::warn("plugin {}: metric refused: {}", ph->name, why);
        return id;
    };
    api.metric_update = [](void* h, int32_t metric, uint32_t label_index, double value) {
        static_cast<PluginHost*>(h)->metrics->update(metric, label_index, value);
    };
}

// Every plugin also gets the router-level settings as `router.*` args, so a
// health strategy reads LiteLLM's allowed_fails/cooldown_time where users put them.
plugin::InstancePtr Router::make_instance(const config::StrategySpec& spec) const {
    auto args = spec.args;
    const auto& rs = cfg_->router;
    args.emplace_back("router.allowed_fails", std::to_string(rs.allowed_fails));
    args.emplace_back("router.cooldown_time", std::to_string(rs.cooldown_time.count()) + "ms");
    args.emplace_back("router.disable_cooldowns", rs.disable_cooldowns ? "true" : "false");
    args.emplace_back("router.num_retries", std::to_string(rs.num_retries));
    args.emplace_back("router.timeout", std::to_string(rs.timeout.count()) + "ms");
    for (const auto& [k, v] : rs.allowed_fails_policy) args.emplace_back("router.allowed_fails_policy." + k, v);
    auto ph = std::make_unique<PluginHost>();
    ph->router = const_cast<Router*>(this);  // the host callbacks update deployment state
    ph->name = spec.name.find('/') == std::string::npos ? spec.name : std::filesystem::path(spec.name).stem().string();
    // A second instance of one strategy gets its own series: tailgate_plugin_<name>_2_...
    size_t same = 1;
    for (const auto& other : plugin_hosts_) same += other->name == ph->name;
    ph->metrics = std::make_unique<plugin::PluginMetrics>(same == 1 ? ph->name : ph->name + "_" + std::to_string(same),
                                                          plugin_series_);
    tg_host_api table = host_api_;
    table.host = ph.get();
    PluginHost* raw = ph.get();
    plugin_hosts_.push_back(std::move(ph));  // before create(): the plugin may log from its constructor
    try {
        auto inst = registry_.create(spec.name, &table, args);
        raw->metrics->seal();
        inst->count_failures_into(plugin_series_->failures(inst->name()));
        raw->args = std::move(args);
        return inst;
    } catch (const plugin::PluginError& e) {
        // Like every config error: where in which file.
        std::string where = cfg_->file;
        if (spec.line > 0) where += ":" + std::to_string(spec.line);
        throw plugin::PluginError(where + ": strategy '" + spec.name + "': " + e.what());
    }
}

size_t Router::adopt_state_from(Router& previous) {
    std::vector<bool> taken(previous.all_.size(), false);
    size_t adopted = 0;
    for (plugin::Instance* p : all_) {
        for (size_t j = 0; j < previous.all_.size(); ++j) {
            if (taken[j] || previous.all_[j]->name() != p->name()) continue;
            taken[j] = true;
            if (std::string why = p->adopt_state_from(*previous.all_[j]); why.empty()) ++adopted;
            else spdlog::debug("reload: strategy '{}' starts fresh: {}", p->name(), why);
            break;
        }
    }
    return adopted;
}

void Router::append_plugin_metrics(std::string& out) const {
    // One series per strategy name (bounded by the config): every instance of
    // that name, of this generation and the ones before, counts into it.
    std::vector<std::pair<std::string, uint64_t>> by_name;
    for (const plugin::Instance* p : all_) {
        auto it = std::find_if(by_name.begin(), by_name.end(), [&](const auto& e) { return e.first == p->name(); });
        if (it == by_name.end()) by_name.emplace_back(p->name(), plugin_series_->failures(p->name())->load());
    }
    for (const auto& ph : plugin_hosts_) ph->metrics->render(out);
    prometheus::family(
        out, "tailgate_plugin_failures_total", "counter",
        "Strategy route() calls that failed or broke the plugin ABI's rules (their decision was undone).");
    for (const auto& [name, n] : by_name)
        prometheus::sample(out, "tailgate_plugin_failures_total",
                           "plugin=\"" + prometheus::escape_label_value(name) + "\"", std::to_string(n));
}

}  // namespace tailgate::router
