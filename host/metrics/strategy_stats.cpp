#include "metrics/strategy_stats.hpp"

#include "common/api_error.hpp"

#include "metrics/json_log.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace tailgate::metrics {

namespace {

constexpr std::memory_order relaxed = std::memory_order_relaxed;
constexpr size_t kHistSize = StrategyStats::kBins + 1;  // + overflow

struct Hist {
    std::atomic<uint32_t> c[kHistSize];
    void add(double ms) noexcept {
        if (ms >= 0) c[StrategyStats::bin_for(ms)].fetch_add(1, relaxed);
    }
    void reset() noexcept {
        for (auto& x : c) x.store(0, relaxed);
    }
};

// Group counters.
enum GC : size_t {
    kRequests, kHedged, kHedgeWon, kWasted, kExtra, kRaces,
    kHedgedOrRaced, kPrimaryUncensored, kPrimaryCensored, kPrimaryOther, kShadowSampled, kGroupCounters
};
enum GH : size_t { kClientTotal, kClientTtft, kPrimaryLatency, kHrClient, kShadowLatency, kGroupHists };
// Deployment counters.
enum DC : size_t { kAttempts, kSuccesses, kCooldowns, kRaceWins, kDepCounters };
enum DH : size_t { kDepTtft, kDepTotal, kDepHists };

struct GroupCell {
    std::atomic<uint64_t> n[kGroupCounters];
    Hist h[kGroupHists];
    void reset() noexcept {
        for (auto& x : n) x.store(0, relaxed);
        for (auto& x : h) x.reset();
    }
};
struct DepCell {
    std::atomic<uint64_t> n[kDepCounters];
    Hist h[kDepHists];
    void reset() noexcept {
        for (auto& x : n) x.store(0, relaxed);
        for (auto& x : h) x.reset();
    }
};

struct Slot {
    std::atomic<int64_t> epoch{-1};
    std::unique_ptr<GroupCell[]> groups;
    std::unique_ptr<DepCell[]> deps;
};

// Aggregated (non-atomic) view of a window.
struct GroupSum {
    uint64_t n[kGroupCounters] = {};
    uint64_t h[kGroupHists][kHistSize] = {};
};
struct DepSum {
    uint64_t n[kDepCounters] = {};
    uint64_t h[kDepHists][kHistSize] = {};
};

double quantile(const uint64_t* h, double q) {
    uint64_t total = 0;
    for (size_t i = 0; i < kHistSize; ++i) total += h[i];
    if (!total) return -1;
    const double rank = q * static_cast<double>(total);
    uint64_t seen = 0;
    for (size_t i = 0; i < kHistSize; ++i) {
        seen += h[i];
        if (static_cast<double>(seen) >= rank && h[i]) return StrategyStats::bin_value(i);
    }
    return StrategyStats::bin_value(kHistSize - 1);
}

std::string num(double v) {
    if (!std::isfinite(v) || v < 0) return "null";
    return fmt::format("{:.4g}", v);
}

std::string rate(uint64_t a, uint64_t b) {
    return b ? fmt::format("{:.4f}", static_cast<double>(a) / static_cast<double>(b)) : std::string("null");
}

std::string quote(const std::string& s) {
    std::string out = "\"";
    json_escape_into(out, s);
    out += '"';
    return out;
}

std::string latency_json(const uint64_t* h) {
    uint64_t total = 0;
    for (size_t i = 0; i < kHistSize; ++i) total += h[i];
    return fmt::format("{{\"count\":{},\"p50\":{},\"p95\":{},\"p99\":{}}}", total, num(quantile(h, 0.5)),
                       num(quantile(h, 0.95)), num(quantile(h, 0.99)));
}

}  // namespace

struct StrategyStats::Window {
    Window(const char* n, int64_t width, size_t count, size_t groups, size_t deps)
        : name(n), width_ms(width), slots(count) {
        for (auto& s : slots) {
            s.groups = std::make_unique<GroupCell[]>(groups);
            s.deps = std::make_unique<DepCell[]>(deps);
            for (size_t i = 0; i < groups; ++i) s.groups[i].reset();
            for (size_t i = 0; i < deps; ++i) s.deps[i].reset();
        }
        ngroups = groups;
        ndeps = deps;
    }

    static int64_t now_ms(Clock::time_point t) {
        return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
    }

    // The slot for `now`, rolled over if it held an older bucket; null if it
    // already holds a newer one (a late writer).
    Slot* at(Clock::time_point now) noexcept {
        const int64_t idx = now_ms(now) / width_ms;
        Slot& s = slots[static_cast<size_t>(idx) % slots.size()];
        int64_t e = s.epoch.load(std::memory_order_acquire);
        while (e != idx) {
            if (e > idx) return nullptr;
            if (s.epoch.compare_exchange_weak(e, idx, std::memory_order_acq_rel)) {
                for (size_t i = 0; i < ngroups; ++i) s.groups[i].reset();
                for (size_t i = 0; i < ndeps; ++i) s.deps[i].reset();
                break;
            }
        }
        return &s;
    }

