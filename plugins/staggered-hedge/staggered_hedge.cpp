// staggered-hedge — send to the primary; if it has not committed after
// `delay`, send the same request to the next candidate (a hedge), and so on up
// to `max_attempts`; the first to commit wins and the others are cancelled.
// Hedges are capped by an extra-load budget checked in admit().
//
// Plan (candidates reordered so that attempt k names candidate k, except reused ones):
//   candidate 0            AT_START (the primary: the first non-cooling candidate)
//   candidates 1..h        AFTER_DELAY(delay), each relative to the previous launch
//   the rest               ON_FAILURE, no backoff (`failover: true`)
// Cooling candidates (stats->health == COOLING) get no attempt, unless every
// candidate is cooling: then the primary runs unhedged, the rest as failover.
// See README.md for args, delay sources, the budget and the counters.
#include <tailgate/plugin.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

using tailgate::sdk::Args;
using tailgate::sdk::ConfigError;
using tailgate::sdk::Host;
using tailgate::sdk::Route;
using tailgate::sdk::Strategy;
using tailgate::sdk::request_override;

constexpr uint32_t kMaxAttemptsCap = 5;
constexpr uint32_t kBuckets = 10;       // budget window = kBuckets buckets
constexpr uint32_t kWinSlots = 4096;    // hedged requests awaiting their outcome (direct-mapped)
constexpr double kMaxDelayLimitMs = 3600.0 * 1000.0;

// ---- small parsers --------------------------------------------------------

std::optional<bool> parse_bool(std::string_view v) {
    if (v == "true" || v == "1" || v == "yes") return true;
    if (v == "false" || v == "0" || v == "no") return false;
    return std::nullopt;
}

std::optional<double> parse_number(std::string_view text) {
    std::string s(text);
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    if (s.empty() || end == s.c_str() || *end != '\0' || !std::isfinite(d)) return std::nullopt;
    return d;
}

std::optional<uint32_t> parse_count(std::string_view text, uint32_t lo, uint32_t hi) {
    auto d = parse_number(text);
    if (!d || !(*d >= lo) || !(*d <= hi) || *d != std::floor(*d)) return std::nullopt;
    return static_cast<uint32_t>(*d);
}

// Where a hedge delay comes from.
struct DelaySpec {
    enum Kind { Fixed, Quantile, Mean } kind = Quantile;
    double value = 95;  // ms (Fixed) or percent (Quantile)
    char label[16] = "p95";
};

// "500ms", "1.5s", bare number = seconds (SDK convention); "p95", "p99.9"; "mean".
std::optional<DelaySpec> parse_delay(std::string_view text) {
    DelaySpec s;
    if (text == "mean" || text == "avg") {
        s.kind = DelaySpec::Mean;
        s.value = 0;
        std::snprintf(s.label, sizeof s.label, "mean");
        return s;
    }
    if (!text.empty() && (text[0] == 'p' || text[0] == 'P')) {
        auto q = parse_number(text.substr(1));
        if (!q || !(*q > 0) || !(*q <= 100)) return std::nullopt;
        s.kind = DelaySpec::Quantile;
        s.value = *q;
        std::snprintf(s.label, sizeof s.label, "p%g", *q);
        return s;
    }
    auto ms = Args::parse_duration_ms(text);
    if (!ms) return std::nullopt;
    s.kind = DelaySpec::Fixed;
    s.value = *ms;
    std::snprintf(s.label, sizeof s.label, "fixed");
    return s;
}

// Quantile q (percent) from a summary that only has p50/p90/p95/p99: exact at
// those four, linear in q between neighbours, p50 below 50, p99 above 99.
double quantile_ms(const tg_latency_summary& s, double q) {
    const double xs[4] = {50, 90, 95, 99};
    const double ys[4] = {s.p50_ms, s.p90_ms, s.p95_ms, s.p99_ms};
    if (q <= xs[0]) return ys[0];
    if (q >= xs[3]) return ys[3];
    for (int i = 1; i < 4; ++i)
        if (q <= xs[i]) return ys[i - 1] + (ys[i] - ys[i - 1]) * (q - xs[i - 1]) / (xs[i] - xs[i - 1]);
    return ys[3];
}

