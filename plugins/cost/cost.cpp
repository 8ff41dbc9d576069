// cost — orders candidates by expected cost per request, cheapest first.
//
//   expected cost = input_cost_per_token  x expected prompt tokens
//                 + output_cost_per_token x expected completion tokens
//
// Expected tokens: a running average of the usage reported by successful
// attempts of the deployment's model group (the mean of the first 100, then an
// exponential moving average with weight 1/100); before any data 1000 prompt /
// 250 completion tokens (args default_prompt_tokens / default_completion_tokens).
// Embeddings requests expect 0 completion tokens.
//
// Prices: the deployment's input_cost_per_token / output_cost_per_token from the
// config when >= 0; otherwise, per component, the built-in table below keyed by
// upstream model name. A deployment whose price stays unknown (for a component
// the request needs) is ordered after every priced one, and a warning says so
// once per deployment.
//
// Ties (costs within 1e-12, and the unknown-price group) are ordered by latency
// published by the host (streams: ttft.mean_ms, else total.mean_ms; deployments
// without samples after those with), then by original order.
//
// Filters nothing and writes no attempts; an earlier strategy's plan is kept,
// renumbered to follow its candidates to their new positions.
#include <tailgate/plugin.hpp>
#include <tailgate/price_table.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace {

using tailgate::sdk::Args;
using tailgate::sdk::ConfigError;
using tailgate::sdk::Host;
using tailgate::sdk::Route;
using tailgate::sdk::Strategy;

constexpr double kTieEpsilon = 1e-12;  // USD
constexpr double kAverageWindow = 100;  // samples before the average turns exponential

struct Price {
    double in = -1;   // USD per prompt token, < 0 unknown
    double out = -1;  // USD per completion token, < 0 unknown
    const char* table_model = nullptr;  // table entry used for a component, if any
};

Price resolve_price(const tg_deployment& d) {
    Price p;
    if (TG_HAS_MEMBER(&d, tg_deployment, input_cost_per_token) && d.input_cost_per_token >= 0 &&
        std::isfinite(d.input_cost_per_token))
        p.in = d.input_cost_per_token;
    if (TG_HAS_MEMBER(&d, tg_deployment, output_cost_per_token) && d.output_cost_per_token >= 0 &&
        std::isfinite(d.output_cost_per_token))
        p.out = d.output_cost_per_token;
    if (p.in < 0 || p.out < 0) {
        if (const tailgate::prices::TablePrice* t = tailgate::prices::lookup(d.upstream_model)) {
            if (p.in < 0) p.in = t->in;
            if (p.out < 0) p.out = t->out;
            p.table_model = t->model;
        }
    }
    return p;
}

// Running averages of one model group's usage. Shared with the next instance
// on a reload (by group name), hence its own lock.
struct Usage {
    std::mutex mu;
    double prompt = 0, completion = 0;
    uint64_t prompt_n = 0, completion_n = 0;

    static void add(double& mean, uint64_t& n, double x) {
        ++n;
        mean += (x - mean) / std::min<double>(static_cast<double>(n), kAverageWindow);
    }
};

struct Keyed {
    bool known;
    double cost;
    bool has_latency;
    double latency;
    uint32_t orig;
    tg_candidate c;
};

std::string fmt_usd(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "$%.3g", v);
    return buf;
}

class Cost final : public Strategy {
public:
    Cost(Host host, Args args) : host_(host) {
        args.allow_only({"default_prompt_tokens", "default_completion_tokens"});
        default_prompt_ = tokens(args, "default_prompt_tokens", 1000);
        default_completion_ = tokens(args, "default_completion_tokens", 250);
        const uint32_t n = host_.deployment_count();
        for (uint32_t i = 0; i < n; ++i) {
            const tg_deployment* d = host_.deployment_at(i);
            cached_.push_back(d);
            prices_.push_back(d ? resolve_price(*d) : Price{});
        }
    }

