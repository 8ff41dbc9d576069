// race strategy, loaded as the real .so through the loader (TAILGATE_PLUGIN_DIR),
// alone and in chains after health / test-reverse, on FakeHost's clock.
#include "../strategy_test_support.hpp"

#include <tailgate/testing.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <deque>
#include <string>
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

class RaceTest : public StrategyTest {
protected:
    RaceTest() : StrategyTest("race", {TAILGATE_PLUGIN_DIR, TAILGATE_TEST_PLUGIN_DIR}) {}
    void SetUp() override {
        for (const char* id : {"a", "b", "c", "d"}) d.add(id);
        host.set_now(1'000'000);
    }
    // Routes all deployments through `chain`, in order; returns the plan.
    Plan route(std::vector<Instance*> chain, const tg_request& req) {
        tg_route& r = d.route(&host);
        for (Instance* p : chain) EXPECT_EQ(p->route(req, r), TG_OK) << p->name();
        return plan();
    }
    Plan route(Instance& inst, Args overrides = {}) {
        OverrideRequest q(std::move(overrides));
        return route({&inst}, q.req.raw);
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
    std::string last_note() {
        auto n = host.notes();
        return n.empty() ? "" : n.back();
    }

};

TEST_F(RaceTest, DefaultRacesTwoThenFailsOverToTheRest) {
    auto inst = make();
    EXPECT_EQ(route(*inst), (Plan{{"a", S, 0}, {"b", S, 0}, {"c", F, 0}, {"d", F, 0}}));
    EXPECT_EQ(last_note(), "race x2 (+2 failover)");
}

TEST_F(RaceTest, MaxParallelThree) {
    auto inst = make({{"max_parallel", "3"}});
    EXPECT_EQ(route(*inst), (Plan{{"a", S, 0}, {"b", S, 0}, {"c", S, 0}, {"d", F, 0}}));
    EXPECT_EQ(last_note(), "race x3 (+1 failover)");
}

TEST_F(RaceTest, FailoverOffRacesOnly) {
    auto two = make({{"failover", "false"}});
    EXPECT_EQ(route(*two), (Plan{{"a", S, 0}, {"b", S, 0}}));
    EXPECT_EQ(last_note(), "race x2");
    auto three = make({{"max_parallel", "3"}, {"failover", "false"}});
    EXPECT_EQ(route(*three), (Plan{{"a", S, 0}, {"b", S, 0}, {"c", S, 0}}));
}

TEST_F(RaceTest, FanOutIsCappedByTheCandidates) {
    auto inst = make({{"max_parallel", "16"}});
    EXPECT_EQ(route(*inst), (Plan{{"a", S, 0}, {"b", S, 0}, {"c", S, 0}, {"d", S, 0}}));
    EXPECT_EQ(last_note(), "race x4");
    auto one = make({{"max_parallel", "1"}});
    EXPECT_EQ(route(*one), (Plan{{"a", S, 0}, {"b", F, 0}, {"c", F, 0}, {"d", F, 0}}));
}

TEST_F(RaceTest, LargeGroupStaysWithinMaxAttempts) {
    for (int i = 0; i < 20; ++i) d.add("x" + std::to_string(i));
    auto inst = make({{"max_parallel", "3"}});
    Plan p = route(*inst);
    ASSERT_EQ(p.size(), TG_MAX_ATTEMPTS);
    EXPECT_EQ(std::get<1>(p[2]), S);
    EXPECT_EQ(std::get<1>(p[3]), F);
    EXPECT_EQ(std::get<0>(p.back()), "x11");
}

TEST_F(RaceTest, PerRequestMaxParallel) {
    auto inst = make();
    EXPECT_EQ(route(*inst, {{"race.max_parallel", "3"}}),
              (Plan{{"a", S, 0}, {"b", S, 0}, {"c", S, 0}, {"d", F, 0}}));
    EXPECT_EQ(route(*inst, {{"race.max_parallel", "1"}}),
              (Plan{{"a", S, 0}, {"b", F, 0}, {"c", F, 0}, {"d", F, 0}}));
    // Invalid values are ignored (the configured fan-out applies) and noted.
    for (const char* bad : {"0", "-1", "2.5", "many", "17"}) {
        EXPECT_EQ(route(*inst, {{"race.max_parallel", bad}}),
                  (Plan{{"a", S, 0}, {"b", S, 0}, {"c", F, 0}, {"d", F, 0}}))
            << bad;
        EXPECT_EQ(last_note(), "race x2 (+2 failover); ignored invalid race.max_parallel") << bad;
    }
    // The operator's limit bounds what a client may ask.
    auto limited = make({{"max_parallel_limit", "3"}});
    EXPECT_EQ(route(*limited, {{"race.max_parallel", "4"}}),
              (Plan{{"a", S, 0}, {"b", S, 0}, {"c", F, 0}, {"d", F, 0}}));
    EXPECT_EQ(route(*limited, {{"race.max_parallel", "3"}}),
              (Plan{{"a", S, 0}, {"b", S, 0}, {"c", S, 0}, {"d", F, 0}}));
}

TEST_F(RaceTest, PerRequestDisable) {
    auto inst = make();
    EXPECT_TRUE(route(*inst, {{"race.enabled", "false"}}).empty()) << "plan left to the host";
    EXPECT_EQ(last_note(), "race off (request)");
    EXPECT_TRUE(route(*inst, {{"race", "false"}}).empty());
    EXPECT_EQ(route(*inst, {{"race.enabled", "true"}}).size(), 4u);
    EXPECT_EQ(route(*inst, {{"race", "maybe"}, {"race.max_parallel", "x"}}).size(), 4u);
    EXPECT_EQ(last_note(), "race x2 (+2 failover); ignored invalid race, race.max_parallel");
    EXPECT_EQ(route(*inst, {{"race.enabled", "true"}, {"race.max_parallel", "4"}}),
              (Plan{{"a", S, 0}, {"b", S, 0}, {"c", S, 0}, {"d", S, 0}}));

    // Disabled: an earlier strategy's plan survives untouched.
    auto rev = reg.create("test-reverse", host.api(), {{"plan", "race"}});
    OverrideRequest off(Args{{"race.enabled", "false"}});
    EXPECT_EQ(route({rev.get(), inst.get()}, off.req.raw),
              (Plan{{"d", S, 0}, {"c", S, 0}, {"b", S, 0}, {"a", S, 0}}));
}

TEST_F(RaceTest, FollowsTheOrderOfEarlierStrategiesAndReplacesTheirPlan) {
    auto rev = reg.create("test-reverse", host.api(), {{"plan", "race"}});  // d c b a, all AT_START
    auto inst = make();
    OverrideRequest q(Args{});
    EXPECT_EQ(route({rev.get(), inst.get()}, q.req.raw), (Plan{{"d", S, 0}, {"c", S, 0}, {"b", F, 0}, {"a", F, 0}}));
    EXPECT_EQ(d.order(), (Ids{"d", "c", "b", "a"}));
}

TEST_F(RaceTest, SkipsCoolingCandidates) {
    d.stats(0).health = TG_HEALTH_COOLING;
    d.stats(2).health = TG_HEALTH_COOLING;
    d.stats(3).health = TG_HEALTH_HALF_OPEN;  // kept: the health strategy reserved its probe
    auto inst = make();
    EXPECT_EQ(route(*inst), (Plan{{"b", S, 0}, {"d", S, 0}}));
    EXPECT_EQ(d.order(), (Ids{"b", "d", "a", "c"})) << "cooling ones last, in order";
}

TEST_F(RaceTest, AllCoolingStillRaces) {
    for (uint32_t i = 0; i < 4; ++i) d.stats(i).health = TG_HEALTH_COOLING;
    auto inst = make();
    EXPECT_EQ(route(*inst), (Plan{{"a", S, 0}, {"b", S, 0}, {"c", F, 0}, {"d", F, 0}}));
}

// health first: its cooled deployment never reaches the race; racers are healthy.
TEST_F(RaceTest, AfterHealthOnlyHealthyRacers) {
    host.set_deployments(d.pointers());
    auto health = reg.create("health", host.api(), {{"allowed_fails", "0"}, {"cooldown_time", "30s"}});
    auto inst = make();
    // "a" fails once: with allowed_fails 0 it cools down at once.
    tg_event e{};
    e.struct_size = sizeof e;
    e.deployment = &d.deployment(0);
    e.request_id = "earlier";
    e.model_group = "test-group";
    e.at_ms = 1'000'000;
    e.ttft_ms = -1;
    e.retry_after_ms = -1;
    e.prompt_tokens = -1;
    e.completion_tokens = -1;
    e.type = TG_EVENT_STARTED;
    health->observe(e);
    e.type = TG_EVENT_FAILURE;
    e.error_class = TG_ERRC_SERVER;
    e.http_status = 500;
    health->observe(e);
    ASSERT_EQ(host.health(0).first, static_cast<uint32_t>(TG_HEALTH_COOLING));

    OverrideRequest q(Args{});
    EXPECT_EQ(route({health.get(), inst.get()}, q.req.raw), (Plan{{"b", S, 0}, {"c", S, 0}, {"d", F, 0}}));
    EXPECT_EQ(d.order(), (Ids{"b", "c", "d"}));
    OverrideRequest three(Args{{"race.max_parallel", "3"}});
    EXPECT_EQ(route({health.get(), inst.get()}, three.req.raw), (Plan{{"b", S, 0}, {"c", S, 0}, {"d", S, 0}}));
}

TEST_F(RaceTest, SingleCandidate) {
    Deployments one;
    one.add("only");
    auto inst = make();
    OverrideRequest q(Args{});
    tg_route& r = one.route(&host);
    ASSERT_EQ(inst->route(q.req.raw, r), TG_OK);
    ASSERT_EQ(r.attempt_count, 1u);
    EXPECT_EQ(r.attempts[0].candidate, 0u);
    EXPECT_EQ(last_note(), "race x1");
}

TEST_F(RaceTest, RouteCost) {
    auto inst = make({{"max_parallel", "3"}});
    OverrideRequest q(Args{});
    constexpr int kN = 20000;
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kN; ++i) inst->route(q.req.raw, d.route());  // no host: the note goes nowhere
    auto t1 = std::chrono::steady_clock::now();
    const double ns = std::chrono::duration<double, std::nano>(t1 - t0).count() / kN;
    std::printf("race: route() %.0f ns (4 candidates, incl. route reset)\n", ns);
    EXPECT_LT(ns, 50000);
}

TEST_F(RaceTest, ArgsValidated) {
    EXPECT_EQ(refusal({{"max_parallel", "4"}, {"failover", "true"}, {"max_parallel_limit", "8"},
                       {"router.num_retries", "2"}, {"router.whatever_new", "x"}}),
              "");
    EXPECT_NE(refusal({{"max_parallel", "0"}}).find("max_parallel: expected an integer from 1 to 16"),
              std::string::npos);
    EXPECT_NE(refusal({{"max_parallel", "17"}}).find("max_parallel"), std::string::npos);
    EXPECT_NE(refusal({{"max_parallel", "two"}}).find("got 'two'"), std::string::npos);
    EXPECT_NE(refusal({{"failover", "maybe"}}).find("failover"), std::string::npos);
    EXPECT_NE(refusal({{"max_parallel", "4"}, {"max_parallel_limit", "3"}}).find("exceeds max_parallel_limit"),
              std::string::npos);
    EXPECT_NE(refusal({{"fan_out", "3"}}).find("unknown arg 'fan_out'"), std::string::npos);
}

}  // namespace
}  // namespace tailgate::plugin