bool health_is(const tg_candidate& c, uint32_t h) {
    const tg_deployment_stats* s = c.stats;
    if (s == nullptr || !TG_HAS_MEMBER(s, tg_deployment_stats, health)) return h == TG_HEALTH_HEALTHY;
    return s->health == h;
}

const char* provider_of(const tg_candidate& c) {
    const tg_deployment* d = c.deployment;
    return d != nullptr && TG_HAS_MEMBER(d, tg_deployment, provider) && d->provider != nullptr ? d->provider : "";
}

uint64_t hash_id(const char* s) {
    uint64_t h = 1469598103934665603ull;  // FNV-1a
    if (s != nullptr)
        for (; *s; ++s) h = (h ^ static_cast<unsigned char>(*s)) * 1099511628211ull;
    return h | 1;  // never 0: 0 marks an empty slot
}

// ---- the budget: counts per bucket in a ring, lock-free -----------------------
// Each counter word packs (bucket epoch << 32 | count): an increment that finds
// an older epoch restarts the count, so rotation needs no lock and no sweep.
class Counter {
public:
    void add(uint32_t epoch) {
        uint64_t cur = w_.load(std::memory_order_relaxed);
        for (;;) {
            const uint32_t e = static_cast<uint32_t>(cur >> 32);
            // Same epoch, or a slightly newer one (this thread ran late): count
            // into it. Anything else is an old bucket: restart it.
            const uint64_t next = e - epoch < kBuckets ? cur + 1 : (uint64_t{epoch} << 32) | 1u;
            if (w_.compare_exchange_weak(cur, next, std::memory_order_relaxed)) return;
        }
    }
    // Count if the word's epoch is one of the kBuckets epochs ending at `epoch`.
    uint64_t live(uint32_t epoch) const {
        const uint64_t v = w_.load(std::memory_order_relaxed);
        return epoch - static_cast<uint32_t>(v >> 32) < kBuckets ? (v & 0xffffffffu) : 0;
    }

private:
    std::atomic<uint64_t> w_{0};
};

struct alignas(64) Bucket {
    Counter requests;
    Counter hedges;
};

// The budget's window: requests and hedges per bucket. Shared with the next
// instance on a reload when the bucket length is unchanged (both count the
// same gateway's traffic meanwhile), so the budget spent stays spent.
struct Budget {
    std::array<Bucket, kBuckets> buckets{};
};

// Running totals, and the hedged requests awaiting their outcome (a win is the
// first commit by an attempt > 0). Shared with the next instance on a reload.
struct Totals {
    std::atomic<uint64_t> requests{0}, eligible{0}, admitted{0}, refused{0}, wins{0};
    std::array<std::atomic<uint64_t>, kWinSlots> hedged{};
};

class StaggeredHedge final : public Strategy {
public:
    // Counters for the metrics issue (exposed later through a stats ABI).
    struct Counters {
        uint64_t requests;  // route() calls counted as primaries (budget base)
        uint64_t eligible;  // requests planned with at least one hedge
        uint64_t admitted;  // hedges admitted by the budget
        uint64_t refused;   // hedges refused by the budget
        uint64_t wins;      // hedged requests won by an attempt > 0
    };

