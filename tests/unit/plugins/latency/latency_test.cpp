// latency strategy, loaded as the real .so through the loader (TAILGATE_PLUGIN_DIR).
#include "plugin/loader.hpp"

#include <tailgate/testing.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace tailgate::plugin {
namespace {

using sdk::testing::Deployments;
using sdk::testing::FakeHost;
using sdk::testing::Request;
using Args = std::vector<std::pair<std::string, std::string>>;

constexpr uint32_t kTtft = 0, kTotal = 1;

class LatencyTest : public ::testing::Test {
protected:
    InstancePtr make(Args args = {}) {
        bool has_seed = false;
        for (auto& [k, v] : args) has_seed = has_seed || k == "seed";
        if (!has_seed) args.emplace_back("seed", "20261125");
        return reg.create("latency", host.api(), args);
    }
    std::string refusal(Args args) {
        try {
            reg.create("latency", host.api(), args);
        } catch (const PluginError& e) {
            return e.what();
        }
        return "";
    }

    tg_event event(Deployments& d, uint32_t i, tg_event_type type, bool stream, double elapsed_ms,
                   double ttft_ms = -1, int64_t completion_tokens = -1, uint32_t error_class = TG_ERRC_NONE) {
        tg_event e{};
        e.struct_size = sizeof e;
        e.type = type;
        e.deployment = &d.deployment(i);
        e.request_id = "req";
        e.model_group = "test-group";
        e.stream = stream ? 1 : 0;
        e.attempt = 0;
        e.elapsed_ms = elapsed_ms;
        e.ttft_ms = ttft_ms;
        e.error_class = error_class;
        e.http_status = type == TG_EVENT_FAILURE ? 500 : 200;
        e.retry_after_ms = -1;
        e.prompt_tokens = 10;
        e.completion_tokens = completion_tokens;
        return e;
    }
    // A successful non-stream attempt of `ms`.
    void total(Instance& inst, Deployments& d, uint32_t i, double ms, int64_t tokens = -1) {
        inst.observe(event(d, i, TG_EVENT_STARTED, false, 0));
        inst.observe(event(d, i, TG_EVENT_SUCCESS, false, ms, -1, tokens));
    }
    // A successful stream attempt: first byte after `ttft`, done after `all`.
    void stream(Instance& inst, Deployments& d, uint32_t i, double ttft, double all, int64_t tokens = -1) {
        inst.observe(event(d, i, TG_EVENT_STARTED, true, 0));
        inst.observe(event(d, i, TG_EVENT_FIRST_BYTE, true, ttft, ttft));
        inst.observe(event(d, i, TG_EVENT_SUCCESS, true, all, ttft, tokens));
    }
    void fail(Instance& inst, Deployments& d, uint32_t i, bool is_stream, double elapsed,
              uint32_t error_class = TG_ERRC_SERVER) {
        inst.observe(event(d, i, TG_EVENT_STARTED, is_stream, 0));
        inst.observe(event(d, i, TG_EVENT_FAILURE, is_stream, elapsed, -1, -1, error_class));
    }
    std::vector<std::string> order(Instance& inst, Deployments& d, bool is_stream = false) {
        Request req("test-group", is_stream);
        EXPECT_EQ(inst.route(req.raw, d.route(&host)), TG_OK);
        return d.order();
    }
    std::string first(Instance& inst, Deployments& d, bool is_stream = false) {
        return order(inst, d, is_stream).front();
    }
    std::map<std::string, int> first_counts(Instance& inst, Deployments& d, int n, bool is_stream = false) {
        std::map<std::string, int> out;
        for (int i = 0; i < n; ++i) ++out[first(inst, d, is_stream)];
        return out;
    }
    static uint32_t index_of(Deployments& d, const std::string& id) {
        for (uint32_t i = 0; i < d.size(); ++i)
            if (id == d.deployment(i).id) return i;
        ADD_FAILURE() << "no deployment " << id;
        return 0;
    }

