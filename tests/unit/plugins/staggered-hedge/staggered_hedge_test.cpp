// staggered-hedge strategy, loaded as the real .so through the loader
// (TAILGATE_PLUGIN_DIR), on FakeHost's clock; plus one pass through the Router
// to check that the plan's admit hook reaches the plugin's budget.
#include "config/config.hpp"
#include "../strategy_test_support.hpp"
#include "router/router.hpp"

#include <tailgate/testing.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <cstdio>
#include <deque>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

namespace tailgate::plugin {
namespace {

using namespace testing;
using sdk::testing::Deployments;
using sdk::testing::FakeHost;
using sdk::testing::Request;
using Ids = std::vector<std::string>;

tg_latency_summary summary(uint64_t samples, double p50, double p90, double p95, double p99, double mean = 0) {
    tg_latency_summary s{};
    s.samples = samples;
    s.mean_ms = mean;
    s.p50_ms = p50;
    s.p90_ms = p90;
    s.p95_ms = p95;
    s.p99_ms = p99;
    return s;
}

class HedgeTest : public StrategyTest {
protected:
    HedgeTest() : StrategyTest("staggered-hedge") {}
    void SetUp() override {
        for (const char* id : {"a", "b", "c"}) d.add(id);
        host.set_now(0);
    }
    Plan route(Instance& inst, Args overrides = {}, bool stream = false, const std::string& id = "req-1") {
        OverrideRequest q(std::move(overrides), id, stream);
        tg_route& r = d.route(&host);
        EXPECT_EQ(inst.route(q.req.raw, r), TG_OK);
        return plan();
    }
    Plan plan() {
        const tg_route& r = d.current();
        Plan out;
        for (uint32_t i = 0; i < r.attempt_count; ++i) {
            const tg_attempt& a = r.attempts[i];
            EXPECT_LT(a.candidate, r.count);
            out.emplace_back(r.candidates[a.candidate].deployment->id, a.launch, a.delay_ms);
        }
        return out;
    }
    // Delay of the first hedge (-1 when there is none).
    int64_t hedge_delay(Instance& inst, Args overrides = {}, bool stream = false) {
        for (auto& [id, launch, delay] : route(inst, std::move(overrides), stream))
            if (launch == D) return delay;
        return -1;
    }
    std::string last_note() {
        auto n = host.notes();
        return n.empty() ? "" : n.back();
    }
    bool admit(Instance& inst, const std::string& request_id, uint32_t attempt = 1) {
        tg_event e = event(TG_EVENT_STARTED, request_id, attempt);
        return inst.admit(e);
    }
    tg_event event(tg_event_type type, const std::string& request_id, uint32_t attempt) {
        ids_.push_back(request_id);
        tg_event e{};
        e.struct_size = sizeof e;
        e.type = type;
        e.deployment = &d.deployment(attempt % d.size());
        e.request_id = ids_.back().c_str();
        e.model_group = "test-group";
        e.attempt = attempt;
        e.ttft_ms = -1;
        e.retry_after_ms = -1;
        e.prompt_tokens = -1;
        e.completion_tokens = -1;
        return e;
    }
    // The counters line the plugin logs (debug) when destroyed.
    std::string final_counters(InstancePtr inst) {
        inst.reset();
        for (auto& [level, msg] : host.logs())
            if (msg.find("staggered-hedge counters (final)") != std::string::npos) return msg;
        return "";
    }