    // Sums the slots within the window ending at `now`.
    void sum(Clock::time_point now, std::vector<GroupSum>& g, std::vector<DepSum>& d) const {
        const int64_t idx = now_ms(now) / width_ms;
        const int64_t oldest = idx - static_cast<int64_t>(slots.size()) + 1;
        g.assign(ngroups, GroupSum{});
        d.assign(ndeps, DepSum{});
        for (const auto& s : slots) {
            const int64_t e = s.epoch.load(std::memory_order_acquire);
            if (e < oldest || e > idx) continue;
            for (size_t i = 0; i < ngroups; ++i) {
                for (size_t k = 0; k < kGroupCounters; ++k) g[i].n[k] += s.groups[i].n[k].load(relaxed);
                for (size_t k = 0; k < kGroupHists; ++k)
                    for (size_t b = 0; b < kHistSize; ++b) g[i].h[k][b] += s.groups[i].h[k].c[b].load(relaxed);
            }
            for (size_t i = 0; i < ndeps; ++i) {
                for (size_t k = 0; k < kDepCounters; ++k) d[i].n[k] += s.deps[i].n[k].load(relaxed);
                for (size_t k = 0; k < kDepHists; ++k)
                    for (size_t b = 0; b < kHistSize; ++b) d[i].h[k][b] += s.deps[i].h[k].c[b].load(relaxed);
            }
        }
    }

    const char* name;
    int64_t width_ms;
    std::vector<Slot> slots;
    size_t ngroups = 0, ndeps = 0;
};

size_t StrategyStats::bin_for(double ms) noexcept {
    if (!(ms > 1.0)) return 0;  // also NaN
    const double b = std::ceil(3.0 * std::log2(ms) - 1e-9);
    return b >= static_cast<double>(kBins) ? kBins : static_cast<size_t>(b);
}

double StrategyStats::bin_value(size_t bin) noexcept {
    if (bin == 0) return 1.0;
    return std::exp2((static_cast<double>(bin) - 0.5) / 3.0);
}