    // Reload: the learned token averages carry over by model group name
    // (shared: the previous instance still observes its last requests).
    bool adopt_state(Strategy& previous) override {
        auto& prev = static_cast<Cost&>(previous);
        std::shared_lock lk(prev.usage_mu_);
        std::unique_lock mine(usage_mu_);
        for (const auto& [group, u] : prev.usage_) usage_.emplace(group, u);
        return true;
    }

    tg_status route(const tg_request& request, Route& r) override {
        if (r.size() == 0) return TG_OK;
        const bool embeddings =
            TG_HAS_MEMBER(&request, tg_request, endpoint) && request.endpoint == TG_ENDPOINT_EMBEDDINGS;
        const bool stream = TG_HAS_MEMBER(&request, tg_request, stream) && request.stream != 0;
        const char* group = TG_HAS_MEMBER(&request, tg_request, model_group) ? request.model_group : nullptr;
        auto [prompt, completion] = expected_tokens(group);
        if (embeddings) completion = 0;

        thread_local std::vector<Keyed> items;
        items.clear();
        for (uint32_t i = 0; i < r.size(); ++i) {
            const tg_candidate& c = r[i];
            Keyed k{false, 0, false, 0, i, c};
            if (c.deployment != nullptr) {
                const Price p = price_of(*c.deployment);
                const bool need_in = prompt > 0, need_out = completion > 0;
                k.known = !(need_in && p.in < 0) && !(need_out && p.out < 0);
                if (k.known)
                    k.cost = (need_in ? p.in * prompt : 0) + (need_out ? p.out * completion : 0);
                else
                    warn_unknown(*c.deployment, p, need_in, need_out);
            }
            latency_of(c.stats, stream, k);
            items.push_back(k);
        }

        // Priced first, cheapest first; original order among equals (stable).
        std::stable_sort(items.begin(), items.end(), [](const Keyed& a, const Keyed& b) {
            if (a.known != b.known) return a.known;
            return a.known && a.cost < b.cost;
        });
        // Within a tie (same cost up to kTieEpsilon from the run's first, or all
        // unknown): faster first, no-latency-data last, else original order.
        for (size_t start = 0; start < items.size();) {
            size_t end = start + 1;
            while (end < items.size() && items[end].known == items[start].known &&
                   (!items[start].known || items[end].cost - items[start].cost <= kTieEpsilon))
                ++end;
            if (end - start > 1)
                std::stable_sort(items.begin() + start, items.begin() + end, [](const Keyed& a, const Keyed& b) {
                    if (a.has_latency != b.has_latency) return a.has_latency;
                    return a.has_latency && a.latency < b.latency;
                });
            start = end;
        }

        thread_local std::vector<uint32_t> new_pos;
        new_pos.assign(r.size(), 0);
        for (uint32_t i = 0; i < r.size(); ++i) {
            r[i] = items[i].c;
            new_pos[items[i].orig] = i;
        }
        tg_route* raw = r.raw();
        for (uint32_t a = 0; a < raw->attempt_count; ++a)
            if (raw->attempts[a].candidate < r.size()) raw->attempts[a].candidate = new_pos[raw->attempts[a].candidate];

        const Keyed& first = items.front();
        if (first.c.deployment != nullptr && first.c.deployment->id != nullptr)
            host_.note(raw, std::string("cost: ") + first.c.deployment->id +
                                (first.known ? " (~" + fmt_usd(first.cost) + "/request)" : " (price unknown)"));
        return TG_OK;
    }