    StaggeredHedge(Host host, Args args)
        : host_(host), budget_(std::make_shared<Budget>()), totals_(std::make_shared<Totals>()) {
        args.allow_only({
            "delay", "max_attempts", "failover", "prefer_different_provider", "reuse_deployments",
            "min_delay", "max_delay", "fallback_delay", "min_samples",
            "max_extra_load", "budget_window", "min_hedges_per_second",
            "budget.max_extra_load", "budget.window", "budget.min_hedges_per_second",
        });
        // `key` or its budget.<alias>, not both.
        auto pick = [&](const char* key, const char* alias) -> const char* {
            if (args.get(key) && args.get(alias))
                throw ConfigError(std::string("give either ") + key + " or " + alias + ", not both");
            return args.get(alias) ? alias : key;
        };

        if (auto v = args.get("delay")) {
            auto d = parse_delay(*v);
            if (!d)
                throw ConfigError("delay: expected a duration (500ms, 1.5s), a quantile (p95, p99.9) or mean, got '" +
                                  std::string(*v) + "'");
            delay_ = *d;
        }
        if (auto v = args.get("max_attempts")) {
            auto n = parse_count(*v, 1, kMaxAttemptsCap);
            if (!n) throw ConfigError("max_attempts: expected an integer from 1 to 5, got '" + std::string(*v) + "'");
            max_attempts_ = *n;
        }
        failover_ = args.flag("failover", true);
        prefer_other_provider_ = args.flag("prefer_different_provider", false);
        reuse_ = args.flag("reuse_deployments", true);
        min_delay_ = args.millis("min_delay", 10);
        max_delay_ = args.millis("max_delay", 30000);
        fallback_delay_ = args.millis("fallback_delay", 1000);
        if (max_delay_ > kMaxDelayLimitMs) throw ConfigError("max_delay: at most 1h");
        if (min_delay_ > max_delay_)
            throw ConfigError("min_delay (" + fmt_ms(min_delay_) + ") exceeds max_delay (" + fmt_ms(max_delay_) + ")");
        auto in_bounds = [&](const char* what, double ms) {
            if (ms < min_delay_ || ms > max_delay_)
                throw ConfigError(std::string(what) + " (" + fmt_ms(ms) + ") is outside [min_delay, max_delay] = [" +
                                  fmt_ms(min_delay_) + ", " + fmt_ms(max_delay_) + "]");
        };
        in_bounds("fallback_delay", fallback_delay_);
        if (delay_.kind == DelaySpec::Fixed) in_bounds("delay", delay_.value);
        if (auto v = args.get("min_samples")) {
            auto n = parse_count(*v, 0, 1u << 30);
            if (!n) throw ConfigError("min_samples: expected a non-negative integer, got '" + std::string(*v) + "'");
            min_samples_ = *n;
        }

        const char* k_load = pick("max_extra_load", "budget.max_extra_load");
        max_extra_load_ = args.num(k_load, 0.1);
        if (!(max_extra_load_ >= 0) || max_extra_load_ > 16)
            throw ConfigError(std::string(k_load) + ": expected a fraction from 0 to 16 (0.1 = 10 % extra requests)");
        const char* k_floor = pick("min_hedges_per_second", "budget.min_hedges_per_second");
        floor_per_s_ = args.num(k_floor, 1.0);
        if (!(floor_per_s_ >= 0) || !std::isfinite(floor_per_s_))
            throw ConfigError(std::string(k_floor) + ": expected a non-negative number");
        const char* k_window = pick("budget_window", "budget.window");
        const double window = args.millis(k_window, 10000);
        if (window < kBuckets || window > kMaxDelayLimitMs)
            throw ConfigError(std::string(k_window) + ": expected a duration from 10ms to 1h");
        bucket_ms_ = std::max<int64_t>(1, std::llround(window / kBuckets));
        floor_per_window_ = floor_per_s_ * static_cast<double>(bucket_ms_ * kBuckets) / 1000.0;

        char line[256];
        std::snprintf(line, sizeof line,
                      "staggered-hedge: delay %s%s, max_attempts %u, budget %.3g extra + %.3g/s over %lldms",
                      delay_.kind == DelaySpec::Fixed ? fmt_ms(delay_.value).c_str() : delay_.label,
                      delay_.kind == DelaySpec::Fixed ? "" : " of the primary", max_attempts_, max_extra_load_,
                      floor_per_s_, static_cast<long long>(bucket_ms_ * kBuckets));
        host_.log(TG_LOG_INFO, line);
    }

    ~StaggeredHedge() override { log_counters("final"); }