StrategyStats::StrategyStats(std::vector<std::string> groups, std::vector<std::string> deployment_ids,
                             std::vector<uint32_t> deployment_group)
    : groups_(std::move(groups)), deps_(std::move(deployment_ids)), dep_group_(std::move(deployment_group)) {
    windows_[0] = std::make_unique<Window>("5m", 10'000, 30, groups_.size(), deps_.size());
    windows_[1] = std::make_unique<Window>("1h", 120'000, 30, groups_.size(), deps_.size());
}

StrategyStats::~StrategyStats() = default;

void StrategyStats::record(const Request& r, Clock::time_point now) noexcept {
    if (r.group >= groups_.size()) return;
    const bool hedged = r.hedges > 0;
    const bool hr = hedged || r.race;
    uint64_t launched = 0, lost = 0;
    for (const auto& a : r.attempts) {
        if (!a.launched) continue;
        ++launched;
        if (a.lost) ++lost;
    }
    int primary = -1;  // 0 uncensored, 1 censored, 2 other
    double primary_ms = -1;
    if (hr && !r.attempts.empty()) {
        const Attempt& p = r.attempts[0];
        if (r.winner == 0) {
            primary = 0;
            primary_ms = r.stream ? p.ttft_ms : p.total_ms;
        } else if (p.lost) {
            primary = 1;
        } else {
            primary = 2;
        }
    }
    for (auto& w : windows_) {
        Slot* s = w->at(now);
        if (!s) continue;
        GroupCell& g = s->groups[r.group];
        g.n[kRequests].fetch_add(1, relaxed);
        g.h[kClientTotal].add(r.total_ms);
        if (r.stream) g.h[kClientTtft].add(r.ttft_ms);
        if (hedged) g.n[kHedged].fetch_add(1, relaxed);
        if (hedged && r.hedge_won) g.n[kHedgeWon].fetch_add(1, relaxed);
        if (lost) g.n[kWasted].fetch_add(lost, relaxed);
        if (launched > 1) g.n[kExtra].fetch_add(launched - 1, relaxed);
        if (r.race) g.n[kRaces].fetch_add(1, relaxed);
        if (hr) {
            g.n[kHedgedOrRaced].fetch_add(1, relaxed);
            g.h[kHrClient].add(r.total_ms);
            if (primary == 0) {
                g.n[kPrimaryUncensored].fetch_add(1, relaxed);
                g.h[kPrimaryLatency].add(primary_ms);
            } else if (primary == 1) {
                g.n[kPrimaryCensored].fetch_add(1, relaxed);
            } else if (primary == 2) {
                g.n[kPrimaryOther].fetch_add(1, relaxed);
            }
        }
        for (size_t i = 0; i < r.attempts.size(); ++i) {
            const Attempt& a = r.attempts[i];
            if (!a.launched || a.deployment >= deps_.size()) continue;
            DepCell& d = s->deps[a.deployment];
            d.n[kAttempts].fetch_add(1, relaxed);
            if (a.success) {
                d.n[kSuccesses].fetch_add(1, relaxed);
                d.h[kDepTotal].add(a.total_ms);  // lower bounds (lost, failed) never enter it
            }
            d.h[kDepTtft].add(a.ttft_ms);
            if (r.race && r.winner == static_cast<int>(i)) d.n[kRaceWins].fetch_add(1, relaxed);
        }
    }
}

void StrategyStats::shadow(uint32_t group, double primary_ms, Clock::time_point now) noexcept {
    if (group >= groups_.size()) return;
    for (auto& w : windows_)
        if (Slot* s = w->at(now)) {
            s->groups[group].n[kShadowSampled].fetch_add(1, relaxed);
            s->groups[group].h[kShadowLatency].add(primary_ms);
        }
}

void StrategyStats::cooldown(uint32_t deployment, Clock::time_point now) noexcept {
    if (deployment >= deps_.size()) return;
    for (auto& w : windows_)
        if (Slot* s = w->at(now)) s->deps[deployment].n[kCooldowns].fetch_add(1, relaxed);
}

std::string StrategyStats::render(Clock::time_point now) const {
    std::string out = "{\"windows\":{";
    std::vector<GroupSum> g;
    std::vector<DepSum> d;
    for (size_t wi = 0; wi < 2; ++wi) {
        const Window& w = *windows_[wi];
        w.sum(now, g, d);
        if (wi) out += ',';
        out += fmt::format("\"{}\":{{\"seconds\":{},\"bucket_seconds\":{},\"model_groups\":{{", w.name,
                           w.width_ms * static_cast<int64_t>(w.slots.size()) / 1000, w.width_ms / 1000);
        for (size_t gi = 0; gi < groups_.size(); ++gi) {
            const GroupSum& s = g[gi];
            if (gi) out += ',';
            const uint64_t req = s.n[kRequests], hedged = s.n[kHedged];
            std::string wins;
            for (size_t di = 0; di < deps_.size(); ++di) {
                if (dep_group_[di] != gi) continue;
                if (!wins.empty()) wins += ',';
                wins += quote(deps_[di]) + ":" + std::to_string(d[di].n[kRaceWins]);
            }
            out += quote(groups_[gi]) + ":{";
            out += fmt::format("\"requests\":{},\"latency_ms\":{},\"ttft_ms\":{},", req,
                               latency_json(s.h[kClientTotal]), latency_json(s.h[kClientTtft]));
            out += fmt::format("\"hedging\":{{\"hedged\":{},\"trigger_rate\":{},\"hedge_wins\":{},\"win_rate\":{}}},",
                               hedged, rate(hedged, req), s.n[kHedgeWon], rate(s.n[kHedgeWon], hedged));
            out += fmt::format("\"wasted_attempts\":{},\"extra_attempts\":{},\"extra_load\":{},", s.n[kWasted],
                               s.n[kExtra], rate(s.n[kExtra], req));
            out += fmt::format("\"races\":{{\"count\":{},\"wins\":{{{}}}}},", s.n[kRaces], wins);
            out += fmt::format(
                "\"primary_on_hedged_or_raced\":{{\"requests\":{},\"uncensored\":{},\"uncensored_latency_ms\":{},"
                "\"censored\":{},\"other\":{},\"client_latency_ms\":{},"
                "\"shadow_sampled\":{},\"shadow_primary_latency_ms\":{}}}",
                s.n[kHedgedOrRaced], s.n[kPrimaryUncensored], latency_json(s.h[kPrimaryLatency]),
                s.n[kPrimaryCensored], s.n[kPrimaryOther], latency_json(s.h[kHrClient]), s.n[kShadowSampled],
                latency_json(s.h[kShadowLatency]));
            out += '}';
        }
        out += "},\"deployments\":[";
        for (size_t di = 0; di < deps_.size(); ++di) {
            const DepSum& s = d[di];
            if (di) out += ',';
            out += fmt::format(
                "{{\"deployment\":{},\"model_group\":{},\"attempts\":{},\"successes\":{},\"success_rate\":{},"
                "\"cooldowns\":{},\"race_wins\":{},\"ttft_ms\":{},\"total_ms\":{}}}",
                quote(deps_[di]), dep_group_[di] < groups_.size() ? quote(groups_[dep_group_[di]]) : "null",
                s.n[kAttempts], s.n[kSuccesses], rate(s.n[kSuccesses], s.n[kAttempts]), s.n[kCooldowns],
                s.n[kRaceWins], latency_json(s.h[kDepTtft]), latency_json(s.h[kDepTotal]));
        }
        out += "]}";
    }
    out += "}}";
    return out;
}

}  // namespace tailgate::metrics
