// latency — lowest-latency routing (LiteLLM's `latency-based-routing`).
//
// Records, per deployment, sliding-window latency histograms (see
// latency_window.hpp and README.md) from the outcome events and orders the
// candidates of each request by the relevant metric:
//   stream requests      time to first content byte (TTFT)
//   non-stream requests  total latency
// Order produced by route():
//   1. cold candidates (no sample of the metric in the window), random order,
//      while fewer than `explore_in_flight` attempts are running on them;
//   2. candidates within `lowest_latency_buffer` of the best metric, random order;
//   3. the other measured candidates, ascending metric (retries go to the next fastest);
//   4. cold candidates already being explored, random order;
//   candidates whose stats say COOLING come after all of these (same rules).
// It never writes attempts (the host plans retries over the new order); a plan
// set by an earlier strategy is cleared, since reordering changes what its
// candidate positions name.
//
// After each recorded ttft/total sample the deployment's window summary is
// published with tg_host_api.publish_latency, so every strategy sees it in
// tg_deployment_stats.ttft / .total (the hedge strategy reads p95/p99).
#include "latency_window.hpp"

#include <tailgate/deployment_table.hpp>
#include <tailgate/plugin.hpp>

#include "thread_rng.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

namespace {

using tailgate::latency::Statistic;
using tailgate::latency::Summary;
using tailgate::latency::Window;
using tailgate::sdk::Args;
using tailgate::sdk::ConfigError;
using tailgate::sdk::DeploymentTable;
using tailgate::sdk::Host;
using tailgate::sdk::Route;
using tailgate::sdk::Strategy;


enum class Metric { Auto, Ttft, Total, PerToken };

// Windows kept per deployment.
enum Kind : unsigned { kTtft = 0, kTotal = 1, kStreamTotal = 2, kPerToken = 3, kKinds = 4 };

const char* kind_name(unsigned k) {
    switch (k) {
        case kTtft: return "ttft";
        case kTotal: return "total";
        case kStreamTotal: return "stream total";
        case kPerToken: return "per-token";
    }
    return "?";
}

const char* statistic_name(Statistic s) {
    switch (s) {
        case Statistic::Mean: return "mean";
        case Statistic::P50: return "p50";
        case Statistic::P90: return "p90";
        case Statistic::P95: return "p95";
        case Statistic::P99: return "p99";
    }
    return "?";
}

// ---- random numbers ----
using tailgate::plugins::thread_rng;
using tailgate::plugins::unit;

// ---- per-deployment state ----
// Shared with the next instance on a reload (DeploymentTable::adopt), hence
// its own lock. Windows are made on a deployment's first sample of a kind.
struct DeploymentState {
    std::mutex mu;
    std::unique_ptr<Window> w[kKinds];  // null until used
};

// ---- args ----
std::optional<uint64_t> parse_uint(std::string_view text) {
    std::string s(text);
    if (s.empty() || s[0] == '-' || s[0] == '+' || s[0] == ' ') return std::nullopt;
    char* end = nullptr;
    errno = 0;
    unsigned long long v = std::strtoull(s.c_str(), &end, 10);
    if (end == s.c_str() || *end != '\0' || errno == ERANGE) return std::nullopt;
    return static_cast<uint64_t>(v);
}

// Order of the groups route() sorts candidates into.
enum Group : int {
    kExplore = 0,    // no data, not being explored yet: random
    kNearBest = 1,   // measured, within lowest_latency_buffer of the best: random
    kRest = 2,       // measured, slower: ascending metric
    kExploring = 3,  // no data, explore_in_flight attempts already running: random
    kCooling = 4     // added to the above for candidates whose health is COOLING
};

struct Candidate {
    int group;     // Group, ascending
    double key;    // ascending within the group
    double value;  // metric (measured only)
    uint64_t samples;
    tg_candidate c;
};

constexpr uint32_t kLocalCandidates = 32;

class Latency final : public Strategy {
public:
    Latency(Host host, Args args)
        : host_(host), states_(host, [] { return std::make_shared<DeploymentState>(); }) {
        configure(args);
    }

