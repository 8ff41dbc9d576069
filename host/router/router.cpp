#include "router/router.hpp"
#include "router/route_scratch.hpp"
#include "common/fast_rng.hpp"
#include "plugin/abi_convert.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>

namespace tailgate::router {

namespace {

int64_t steady_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

}  // namespace

// The C view of a request, built once per request and shared by every group
// it routes (requested, fallbacks): only model_group differs between them.
class Router::RequestView {
public:
    RequestView(const RequestInfo& req, int64_t now) {
        raw.struct_size = sizeof raw;
        raw.request_id = req.request_id.c_str();
        raw.endpoint = plugin::to_abi(req.endpoint);
        raw.stream = req.stream ? 1 : 0;
        raw.overrides_json = req.overrides_json.c_str();
        raw.metadata_json = req.metadata_json.c_str();
        raw.now_ms = now;
        overrides_.reserve(req.overrides.size());
        for (const auto& [k, v] : req.overrides) overrides_.push_back(tg_kv{k.c_str(), v.c_str()});
        raw.overrides = overrides_.data();
        raw.override_count = static_cast<uint32_t>(overrides_.size());
        raw.user = req.user ? req.user->c_str() : nullptr;
        raw.max_tokens = req.max_tokens;
        raw.flags = (req.has_tools ? TG_REQUEST_HAS_TOOLS : 0u) |
                    (req.has_response_format ? TG_REQUEST_HAS_RESPONSE_FORMAT : 0u) |
                    (req.preview ? TG_REQUEST_PREVIEW : 0u);
        raw.prompt_tokens_estimate = req.prompt_tokens_estimate;
        headers_.reserve(req.headers.size());
        for (const auto& [k, v] : req.headers) headers_.push_back(tg_kv{k.c_str(), v.c_str()});
        raw.headers = headers_.empty() ? nullptr : headers_.data();
        raw.header_count = static_cast<uint32_t>(headers_.size());
        raw.caller_key_hash = req.caller_key_hash.empty() ? nullptr : req.caller_key_hash.c_str();
        raw.caller_key_alias = req.caller_key_alias.empty() ? nullptr : req.caller_key_alias.c_str();
        raw.caller_team = req.caller_team.empty() ? nullptr : req.caller_team.c_str();
    }
    RequestView(const RequestView&) = delete;
    RequestView& operator=(const RequestView&) = delete;