    Registry reg{{TAILGATE_PLUGIN_DIR}};
    FakeHost host;
};

// ---- routing by latency ----

TEST_F(LatencyTest, FastestDeploymentWinsAfterWarmUp) {
    Deployments d;
    d.add("fast");  // 50 ms
    d.add("mid");   // 150 ms
    d.add("slow");  // 400 ms
    const double base[] = {50, 150, 400};
    auto inst = make();
    std::mt19937_64 rng(4);
    std::lognormal_distribution<double> noise(0.0, 0.15);
    // Closed loop: route, the first candidate serves, its latency is observed.
    int64_t now = 0;
    auto serve = [&]() {
        auto o = order(*inst, d);
        const uint32_t i = index_of(d, o.front());
        total(*inst, d, i, base[i] * noise(rng));
        host.set_now(now += 100);
        return o;
    };
    for (int i = 0; i < 10; ++i) serve();  // warm-up: the cold ones are explored first
    for (uint32_t i = 0; i < 3; ++i) EXPECT_GT(host.latency(i, kTotal).samples, 0u) << i;
    int fast_first = 0;
    for (int i = 0; i < 300; ++i) {
        auto o = serve();
        if (o.front() == "fast") {
            ++fast_first;
            EXPECT_EQ(o, (std::vector<std::string>{"fast", "mid", "slow"}));  // retries: next fastest
        }
    }
    EXPECT_GE(fast_first, 270);
    std::printf("[ routing   ] fast first in %d of 300 routes\n", fast_first);
}

TEST_F(LatencyTest, StreamsFollowTtftNonStreamsFollowTotal) {
    Deployments d;
    d.add("quick-start");  // first byte after 80 ms, long answer: 6 s
    d.add("quick-total");  // first byte after 700 ms, done after 900 ms
    auto inst = make();
    for (int k = 0; k < 20; ++k) {
        stream(*inst, d, 0, 80, 6000);
        stream(*inst, d, 1, 700, 900);
        total(*inst, d, 0, 6000);
        total(*inst, d, 1, 900);
    }
    for (int k = 0; k < 50; ++k) {
        EXPECT_EQ(order(*inst, d, true), (std::vector<std::string>{"quick-start", "quick-total"}));
        EXPECT_EQ(order(*inst, d, false), (std::vector<std::string>{"quick-total", "quick-start"}));
    }
    // Streams never fed the non-stream total, nor the other way round.
    EXPECT_EQ(host.latency(0, kTtft).samples, 20u);
    EXPECT_DOUBLE_EQ(host.latency(0, kTtft).mean_ms, 80.0);
    EXPECT_EQ(host.latency(0, kTotal).samples, 20u);
    EXPECT_DOUBLE_EQ(host.latency(0, kTotal).mean_ms, 6000.0);
}

TEST_F(LatencyTest, ColdDeploymentsAreExploredFirstAtRandom) {
    Deployments d;
    d.add("a");
    d.add("b");
    d.add("cold1");
    d.add("cold2");
    auto inst = make();
    for (int k = 0; k < 5; ++k) {
        total(*inst, d, 0, 100);
        total(*inst, d, 1, 200);
    }
    std::map<std::string, int> firsts;
    for (int k = 0; k < 2000; ++k) {
        auto o = order(*inst, d);
        ++firsts[o[0]];
        EXPECT_TRUE(o[0].rfind("cold", 0) == 0 && o[1].rfind("cold", 0) == 0) << o[0] << "," << o[1];
        EXPECT_EQ(o[2], "a");
        EXPECT_EQ(o[3], "b");
    }
    EXPECT_NEAR(firsts["cold1"] / 2000.0, 0.5, 0.05);
    EXPECT_NEAR(firsts["cold2"] / 2000.0, 0.5, 0.05);
    // Measured once: no longer cold, ranked by its latency.
    total(*inst, d, 2, 150);
    total(*inst, d, 3, 300);
    EXPECT_EQ(order(*inst, d), (std::vector<std::string>{"a", "cold1", "b", "cold2"}));
    // Cold for one metric is cold for that metric only: streams explore all.
    EXPECT_EQ(first_counts(*inst, d, 400, true).size(), 4u);
}

TEST_F(LatencyTest, ColdDeploymentAlreadyBeingExploredWaitsBehindMeasuredOnes) {
    Deployments d;
    d.add("a");
    d.add("b");
    d.add("cold");
    auto inst = make();
    total(*inst, d, 0, 100);
    total(*inst, d, 1, 200);
    d.stats(2).in_flight = 1;  // one probe already running on it
    EXPECT_EQ(order(*inst, d), (std::vector<std::string>{"a", "b", "cold"}));
    d.stats(2).in_flight = 0;
    EXPECT_EQ(first(*inst, d), "cold");
    // explore_in_flight: 2 allows a second concurrent probe; 0 = no limit.
    auto two = make({{"explore_in_flight", "2"}});
    total(*two, d, 0, 100);
    total(*two, d, 1, 200);
    d.stats(2).in_flight = 1;
    EXPECT_EQ(first(*two, d), "cold");
    d.stats(2).in_flight = 2;
    EXPECT_EQ(first(*two, d), "a");
    auto unlimited = make({{"explore_in_flight", "0"}});
    total(*unlimited, d, 0, 100);
    total(*unlimited, d, 1, 200);
    d.stats(2).in_flight = 50;
    EXPECT_EQ(first(*unlimited, d), "cold");
}

TEST_F(LatencyTest, AllColdIsARandomOrder) {
    Deployments d;
    for (const char* id : {"a", "b", "c"}) d.add(id);
    auto inst = make();
    auto firsts = first_counts(*inst, d, 3000);
    for (const char* id : {"a", "b", "c"}) EXPECT_NEAR(firsts[id] / 3000.0, 1.0 / 3, 0.04) << id;
}

// ---- failures ----

TEST_F(LatencyTest, FailuresCountAsSlowNotFast) {
    Deployments d;
    d.add("flaky");   // answers in 50 ms when it answers
    d.add("steady");  // 150 ms
    auto inst = make();
    for (int k = 0; k < 30; ++k) {
        total(*inst, d, 0, 50);
        total(*inst, d, 1, 150);
    }
    EXPECT_EQ(first(*inst, d), "flaky");
    // Fast failures (20 ms 5xx) must not make it look faster.
    for (int k = 0; k < 3; ++k) fail(*inst, d, 0, false, 20);
    EXPECT_EQ(first(*inst, d), "steady");
    const tg_latency_summary s = host.latency(0, kTotal);
    EXPECT_EQ(s.samples, 33u);
    EXPECT_NEAR(s.mean_ms, (30 * 50.0 + 3 * 10000.0) / 33, 1e-9);
    EXPECT_DOUBLE_EQ(s.p99_ms, 10000.0);  // the penalty sample
    // A failure slower than the penalty counts with its real duration.
    fail(*inst, d, 1, false, 30000);
    EXPECT_DOUBLE_EQ(host.latency(1, kTotal).p99_ms, 30000.0);
}

TEST_F(LatencyTest, FailurePenaltyIsConfigurableAndGoesToTheRequestsMetric) {
    Deployments d;
    d.add("a");
    d.add("b");
    auto inst = make({{"failure_penalty", "2s"}});
    for (int k = 0; k < 10; ++k) {
        stream(*inst, d, 0, 100, 1000);
        stream(*inst, d, 1, 250, 1000);
    }
    EXPECT_EQ(first(*inst, d, true), "a");
    fail(*inst, d, 0, true, 5);  // stream failure: a TTFT penalty
    EXPECT_EQ(host.latency(0, kTtft).samples, 11u);
    EXPECT_DOUBLE_EQ(host.latency(0, kTtft).p99_ms, 2000.0);
    EXPECT_EQ(host.latency(0, kTotal).samples, 0u);  // non-stream total untouched
    EXPECT_EQ(first(*inst, d, true), "b");           // (10 * 100 + 2000) / 11 = 273 > 250
}

TEST_F(LatencyTest, ClientErrorsAndCancellationsRecordNothing) {
    Deployments d;
    d.add("a");
    d.add("b");
    auto inst = make();
    for (int k = 0; k < 10; ++k) {
        total(*inst, d, 0, 50);
        total(*inst, d, 1, 150);
    }
    const tg_latency_summary before = host.latency(0, kTotal);
    fail(*inst, d, 0, false, 5, TG_ERRC_BAD_REQUEST);
    fail(*inst, d, 0, false, 5, TG_ERRC_CONTEXT_WINDOW);
    // Cancelled without a reason given (older hosts): censored, neither fast nor slow.
    inst->observe(event(d, 0, TG_EVENT_STARTED, false, 0));
    inst->observe(event(d, 0, TG_EVENT_CANCELLED, false, 3));
    inst->observe(event(d, 0, TG_EVENT_STARTED, true, 0));
    inst->observe(event(d, 0, TG_EVENT_CANCELLED, true, 90000));
    EXPECT_EQ(host.latency(0, kTotal).samples, before.samples);
    EXPECT_EQ(host.latency(0, kTotal).mean_ms, before.mean_ms);
    EXPECT_EQ(host.latency(0, kTtft).samples, 0u);
    EXPECT_EQ(first(*inst, d), "a");
}

TEST_F(LatencyTest, LosingEveryRaceIsRecordedAsALowerBound) {
    // "slow" never finishes first: each of its attempts is cancelled when the
    // other commits. It must not stay "unmeasured" (explored first) forever.
    Deployments d;
    d.add("slow");
    d.add("fast");
    auto inst = make();
    for (int k = 0; k < 10; ++k) {
        total(*inst, d, 1, 20);
        inst->observe(event(d, 0, TG_EVENT_STARTED, false, 0));
        tg_event lost = event(d, 0, TG_EVENT_CANCELLED, false, 220);
        lost.cancel_reason = TG_CANCEL_LOST;
        inst->observe(lost);
    }
    EXPECT_EQ(host.latency(0, kTotal).samples, 10u);
    EXPECT_DOUBLE_EQ(host.latency(0, kTotal).mean_ms, 220.0);
    EXPECT_EQ(first(*inst, d), "fast");
    // A client that leaves says nothing about the deployment.
    tg_event gone = event(d, 0, TG_EVENT_CANCELLED, false, 5);
    gone.cancel_reason = TG_CANCEL_CLIENT_GONE;
    inst->observe(gone);
    EXPECT_EQ(host.latency(0, kTotal).samples, 10u);
}

// ---- buffer ----

TEST_F(LatencyTest, LowestLatencyBufferSpreadsAmongNearBest) {
    Deployments d;
    d.add("a");  // 100 ms
    d.add("b");  // 105 ms: within 10 %
    d.add("c");  // 300 ms
    auto feed = [&](Instance& inst) {
        for (int k = 0; k < 10; ++k) {
            total(inst, d, 0, 100);
            total(inst, d, 1, 105);
            total(inst, d, 2, 300);
        }
    };
    auto spread = make({{"lowest_latency_buffer", "0.1"}});
    feed(*spread);
    std::map<std::string, int> firsts;
    for (int k = 0; k < 2000; ++k) {
        auto o = order(*spread, d);
        ++firsts[o[0]];
        EXPECT_EQ(o[2], "c");
    }
    EXPECT_NEAR(firsts["a"] / 2000.0, 0.5, 0.05);
    EXPECT_NEAR(firsts["b"] / 2000.0, 0.5, 0.05);
    // Default buffer 0: strictly the best, then ascending.
    auto strict = make();
    feed(*strict);
    for (int k = 0; k < 200; ++k) EXPECT_EQ(order(*strict, d), (std::vector<std::string>{"a", "b", "c"}));
    // A wide buffer takes everyone in.
    auto wide = make({{"lowest_latency_buffer", "2"}});
    feed(*wide);
    EXPECT_EQ(first_counts(*wide, d, 1500).size(), 3u);
}

// ---- responsiveness and the window ----

TEST_F(LatencyTest, DeploymentTurningSlowIsAbandonedAfterRecentSamples) {
    // ttl 60 s in 12 slices of 5 s; the statistic uses the newest slices
    // holding >= min_samples (20) samples.
    Deployments d;
    d.add("a");
    d.add("b");
    auto inst = make({{"ttl", "60"}});
    for (int t = 0; t < 30; ++t) {  // 30 s: a fast (50 ms), b medium (160 ms)
        host.set_now(t * 1000);
        for (int k = 0; k < 5; ++k) total(*inst, d, 0, 50);
        total(*inst, d, 1, 160);
    }
    EXPECT_EQ(first(*inst, d), "a");
    // From 30 s on, a answers in 400 ms.
    host.set_now(30000);
    int slow = 0;
    while (first(*inst, d) == "a" && slow < 1000) {
        total(*inst, d, 0, 400);
        ++slow;
    }
    EXPECT_LE(slow, 20);  // at most min_samples slow answers
    std::printf("[ responsive] abandoned after %d slow samples (window mean still %.0f ms)\n", slow,
                host.latency(0, kTotal).mean_ms);
    EXPECT_LT(host.latency(0, kTotal).mean_ms, 160.0);  // the whole-window mean alone would keep it
    for (int k = 0; k < 100; ++k) EXPECT_EQ(first(*inst, d), "b");
}

TEST_F(LatencyTest, DeploymentTurningSlowIsAbandonedWhenOldSlicesExpire) {
    // With a huge min_samples the statistic is the whole-window mean: the
    // fast samples keep a's mean low until their slices leave the window.
    Deployments d;
    d.add("a");
    d.add("b");
    auto inst = make({{"ttl", "60s"}, {"min_samples", "100000"}});
    for (int t = 0; t < 30; ++t) {
        host.set_now(t * 1000);
        for (int k = 0; k < 5; ++k) total(*inst, d, 0, 50);
    }
    host.set_now(30000);
    for (int k = 0; k < 10; ++k) total(*inst, d, 0, 300);  // a turns slow
    for (int k = 0; k < 10; ++k) total(*inst, d, 1, 150);
    EXPECT_EQ(first(*inst, d), "a");  // mean (150 * 50 + 10 * 300) / 160 = 66 ms
    host.set_now(84999);  // the slice of 25..30 s is still in the window: (25 * 50 + 10 * 300) / 35 = 121 ms
    EXPECT_EQ(first(*inst, d), "a");
    host.set_now(85000);  // only the slow samples remain
    EXPECT_EQ(first(*inst, d), "b");
    EXPECT_DOUBLE_EQ(host.latency(0, kTotal).mean_ms, 300.0);  // republished by route() on expiry
    EXPECT_EQ(host.latency(0, kTotal).samples, 10u);
    // One window after the last sample everything is cold again: explored first.
    host.set_now(90000);
    auto firsts = first_counts(*inst, d, 400);
    EXPECT_EQ(firsts.size(), 2u);
    EXPECT_EQ(host.latency(0, kTotal).samples, 0u);
    EXPECT_EQ(host.latency(1, kTotal).samples, 0u);
}

// ---- publishing ----

TEST_F(LatencyTest, PublishesWindowSummariesForOtherStrategies) {
    Deployments d;
    d.add("a");
    d.add("b");
    auto inst = make();
    EXPECT_EQ(host.latency(0, kTtft).samples, 0u);
    for (int k = 1; k <= 100; ++k) stream(*inst, d, 0, 10.0 * k, 5000);  // ttft 10..1000 ms
    for (int k = 1; k <= 1000; ++k) total(*inst, d, 1, k);                // total 1..1000 ms
    const tg_latency_summary t = host.latency(0, kTtft);
    EXPECT_EQ(t.samples, 100u);
    EXPECT_NEAR(t.mean_ms, 505.0, 1e-9);
    EXPECT_NEAR(t.p50_ms, 500.0, 10.0);
    EXPECT_NEAR(t.p90_ms, 900.0, 10.0);
    EXPECT_NEAR(t.p95_ms, 950.0, 10.0);
    EXPECT_NEAR(t.p99_ms, 990.0, 10.0);
    EXPECT_EQ(host.latency(0, kTotal).samples, 0u);  // stream totals are not the non-stream total
    const tg_latency_summary s = host.latency(1, kTotal);
    EXPECT_EQ(s.samples, 1000u);
    EXPECT_NEAR(s.mean_ms, 500.5, 1e-9);
    EXPECT_NEAR(s.p50_ms, 500.0, 5.0);
    EXPECT_NEAR(s.p95_ms, 950.0, 9.5);
    EXPECT_NEAR(s.p99_ms, 990.0, 9.9);
    // Non-stream first bytes (if ever reported) are not TTFT samples.
    inst->observe(event(d, 1, TG_EVENT_FIRST_BYTE, false, 3, 3));
    EXPECT_EQ(host.latency(1, kTtft).samples, 0u);
}

// ---- metric / statistic ----

TEST_F(LatencyTest, PerTokenMetricDividesTotalByCompletionTokens) {
    Deployments d;
    d.add("short-fast");  // 1000 ms for 10 tokens: 100 ms/token
    d.add("long-slow");   // 2000 ms for 200 tokens: 10 ms/token
    auto per_token = make({{"metric", "per_token"}});
    auto plain = make();
    for (Instance* inst : {per_token.get(), plain.get()})
        for (int k = 0; k < 10; ++k) {
            total(*inst, d, 0, 1000, 10);
            total(*inst, d, 1, 2000, 200);
            total(*inst, d, 1, 2000, -1);  // unknown token count: not a per-token sample
        }
    EXPECT_EQ(first(*per_token, d), "long-slow");
    EXPECT_EQ(first(*per_token, d, true), "long-slow");  // per_token applies to streams too
    EXPECT_EQ(first(*plain, d), "short-fast");
}

TEST_F(LatencyTest, StatisticP95PrefersTheSteadyOne) {
    Deployments d;
    d.add("spiky");   // 90 % at 50 ms, 10 % at 3 s: mean 345 ms, p95 3 s
    d.add("steady");  // always 400 ms
    auto by_mean = make();
    auto by_p95 = make({{"statistic", "p95"}, {"min_samples", "100"}});
    auto by_p50 = make({{"statistic", "p50"}});
    for (Instance* inst : {by_mean.get(), by_p95.get(), by_p50.get()})
        for (int k = 0; k < 100; ++k) {
            total(*inst, d, 0, k % 10 == 0 ? 3000 : 50);
            total(*inst, d, 1, 400);
        }
    EXPECT_EQ(first(*by_mean, d), "spiky");
    EXPECT_EQ(first(*by_p95, d), "steady");
    EXPECT_EQ(first(*by_p50, d), "spiky");
}

TEST_F(LatencyTest, MetricTotalRoutesStreamsByTheirFullDuration) {
    Deployments d;
    d.add("quick-start");
    d.add("quick-total");
    auto inst = make({{"metric", "total"}});
    for (int k = 0; k < 10; ++k) {
        stream(*inst, d, 0, 80, 6000);
        stream(*inst, d, 1, 700, 900);
    }
    EXPECT_EQ(first(*inst, d, true), "quick-total");
    // Non-stream requests have no non-stream data yet: explored.
    EXPECT_EQ(first_counts(*inst, d, 300, false).size(), 2u);
}

TEST_F(LatencyTest, MetricTtftRoutesEverythingByTtft) {
    Deployments d;
    d.add("quick-start");
    d.add("quick-total");
    auto inst = make({{"metric", "ttft"}});
    for (int k = 0; k < 10; ++k) {
        stream(*inst, d, 0, 80, 6000);
        stream(*inst, d, 1, 700, 900);
        total(*inst, d, 0, 6000);
        total(*inst, d, 1, 900);
    }
    EXPECT_EQ(first(*inst, d, true), "quick-start");
    EXPECT_EQ(first(*inst, d, false), "quick-start");
}

// ---- plumbing ----

TEST_F(LatencyTest, CoolingCandidatesGoLast) {
    Deployments d;
    d.add("a");
    d.add("b");
    d.add("cold");
    auto inst = make();
    total(*inst, d, 0, 50);
    total(*inst, d, 1, 150);
    d.stats(0).health = TG_HEALTH_COOLING;
    d.stats(2).health = TG_HEALTH_COOLING;
    for (int k = 0; k < 50; ++k) {
        auto o = order(*inst, d);
        EXPECT_EQ(o.size(), 3u);
        EXPECT_EQ(o[0], "b");  // the only warm one; cooling ones are kept as a last resort
    }
    d.stats(1).health = TG_HEALTH_HALF_OPEN;  // half-open is not cooling
    EXPECT_EQ(first(*inst, d), "b");
}

TEST_F(LatencyTest, ClearsAnEarlierPlanAndNotesTheDecision) {
    Deployments d;
    d.add("a");
    d.add("b");
    auto inst = make();
    Request req;
    tg_route& r = d.route(&host);
    r.attempts[0] = tg_attempt{1, TG_LAUNCH_AT_START, 0, 0};
    r.attempt_count = 1;
    ASSERT_EQ(inst->route(req.raw, r), TG_OK);
    EXPECT_EQ(r.attempt_count, 0u);
    total(*inst, d, 0, 42);
    total(*inst, d, 1, 84);
    ASSERT_EQ(inst->route(req.raw, d.route(&host)), TG_OK);
    Request sreq("test-group", true);
    ASSERT_EQ(inst->route(sreq.raw, d.route(&host)), TG_OK);
    auto notes = host.notes();
    ASSERT_EQ(notes.size(), 3u);
    EXPECT_NE(notes[0].find("(explore, no total data)"), std::string::npos) << notes[0];
    EXPECT_EQ(notes[1], "latency: a (total mean 42.0ms, n=1)");
    EXPECT_NE(notes[2].find("(explore, no ttft data)"), std::string::npos) << notes[2];
}

TEST_F(LatencyTest, NoCandidatesIsRefused) {
    Deployments d;
    auto inst = make();
    Request req;
    EXPECT_EQ(inst->route(req.raw, d.route()), TG_ERR_NO_CANDIDATE);
}

TEST_F(LatencyTest, SameSeedSameSequence) {
    Deployments d1, d2;
    for (Deployments* d : {&d1, &d2})
        for (const char* id : {"a", "b", "c", "d"}) d->add(id);
    auto x = make({{"seed", "7"}});
    auto y = make({{"seed", "7"}});
    Request req;
    for (int i = 0; i < 200; ++i) {
        ASSERT_EQ(x->route(req.raw, d1.route()), TG_OK);
        ASSERT_EQ(y->route(req.raw, d2.route()), TG_OK);
        ASSERT_EQ(d1.order(), d2.order());
    }
}

TEST_F(LatencyTest, AcceptsLiteLLMArgsAndRouterSettings) {
    EXPECT_NO_THROW(make({{"ttl", "90"},
                          {"lowest_latency_buffer", "0.5"},
                          {"max_latency_list_size", "10"},
                          {"router.allowed_fails", "3"},
                          {"router.num_retries", "2"}}));
    EXPECT_NO_THROW(make({{"ttl", "1h"}, {"slices", "16"}, {"metric", "auto"}, {"statistic", "mean"},
                          {"failure_penalty", "0"}, {"explore_in_flight", "0"}}));
    EXPECT_NO_THROW(make({{"ttl", "500ms"}, {"slices", "256"}}));
}

TEST_F(LatencyTest, BadArgsAreRefusedNamingTheArg) {
    const std::string prefix =
        std::string(TAILGATE_PLUGIN_DIR) + "/latency.so: strategy 'latency' refused its configuration: ";
    EXPECT_EQ(refusal({{"ttl", "0"}}),
              prefix + "ttl: expected a positive duration like 30s, 5m, 1h or a number of seconds, got '0'");
    EXPECT_EQ(refusal({{"ttl", "soon"}}),
              prefix + "ttl: expected a positive duration like 30s, 5m, 1h or a number of seconds, got 'soon'");
    EXPECT_EQ(refusal({{"slices", "0"}}), prefix + "slices: expected an integer from 1 to 256, got '0'");
    EXPECT_EQ(refusal({{"slices", "1000"}}), prefix + "slices: expected an integer from 1 to 256, got '1000'");
    EXPECT_EQ(refusal({{"lowest_latency_buffer", "-0.1"}}),
              prefix + "lowest_latency_buffer: expected a fraction >= 0 (e.g. 0.1 for 10%), got '-0.1'");
    EXPECT_EQ(refusal({{"lowest_latency_buffer", "10%"}}),
              prefix + "lowest_latency_buffer: expected a fraction >= 0 (e.g. 0.1 for 10%), got '10%'");
    EXPECT_EQ(refusal({{"metric", "fastest"}}),
              prefix + "metric: expected auto, ttft, total or per_token, got 'fastest'");
    EXPECT_EQ(refusal({{"statistic", "p42"}}),
              prefix + "statistic: expected mean, p50, p90, p95 or p99, got 'p42'");
    EXPECT_EQ(refusal({{"failure_penalty", "-1s"}}),
              prefix + "failure_penalty: expected a duration like 30s, 5m, 1h or a number of seconds, got '-1s'");
    EXPECT_EQ(refusal({{"min_samples", "0"}}),
              prefix + "min_samples: expected an integer from 1 to 1000000000, got '0'");
    EXPECT_EQ(refusal({{"min_samples", "5"}, {"max_latency_list_size", "5"}}),
              prefix + "min_samples: give either min_samples or max_latency_list_size, not both");
    EXPECT_EQ(refusal({{"explore_in_flight", "x"}}),
              prefix + "explore_in_flight: expected an integer from 0 to 1000000, got 'x'");
    EXPECT_EQ(refusal({{"seed", "-3"}}), prefix + "seed: expected a non-negative integer, got '-3'");
    EXPECT_EQ(refusal({{"tll", "60"}}),
              prefix +
                  "unknown arg 'tll' (latency accepts: ttl, slices, lowest_latency_buffer, metric, statistic, "
                  "failure_penalty, min_samples, max_latency_list_size, explore_in_flight, seed)");
}

TEST_F(LatencyTest, ConcurrentRoutesAndObservations) {
    Deployments shared;
    for (const char* id : {"a", "b", "c", "d"}) shared.add(id);
    auto inst = make({{"ttl", "10s"}, {"slices", "4"}});  // unseeded would also do; seeded takes its lock
    auto unseeded = reg.create("latency", host.api(), {{"ttl", "10s"}, {"slices", "4"}});
    constexpr int kThreads = 4, kPer = 5000;
    std::atomic<int> bad{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&, t] {
            Deployments d;
            for (const char* id : {"a", "b", "c", "d"}) d.add(id);
            std::mt19937_64 rng(t);
            Request req("test-group", t % 2 == 1);
            for (int i = 0; i < kPer; ++i) {
                for (Instance* p : {inst.get(), unseeded.get()}) {
                    if (p->route(req.raw, d.route()) != TG_OK) ++bad;
                    auto o = d.order();
                    if (std::set<std::string>(o.begin(), o.end()).size() != 4) ++bad;
                    const uint32_t i0 = index_of(d, o.front());
                    const double ms = 10.0 * (i0 + 1) * (1 + (rng() % 100) / 100.0);
                    if (t % 2 == 1) {
                        p->observe(event(shared, i0, TG_EVENT_FIRST_BYTE, true, ms, ms));
                        p->observe(event(shared, i0, TG_EVENT_SUCCESS, true, ms * 3, ms));
                    } else {
                        p->observe(event(shared, i0, TG_EVENT_SUCCESS, false, ms));
                    }
                }
                if (t == 0 && i % 100 == 0) host.set_now(i * 10);  // slices rotate meanwhile
            }
        });
    for (auto& th : threads) th.join();
    EXPECT_EQ(bad.load(), 0);
    uint64_t published = 0;
    for (uint32_t i = 0; i < 4; ++i) published += host.latency(i, kTtft).samples + host.latency(i, kTotal).samples;
    EXPECT_GT(published, 0u);
}