    // Reload: the totals carry over; the budget window too unless its bucket
    // length changed (then it starts empty: a window of another shape cannot
    // be read). The learned delay needs nothing: it is the latency summaries
    // the host keeps by deployment identity.
    bool adopt_state(Strategy& previous) override {
        auto& prev = static_cast<StaggeredHedge&>(previous);
        totals_ = prev.totals_;
        if (prev.bucket_ms_ == bucket_ms_) budget_ = prev.budget_;
        else host_.log(TG_LOG_INFO, "staggered-hedge: budget window changed; the budget starts unspent");
        return true;
    }

    // {"budget_left": hedges admit() would still allow now, ...}.
    std::string state_json() const override {
        const Window w = window(host_.now_ms());
        const Counters c = counters();
        char buf[512];
        std::snprintf(buf, sizeof buf,
                      "{\"budget_left\":%lld,\"budget_window_ms\":%lld,\"requests_in_window\":%llu,"
                      "\"hedges_in_window\":%llu,\"max_extra_load\":%g,\"min_hedges_per_second\":%g,"
                      "\"totals\":{\"requests\":%llu,\"eligible\":%llu,\"admitted\":%llu,\"refused\":%llu,"
                      "\"wins\":%llu}}",
                      static_cast<long long>(std::max(0.0, std::floor(w.limit - static_cast<double>(w.hedges)))),
                      static_cast<long long>(bucket_ms_ * kBuckets), static_cast<unsigned long long>(w.requests),
                      static_cast<unsigned long long>(w.hedges), max_extra_load_, floor_per_s_,
                      static_cast<unsigned long long>(c.requests), static_cast<unsigned long long>(c.eligible),
                      static_cast<unsigned long long>(c.admitted), static_cast<unsigned long long>(c.refused),
                      static_cast<unsigned long long>(c.wins));
        return buf;
    }

