// GET /stats/strategies: how the dispatch strategies (hedging, racing) behave
// per model group and per deployment, over two sliding windows (5 min, 1 h).
//
// Each window is a ring of fixed time buckets (30 x 10 s, 30 x 2 min). A
// bucket holds counters and log-scale latency histograms (bins 2^(1/3) wide,
// ~26 %, 1 ms .. ~35 min), all relaxed atomics: recording is bucket-index arithmetic
// plus a few atomic adds, memory is fixed at startup. A bucket is reused when
// its slot comes round again; the writer that moves its epoch zeroes it (a
// sample racing that rollover may be lost: the numbers are approximate by
// design). Quantiles are the geometric midpoint of the bin they fall in.
//
// Hedged/raced requests: the primary (attempt 0) either finished first — its
// latency is known ("uncensored") — or was cancelled as the loser, when only
// a lower bound is known: such requests are counted as "censored" and no
// latency is reported for them.
#pragma once

#include <boost/container/small_vector.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace tailgate::metrics {

class StrategyStats {
public:
    using Clock = std::chrono::steady_clock;

    static constexpr size_t kBins = 64;  // log-scale latency bins (plus an overflow bin)

    // One attempt of a finished request.
    struct Attempt {
        uint32_t deployment = 0;
        bool launched = true;     // false: never started (not launched, refused)
        bool success = false;     // won and completed
        bool lost = false;        // cancelled because another attempt won
        double ttft_ms = -1;      // streams
        double total_ms = -1;     // < 0 unknown
    };
    // A finished client request that went through a plan.
    struct Request {
        uint32_t group = 0;
        bool stream = false;
        double total_ms = -1;     // client-seen
        double ttft_ms = -1;      // client-seen, streams
        uint32_t hedges = 0;      // delayed attempts launched while the primary ran
        bool hedge_won = false;
        bool race = false;
        int winner = -1;          // attempt index
        boost::container::small_vector<Attempt, 4> attempts;  // index = attempt index (0 = primary)
    };

    StrategyStats(std::vector<std::string> groups, std::vector<std::string> deployment_ids,
                  std::vector<uint32_t> deployment_group);
    ~StrategyStats();
    StrategyStats(const StrategyStats&) = delete;
    StrategyStats& operator=(const StrategyStats&) = delete;

    void record(const Request& r, Clock::time_point now) noexcept;
    void cooldown(uint32_t deployment, Clock::time_point now) noexcept;
    // The true latency of a lost primary that was kept running (shadow_sample_rate).
    void shadow(uint32_t group, double primary_ms, Clock::time_point now) noexcept;

    // The JSON document served at GET /stats/strategies.
    std::string render(Clock::time_point now) const;

    // Bin of a latency (ms) and the value reported for a bin; exposed for tests.
    static size_t bin_for(double ms) noexcept;
    static double bin_value(size_t bin) noexcept;

    struct Window;  // implementation

private:
    std::vector<std::string> groups_;
    std::vector<std::string> deps_;
    std::vector<uint32_t> dep_group_;
    std::unique_ptr<Window> windows_[2];  // 5 min, 1 h
};

}  // namespace tailgate::metrics
