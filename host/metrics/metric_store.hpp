// Storage of the gateway's Prometheus series for the life of the process.
//
// A reload builds a new generation with its own Metrics (indices follow its
// config), but the series themselves live here, looked up by their label set:
// a deployment whose identity, group and provider are unchanged gets the very
// same objects, so no counter ever goes backwards across a reload, and the
// requests still running on an older generation count into them too.
//
// What /metrics shows (Metrics::render): the series of the running config,
// plus those of removed deployments and groups while an older generation that
// has them still runs (their last requests). After that they are no longer
// rendered (Prometheus marks them stale, as for a target that went away), but
// their values are kept — up to kMaxRetired series — so a deployment re-added
// with the same identity continues its counters instead of restarting at 0.
#pragma once

#include "common/rejection.hpp"
#include "common/vocabulary.hpp"

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace tailgate::metrics {

// LLM latencies: 5 ms to 10 minutes (seconds).
inline constexpr double kLatencyBuckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                             2.5,   5,    10,    30,   60,  120,  300, 600};
// Time spent inside the gateway: 50 µs to 100 ms (seconds).
inline constexpr double kOverheadBuckets[] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                              0.005,   0.01,   0.025,   0.05,   0.1};

class Counter {
public:
    void inc(uint64_t n = 1) noexcept { v_.fetch_add(n, std::memory_order_relaxed); }
    uint64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

private:
    std::atomic<uint64_t> v_{0};
};

// A double counter (money); add() is a relaxed CAS loop.
class FloatCounter {
public:
    void add(double x) noexcept;
    double value() const noexcept { return v_.load(std::memory_order_relaxed); }

private:
    std::atomic<double> v_{0};
};

// Prometheus histogram with fixed upper bounds (`le`, inclusive) plus +Inf.
// Buckets are stored non-cumulative (one atomic add per observation) and made
// cumulative when rendered; the sum is kept in integer nanoseconds.
class Histogram {
public:
    explicit Histogram(std::span<const double> upper_bounds);
    void observe(double seconds) noexcept;
    // Index of the bucket `seconds` falls in: the first bound >= seconds, or
    // bounds().size() for +Inf. Negative and NaN values count as 0.
    size_t bucket_for(double seconds) const noexcept;
    std::span<const double> bounds() const noexcept { return bounds_; }

    struct Snapshot {
        std::vector<uint64_t> cumulative;  // per bound, then +Inf (= count)
        double sum = 0;                    // seconds
        uint64_t count() const { return cumulative.empty() ? 0 : cumulative.back(); }
    };
    Snapshot snapshot() const;

private:
    std::span<const double> bounds_;
    std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // bounds_.size() + 1
    std::atomic<uint64_t> sum_ns_{0};
};

// The series of one deployment (model_group, deployment, provider labels).
struct DeploymentSeries {
    DeploymentSeries() : ttft(kLatencyBuckets), latency(kLatencyBuckets) {}
    Histogram ttft;
    Histogram latency;
    std::array<Counter, 4> attempts;  // by Outcome
    std::array<Counter, kErrorClassCount> failures;
    Counter tokens_in, tokens_out;
    FloatCounter cost_usd;
    Counter cooldowns;
    Counter race_wins;
    // The end of the last cooldown counted: one cooldown is counted once even
    // when two generations hear of it (the new one re-published after a reload).
    std::atomic<int64_t> last_cooldown_until{-1};
};

// The series of one model group.
struct GroupSeries {
    GroupSeries() : duration{Histogram(kLatencyBuckets), Histogram(kLatencyBuckets)}, ttft(kLatencyBuckets) {}
    Histogram duration[2];  // [stream]
    Histogram ttft;
    std::array<Counter, 4> requests;  // by StatusClass
    Counter retries, race_fanouts, hedge_eligible, hedges_launched, hedges_won, hedges_refused;
};

class MetricStore {
public:
    static constexpr size_t kMaxRetired = 1000;

    MetricStore() = default;
    MetricStore(const MetricStore&) = delete;
    MetricStore& operator=(const MetricStore&) = delete;

    // Lookups for a generation being built (rare, locked). The same labels give
    // the same object for the life of the process (retention aside).
    std::shared_ptr<DeploymentSeries> deployment(const std::string& full_labels, const std::string& dep_label,
                                                 bool priced);
    std::shared_ptr<GroupSeries> group(const std::string& name);
    // A fallback counter (from group -> to group); the address is stable. Locked:
    // fallbacks happen on a failure path only.
    Counter& fallback(const std::string& from, const std::string& to);
    // Drops the values of series no generation uses beyond kMaxRetired, the
    // longest unused first. Called when a generation is built.
    void prune();

    // Series some generation still uses, for rendering (copies: a reload may
    // change the store meanwhile; the shared_ptr keeps each series alive).
    struct DeploymentView {
        std::string full_labels;
        std::string dep_label;
        bool priced;
        std::shared_ptr<const DeploymentSeries> series;
    };
    std::vector<DeploymentView> live_deployments() const;
    std::vector<std::pair<std::string, std::shared_ptr<const GroupSeries>>> live_groups() const;
    // Every fallback counter: (from, to, value).
    std::vector<std::tuple<std::string, std::string, uint64_t>> fallbacks() const;

    // Series of the gateway as a whole.
    GroupSeries other;  // requests for names no group serves ("_other")
    Histogram overhead{kOverheadBuckets};
    Counter client_disconnects;
    std::array<Counter, kRejectionReasons> rejections;
    std::atomic<int64_t> in_flight_requests{0};
    std::atomic<int64_t> in_flight_streams{0};

private:
    template <class T>
    struct Entry {
        std::shared_ptr<T> series;
        uint64_t last_used = 0;  // the lookup sequence number when last handed out
        std::string dep_label;   // deployments only
        bool priced = false;     // deployments: some config gave it a price
    };
    template <class T>
    static void prune(std::map<std::string, Entry<T>>& m);

    mutable std::mutex mu_;
    uint64_t seq_ = 0;
    std::map<std::string, Entry<DeploymentSeries>> deps_;  // by full label set
    std::map<std::string, Entry<GroupSeries>> groups_;     // by group name
    std::map<std::pair<std::string, std::string>, std::unique_ptr<Counter>> fallbacks_;
};

}  // namespace tailgate::metrics