    tg_status route(const tg_request& req, Route& r) override {
        if (r.size() == 0) return TG_ERR_NO_CANDIDATE;
        // A dry run (admin preview) plans exactly as a request would, counting nothing.
        const bool preview = tailgate::sdk::request_is_preview(req);
        if (!preview) count_request(req);

        // ---- per-request overrides (extra_body "hedge": {...}) ----
        DelaySpec spec = delay_;
        bool spec_from_request = false;
        uint32_t max_attempts = max_attempts_;
        Ignored ignored;
        const char* enabled_key = "hedge.enabled";
        auto enabled_text = request_override(req, enabled_key);
        if (!enabled_text) enabled_text = request_override(req, enabled_key = "hedge");
        if (enabled_text) {
            auto enabled = parse_bool(*enabled_text);
            if (!enabled) ignored.add(enabled_key);
            else if (!*enabled) {
                host_.note(r.raw(), "hedge off (request)");
                return TG_OK;  // the plan stays whatever the chain made so far
            }
        }
        if (auto v = request_override(req, "hedge.delay")) {
            if (auto d = parse_delay(*v)) {
                spec = *d;
                spec_from_request = true;
            } else {
                ignored.add("hedge.delay");
            }
        }
        if (auto v = request_override(req, "hedge.max_attempts")) {
            if (auto n = parse_count(*v, 1, kMaxAttemptsCap)) max_attempts = *n;
            else ignored.add("hedge.max_attempts");
        }

        // ---- order: non-cooling first (stable), cooling last ----
        const uint32_t n = r.size();
        const uint32_t warm = r.cooling_last();
        r.clear_plan();
        r.add_attempt(0, TG_LAUNCH_AT_START);

        if (warm == 0) {
            // Everything cooling: no hedge onto a cooled deployment; one try each.
            if (failover_)
                for (uint32_t i = 1; i < n && r.attempt_count() < TG_MAX_ATTEMPTS; ++i)
                    r.add_attempt(i, TG_LAUNCH_ON_FAILURE);
            note(r, "hedge: none (all candidates cooling)", ignored);
            return TG_OK;
        }

        // ---- hedge targets: positions 1..distinct, then reuse of healthy ones ----
        const uint32_t hedges_wanted = max_attempts - 1;
        const uint32_t distinct = std::min(hedges_wanted, warm - 1);
        if (prefer_other_provider_ && distinct > 0) order_by_provider(r, distinct, warm);
        uint32_t reuse_pos[kMaxAttemptsCap];
        uint32_t reused = 0;
        if (reuse_ && distinct < hedges_wanted) {
            // Not enough other deployments: hedge on a HEALTHY one again (a new
            // connection usually lands on another upstream replica), round robin
            // from the primary. Never a half-open one (its single probe), never a cooling one.
            uint32_t healthy[kMaxAttemptsCap];
            uint32_t nh = 0;
            for (uint32_t i = 0; i < warm && nh < kMaxAttemptsCap; ++i)
                if (health_is(r[i], TG_HEALTH_HEALTHY)) healthy[nh++] = i;
            for (; nh > 0 && reused < hedges_wanted - distinct; ++reused) reuse_pos[reused] = healthy[reused % nh];
        }
        const uint32_t hedges = distinct + reused;
        if (hedges == 0) {
            if (failover_)
                for (uint32_t i = 1; i < warm && r.attempt_count() < TG_MAX_ATTEMPTS; ++i)
                    r.add_attempt(i, TG_LAUNCH_ON_FAILURE);
            note(r, max_attempts <= 1 ? "hedge: none (max_attempts 1)" : "hedge: none (no other deployment)",
                 ignored);
            return TG_OK;
        }

        // ---- the delay, and the note saying which and why ----
        std::string& text = scratch();
        text.assign("hedge after ");
        const size_t at = text.size();
        text += " (";
        const uint32_t delay_ms = compute_delay(spec, spec_from_request, req, r[0], text);
        text += ')';
        std::string_view ms = decimal(delay_ms);
        text.insert(at, ms.data(), ms.size());
        text.insert(at + ms.size(), "ms");

        for (uint32_t i = 1; i <= distinct; ++i) r.add_attempt(i, TG_LAUNCH_AFTER_DELAY, delay_ms);
        for (uint32_t k = 0; k < reused; ++k) r.add_attempt(reuse_pos[k], TG_LAUNCH_AFTER_DELAY, delay_ms);
        if (failover_)
            for (uint32_t i = distinct + 1; i < warm && r.attempt_count() < TG_MAX_ATTEMPTS; ++i)
                r.add_attempt(i, TG_LAUNCH_ON_FAILURE);
        if (!preview) totals_->eligible.fetch_add(1, std::memory_order_relaxed);

        if (hedges > 1) {
            text += ", ";
            text += decimal(hedges);
            text += " hedges";
        }
        if (reused > 0) {
            text += ", ";
            text += decimal(reused);
            text += " on the same deployment";
        }
        note(r, text, ignored);
        return TG_OK;
    }

    bool admit(const tg_event& ev) override {
        const Window w = window(host_.now_ms());
        Totals& t = *totals_;
        if (static_cast<double>(w.hedges + 1) > w.limit) {
            t.refused.fetch_add(1, std::memory_order_relaxed);
            return false;
        }
        budget_->buckets[w.epoch % kBuckets].hedges.add(w.epoch);
        t.admitted.fetch_add(1, std::memory_order_relaxed);
        const uint64_t h = hash_id(ev.request_id);
        t.hedged[h % kWinSlots].store(h, std::memory_order_relaxed);
        return true;
    }

    void observe(const tg_event& ev) override {
        if (ev.type != TG_EVENT_SUCCESS && ev.type != TG_EVENT_FIRST_BYTE) return;
        Totals& t = *totals_;
        if (t.admitted.load(std::memory_order_relaxed) == 0) return;  // nothing ever hedged
        const uint64_t h = hash_id(ev.request_id);
        uint64_t expect = h;
        // First commit-ish event of a hedged request: forget it; a win if not the primary.
        if (t.hedged[h % kWinSlots].compare_exchange_strong(expect, 0, std::memory_order_relaxed) && ev.attempt > 0)
            t.wins.fetch_add(1, std::memory_order_relaxed);
    }