    std::deque<std::string> ids_;
};

// ---------------------------------------------------------------------------
// plan shape

TEST_F(HedgeTest, FixedDelayPlan) {
    auto inst = make({{"delay", "500ms"}});
    EXPECT_EQ(route(*inst), (Plan{{"a", S, 0}, {"b", D, 500}, {"c", F, 0}}));
    EXPECT_EQ(last_note(), "hedge after 500ms (fixed)");
}

TEST_F(HedgeTest, MoreAttemptsEachAfterThePreviousLaunch) {
    d.add("e");
    auto inst = make({{"delay", "0.25s"}, {"max_attempts", "3"}});
    EXPECT_EQ(route(*inst), (Plan{{"a", S, 0}, {"b", D, 250}, {"c", D, 250}, {"e", F, 0}}));
    EXPECT_EQ(last_note(), "hedge after 250ms (fixed), 2 hedges");
}

TEST_F(HedgeTest, FailoverOff) {
    auto inst = make({{"delay", "500ms"}, {"failover", "false"}});
    EXPECT_EQ(route(*inst), (Plan{{"a", S, 0}, {"b", D, 500}}));
}

TEST_F(HedgeTest, MaxAttemptsOneMeansNoHedge) {
    auto inst = make({{"delay", "500ms"}, {"max_attempts", "1"}});
    EXPECT_EQ(route(*inst), (Plan{{"a", S, 0}, {"b", F, 0}, {"c", F, 0}}));
    EXPECT_EQ(last_note(), "hedge: none (max_attempts 1)");
}

TEST_F(HedgeTest, SingleDeploymentHedgesOnItselfUnlessDisabled) {
    Deployments one;
    one.add("only");
    auto inst = make({{"delay", "300ms"}, {"max_attempts", "3"}});
    OverrideRequest q(Args{});
    tg_route& r = one.route(&host);
    ASSERT_EQ(inst->route(q.req.raw, r), TG_OK);
    ASSERT_EQ(r.attempt_count, 3u);
    for (uint32_t i = 0; i < 3; ++i) EXPECT_EQ(r.attempts[i].candidate, 0u);
    EXPECT_EQ(r.attempts[1].launch, D);
    EXPECT_EQ(r.attempts[2].launch, D);
    EXPECT_EQ(last_note(), "hedge after 300ms (fixed), 2 hedges, 2 on the same deployment");

    // A half-open deployment has a single probe: never hedge on it again.
    one.stats(0).health = TG_HEALTH_HALF_OPEN;
    tg_route& r2 = one.route(&host);
    ASSERT_EQ(inst->route(q.req.raw, r2), TG_OK);
    EXPECT_EQ(r2.attempt_count, 1u);
    EXPECT_EQ(last_note(), "hedge: none (no other deployment)");

    auto no_reuse = make({{"delay", "300ms"}, {"reuse_deployments", "false"}});
    one.stats(0).health = TG_HEALTH_HEALTHY;
    tg_route& r3 = one.route(&host);
    ASSERT_EQ(no_reuse->route(q.req.raw, r3), TG_OK);
    EXPECT_EQ(r3.attempt_count, 1u);
}

TEST_F(HedgeTest, ReusesOnlyWhenOtherDeploymentsRunOut) {
    auto inst = make({{"delay", "100ms"}, {"max_attempts", "5"}, {"failover", "false"}});
    d.stats(1).health = TG_HEALTH_HALF_OPEN;
    // a, b (half-open, once), c; then the healthy ones again, from the primary.
    EXPECT_EQ(route(*inst), (Plan{{"a", S, 0}, {"b", D, 100}, {"c", D, 100}, {"a", D, 100}, {"c", D, 100}}));
}

// ---------------------------------------------------------------------------
// dynamic delay

TEST_F(HedgeTest, DynamicDelayFollowsThePrimarysQuantile) {
    d.stats(0).total = summary(100, 200, 350, 412, 900);
    d.stats(0).ttft = summary(100, 40, 90, 120, 300);
    d.stats(1).total = summary(100, 1, 1, 1, 1);  // not the primary: irrelevant
    auto p95 = make({{"delay", "p95"}});
    EXPECT_EQ(hedge_delay(*p95), 412);
    EXPECT_EQ(last_note(), "hedge after 412ms (p95)");
    EXPECT_EQ(hedge_delay(*p95, {}, /*stream=*/true), 120) << "streams hedge on time to first token";

    // New stats → the delay moves with them.
    d.stats(0).total = summary(150, 250, 500, 640, 1500);
    EXPECT_EQ(hedge_delay(*p95), 640);
    d.stats(0).ttft = summary(150, 60, 150, 210, 700);
    EXPECT_EQ(hedge_delay(*p95, {}, true), 210);

    auto p99 = make({{"delay", "p99"}});
    EXPECT_EQ(hedge_delay(*p99), 1500);
    EXPECT_EQ(hedge_delay(*p99, {}, true), 700);
    EXPECT_EQ(last_note(), "hedge after 700ms (p99)");
}

TEST_F(HedgeTest, OtherQuantilesInterpolateBetweenPublishedOnes) {
    d.stats(0).total = summary(100, 200, 400, 500, 900, 260);
    EXPECT_EQ(hedge_delay(*make({{"delay", "p90"}})), 400);
    EXPECT_EQ(hedge_delay(*make({{"delay", "p50"}})), 200);
    EXPECT_EQ(hedge_delay(*make({{"delay", "p97"}})), 700) << "halfway between p95 and p99";
    EXPECT_EQ(hedge_delay(*make({{"delay", "p70"}})), 300) << "halfway between p50 and p90";
    EXPECT_EQ(hedge_delay(*make({{"delay", "p99.9"}})), 900) << "above p99: p99";
    EXPECT_EQ(last_note(), "hedge after 900ms (p99.9)");
    EXPECT_EQ(hedge_delay(*make({{"delay", "p25"}})), 200) << "below p50: p50";
    EXPECT_EQ(hedge_delay(*make({{"delay", "mean"}})), 260);
}

TEST_F(HedgeTest, PrimaryIsTheFirstNonCoolingCandidate) {
    d.stats(0).health = TG_HEALTH_COOLING;
    d.stats(0).total = summary(100, 10, 10, 10, 10);
    d.stats(1).total = summary(100, 300, 300, 333, 400);
    auto inst = make({{"delay", "p95"}});
    EXPECT_EQ(route(*inst), (Plan{{"b", S, 0}, {"c", D, 333}}));
    EXPECT_EQ(d.order(), (Ids{"b", "c", "a"}));
}

TEST_F(HedgeTest, Clamping) {
    auto inst = make({{"delay", "p95"}});
    d.stats(0).total = summary(100, 1, 2, 3, 4);
    EXPECT_EQ(hedge_delay(*inst), 10);
    EXPECT_EQ(last_note(), "hedge after 10ms (p95 3.0ms, clamped)");
    d.stats(0).total = summary(100, 1000, 20000, 45000, 90000);
    EXPECT_EQ(hedge_delay(*inst), 30000);

    auto tight = make({{"delay", "p99"}, {"min_delay", "50ms"}, {"max_delay", "2s"}});
    EXPECT_EQ(hedge_delay(*tight), 2000);
    d.stats(0).total = summary(100, 1, 2, 3, 40);
    EXPECT_EQ(hedge_delay(*tight), 50);
    d.stats(0).total = summary(100, 1, 2, 3, 1234.4);
    EXPECT_EQ(hedge_delay(*tight), 1234);
}

TEST_F(HedgeTest, FallbackDelayBelowMinSamples) {
    auto inst = make({{"delay", "p95"}});
    EXPECT_EQ(hedge_delay(*inst), 1000) << "no data at all";
    EXPECT_EQ(last_note(), "hedge after 1000ms (fallback: 0 samples)");
    d.stats(0).total = summary(3, 100, 100, 100, 100);
    EXPECT_EQ(hedge_delay(*inst), 1000);
    EXPECT_EQ(last_note(), "hedge after 1000ms (fallback: 3 samples)");
    d.stats(0).total = summary(19, 100, 100, 100, 100);
    EXPECT_EQ(hedge_delay(*inst), 1000);
    d.stats(0).total = summary(20, 100, 100, 100, 100);
    EXPECT_EQ(hedge_delay(*inst), 100);
    // Streams look at the TTFT window only.
    EXPECT_EQ(hedge_delay(*inst, {}, true), 1000);

    auto custom = make({{"delay", "p95"}, {"min_samples", "50"}, {"fallback_delay", "250ms"}});
    EXPECT_EQ(hedge_delay(*custom), 250);
    EXPECT_EQ(last_note(), "hedge after 250ms (fallback: 20 samples)");
}

// ---------------------------------------------------------------------------
// per-request overrides

TEST_F(HedgeTest, PerRequestOverrides) {
    d.stats(0).total = summary(100, 200, 350, 412, 900);
    auto inst = make({{"delay", "p95"}});
    EXPECT_EQ(hedge_delay(*inst, {{"hedge.delay", "p99"}}), 900);
    EXPECT_EQ(last_note(), "hedge after 900ms (p99)");
    EXPECT_EQ(hedge_delay(*inst, {{"hedge.delay", "200ms"}}), 200);
    EXPECT_EQ(last_note(), "hedge after 200ms (request)");
    // A client's fixed delay stays within the operator's bounds.
    EXPECT_EQ(hedge_delay(*inst, {{"hedge.delay", "1ms"}}), 10);
    EXPECT_EQ(last_note(), "hedge after 10ms (request, clamped)");
    EXPECT_EQ(hedge_delay(*inst, {{"hedge.delay", "10m"}}), 30000);
    // Invalid: ignored, noted, configured delay used.
    EXPECT_EQ(hedge_delay(*inst, {{"hedge.delay", "soonish"}}), 412);
    EXPECT_EQ(last_note(), "hedge after 412ms (p95); ignored invalid hedge.delay");

    EXPECT_EQ(route(*inst, {{"hedge.max_attempts", "3"}}), (Plan{{"a", S, 0}, {"b", D, 412}, {"c", D, 412}}));
    EXPECT_EQ(route(*inst, {{"hedge.max_attempts", "1"}}), (Plan{{"a", S, 0}, {"b", F, 0}, {"c", F, 0}}));
    EXPECT_EQ(route(*inst, {{"hedge.max_attempts", "9"}}), (Plan{{"a", S, 0}, {"b", D, 412}, {"c", F, 0}}));
    EXPECT_EQ(last_note(), "hedge after 412ms (p95); ignored invalid hedge.max_attempts");
}

TEST_F(HedgeTest, PerRequestDisable) {
    auto inst = make({{"delay", "500ms"}});
    EXPECT_TRUE(route(*inst, {{"hedge.enabled", "false"}}).empty()) << "plan left to the host";
    EXPECT_EQ(last_note(), "hedge off (request)");
    EXPECT_TRUE(route(*inst, {{"hedge", "false"}}).empty());
    EXPECT_EQ(route(*inst, {{"hedge.enabled", "true"}}).size(), 3u);
    EXPECT_EQ(route(*inst, {{"hedge", "sometimes"}, {"hedge.delay", "x"}}).size(), 3u);
    EXPECT_EQ(last_note(), "hedge after 500ms (fixed); ignored invalid hedge, hedge.delay");
}

// ---------------------------------------------------------------------------
// provider preference, cooling

TEST_F(HedgeTest, PreferDifferentProvider) {
    Deployments m;
    m.add("oa1", "openai");
    m.add("oa2", "openai");
    m.add("az1", "azure");
    m.add("az2", "azure");
    m.add("gq1", "groq");
    auto run = [&](Instance& inst) {
        OverrideRequest q(Args{});
        tg_route& r = m.route(&host);
        EXPECT_EQ(inst.route(q.req.raw, r), TG_OK);
        Ids hedges;
        for (uint32_t i = 0; i < r.attempt_count; ++i)
            if (r.attempts[i].launch == D) hedges.push_back(r.candidates[r.attempts[i].candidate].deployment->id);
        return std::make_pair(hedges, m.order());
    };
    auto plain = make({{"delay", "100ms"}});
    EXPECT_EQ(run(*plain).first, (Ids{"oa2"}));

    auto pref = make({{"delay", "100ms"}, {"prefer_different_provider", "true"}});
    auto [h1, order1] = run(*pref);
    EXPECT_EQ(h1, (Ids{"az1"}));
    EXPECT_EQ(order1, (Ids{"oa1", "az1", "oa2", "az2", "gq1"})) << "the rest keep their order";

    auto three = make({{"delay", "100ms"}, {"prefer_different_provider", "true"}, {"max_attempts", "4"}});
    auto [h3, order3] = run(*three);
    // A new provider per hedge while there is one, then any provider but the primary's.
    EXPECT_EQ(h3, (Ids{"az1", "gq1", "az2"}));
    EXPECT_EQ(order3, (Ids{"oa1", "az1", "gq1", "az2", "oa2"}));

    // Same provider everywhere: order unchanged.
    Deployments same;
    same.add("x", "openai");
    same.add("y", "openai");
    OverrideRequest q(Args{});
    tg_route& r = same.route(&host);
    ASSERT_EQ(pref->route(q.req.raw, r), TG_OK);
    EXPECT_EQ(same.order(), (Ids{"x", "y"}));
}

TEST_F(HedgeTest, CooledCandidatesGetNoAttempt) {
    d.add("e");
    d.stats(1).health = TG_HEALTH_COOLING;
    auto inst = make({{"delay", "100ms"}, {"max_attempts", "3"}});
    EXPECT_EQ(route(*inst), (Plan{{"a", S, 0}, {"c", D, 100}, {"e", D, 100}}));
    EXPECT_EQ(d.order(), (Ids{"a", "c", "e", "b"}));
}

TEST_F(HedgeTest, AllCoolingNoHedge) {
    for (uint32_t i = 0; i < 3; ++i) d.stats(i).health = TG_HEALTH_COOLING;
    auto inst = make({{"delay", "100ms"}, {"max_attempts", "3"}});
    EXPECT_EQ(route(*inst), (Plan{{"a", S, 0}, {"b", F, 0}, {"c", F, 0}}));
    EXPECT_EQ(last_note(), "hedge: none (all candidates cooling)");
}

// ---------------------------------------------------------------------------
// budget

// 1,000 requests over 10 s of fake time (one every 10 ms), each asking to hedge:
// with max_extra_load 0.05 and a floor of 1/s over a 10 s window, at most
// 5 % x 1000 + 1 x 10 = 60 hedges; everything else refused and counted.
TEST_F(HedgeTest, BudgetCapsExtraLoad) {
    auto inst = make({{"delay", "100ms"}, {"max_extra_load", "0.05"}, {"min_hedges_per_second", "1"},
                      {"budget_window", "10s"}});
    int admitted = 0, refused = 0;
    for (int i = 0; i < 1000; ++i) {
        host.set_now(i * 10);
        const std::string id = "r" + std::to_string(i);
        ASSERT_EQ(std::get<1>(route(*inst, {}, false, id).at(1)), D);
        // The cap must hold at every moment, not only at the end.
        (admit(*inst, id) ? admitted : refused)++;
        ASSERT_LE(admitted, 0.05 * (i + 1) + 10) << "at request " << i;
    }
    EXPECT_EQ(admitted, 60);
    EXPECT_EQ(refused, 940);
    EXPECT_EQ(final_counters(std::move(inst)),
              "staggered-hedge counters (final): requests 1000, eligible 1000, hedges admitted 60, "
              "refused by budget 940, hedge wins 0");
}

// The window slides: after the first 10 s the old hedges and requests expire and
// the steady state is 5 % of the traffic plus the floor, i.e. 6 per second here.
TEST_F(HedgeTest, BudgetWindowSlides) {
    auto inst = make({{"delay", "100ms"}, {"max_extra_load", "0.05"}, {"min_hedges_per_second", "1"}});
    std::vector<int> per_second(40, 0);
    for (int i = 0; i < 4000; ++i) {
        host.set_now(i * 10);
        const std::string id = "r" + std::to_string(i);
        route(*inst, {}, false, id);
        if (admit(*inst, id)) ++per_second[i / 100];
    }
    // Any 10 whole seconds (the window's buckets) hold at most 60.
    for (int s = 0; s + 10 <= 40; ++s) {
        int sum = 0;
        for (int k = s; k < s + 10; ++k) sum += per_second[k];
        EXPECT_LE(sum, 60) << "window starting at " << s << " s";
    }
    int late = 0;
    for (int k = 20; k < 40; ++k) late += per_second[k];
    EXPECT_EQ(late, 2 * 60) << "steady state: the whole budget is used, window after window";
}

// A quiet service still hedges thanks to the floor; without it 5 % of one request is nothing.
TEST_F(HedgeTest, FloorLetsLowTrafficHedge) {
    auto with_floor = make({{"delay", "100ms"}, {"max_extra_load", "0.05"}});
    auto no_floor = make({{"delay", "100ms"}, {"max_extra_load", "0.05"}, {"min_hedges_per_second", "0"}});
    for (int i = 0; i < 30; ++i) {
        host.set_now(i * 1000);
        const std::string id = "q" + std::to_string(i);
        route(*with_floor, {}, false, id);
        route(*no_floor, {}, false, id);
        EXPECT_TRUE(admit(*with_floor, id)) << "request " << i;
        EXPECT_FALSE(admit(*no_floor, id)) << "request " << i;
    }
    // 20 requests in the window and the floor off: 5 % of 20 = 1 hedge.
    auto ratio_only = make({{"delay", "100ms"}, {"max_extra_load", "0.05"}, {"min_hedges_per_second", "0"}});
    for (int i = 0; i < 20; ++i) route(*ratio_only, {}, false, "s" + std::to_string(i));
    EXPECT_TRUE(admit(*ratio_only, "s19"));
    EXPECT_FALSE(admit(*ratio_only, "s19"));
}

TEST_F(HedgeTest, BudgetAliasesAndZeroBudget) {
    auto inst = make({{"delay", "100ms"}, {"budget.max_extra_load", "0"}, {"budget.min_hedges_per_second", "0"},
                      {"budget.window", "5s"}});
    for (int i = 0; i < 100; ++i) route(*inst, {}, false, "z" + std::to_string(i));
    EXPECT_FALSE(admit(*inst, "z99"));
}

TEST_F(HedgeTest, RoutingTheSameRequestAgainCountsOnePrimary) {
    // The router routes a request's fallback groups right after its own group.
    auto inst = make({{"delay", "100ms"}, {"max_extra_load", "1"}, {"min_hedges_per_second", "0"}});
    route(*inst, {}, false, "same");
    route(*inst, {}, false, "same");
    route(*inst, {}, false, "same");
    EXPECT_TRUE(admit(*inst, "same"));
    EXPECT_FALSE(admit(*inst, "same")) << "one request in the window: one hedge at 100 %";
}

TEST_F(HedgeTest, ConcurrentAdmitsStayWithinBudget) {
    auto inst = make({{"delay", "100ms"}, {"max_extra_load", "0.1"}, {"min_hedges_per_second", "0"}});
    host.set_now(5000);
    constexpr int kThreads = 4, kEach = 2500;
    std::atomic<int> admitted{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&, t] {
            Deployments local;
            local.add("a");
            local.add("b");
            for (int i = 0; i < kEach; ++i) {
                const std::string id = "t" + std::to_string(t) + "-" + std::to_string(i);
                OverrideRequest q({}, id);
                tg_route& r = local.route();
                ASSERT_EQ(inst->route(q.req.raw, r), TG_OK);
                tg_event e{};
                e.struct_size = sizeof e;
                e.type = TG_EVENT_STARTED;
                e.deployment = &local.deployment(1);
                e.request_id = id.c_str();
                e.attempt = 1;
                if (inst->admit(e)) admitted.fetch_add(1);
            }
        });
    for (auto& th : threads) th.join();
    EXPECT_LE(admitted.load(), 1000 + kThreads) << "at most one overshoot per concurrent admit";
    EXPECT_GE(admitted.load(), 900);
}

// ---------------------------------------------------------------------------
// counters

TEST_F(HedgeTest, CountsHedgeWins) {
    auto inst = make({{"delay", "100ms"}});
    route(*inst, {}, true, "won-by-hedge");
    route(*inst, {}, true, "won-by-primary");
    route(*inst, {}, false, "not-hedged");
    ASSERT_TRUE(admit(*inst, "won-by-hedge"));
    ASSERT_TRUE(admit(*inst, "won-by-primary"));
    tg_event fb = event(TG_EVENT_FIRST_BYTE, "won-by-hedge", 1);
    inst->observe(fb);
    tg_event ok = event(TG_EVENT_SUCCESS, "won-by-hedge", 1);
    inst->observe(ok);  // the same win, not counted twice
    tg_event primary = event(TG_EVENT_FIRST_BYTE, "won-by-primary", 0);
    inst->observe(primary);
    tg_event failover = event(TG_EVENT_SUCCESS, "not-hedged", 2);
    inst->observe(failover);  // attempt > 0 but the request had no hedge
    EXPECT_EQ(final_counters(std::move(inst)),
              "staggered-hedge counters (final): requests 3, eligible 3, hedges admitted 2, "
              "refused by budget 0, hedge wins 1");
}

TEST_F(HedgeTest, EligibleCountsOnlyHedgedPlans) {
    auto inst = make({{"delay", "100ms"}});
    route(*inst, {}, false, "x1");
    route(*inst, {{"hedge.enabled", "false"}}, false, "x2");
    route(*inst, {{"hedge.max_attempts", "1"}}, false, "x3");
    EXPECT_EQ(final_counters(std::move(inst)),
              "staggered-hedge counters (final): requests 3, eligible 1, hedges admitted 0, "
              "refused by budget 0, hedge wins 0");
}

// ---------------------------------------------------------------------------
// cost (printed, loosely bounded: shared CI machines vary a lot)

TEST_F(HedgeTest, RouteAndAdmitCost) {
    d.stats(0).total = summary(100, 200, 350, 412, 900);
    auto inst = make({{"delay", "p95"}, {"max_attempts", "3"}});
    constexpr int kN = 20000;
    std::vector<std::string> ids;
    for (int i = 0; i < kN; ++i) ids.push_back("bench-" + std::to_string(i));
    std::vector<std::unique_ptr<OverrideRequest>> reqs;
    for (int i = 0; i < kN; ++i) reqs.push_back(std::make_unique<OverrideRequest>(Args{}, ids[i]));
    std::vector<tg_event> evs;
    for (int i = 0; i < kN; ++i) evs.push_back(event(TG_EVENT_STARTED, ids[i], 1));
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kN; ++i) {
        tg_route& r = d.route();  // no host: the note goes nowhere
        inst->route(reqs[i]->req.raw, r);
    }
    auto t1 = std::chrono::steady_clock::now();
    for (int i = 0; i < kN; ++i) inst->admit(evs[i]);
    auto t2 = std::chrono::steady_clock::now();
    const double route_ns = std::chrono::duration<double, std::nano>(t1 - t0).count() / kN;
    const double admit_ns = std::chrono::duration<double, std::nano>(t2 - t1).count() / kN;
    std::printf("staggered-hedge: route() %.0f ns (3 candidates, incl. route reset), admit() %.0f ns\n", route_ns,
                admit_ns);
    EXPECT_LT(route_ns, 50000);
    EXPECT_LT(admit_ns, 50000);
}