    void observe(const tg_event& ev) override {
        if (ev.type != TG_EVENT_SUCCESS) return;
        const int64_t p = TG_HAS_MEMBER(&ev, tg_event, prompt_tokens) ? ev.prompt_tokens : -1;
        const int64_t c = TG_HAS_MEMBER(&ev, tg_event, completion_tokens) ? ev.completion_tokens : -1;
        if (p < 0 && c < 0) return;
        // The deployment's own group (a fallback attempt serves another group than the request's).
        const char* group = ev.deployment && ev.deployment->model_group ? ev.deployment->model_group : ev.model_group;
        if (group == nullptr) return;
        Usage& u = usage_for(group);
        std::lock_guard lk(u.mu);
        if (p >= 0) Usage::add(u.prompt, u.prompt_n, static_cast<double>(p));
        if (c >= 0) Usage::add(u.completion, u.completion_n, static_cast<double>(c));
    }

private:
    static double tokens(const Args& args, std::string_view key, double def) {
        double v = args.num(key, def);
        if (!(v >= 0) || !std::isfinite(v))
            throw ConfigError(std::string(key) + ": expected a non-negative number of tokens, got '" +
                              std::string(*args.get(key)) + "'");
        return v;
    }

    std::pair<double, double> expected_tokens(const char* group) {
        double prompt = default_prompt_, completion = default_completion_;
        if (group == nullptr) return {prompt, completion};
        std::shared_lock lk(usage_mu_);
        auto it = usage_.find(std::string_view(group));
        if (it == usage_.end()) return {prompt, completion};
        Usage& u = *it->second;
        std::lock_guard ulk(u.mu);
        if (u.prompt_n > 0) prompt = u.prompt;
        if (u.completion_n > 0) completion = u.completion;
        return {prompt, completion};
    }

    Usage& usage_for(const char* group) {
        {
            std::shared_lock lk(usage_mu_);
            auto it = usage_.find(std::string_view(group));
            if (it != usage_.end()) return *it->second;
        }
        std::unique_lock lk(usage_mu_);
        auto& slot = usage_[std::string(group)];
        if (!slot) slot = std::make_shared<Usage>();
        return *slot;
    }

    Price price_of(const tg_deployment& d) const {
        if (d.index < cached_.size() && cached_[d.index] == &d) return prices_[d.index];
        return resolve_price(d);  // not the host's own table (tests) or unknown index
    }

    static void latency_of(const tg_deployment_stats* s, bool stream, Keyed& k) {
        if (s == nullptr) return;
        const tg_latency_summary* l = nullptr;
        if (stream && TG_HAS_MEMBER(s, tg_deployment_stats, ttft)) l = &s->ttft;
        if (!stream && TG_HAS_MEMBER(s, tg_deployment_stats, total)) l = &s->total;
        if (l != nullptr && l->samples > 0 && std::isfinite(l->mean_ms)) {
            k.has_latency = true;
            k.latency = l->mean_ms;
        }
    }

    void warn_unknown(const tg_deployment& d, const Price& p, bool need_in, bool need_out) {
        {
            std::lock_guard lk(warned_mu_);
            if (!warned_.insert(d.index).second) return;
        }
        std::string missing;
        if (need_in && p.in < 0) missing = "input_cost_per_token";
        if (need_out && p.out < 0) missing += std::string(missing.empty() ? "" : " and ") + "output_cost_per_token";
        host_.log(TG_LOG_WARN, std::string("cost: deployment '") + (d.id ? d.id : "?") + "' (upstream model '" +
                                   (d.upstream_model ? d.upstream_model : "?") + "') has no known " + missing +
                                   "; it is ordered after the priced deployments. Set it in the deployment's config.");
    }

    struct Hash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };

    Host host_;
    double default_prompt_ = 1000, default_completion_ = 250;
    std::vector<const tg_deployment*> cached_;  // host deployments by index, at creation
    std::vector<Price> prices_;                 // their resolved prices
    std::shared_mutex usage_mu_;
    std::unordered_map<std::string, std::shared_ptr<Usage>, Hash, std::equal_to<>> usage_;
    std::mutex warned_mu_;
    std::unordered_set<uint32_t> warned_;
};

}  // namespace

TAILGATE_STRATEGY(Cost, "cost")