    // A fleet's other replicas (shared state through Redis): their requests
    // and hedges count in the same budget window, so the extra-load ratio (and
    // the floor) hold for the fleet, not once per replica.
    void observe_remote(const tg_event& ev) override {
        if (ev.type != TG_EVENT_STARTED) return;
        const auto launch = tailgate::sdk::event_launch(ev);
        const uint32_t e = epoch(ev.at_ms);
        if (ev.attempt == 0) budget_->buckets[e % kBuckets].requests.add(e);
        else if (launch && *launch == TG_LAUNCH_AFTER_DELAY) budget_->buckets[e % kBuckets].hedges.add(e);
    }

    Counters counters() const {
        const Totals& t = *totals_;
        return Counters{t.requests.load(std::memory_order_relaxed), t.eligible.load(std::memory_order_relaxed),
                        t.admitted.load(std::memory_order_relaxed), t.refused.load(std::memory_order_relaxed),
                        t.wins.load(std::memory_order_relaxed)};
    }

private:
    // The budget now: requests and hedges in the window, and the hedges it allows.
    struct Window {
        uint32_t epoch;
        uint64_t requests = 0, hedges = 0;
        double limit = 0;
    };
    Window window(int64_t now_ms) const {
        Window w{epoch(now_ms)};
        for (const auto& b : budget_->buckets) {
            w.requests += b.requests.live(w.epoch);
            w.hedges += b.hedges.live(w.epoch);
        }
        w.limit = max_extra_load_ * static_cast<double>(w.requests) + floor_per_window_;
        return w;
    }