// ---------------------------------------------------------------------------
// args

TEST_F(HedgeTest, ArgsValidated) {
    EXPECT_EQ(refusal({{"delay", "p99"},
                       {"max_attempts", "5"},
                       {"failover", "false"},
                       {"prefer_different_provider", "true"},
                       {"reuse_deployments", "false"},
                       {"min_delay", "5ms"},
                       {"max_delay", "10s"},
                       {"fallback_delay", "2s"},
                       {"min_samples", "0"},
                       {"max_extra_load", "0.2"},
                       {"budget_window", "30s"},
                       {"min_hedges_per_second", "0.5"},
                       {"router.num_retries", "2"},
                       {"router.something_new", "1"}}),
              "");
    EXPECT_NE(refusal({{"delay", "soon"}}).find("delay: expected a duration"), std::string::npos);
    EXPECT_NE(refusal({{"delay", "p0"}}).find("delay"), std::string::npos);
    EXPECT_NE(refusal({{"delay", "p101"}}).find("delay"), std::string::npos);
    EXPECT_NE(refusal({{"max_attempts", "6"}}).find("max_attempts: expected an integer from 1 to 5"),
              std::string::npos);
    EXPECT_NE(refusal({{"max_attempts", "0"}}).find("max_attempts"), std::string::npos);
    EXPECT_NE(refusal({{"min_delay", "2s"}, {"max_delay", "1s"}}).find("exceeds max_delay"), std::string::npos);
    EXPECT_NE(refusal({{"delay", "5ms"}}).find("outside [min_delay, max_delay]"), std::string::npos);
    EXPECT_NE(refusal({{"fallback_delay", "1m"}}).find("fallback_delay"), std::string::npos);
    EXPECT_NE(refusal({{"max_extra_load", "-0.1"}}).find("max_extra_load"), std::string::npos);
    EXPECT_NE(refusal({{"max_extra_load", "lots"}}).find("max_extra_load"), std::string::npos);
    EXPECT_NE(refusal({{"min_hedges_per_second", "-1"}}).find("min_hedges_per_second"), std::string::npos);
    EXPECT_NE(refusal({{"budget_window", "5ms"}}).find("budget_window"), std::string::npos);
    EXPECT_NE(refusal({{"max_extra_load", "0.1"}, {"budget.max_extra_load", "0.2"}}).find("not both"),
              std::string::npos);
    EXPECT_NE(refusal({{"ratio", "0.1"}}).find("unknown arg 'ratio'"), std::string::npos);
}

}  // namespace
}  // namespace tailgate::plugin