    tg_request raw{};  // model_group left null: set per group

private:
    std::vector<tg_kv> overrides_;
    std::vector<tg_kv> headers_;
};

Router::Router(std::shared_ptr<const config::Config> cfg, const plugin::Registry& registry, Clock clock,
               std::shared_ptr<plugin::PluginMetrics::Store> plugin_series)
    : cfg_(std::move(cfg)),
      clock_(std::move(clock)),
      plugin_series_(plugin_series ? std::move(plugin_series) : std::make_shared<plugin::PluginMetrics::Store>()),
      registry_(registry) {
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
        by_id_.emplace(d.id, i);
        auto& members = groups_[d.model_name];
        if (members.empty() && config::is_wildcard(d.model_name)) patterns_.push_back(d.model_name);
        members.push_back(i);
    }
    std::stable_sort(patterns_.begin(), patterns_.end(),
                     [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
    host_api_ = make_host_api();
    auto allow = [this](const std::string& name, plugin::Instance* inst) {
        for (const auto& [n, p] : by_name_)
            if (n == name) return;  // the first of a name wins
        by_name_.emplace_back(name, inst);
        allowed_names_ += (allowed_names_.empty() ? "" : ", ") + name;
    };
    for (const auto& spec : cfg_->router.strategies) {
        chain_.push_back(make_instance(spec));
        chain_names_.push_back(spec.name);
        all_.push_back(chain_.back().get());
        allow(spec.name, chain_.back().get());
    }
    for (const auto& spec : cfg_->router.request_strategies) {
        if (std::find(chain_names_.begin(), chain_names_.end(), spec.name) != chain_names_.end()) continue;
        request_only_.push_back(make_instance(spec));
        all_.push_back(request_only_.back().get());
        allow(spec.name, request_only_.back().get());
    }
}

Router::~Router() {
    // Destroy plugin instances before the tables they may point into.
    all_.clear();
    by_name_.clear();
    request_only_.clear();
    chain_.clear();
}

int64_t Router::now_ms() const { return clock_ ? clock_() : steady_ms(); }



struct Router::GroupRoute {
    enum Status { Ok, UnknownGroup, Refused } status = Ok;
    std::vector<dispatch::AttemptSpec> attempts;
    plugin::Instance* owner = nullptr;  // the strategy that shaped the plan (asked to admit hedges)
    std::vector<uint32_t> ranked;       // deployments as the chain left them, best first
    int64_t retry_after_ms = -1;  // when refused: soonest cooldown end or plugin hint, -1 if neither
    bool at_limit = false;        // retry_after_ms is a plugin's hint (a limit), not a cooldown
    std::string message;
    std::string capture;  // RoutedPlan::captures
};

const std::string* Router::resolve_group(const std::string& name, std::string* capture) const {
    if (auto it = groups_.find(name); it != groups_.end()) {
        if (capture) *capture = name;
        return &it->first;
    }
    // model_group_alias: served by its real group as if that had been asked for.
    if (auto a = cfg_->router.model_group_alias.find(name); a != cfg_->router.model_group_alias.end())
        if (auto it = groups_.find(a->second.group); it != groups_.end()) {
            if (capture) *capture = it->first;
            return &it->first;
        }
    for (const auto& p : patterns_)
        if (auto m = config::match_wildcard(p, name)) {
            if (capture) *capture = std::move(*m);
            return &groups_.find(p)->first;
        }
    return nullptr;
}

// A group the chain (or the drain) left without a deployment: says when to
// come back — the first cooldown to end, or sooner, the slot a plugin said its
// limit frees (route_retry_after).
void Router::refuse_group(GroupRoute& out, const std::string& why, const std::vector<tg_deployment_stats>& stats,
                          int64_t now, const RouteScratch& scratch) {
    out.status = GroupRoute::Refused;
    out.message = why;
    int64_t soonest = -1;
    for (const auto& st : stats)
        if (st.health == TG_HEALTH_COOLING && st.cooldown_until_ms > now) {
            int64_t left = st.cooldown_until_ms - now;
            if (soonest < 0 || left < soonest) soonest = left;
        }
    const int64_t hint = scratch.retry_after_ms;
    out.at_limit = hint >= 0 && (soonest < 0 || hint < soonest);
    out.retry_after_ms = out.at_limit ? hint : soonest;
    // The limiting plugin's note says which limits were hit.
    if (out.at_limit && !scratch.note.empty()) out.message += " (" + scratch.note + ")";
}

Router::GroupRoute Router::route_group(const std::string& name, const RequestInfo& req, const RequestView& view,
                                       const Chain& chain, std::string& note,
                                       std::shared_ptr<RequestContexts>& contexts) const {
    GroupRoute out;
    const std::string* resolved = resolve_group(name, &out.capture);
    if (!resolved) {
        out.status = GroupRoute::UnknownGroup;
        return out;
    }
    const std::string& group = *resolved;
    auto g = groups_.find(group);
    const auto& members = g->second;

    // Candidates with a stats snapshot each; both live on this stack frame.
    std::vector<tg_deployment_stats> stats;
    std::vector<tg_candidate> candidates;
    stats.reserve(members.size());
    candidates.reserve(members.size());
    const int64_t now = view.raw.now_ms;  // the request's one clock reading
    const auto eligible = host_eligible(members, now);
    for (uint32_t idx : eligible) stats.push_back(plugin::to_abi(states_[idx]->snapshot()));
    for (size_t k = 0; k < eligible.size(); ++k) candidates.push_back(tg_candidate{&views_[eligible[k]], &stats[k]});
    if (candidates.empty()) {
        out.status = GroupRoute::Refused;
        out.message = "every deployment of the group is drained";
        return out;
    }

    // On the heap: a pool thread's stack pages stay resident once touched.
    std::vector<tg_attempt> plan_buf(TG_MAX_ATTEMPTS);
    tg_attempt* const attempts = plan_buf.data();
    RouteScratch scratch;
    tg_route route{};
    route.struct_size = sizeof route;
    route.candidates = candidates.data();
    route.count = static_cast<uint32_t>(candidates.size());
    route.attempts = attempts;
    route.attempt_count = 0;
    route.host_private = &scratch;

    tg_request treq = view.raw;
    treq.model_group = group.c_str();

    auto refused = [&](const std::string& why) {
        refuse_group(out, why, stats, now, scratch);
        return out;
    };

    // Every strategy's output is checked against its input, and a failing one
    // is undone as a whole (Instance::route): no plugin can crash the router,
    // hand it another group's deployment or break another strategy's plan.
    plugin::RouteGuard guard;
    std::string error;
    for (plugin::Instance* p : chain) {
        const int64_t saved_hint = scratch.retry_after_ms;
        route.request_ctx = contexts ? contexts->get(p) : nullptr;
        int32_t rc = p->route(treq, route, guard, error);
        if (route.request_ctx != nullptr || contexts) {
            if (!contexts) contexts = std::make_shared<RequestContexts>();
            contexts->set(p, route.request_ctx);
        }
        if (rc == TG_ERR_NO_CANDIDATE) return refused("strategy '" + p->name() + "' refused all deployments");
        if (rc != TG_OK) {  // logged by Instance::route; the route is as it was
            scratch.retry_after_ms = saved_hint;
            continue;
        }
        if (route.count == 0) return refused("strategy '" + p->name() + "' filtered out all deployments");
        if (guard.plan_changed(route)) out.owner = route.attempt_count > 0 ? p : nullptr;
    }
    if (!scratch.note.empty()) {
        if (!note.empty()) note += "; ";
        note += scratch.note;
    }

    read_plan(route, out);
    if (out.attempts.empty()) {
        out.owner = nullptr;
        default_plan(route, req, out.attempts);
    }
    return out;
}

// The chain's result in host terms: the ranking, and the attempts it planned.
void Router::read_plan(const tg_route& route, GroupRoute& out) {
    out.ranked.reserve(route.count);
    for (uint32_t k = 0; k < route.count; ++k) out.ranked.push_back(route.candidates[k].deployment->index);
    for (uint32_t a = 0; a < route.attempt_count; ++a) {
        const tg_attempt& at = route.attempts[a];
        const auto launch = plugin::from_abi<Launch>(at.launch);  // the loader refused unknown rules
        if (at.candidate >= route.count || !launch) continue;    // stale position: drop it
        out.attempts.push_back(dispatch::AttemptSpec{route.candidates[at.candidate].deployment->index, *launch,
                                                     config::Millis(at.delay_ms)});
    }
}

// Default plan: the first candidate, then `num_retries` retries over the next
// ones; coming back to a deployment already tried waits an exponential backoff
// with jitter.
void Router::default_plan(const tg_route& route, const RequestInfo& req,
                          std::vector<dispatch::AttemptSpec>& attempts) const {
    {
        const auto& primary = cfg_->deployments[route.candidates[0].deployment->index];
        int retries = req.num_retries ? *req.num_retries
                      : primary.num_retries ? *primary.num_retries
                                            : cfg_->router.num_retries;
        uint32_t total = 1 + static_cast<uint32_t>(std::clamp(retries, 0, int(kMaxAttempts) - 1));
        auto& rng = FastRng::for_this_thread();
        std::uniform_real_distribution<double> jitter(0.5, 1.0);
        for (uint32_t a = 0; a < total; ++a) {
            uint32_t pos = a % route.count;
            uint32_t round = a / route.count;
            int64_t backoff = 0;
            if (round > 0) {
                int64_t base = std::min<int64_t>(250LL << std::min<uint32_t>(round - 1, 5), 8000);
                base = std::max<int64_t>(base, cfg_->router.retry_after.count());
                backoff = static_cast<int64_t>(static_cast<double>(base) * jitter(rng));
            }
            attempts.push_back(dispatch::AttemptSpec{route.candidates[pos].deployment->index,
                                                     a == 0 ? Launch::AtStart : Launch::OnFailure,
                                                     config::Millis(backoff)});
        }
    }
}

// The members the host lets the chain see: not drained, and not in a cooldown
// carried over a reload unless that would leave nothing.
std::vector<uint32_t> Router::host_eligible(const std::vector<uint32_t>& members, int64_t now) const {
    std::vector<uint32_t> out;
    out.reserve(members.size());
    bool carried = false;
    for (uint32_t idx : members) {
        const auto& st = *states_[idx];
        if (st.drained.load(std::memory_order_relaxed)) continue;
        if (st.carried_cooldown_until_ms.load(std::memory_order_relaxed) > now) {
            carried = true;
            continue;
        }
        out.push_back(idx);
    }
    if (out.empty() && carried)
        for (uint32_t idx : members)
            if (!states_[idx]->drained.load(std::memory_order_relaxed)) out.push_back(idx);
    return out;
}

// A request's `strategies` only picks among instances made at start: names
// are matched as exact strings against the configured ones, so nothing from a
// request reaches the plugin loader, and errors name no file or directory.
std::variant<Router::Chain, ApiError> Router::chain_for(const RequestInfo& req) const {
    Chain chain;
    if (req.strategies.empty()) {
        for (const auto& p : chain_) chain.push_back(p.get());
        return chain;
    }
    if (!cfg_->router.allow_request_strategy_override)
        return ApiError::bad_request(
            "per-request 'strategies' are disabled; set router_settings.allow_request_strategy_override: true",
            "strategies", "strategy_override_disabled");
    if (req.strategies.size() > config::kMaxRequestStrategies)
        return ApiError::bad_request("'strategies' may name at most " + std::to_string(config::kMaxRequestStrategies) +
                                         " strategies",
                                     "strategies", "too_many_strategies");
    for (size_t i = 0; i < req.strategies.size(); ++i) {
        const std::string& name = req.strategies[i];
        auto it = std::find_if(by_name_.begin(), by_name_.end(), [&](const auto& e) { return e.first == name; });
        // The name is not echoed: it is the client's text and may be a path.
        if (it == by_name_.end())
            return ApiError::bad_request("strategies[" + std::to_string(i) +
                                             "] is not an allowed strategy; allowed: " + allowed_names_ +
                                             " (router_settings.strategies and request_strategies)",
                                         "strategies", "unknown_strategy");
        if (std::find(chain.begin(), chain.end(), it->second) != chain.end())
            return ApiError::bad_request("strategies[" + std::to_string(i) + "]: '" + name + "' is listed twice",
                                         "strategies", "duplicate_strategy");
        chain.push_back(it->second);
    }
    return chain;
}

// Nothing can serve: 429 with Retry-After when deployments are only cooling or
// at a limit (they come back by themselves), 503 otherwise.
static ApiError no_deployment_error(const std::string& msg, int64_t retry_after_ms, bool at_limit = false) {
    if (retry_after_ms < 0) return ApiError::unavailable(msg);
    ApiError e;
    e.status = 429;
    e.type = "rate_limit_error";
    e.code = at_limit ? "all_deployments_at_limit" : "all_deployments_cooling_down";
    e.message = msg + "; retry in " + std::to_string(retry_after_ms) + " ms";
    e.retry_after_s = static_cast<long>((retry_after_ms + 999) / 1000);
    return e;
}

std::optional<uint32_t> Router::panic_target(const std::vector<std::string>& groups) const {
    std::optional<uint32_t> best;
    int64_t best_until = 0;
    for (const auto& name : groups) {
        const std::string* g = resolve_group(name);
        if (!g) continue;
        for (uint32_t d : groups_.find(*g)->second) {
            const auto& st = *states_[d];
            std::lock_guard lk(st.mu);
            if (st.health == Health::Healthy) continue;
            const int64_t until = st.health == Health::HalfOpen ? 0 : st.cooldown_until_ms;
            if (!best || until < best_until) {
                best = d;
                best_until = until;
            }
        }
    }
    return best;
}

ApiError Router::unknown_group(const std::string& group) const {
    std::string known;
    for (const auto& name : cfg_->model_groups()) known += (known.empty() ? "" : ", ") + name;
    return ApiError::not_found("The model `" + group + "` does not exist. Available models: " + known,
                               "model_not_found");
}

std::variant<RoutedPlan, ApiError> Router::route_race(const RequestInfo& req) const {
    for (const auto& g : req.race_groups)
        if (!resolve_group(g)) return unknown_group(g);
    auto chain_or = chain_for(req);
    if (auto* e = std::get_if<ApiError>(&chain_or)) return *e;
    const Chain& chain = std::get<Chain>(chain_or);

    RoutedPlan out;
    dispatch::Plan& plan = out.plan;
    plan.stream = req.stream;
    const RequestView view(req, now_ms());
    std::vector<std::vector<dispatch::AttemptSpec>> per_group;  // index = position in out.groups
    std::vector<std::string> refusals;
    int64_t retry_after = -1;
    bool at_limit = false;  // retry_after comes from a limit, not a cooldown
    std::vector<dispatch::AttemptSpec> failover;
    std::map<std::string, uint32_t> seen;  // group → occurrences so far
    for (const auto& g : req.race_groups) {
        uint32_t occurrence = seen[g]++;
        auto it = std::find(out.groups.begin(), out.groups.end(), g);
        uint32_t gi;
        if (it == out.groups.end()) {
            GroupRoute gr = route_group(g, req, view, chain, out.note, out.contexts);
            if (gr.status == GroupRoute::Refused) {
                refusals.push_back(g + ": " + gr.message);
                if (gr.retry_after_ms >= 0 && (retry_after < 0 || gr.retry_after_ms < retry_after)) {
                    retry_after = gr.retry_after_ms;
                    at_limit = gr.at_limit;
                }
                continue;
            }
            gi = static_cast<uint32_t>(out.groups.size());
            out.groups.push_back(g);
            out.captures.push_back(gr.capture);
            // The plan's first attempt, then the other deployments as the chain
            // ranked them: a group listed twice races two different deployments.
            std::vector<dispatch::AttemptSpec> uniq{gr.attempts.front()};
            for (uint32_t d : gr.ranked)
                if (d != uniq.front().deployment) uniq.push_back(dispatch::AttemptSpec{d, Launch::AtStart});
            for (auto& a : uniq) a.group = gi;
            per_group.push_back(uniq);
            for (size_t k = 1; k < gr.attempts.size(); ++k) {
                auto a = gr.attempts[k];
                a.group = gi;
                a.launch = Launch::OnFailure;
                failover.push_back(a);
            }
        } else {
            gi = static_cast<uint32_t>(it - out.groups.begin());
        }
        const auto& uniq = per_group[gi];
        auto a = uniq[occurrence % uniq.size()];
        a.launch = Launch::AtStart;
        a.delay = config::Millis(0);
        plan.attempts.push_back(a);
    }
    if (plan.attempts.empty()) {
        std::string msg = "No deployment available for any raced model group";
        for (const auto& r : refusals) msg += "; " + r;
        return no_deployment_error(msg, retry_after, at_limit);
    }
    for (const auto& a : failover) {
        if (plan.attempts.size() >= 4 * kMaxAttempts) break;
        plan.attempts.push_back(a);
    }
    plan.shadow_sample_rate = cfg_->router.shadow_sample_rate;
    if (!out.note.empty()) out.note += "; ";
    out.note += "race " + std::to_string(std::count_if(plan.attempts.begin(), plan.attempts.end(), [](const auto& a) {
                    return a.launch == Launch::AtStart;
                })) + " across groups";
    if (req.stream) {
        const auto& primary = cfg_->deployments[plan.attempts.front().deployment];
        auto st = primary.stream_timeout ? primary.stream_timeout : cfg_->router.stream_timeout;
        if (st) plan.first_content_timeout = *st;
    }
    return out;
}

std::vector<std::string> Router::fallback_groups(const RequestInfo& req, const std::string& requested) const {
    std::vector<std::string> groups{req.model_group};
    if (req.fallbacks) {
        groups.insert(groups.end(), req.fallbacks->begin(), req.fallbacks->end());
    } else {
        for (const auto& [g, list] : cfg_->router.fallbacks)
            if (g == requested) groups.insert(groups.end(), list.begin(), list.end());
    }
    return groups;
}

std::variant<RoutedPlan, ApiError> Router::panic_or_refuse(const RequestInfo& req,
                                                       const std::vector<std::string>& groups, RoutedPlan out,
                                                       const std::string& refusal, int64_t retry_after,
                                                       bool at_limit) const {
    const auto& rs = cfg_->router;
    dispatch::Plan& plan = out.plan;
    // Nothing can serve the group or its fallbacks right now.
    std::string msg = "No deployment available for model group '" + req.model_group + "'";
    if (groups.size() > 1) msg += " or its fallbacks";
    msg += ": " + refusal;
    // Panic routing (Envoy's term): when everything is cooling, refusing would
    // only make clients retry (and sleep Retry-After); the deployment closest
    // to recovery answers instead. Its failure does not extend the cooldown
    // (health ignores outcomes while cooling), its success ends it.
    // Deployments at a limit (rpm/tpm) are healthy: panic_target never picks
    // them, so a group that is only at its limits gets the 429.
    const auto target = rs.panic_routing && retry_after >= 0 ? panic_target(groups) : std::nullopt;
    if (!target) return no_deployment_error(msg, retry_after, at_limit);
    const auto& d = cfg_->deployments[*target];
    uint32_t gi = 0;
    while (gi + 1 < out.groups.size() && resolve_group(out.groups[gi]) != resolve_group(d.model_name)) ++gi;
    plan.attempts.push_back(dispatch::AttemptSpec{*target, Launch::AtStart, config::Millis(0), gi});
    out.panic = true;
    if (!out.note.empty()) out.note += "; ";
    out.note += "panic: every deployment cooling, trying " + d.id;
    if (req.stream) {
        auto st = d.stream_timeout ? d.stream_timeout : rs.stream_timeout;
        if (st) plan.first_content_timeout = *st;
    }
    plan.shadow_sample_rate = 0;
    return out;
}


void Router::attach_admit(const RequestInfo& req, RoutedPlan& out, std::vector<plugin::Instance*> owners) const {
    bool any_owner = false;
    for (auto* o : owners) any_owner |= o != nullptr && o->has_admit();
    if (!any_owner) return;
    dispatch::Plan& plan = out.plan;
    struct Ctx {
        std::vector<plugin::Instance*> owners;
        std::vector<uint32_t> deployments;
        std::string request_id;
        bool stream;
        std::shared_ptr<RequestContexts> contexts;
    };
    auto ctx = std::make_shared<Ctx>();
    ctx->owners = std::move(owners);
    for (const auto& a : plan.attempts) ctx->deployments.push_back(a.deployment);
    ctx->request_id = req.request_id;
    ctx->stream = req.stream;
    ctx->contexts = out.contexts;
    plan.admit = [this, ctx](uint32_t i, double elapsed_ms) {
        if (i >= ctx->owners.size() || ctx->owners[i] == nullptr) return true;
        tg_event ev{};
        ev.struct_size = sizeof ev;
        ev.type = TG_EVENT_STARTED;
        ev.deployment = &views_[ctx->deployments[i]];
        ev.request_id = ctx->request_id.c_str();
        ev.model_group = ev.deployment->model_group;
        ev.stream = ctx->stream ? 1 : 0;
        ev.attempt = i;
        ev.at_ms = now_ms();
        ev.elapsed_ms = elapsed_ms;
        ev.ttft_ms = -1;
        ev.retry_after_ms = -1;
        ev.prompt_tokens = -1;
        ev.completion_tokens = -1;
        ev.request_ctx = ctx->contexts ? ctx->contexts->get(ctx->owners[i]) : nullptr;
        return ctx->owners[i]->admit(ev);
    };
}

std::variant<RoutedPlan, ApiError> Router::route(const RequestInfo& req) const {
    if (!req.race_groups.empty()) return route_race(req);
    const std::string* requested = resolve_group(req.model_group);
    if (!requested) return unknown_group(req.model_group);
    auto chain_or = chain_for(req);
    if (auto* e = std::get_if<ApiError>(&chain_or)) return *e;
    const Chain& chain = std::get<Chain>(chain_or);

    const auto& rs = cfg_->router;
    RoutedPlan out;
    dispatch::Plan& plan = out.plan;
    plan.stream = req.stream;
    const RequestView view(req, now_ms());

    const std::vector<std::string> groups = fallback_groups(req, *requested);
    std::vector<std::string> cw_groups;
    for (const auto& [g, list] : rs.context_window_fallbacks)
        if (g == *requested) cw_groups = list;

    int64_t retry_after = -1;
    bool at_limit = false;  // retry_after comes from a limit, not a cooldown
    std::string refusal;
    std::vector<plugin::Instance*> owners;  // per attempt
    auto add_group = [&](const std::string& g, bool context_window_only) -> std::optional<ApiError> {
        if (plan.attempts.size() >= 4 * kMaxAttempts) return std::nullopt;
        GroupRoute gr = route_group(g, req, view, chain, out.note, out.contexts);
        if (gr.status == GroupRoute::UnknownGroup) {
            return ApiError::bad_request("fallback model group '" + g + "' does not exist", "fallbacks",
                                         "model_not_found");
        }
        if (gr.status == GroupRoute::Refused) {
            out.groups.push_back(g);  // keeps indexes honest: a later group is still a fallback
            out.captures.push_back(gr.capture);
            if (refusal.empty()) refusal = gr.message;
            if (gr.retry_after_ms >= 0 && (retry_after < 0 || gr.retry_after_ms < retry_after)) {
                retry_after = gr.retry_after_ms;
                at_limit = gr.at_limit;
            }
            return std::nullopt;
        }
        uint32_t gi = static_cast<uint32_t>(out.groups.size());
        out.groups.push_back(g);
        out.captures.push_back(gr.capture);
        owners.insert(owners.end(), gr.attempts.size(), gr.owner);
        bool first = true;
        for (auto a : gr.attempts) {
            a.group = gi;
            a.context_window_only = context_window_only;
            // A fallback group starts only once everything before it failed.
            if (first && !plan.attempts.empty()) {
                a.launch = Launch::OnFailure;
                a.delay = config::Millis(0);
            }
            first = false;
            plan.attempts.push_back(a);
        }
        return std::nullopt;
    };
    for (size_t k = 0; k < groups.size(); ++k) {
        if (auto e = add_group(groups[k], false)) return *e;
    }
    if (plan.attempts.empty()) return panic_or_refuse(req, groups, std::move(out), refusal, retry_after, at_limit);
    for (const auto& g : cw_groups)
        if (auto e = add_group(g, true)) return *e;

    // Stream first-content timeout: deployment of the primary, else router.
    const auto& primary = cfg_->deployments[plan.attempts.front().deployment];
    if (req.stream) {
        auto st = primary.stream_timeout ? primary.stream_timeout : rs.stream_timeout;
        if (st) plan.first_content_timeout = *st;
    }
    plan.max_body_bytes = 64u * 1024 * 1024;
    plan.shadow_sample_rate = rs.shadow_sample_rate;

    attach_admit(req, out, std::move(owners));
    return out;
}

}  // namespace tailgate::router