// ---- cost ----

TEST_F(LatencyTest, MicroBenchmark) {
    using Clock = std::chrono::steady_clock;
    auto ns = [](Clock::time_point a, Clock::time_point b, int n) {
        return std::chrono::duration<double, std::nano>(b - a).count() / n;
    };
    for (int n_dep : {3, 10}) {
        Deployments d;
        for (int i = 0; i < n_dep; ++i) d.add("d" + std::to_string(i));
        FakeHost quiet;  // its publish/notes bookkeeping is part of the figure
        auto inst = reg.create("latency", quiet.api(), {});
        std::mt19937_64 rng(1);
        std::lognormal_distribution<double> dist(std::log(300.0), 0.8);
        std::vector<tg_event> evs;
        for (int i = 0; i < 4096; ++i)
            evs.push_back(event(d, static_cast<uint32_t>(i % n_dep), TG_EVENT_SUCCESS, false, dist(rng)));
        constexpr int kN = 200000;
        auto t0 = Clock::now();
        for (int i = 0; i < kN; ++i) {
            if ((i & 1023) == 0) quiet.set_now(i);  // a new 5-min slice now and then is not the common case
            inst->observe(evs[i & 4095]);
        }
        auto t1 = Clock::now();
        Request req;
        for (int i = 0; i < kN; ++i) {
            tg_route& r = d.route();  // no host_private: notes are formatted, then dropped by the fake host
            if (inst->route(req.raw, r) != TG_OK) FAIL();
        }
        auto t2 = Clock::now();
        // The route figure includes Deployments::route() resetting the candidate list.
        for (int i = 0; i < kN; ++i) d.route();
        auto t3 = Clock::now();
        std::printf("[ cost      ] %d deployments: %.0f ns per recorded outcome (record + summary + publish), "
                    "%.0f ns per route (harness %.0f ns)\n",
                    n_dep, ns(t0, t1, kN), ns(t1, t2, kN) - ns(t2, t3, kN), ns(t2, t3, kN));
    }
}

}  // namespace
}  // namespace tailgate::plugin