// ---------------------------------------------------------------------------
// Through the Router: the plugin owns the plan, so the executor's admit hook asks its budget.

namespace {

const char* kHedgeConfig = R"(
model_list:
  - model_name: g
    litellm_params: {model: openai/g1, api_base: "http://127.0.0.1:1/v1"}
    model_info: {id: g1}
  - model_name: g
    litellm_params: {model: openai/g2, api_base: "http://127.0.0.1:2/v1"}
    model_info: {id: g2}
router_settings:
  strategies:
    - name: staggered-hedge
      args: {delay: 150ms, budget: {max_extra_load: 0, min_hedges_per_second: 0.1}}
)";

TEST(HedgeRouter, PlanCarriesTheBudget) {
    using namespace tailgate;
    plugin::Registry registry{{TAILGATE_PLUGIN_DIR}};
    auto cfg = std::make_shared<const config::Config>(config::load_string(kHedgeConfig, "hedge_test.yaml"));
    int64_t now = 0;
    router::Router r(cfg, registry, [&] { return now; });
    router::RequestInfo q;
    q.request_id = "h1";
    q.model_group = "g";
    auto res = r.route(q);
    ASSERT_TRUE(std::holds_alternative<router::RoutedPlan>(res));
    auto& rp = std::get<router::RoutedPlan>(res);
    ASSERT_EQ(rp.plan.attempts.size(), 2u);
    EXPECT_EQ(rp.plan.attempts[1].launch, Launch::AfterDelay);
    EXPECT_EQ(rp.plan.attempts[1].delay.count(), 150);
    EXPECT_NE(rp.note.find("hedge after 150ms (fixed)"), std::string::npos) << rp.note;
    ASSERT_TRUE(rp.plan.admit) << "the hedge's owner exports admit()";
    // Floor 0.1/s over 10 s = 1 hedge per window, no ratio.
    EXPECT_TRUE(rp.plan.admit(1, 150));
    EXPECT_FALSE(rp.plan.admit(1, 150));
}

}  // namespace