    static std::string fmt_ms(double ms) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%gms", ms);
        return buf;
    }

    uint32_t epoch(int64_t now_ms) const {
        int64_t q = now_ms / bucket_ms_;
        if (now_ms < 0 && q * bucket_ms_ != now_ms) --q;  // floor
        return static_cast<uint32_t>(q);
    }

    // One primary per request: the router routes a request's fallback groups
    // right after its own group on the same thread; those calls are not counted again.
    void count_request(const tg_request& req) {
        struct Last {
            uint64_t instance;
            uint64_t id;
        };
        thread_local Last last{0, 0};
        const uint64_t id = hash_id(req.request_id);
        if (last.instance == instance_id_ && last.id == id) return;
        last = Last{instance_id_, id};
        const uint32_t e = epoch(host_.now_ms());
        budget_->buckets[e % kBuckets].requests.add(e);
        const uint64_t total = totals_->requests.fetch_add(1, std::memory_order_relaxed) + 1;
        if ((total & 0x3fffu) == 0) log_counters("periodic");
    }

    // Greedy: hedge slot s (1..distinct) takes the first candidate in [s, warm)
    // whose provider no earlier attempt uses, else one whose provider differs
    // from the primary's, else stays; the rest keep their relative order.
    static void order_by_provider(Route& r, uint32_t distinct, uint32_t warm) {
        const char* primary = provider_of(r[0]);
        for (uint32_t s = 1; s <= distinct; ++s) {
            uint32_t fresh = warm, other = warm;
            for (uint32_t j = s; j < warm; ++j) {
                const char* p = provider_of(r[j]);
                bool used = false;
                for (uint32_t k = 0; k < s && !used; ++k) used = std::strcmp(provider_of(r[k]), p) == 0;
                if (!used) {
                    fresh = j;
                    break;
                }
                if (other == warm && std::strcmp(p, primary) != 0) other = j;
            }
            const uint32_t pick = fresh < warm ? fresh : other < warm ? other : s;
            if (pick != s) {
                tg_candidate c = r[pick];
                for (uint32_t k = pick; k > s; --k) r[k] = r[k - 1];
                r[s] = c;
            }
        }
    }

    // The hedge delay for this request; appends the reason to `why`.
    uint32_t compute_delay(const DelaySpec& spec, bool from_request, const tg_request& req, const tg_candidate& primary,
                           std::string& why) const {
        if (spec.kind == DelaySpec::Fixed) {
            double ms = spec.value;
            bool clamped = false;
            if (from_request) {  // a client's value stays within the operator's bounds
                const double c = std::clamp(ms, min_delay_, max_delay_);
                clamped = c != ms;
                ms = c;
            }
            why += from_request ? "request" : "fixed";
            if (clamped) why += ", clamped";
            return to_u32(ms);
        }
        const tg_deployment_stats* st = primary.stats;
        const bool ttft = req.stream != 0;
        const tg_latency_summary* sum = nullptr;
        if (st != nullptr) {
            if (ttft && TG_HAS_MEMBER(st, tg_deployment_stats, ttft)) sum = &st->ttft;
            if (!ttft && TG_HAS_MEMBER(st, tg_deployment_stats, total)) sum = &st->total;
        }
        const uint64_t samples = sum != nullptr ? sum->samples : 0;
        if (samples == 0 || samples < min_samples_) {
            why += "fallback: ";
            why += decimal(samples);
            why += " samples";
            return to_u32(fallback_delay_);
        }
        const double raw = spec.kind == DelaySpec::Mean ? sum->mean_ms : quantile_ms(*sum, spec.value);
        const double ms = std::clamp(std::isfinite(raw) ? raw : max_delay_, min_delay_, max_delay_);
        why += spec.label;
        if (ms != raw) {
            char buf[48];
            std::snprintf(buf, sizeof buf, " %.1fms, clamped", raw);
            why += buf;
        }
        return to_u32(ms);
    }

    // Digits of v in a thread-local buffer (valid until the next call).
    static std::string_view decimal(uint64_t v) {
        thread_local char buf[24];
        auto res = std::to_chars(buf, buf + sizeof buf, v);
        return std::string_view(buf, static_cast<size_t>(res.ptr - buf));
    }

    static std::string& scratch() {
        thread_local std::string buf;
        return buf;
    }

    static uint32_t to_u32(double ms) { return static_cast<uint32_t>(std::llround(std::max(0.0, ms))); }

    // Per-request keys whose values could not be used.
    struct Ignored {
        const char* keys[3];
        uint32_t n = 0;
        void add(const char* k) {
            if (n < 3) keys[n++] = k;
        }
    };

    // Sends `text` (plus the ignored keys) as this request's route note.
    void note(Route& r, std::string_view text, const Ignored& ignored) const {
        std::string& buf = scratch();
        if (buf.data() != text.data()) buf.assign(text);
        for (uint32_t i = 0; i < ignored.n; ++i) {
            buf += i == 0 ? "; ignored invalid " : ", ";
            buf += ignored.keys[i];
        }
        host_.note(r.raw(), buf);
    }

    void log_counters(const char* when) const {
        const Counters c = counters();
        char line[200];
        std::snprintf(line, sizeof line,
                      "staggered-hedge counters (%s): requests %llu, eligible %llu, hedges admitted %llu, "
                      "refused by budget %llu, hedge wins %llu",
                      when, static_cast<unsigned long long>(c.requests), static_cast<unsigned long long>(c.eligible),
                      static_cast<unsigned long long>(c.admitted), static_cast<unsigned long long>(c.refused),
                      static_cast<unsigned long long>(c.wins));
        host_.log(TG_LOG_DEBUG, line);
    }

    static uint64_t next_instance_id() {
        static std::atomic<uint64_t> n{0};
        return n.fetch_add(1, std::memory_order_relaxed) + 1;
    }

    Host host_;
    const uint64_t instance_id_ = next_instance_id();  // never reused, unlike an address
    DelaySpec delay_;
    uint32_t max_attempts_ = 2;
    bool failover_ = true;
    bool prefer_other_provider_ = false;
    bool reuse_ = true;
    double min_delay_ = 10, max_delay_ = 30000, fallback_delay_ = 1000;
    uint64_t min_samples_ = 20;
    double max_extra_load_ = 0.1;
    double floor_per_s_ = 1;
    double floor_per_window_ = 10;
    int64_t bucket_ms_ = 1000;

    std::shared_ptr<Budget> budget_;
    std::shared_ptr<Totals> totals_;
};

}  // namespace

TAILGATE_STRATEGY(StaggeredHedge, "staggered-hedge")