    // Reload: deployments the previous configuration also had keep their
    // windows (shared: the previous instance still records its last requests'
    // samples into them), unless ttl or slices changed the windows' shape.
    bool adopt_state(Strategy& previous) override {
        auto& prev = static_cast<Latency&>(previous);
        if (prev.slice_ms_ != slice_ms_ || prev.slices_ != slices_) {
            host_.log(TG_LOG_INFO, "latency: ttl or slices changed; latency windows start empty");
            return false;
        }
        const int64_t now = host_.now_ms();
        const size_t n = states_.adopt(prev.states_, [&](uint32_t index, DeploymentState& st) {
            std::lock_guard lk(st.mu);
            for (unsigned k : {kTtft, kTotal})
                if (st.w[k]) {
                    st.w[k]->advance(now);
                    publish(index, k, st.w[k]->summary_now());
                }
        });
        host_.log(TG_LOG_INFO, "latency: kept the windows of " + std::to_string(n) + " of " +
                                   std::to_string(states_.listed()) + " deployment(s)");
        return true;
    }

    tg_status route(const tg_request& req, Route& r) override {
        r.clear_plan();
        if (r.size() == 0) return TG_ERR_NO_CANDIDATE;
        const int64_t now = host_.now_ms();
        const bool stream = TG_HAS_MEMBER(&req, tg_request, stream) && req.stream != 0;
        const unsigned kind = kind_for(stream);

        // Candidates on the stack for the usual group sizes.
        Candidate local[kLocalCandidates];
        std::vector<Candidate> heap;
        Candidate* items = local;
        if (r.size() > kLocalCandidates) {
            heap.resize(r.size());
            items = heap.data();
        }
        const uint32_t n = r.size();

        double best = std::numeric_limits<double>::infinity();
        double best_cooling = best;
        for (uint32_t i = 0; i < n; ++i) {
            const tg_candidate& c = r[i];
            Candidate& it = items[i];
            it = Candidate{kExplore, 0, 0, 0, c};
            const tg_deployment* d = c.deployment;
            DeploymentState* st = d ? &states_.at(*d) : nullptr;
            std::optional<Window::Recent> rec;
            if (st != nullptr) {
                std::lock_guard lk(st->mu);
                // Keep the published summaries fresh when samples age out
                // without new traffic.
                for (unsigned k : {kTtft, kTotal})
                    if (st->w[k] && st->w[k]->advance(now)) publish(d->index, k, st->w[k]->summary_now());
                if (st->w[kind]) rec = st->w[kind]->recent(now, statistic_, min_samples_);
            }
            const bool cool = Route::is_cooling(c);
            if (rec) {
                it.group = kNearBest;
                it.value = rec->value;
                it.samples = rec->samples;
                (cool ? best_cooling : best) = std::min(cool ? best_cooling : best, rec->value);
            } else {
                it.group = exploring(c) ? kExploring : kExplore;
            }
            if (cool) it.group += kCooling;
        }
        // Cooling candidates are compared among themselves only when no warm
        // one is measured.
        const double limit = (std::isfinite(best) ? best : best_cooling) * (1.0 + buffer_);

        auto assign_keys = [&](std::mt19937_64& rng) {
            for (uint32_t i = 0; i < n; ++i) {
                Candidate& it = items[i];
                if ((it.group % kCooling) == kNearBest && it.value > limit) {
                    it.group += kRest - kNearBest;
                    it.key = it.value;  // ascending: retries go to the next fastest
                } else {
                    it.key = unit(rng);  // cold, or near the best: random among them
                }
            }
        };
        if (seeded_) {
            std::lock_guard lk(rng_mu_);
            assign_keys(seeded_rng_);
        } else {
            assign_keys(thread_rng());
        }
        std::sort(items, items + n, [](const Candidate& a, const Candidate& b) {
            return a.group != b.group ? a.group < b.group : a.key < b.key;
        });
        for (uint32_t i = 0; i < n; ++i) r[i] = items[i].c;

        note(r, items[0], kind);
        return TG_OK;
    }

