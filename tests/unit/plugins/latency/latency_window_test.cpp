// The latency plugin's window / histogram structure, tested directly.
#include "../../../../plugins/latency/latency_window.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

namespace tailgate::latency {
namespace {

using B = LatencyBuckets;

constexpr int64_t kSec = 1000;

// ---- buckets ----

TEST(LatencyBuckets, CoverTenthOfAMillisecondToAnHourWithinOnePercent) {
    EXPECT_LE(B::kMin, 0.1);
    EXPECT_GE(B::kMax, 3600.0 * 1000);
    int checked = 0;
    for (double v = 0.1; v <= 3600.0 * 1000; v *= 1.0007) {
        const uint32_t i = B::index_of(v);
        ASSERT_GT(i, 0u) << v;
        ASSERT_LT(i, B::kCount - 1) << v;
        const double lo = B::lower(i), hi = B::upper(i);
        ASSERT_LE(lo, v) << v;
        ASSERT_LT(v, hi) << v;
        ASSERT_LE((hi - lo) / lo, 1.0 / 128 + 1e-12) << v;            // bucket width <= 0.78 %
        ASSERT_LE(std::abs((lo + hi) / 2 - v) / v, 0.01) << v;        // midpoint within 1 %
        ++checked;
    }
    EXPECT_GT(checked, 20000);
}

TEST(LatencyBuckets, BoundariesAreContiguousAndMonotonic) {
    for (uint32_t i = 1; i < B::kCount; ++i) {
        ASSERT_EQ(B::upper(i - 1), B::lower(i)) << i;
        ASSERT_LT(B::lower(i - 1), B::lower(i)) << i;
    }
    // Every bucket boundary maps to its own bucket.
    for (uint32_t i = 1; i < B::kCount; ++i) ASSERT_EQ(B::index_of(B::lower(i)), i) << i;
}

TEST(LatencyBuckets, OutOfRangeValues) {
    EXPECT_EQ(B::index_of(0.0), 0u);
    EXPECT_EQ(B::index_of(-5.0), 0u);
    EXPECT_EQ(B::index_of(0.01), 0u);
    EXPECT_EQ(B::index_of(std::nan("")), 0u);
    EXPECT_EQ(B::index_of(B::kMax), B::kCount - 1);
    EXPECT_EQ(B::index_of(1e12), B::kCount - 1);
    EXPECT_EQ(B::index_of(std::numeric_limits<double>::infinity()), B::kCount - 1);
    EXPECT_EQ(B::index_of(std::numeric_limits<double>::denorm_min()), 0u);
}

// ---- quantile accuracy ----

// |rank(v)/n - q| where rank(v) = number of samples <= v; with ties at v,
// the best position inside the tie run counts.
double rank_error(const std::vector<double>& sorted, double v, double q) {
    const double n = static_cast<double>(sorted.size());
    const double below = static_cast<double>(std::lower_bound(sorted.begin(), sorted.end(), v) - sorted.begin());
    const double upto = static_cast<double>(std::upper_bound(sorted.begin(), sorted.end(), v) - sorted.begin());
    const double target = q * n;
    if (target >= below && target <= upto) return 0;
    return std::min(std::abs(below - target), std::abs(upto - target)) / n;
}

struct Accuracy {
    double max_rank_error = 0;
    double max_rel_error = 0;
};

Accuracy check_distribution(const std::vector<double>& samples) {
    Window w(5 * kSec, 12);
    for (double v : samples) w.record(v, 1000);
    std::vector<double> sorted = samples;
    std::sort(sorted.begin(), sorted.end());
    Accuracy acc;
    const double n = static_cast<double>(sorted.size());
    for (double q : {0.001, 0.01, 0.05, 0.10, 0.25, 0.50, 0.75, 0.90, 0.95, 0.99, 0.999}) {
        const double got = w.quantile(q, 1000);
        const double err = rank_error(sorted, got, q);
        EXPECT_LE(err, 0.01) << "q=" << q << " got " << got;
        acc.max_rank_error = std::max(acc.max_rank_error, err);
        // Exact quantile: the sample at rank ceil(q n).
        const size_t k = std::min(sorted.size(), static_cast<size_t>(std::max(1.0, std::ceil(q * n)))) - 1;
        const double exact = sorted[k];
        acc.max_rel_error = std::max(acc.max_rel_error, std::abs(got - exact) / exact);
    }
    const Summary s = w.summary(1000);
    EXPECT_EQ(s.samples, samples.size());
    double sum = 0;
    for (double v : samples) sum += v;
    EXPECT_NEAR(s.mean, sum / n, 1e-9 * sum / n);
    EXPECT_LE(rank_error(sorted, s.p50, 0.50), 0.01);
    EXPECT_LE(rank_error(sorted, s.p90, 0.90), 0.01);
    EXPECT_LE(rank_error(sorted, s.p95, 0.95), 0.01);
    EXPECT_LE(rank_error(sorted, s.p99, 0.99), 0.01);
    return acc;
}

TEST(LatencyWindow, QuantilesOfUniformWithinOnePercentRank) {
    std::mt19937_64 rng(1);
    std::uniform_real_distribution<double> dist(10.0, 2000.0);
    std::vector<double> xs(200000);
    for (auto& x : xs) x = dist(rng);
    auto acc = check_distribution(xs);
    EXPECT_LE(acc.max_rel_error, 0.01);
    std::printf("[ uniform   ] max rank error %.5f%%, max value error %.4f%%\n", 100 * acc.max_rank_error,
                100 * acc.max_rel_error);
}

TEST(LatencyWindow, QuantilesOfHeavyTailedLognormalWithinOnePercentRank) {
    // median 800 ms, sigma 1.6: from ~5 ms to many minutes.
    std::mt19937_64 rng(2);
    std::lognormal_distribution<double> dist(std::log(800.0), 1.6);
    std::vector<double> xs(200000);
    for (auto& x : xs) x = dist(rng);
    auto acc = check_distribution(xs);
    EXPECT_LE(acc.max_rel_error, 0.01);
    std::printf("[ lognormal ] max rank error %.5f%%, max value error %.4f%%\n", 100 * acc.max_rank_error,
                100 * acc.max_rel_error);
}

TEST(LatencyWindow, QuantilesOfBimodalWithinOnePercentRank) {
    // 85 % fast cached answers around 120 ms, 15 % long generations around 9 s.
    std::mt19937_64 rng(3);
    std::normal_distribution<double> fast(120.0, 8.0), slow(9000.0, 1500.0);
    std::bernoulli_distribution pick_slow(0.15);
    std::vector<double> xs(200000);
    for (auto& x : xs) x = std::max(1.0, pick_slow(rng) ? slow(rng) : fast(rng));
    auto acc = check_distribution(xs);
    EXPECT_LE(acc.max_rel_error, 0.01);
    std::printf("[ bimodal   ] max rank error %.5f%%, max value error %.4f%%\n", 100 * acc.max_rank_error,
                100 * acc.max_rel_error);
}

TEST(LatencyWindow, SmallSamplesAreExactAtTheEnds) {
    Window w(kSec, 4);
    w.record(42.0, 0);
    const Summary one = w.summary(0);
    EXPECT_EQ(one.samples, 1u);
    EXPECT_DOUBLE_EQ(one.mean, 42.0);
    EXPECT_DOUBLE_EQ(one.p50, 42.0);
    EXPECT_DOUBLE_EQ(one.p99, 42.0);
    w.record(50.0, 0);
    w.record(400.0, 0);
    EXPECT_DOUBLE_EQ(w.quantile(0, 0), 42.0);
    EXPECT_DOUBLE_EQ(w.quantile(1, 0), 400.0);
    EXPECT_NEAR(w.quantile(0.5, 0), 50.0, 0.5);
}

TEST(LatencyWindow, ExtremeValuesStayFiniteAndClamped) {
    Window w(kSec, 4);
    w.record(0.0, 0);
    w.record(-3.0, 0);  // counts as 0
    w.record(2.0 * 3600 * 1000 * 10, 0);  // 20 h: overflow bucket
    EXPECT_FALSE(w.record(std::nan(""), 0));
    const Summary s = w.summary(0);
    EXPECT_EQ(s.samples, 3u);
    EXPECT_GE(s.p50, 0.0);  // inside the underflow bucket [0, kMin)
    EXPECT_LT(s.p50, B::kMin);
    EXPECT_GE(s.p99, B::kMax);  // inside the overflow bucket [kMax, largest sample]
    EXPECT_LE(s.p99, 2.0 * 3600 * 1000 * 10);
    EXPECT_DOUBLE_EQ(w.quantile(1.0, 0), 2.0 * 3600 * 1000 * 10);
    EXPECT_TRUE(std::isfinite(s.mean));
}

// ---- time window ----

TEST(LatencyWindow, SamplesExpireAfterTheWindow) {
    // 60 s in 12 slices of 5 s.
    Window w(5 * kSec, 12);
    for (int i = 0; i < 100; ++i) w.record(100.0, 1 * kSec);  // slice [0, 5 s)
    for (int i = 0; i < 100; ++i) w.record(300.0, 31 * kSec);  // slice [30, 35 s)
    EXPECT_EQ(w.summary(31 * kSec).samples, 200u);
    EXPECT_DOUBLE_EQ(w.summary(59 * kSec).mean, 200.0);
    // The first slice leaves when the slice 12 slices later starts (60 s).
    EXPECT_FALSE(w.advance(59999));
    EXPECT_EQ(w.samples(), 200u);
    EXPECT_TRUE(w.advance(60 * kSec));
    EXPECT_EQ(w.samples(), 100u);
    Summary s = w.summary(60 * kSec);
    EXPECT_DOUBLE_EQ(s.mean, 300.0);
    EXPECT_NEAR(s.p50, 300.0, 3.0);
    EXPECT_NEAR(s.p99, 300.0, 3.0);
    // Everything is gone one window after the last sample's slice.
    s = w.summary(90 * kSec);
    EXPECT_EQ(s.samples, 0u);
    EXPECT_EQ(s.mean, 0.0);
    EXPECT_EQ(s.p99, 0.0);
    EXPECT_FALSE(w.recent(90 * kSec, Statistic::Mean, 1).has_value());
    // And the window is reusable afterwards.
    w.record(7.0, 1000 * kSec);
    EXPECT_EQ(w.summary(1000 * kSec).samples, 1u);
    EXPECT_DOUBLE_EQ(w.summary(1000 * kSec).p95, 7.0);
}

TEST(LatencyWindow, LongIdleGapClearsEverything) {
    Window w(kSec, 16);
    for (int t = 0; t < 16; ++t)
        for (int i = 0; i < 10; ++i) w.record(10.0 + t, t * kSec);
    EXPECT_EQ(w.samples(), 160u);
    EXPECT_EQ(w.summary(1000000 * kSec).samples, 0u);
    w.record(5.0, 1000000 * kSec);
    const Summary s = w.summary(1000000 * kSec);
    EXPECT_EQ(s.samples, 1u);
    EXPECT_DOUBLE_EQ(s.p50, 5.0);
}

TEST(LatencyWindow, MergedHistogramMatchesAFreshOneAfterRotation) {
    // After many rotations, the incrementally maintained window histogram must
    // equal one built from the surviving samples only.
    std::mt19937_64 rng(9);
    std::lognormal_distribution<double> dist(std::log(300.0), 1.0);
    Window w(kSec, 8);
    struct S {
        int64_t t;
        double v;
    };
    std::vector<S> all;
    for (int64_t t = 0; t < 40 * kSec; t += 37) {
        const double v = dist(rng);
        w.record(v, t);
        all.push_back({t, v});
    }
    const int64_t now = 40 * kSec;
    Window fresh(kSec, 8);
    for (const auto& s : all)
        if (s.t >= now - 7 * kSec - (now % kSec)) fresh.record(s.v, now);
    EXPECT_EQ(w.summary(now).samples, fresh.summary(now).samples);
    for (double q : {0.1, 0.5, 0.9, 0.99}) EXPECT_NEAR(w.quantile(q, now), fresh.quantile(q, now), 1e-9) << q;
}

TEST(LatencyWindow, ClockGoingBackRecordsIntoTheNewestSlice) {
    Window w(kSec, 4);
    w.record(10.0, 10 * kSec);
    w.record(20.0, 5 * kSec);  // older than the newest slice: kept, not lost
    EXPECT_EQ(w.summary(10 * kSec).samples, 2u);
    EXPECT_EQ(w.summary(13 * kSec).samples, 2u);
    EXPECT_EQ(w.summary(14 * kSec).samples, 0u);
}

TEST(LatencyWindow, NegativeClockValuesWork) {
    Window w(kSec, 4);
    w.record(10.0, -2500);
    w.record(20.0, -1);
    EXPECT_EQ(w.summary(0).samples, 2u);
    EXPECT_EQ(w.summary(999).samples, 2u);
    EXPECT_EQ(w.summary(kSec).samples, 1u);  // -2500 is in slice -3, gone when slice 1 starts
    EXPECT_EQ(w.summary(3 * kSec).samples, 0u);
}

// ---- recent() ----

TEST(LatencyWindow, RecentUsesTheNewestSlicesWithEnoughSamples) {
    Window w(kSec, 10);
    for (int i = 0; i < 50; ++i) w.record(100.0, 0);        // slice 0
    for (int i = 0; i < 5; ++i) w.record(400.0, 1 * kSec);  // slice 1
    for (int i = 0; i < 5; ++i) w.record(400.0, 2 * kSec);  // slice 2
    auto r = w.recent(2 * kSec, Statistic::Mean, 10);
    ASSERT_TRUE(r);
    EXPECT_DOUBLE_EQ(r->value, 400.0);
    EXPECT_EQ(r->samples, 10u);
    EXPECT_EQ(r->slices, 2u);
    r = w.recent(2 * kSec, Statistic::Mean, 11);  // needs slice 0 too
    ASSERT_TRUE(r);
    EXPECT_EQ(r->samples, 60u);
    EXPECT_NEAR(r->value, (50 * 100.0 + 10 * 400.0) / 60, 1e-9);
    r = w.recent(2 * kSec, Statistic::Mean, 1000);  // fewer in the window: all of it
    ASSERT_TRUE(r);
    EXPECT_EQ(r->samples, 60u);
    // Quantiles over the newest slices only.
    r = w.recent(2 * kSec, Statistic::P50, 10);
    ASSERT_TRUE(r);
    EXPECT_DOUBLE_EQ(r->value, 400.0);
    r = w.recent(2 * kSec, Statistic::P50, 60);
    ASSERT_TRUE(r);
    EXPECT_NEAR(r->value, 100.0, 1.0);
    r = w.recent(2 * kSec, Statistic::P95, 60);
    ASSERT_TRUE(r);
    EXPECT_NEAR(r->value, 400.0, 4.0);
    // Empty slices in between are skipped.
    for (int i = 0; i < 3; ++i) w.record(1000.0, 6 * kSec);
    r = w.recent(6 * kSec, Statistic::Mean, 4);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->slices, 2u);
    EXPECT_EQ(r->samples, 8u);
}

TEST(LatencyWindow, RecentQuantileOverSomeSlicesMatchesAWindowOfThoseSamples) {
    std::mt19937_64 rng(5);
    std::lognormal_distribution<double> dist(std::log(500.0), 1.2);
    Window w(kSec, 12);
    Window only_recent(kSec, 12);
    for (int s = 0; s < 10; ++s)
        for (int i = 0; i < 200; ++i) {
            const double v = dist(rng) * (s + 1);
            w.record(v, s * kSec);
            if (s >= 7) only_recent.record(v, 9 * kSec);
        }
    for (auto st : {Statistic::P50, Statistic::P90, Statistic::P95, Statistic::P99}) {
        auto r = w.recent(9 * kSec, st, 600);
        ASSERT_TRUE(r);
        EXPECT_EQ(r->slices, 3u);
        EXPECT_NEAR(r->value, only_recent.quantile(statistic_quantile(st), 9 * kSec), 1e-9);
    }
}

// ---- memory ----

TEST(LatencyWindow, MemoryIsBoundedAndIndependentOfSampleCount) {
    std::mt19937_64 rng(11);
    std::lognormal_distribution<double> dist(std::log(500.0), 2.0);
    Window w(5 * kSec, 12);
    const size_t empty = w.memory_bytes();
    for (int i = 0; i < 1000; ++i) w.record(dist(rng), i * 60);  // 1000 samples over 60 s: every slice
    const size_t after_1k = w.memory_bytes();
    for (int i = 0; i < 1000000; ++i) w.record(dist(rng), 60 * kSec + i / 17);
    const size_t after_1m = w.memory_bytes();
    EXPECT_EQ(after_1k, after_1m);
    EXPECT_LE(after_1m, Window::max_memory_bytes(12));
    EXPECT_LT(empty, 2048u);  // nothing allocated before the first sample
    EXPECT_LE(Window::max_memory_bytes(12), 200u * 1024);
    std::printf("[ memory    ] empty window %zu B, full 12-slice window %zu B (bound %zu B)\n", empty, after_1m,
                Window::max_memory_bytes(12));
}

// ---- cost ----

TEST(LatencyWindow, MicroBenchmark) {
    std::mt19937_64 rng(13);
    std::lognormal_distribution<double> dist(std::log(500.0), 1.0);
    std::vector<double> xs(1 << 16);
    for (auto& x : xs) x = dist(rng);
    Window w(5 * kSec, 12);
    constexpr int kN = 1000000;
    volatile double sink = 0;
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kN; ++i) w.record(xs[i & 0xffff], i / 10);  // rotates every 50k records
    auto t1 = std::chrono::steady_clock::now();
    for (int i = 0; i < kN / 10; ++i) sink = sink + w.summary_now().p95;
    auto t2 = std::chrono::steady_clock::now();
    for (int i = 0; i < kN / 10; ++i) sink = sink + w.recent(kN / 10, Statistic::Mean, 20)->value;
    auto t3 = std::chrono::steady_clock::now();
    for (int i = 0; i < kN / 10; ++i) sink = sink + w.recent(kN / 10, Statistic::P95, 120000)->value;
    auto t4 = std::chrono::steady_clock::now();
    auto ns = [](auto a, auto b, int n) { return std::chrono::duration<double, std::nano>(b - a).count() / n; };
    std::printf("[ cost      ] record %.1f ns, summary (mean+4 quantiles) %.1f ns, recent mean %.1f ns, "
                "recent p95 over several slices %.1f ns\n",
                ns(t0, t1, kN), ns(t1, t2, kN / 10), ns(t2, t3, kN / 10), ns(t3, t4, kN / 10));
    EXPECT_GT(sink, 0);
}

}  // namespace
}  // namespace tailgate::latency