    void observe(const tg_event& e) override {
        if (e.deployment == nullptr) return;
        const bool stream = e.stream != 0;
        switch (e.type) {
            case TG_EVENT_FIRST_BYTE:
                if (stream) record(e, kTtft, e.ttft_ms >= 0 ? e.ttft_ms : e.elapsed_ms);
                break;
            case TG_EVENT_SUCCESS: {
                if (!stream)
                    record(e, kTotal, e.elapsed_ms);
                else if (used_[kStreamTotal])
                    record(e, kStreamTotal, e.elapsed_ms);
                const int64_t tokens =
                    TG_HAS_MEMBER(&e, tg_event, completion_tokens) ? e.completion_tokens : int64_t{-1};
                if (used_[kPerToken] && tokens > 0)
                    record(e, kPerToken, e.elapsed_ms / static_cast<double>(tokens));
                break;
            }
            case TG_EVENT_FAILURE: {
                // The client's fault says nothing about the deployment's speed.
                const uint32_t ec = TG_HAS_MEMBER(&e, tg_event, error_class) ? e.error_class : uint32_t{TG_ERRC_NONE};
                if (ec == TG_ERRC_BAD_REQUEST || ec == TG_ERRC_CONTEXT_WINDOW) break;
                const double elapsed = std::isfinite(e.elapsed_ms) ? e.elapsed_ms : 0.0;
                record(e, kind_for(stream), std::max(elapsed, failure_penalty_ms_));
                break;
            }
            case TG_EVENT_CANCELLED: {
                // Lost to another attempt: its latency was at least the time
                // until the winner committed. Recording that lower bound keeps a
                // deployment that always loses races/hedges from looking
                // unmeasured (and so explored first) forever. A cancel because
                // the client left says nothing and is not recorded.
                const uint32_t why =
                    TG_HAS_MEMBER(&e, tg_event, cancel_reason) ? e.cancel_reason : uint32_t{TG_CANCEL_NONE};
                if (why == TG_CANCEL_LOST && std::isfinite(e.elapsed_ms) && e.elapsed_ms > 0)
                    record(e, kind_for(stream), e.elapsed_ms);
                break;
            }
            default:  // STARTED, REFUSED
                break;
        }
    }

    // A fleet's other replicas (shared state through Redis): their samples go
    // into the same windows, so rankings and the published quantiles (the
    // hedge delay) come from the whole fleet's traffic.
    void observe_remote(const tg_event& e) override { observe(e); }

private:
    // "latency: <id> (<metric> <statistic> <value>ms, n=<samples>)" or
    // "latency: <id> (explore, no <metric> data)". Built without printf: this
    // runs on every request.
    void note(Route& r, const Candidate& f, unsigned kind) const {
        const tg_deployment* d = f.c.deployment;
        if (d == nullptr || d->id == nullptr) return;
        char buf[256];
        char* p = buf;
        char* const end = buf + sizeof buf - 1;
        auto put = [&](std::string_view s) {
            const size_t n = std::min<size_t>(s.size(), static_cast<size_t>(end - p));
            std::memcpy(p, s.data(), n);
            p += n;
        };
        put("latency: ");
        put(std::string_view(d->id).substr(0, 160));
        put(" (");
        const int base = f.group % kCooling;
        if (base == kExplore || base == kExploring) {
            put("explore, no ");
            put(kind_name(kind));
            put(" data)");
        } else {
            put(kind_name(kind));
            put(" ");
            put(statistic_name(statistic_));
            put(" ");
            if (auto res = std::to_chars(p, end, f.value, std::chars_format::fixed, 1); res.ec == std::errc())
                p = res.ptr;
            put(kind == kPerToken ? "ms/token, n=" : "ms, n=");
            if (auto res = std::to_chars(p, end, f.samples); res.ec == std::errc()) p = res.ptr;
            put(")");
        }
        *p = '\0';
        host_.note(r.raw(), buf);
    }

    unsigned kind_for(bool stream) const {
        switch (metric_) {
            case Metric::Auto: return stream ? kTtft : kTotal;
            case Metric::Ttft: return kTtft;
            case Metric::Total: return stream ? kStreamTotal : kTotal;
            case Metric::PerToken: return kPerToken;
        }
        return kTotal;
    }

    bool exploring(const tg_candidate& c) const {
        if (explore_in_flight_ == 0) return false;
        const tg_deployment_stats* s = c.stats;
        return s != nullptr && TG_HAS_MEMBER(s, tg_deployment_stats, in_flight) &&
               s->in_flight >= explore_in_flight_;
    }

    void record(const tg_event& e, unsigned kind, double value_ms) {
        if (!std::isfinite(value_ms)) return;
        const uint32_t index = e.deployment->index;
        DeploymentState& st = states_.at(*e.deployment);
        const int64_t now = host_.now_ms();
        std::lock_guard lk(st.mu);
        if (!st.w[kind]) st.w[kind] = std::make_unique<Window>(slice_ms_, slices_);
        Window& w = *st.w[kind];
        w.record(value_ms, now);
        // Published under the lock so that summaries of one deployment reach
        // the host in the order they were computed.
        if (kind == kTtft || kind == kTotal) publish(index, kind, w.summary_now());
    }

    void publish(uint32_t index, unsigned kind, const Summary& s) const {
        tg_latency_summary out{};
        out.samples = s.samples;
        out.mean_ms = s.mean;
        out.p50_ms = s.p50;
        out.p90_ms = s.p90;
        out.p95_ms = s.p95;
        out.p99_ms = s.p99;
        host_.publish_latency(index, kind == kTtft, out);
    }

    void configure(const Args& args) {
        args.allow_only({"ttl", "slices", "lowest_latency_buffer", "metric", "statistic", "failure_penalty",
                         "min_samples", "max_latency_list_size", "explore_in_flight", "seed"});

        auto duration = [&](std::string_view key, double def_ms, bool allow_zero) {
            auto v = args.get(key);
            if (!v) return def_ms;
            auto ms = Args::parse_duration_ms(*v);
            if (!ms || *ms > 1e12 || (!allow_zero && *ms <= 0))
                throw ConfigError(std::string(key) + ": expected a " + (allow_zero ? "" : "positive ") +
                                  "duration like 30s, 5m, 1h or a number of seconds, got '" + std::string(*v) + "'");
            return *ms;
        };
        auto count = [&](std::string_view key, uint64_t def, uint64_t lo, uint64_t hi) {
            auto v = args.get(key);
            if (!v) return def;
            auto n = parse_uint(*v);
            if (!n || *n < lo || *n > hi)
                throw ConfigError(std::string(key) + ": expected an integer from " + std::to_string(lo) + " to " +
                                  std::to_string(hi) + ", got '" + std::string(*v) + "'");
            return *n;
        };

        const double ttl_ms = duration("ttl", 3600000.0, false);
        slices_ = static_cast<uint32_t>(count("slices", 12, 1, Window::kMaxSlices));
        slice_ms_ = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(ttl_ms / slices_)));

        if (auto v = args.get("lowest_latency_buffer")) {
            std::string s(*v);
            char* end = nullptr;
            double d = std::strtod(s.c_str(), &end);
            if (s.empty() || end == s.c_str() || *end != '\0' || !std::isfinite(d) || d < 0)
                throw ConfigError("lowest_latency_buffer: expected a fraction >= 0 (e.g. 0.1 for 10%), got '" + s +
                                  "'");
            buffer_ = d;
        }

        if (auto v = args.get("metric")) {
            if (*v == "auto") metric_ = Metric::Auto;
            else if (*v == "ttft") metric_ = Metric::Ttft;
            else if (*v == "total") metric_ = Metric::Total;
            else if (*v == "per_token") metric_ = Metric::PerToken;
            else throw ConfigError("metric: expected auto, ttft, total or per_token, got '" + std::string(*v) + "'");
        }
        if (auto v = args.get("statistic")) {
            if (*v == "mean") statistic_ = Statistic::Mean;
            else if (*v == "p50") statistic_ = Statistic::P50;
            else if (*v == "p90") statistic_ = Statistic::P90;
            else if (*v == "p95") statistic_ = Statistic::P95;
            else if (*v == "p99") statistic_ = Statistic::P99;
            else throw ConfigError("statistic: expected mean, p50, p90, p95 or p99, got '" + std::string(*v) + "'");
        }
        failure_penalty_ms_ = duration("failure_penalty", 10000.0, true);

        if (args.get("min_samples") && args.get("max_latency_list_size"))
            throw ConfigError("min_samples: give either min_samples or max_latency_list_size, not both");
        if (args.get("max_latency_list_size"))
            min_samples_ = count("max_latency_list_size", 20, 1, 1000000000);
        else
            min_samples_ = count("min_samples", 20, 1, 1000000000);
        explore_in_flight_ = static_cast<uint32_t>(count("explore_in_flight", 1, 0, 1000000));

        if (auto v = args.get("seed")) {
            auto n = parse_uint(*v);
            if (!n) throw ConfigError("seed: expected a non-negative integer, got '" + std::string(*v) + "'");
            seeded_ = true;
            seeded_rng_.seed(*n);
        }

        used_[kTtft] = true;
        used_[kTotal] = true;
        used_[kStreamTotal] = metric_ == Metric::Total;
        used_[kPerToken] = metric_ == Metric::PerToken;
    }

    Host host_;
    // configuration
    int64_t slice_ms_ = 300000;
    uint32_t slices_ = 12;
    double buffer_ = 0;
    Metric metric_ = Metric::Auto;
    Statistic statistic_ = Statistic::Mean;
    double failure_penalty_ms_ = 10000;
    uint64_t min_samples_ = 20;
    uint32_t explore_in_flight_ = 1;
    bool used_[kKinds] = {};
    // state
    DeploymentTable<DeploymentState> states_;
    bool seeded_ = false;
    std::mutex rng_mu_;
    std::mt19937_64 seeded_rng_;
};

}  // namespace

TAILGATE_STRATEGY(Latency, "latency")
