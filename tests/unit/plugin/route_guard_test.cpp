// RouteGuard: what a strategy may leave in a tg_route, and the complete undo.
#include "plugin/route_guard.hpp"

#include <tailgate/testing.hpp>

#include <gtest/gtest.h>

#include <algorithm>

namespace tailgate::plugin {
namespace {

using sdk::testing::Deployments;

struct RouteGuardTest : ::testing::Test {
    Deployments d;
    RouteGuard guard;
    void SetUp() override {
        d.add("a");
        d.add("b");
        d.add("c");
    }
};

TEST_F(RouteGuardTest, ReorderFilterAndPlanWithinTheRulesPass) {
    tg_route& r = d.route();
    guard.save(r);
    std::swap(r.candidates[0], r.candidates[2]);
    r.count = 2;
    r.attempts[0] = tg_attempt{1, TG_LAUNCH_AT_START, 0, 0};
    r.attempts[1] = tg_attempt{0, TG_LAUNCH_AFTER_DELAY, 300, 0};
    r.attempt_count = 2;
    EXPECT_EQ(guard.violation(r), "");
    EXPECT_TRUE(guard.plan_changed(r));
}

TEST_F(RouteGuardTest, EachRuleHasItsOwnReason) {
    tg_deployment stranger = d.deployment(0);  // a copy: same content, not the host's
    tg_deployment_stats other_stats{};
    struct Case {
        const char* reason;
        void (*breakit)(tg_route&, tg_deployment*, tg_deployment_stats*);
    };
    const Case cases[] = {
        {"set candidates to NULL", [](tg_route& r, tg_deployment*, tg_deployment_stats*) { r.candidates = nullptr; }},
        {"raised count from 3 to 4", [](tg_route& r, tg_deployment*, tg_deployment_stats*) { r.count = 4; }},
        {"candidates[1].deployment is NULL",
         [](tg_route& r, tg_deployment*, tg_deployment_stats*) { r.candidates[1].deployment = nullptr; }},
        {"candidates[2] is not one of the deployments handed in",
         [](tg_route& r, tg_deployment* s, tg_deployment_stats*) { r.candidates[2].deployment = s; }},
        {"candidates[1] repeats a deployment already listed",
         [](tg_route& r, tg_deployment*, tg_deployment_stats*) { r.candidates[1] = r.candidates[0]; }},
        {"candidates[0].stats was replaced",
         [](tg_route& r, tg_deployment*, tg_deployment_stats* st) { r.candidates[0].stats = st; }},
        {"exceeds TG_MAX_ATTEMPTS", [](tg_route& r, tg_deployment*, tg_deployment_stats*) { r.attempt_count = 17; }},
        {"attempts[0] names candidate 2 but count is 2",
         [](tg_route& r, tg_deployment*, tg_deployment_stats*) {
             r.count = 2;
             r.attempts[0] = tg_attempt{2, TG_LAUNCH_AT_START, 0, 0};
             r.attempt_count = 1;
         }},
        {"attempts[0] has unknown launch rule 9",
         [](tg_route& r, tg_deployment*, tg_deployment_stats*) {
             r.attempts[0] = tg_attempt{0, 9, 0, 0};
             r.attempt_count = 1;
         }},
        {"changed host_private",
         [](tg_route& r, tg_deployment* s, tg_deployment_stats*) { r.host_private = s; }},
    };
    for (const Case& c : cases) {
        tg_route& r = d.route();
        guard.save(r);
        c.breakit(r, &stranger, &other_stats);
        EXPECT_NE(guard.violation(r).find(c.reason), std::string::npos) << c.reason << " vs " << guard.violation(r);
    }
}

TEST_F(RouteGuardTest, RestorePutsBackEveryAttemptSlotNotOnlyTheCount) {
    tg_route& r = d.route();
    for (uint32_t i = 0; i < 3; ++i) r.attempts[i] = tg_attempt{i, TG_LAUNCH_AT_START, 0, 0};
    r.attempt_count = 3;  // an earlier strategy's race plan
    guard.save(r);
    const tg_candidate* before = r.candidates;
    std::swap(r.candidates[0], r.candidates[1]);
    r.count = 1;
    for (uint32_t i = 0; i < TG_MAX_ATTEMPTS; ++i) r.attempts[i] = tg_attempt{0, TG_LAUNCH_ON_FAILURE, 999, 0};
    r.attempt_count = 1;
    r.request_ctx = &r;  // the plugin's: survives the undo
    guard.restore(r);
    EXPECT_EQ(r.candidates, before);
    EXPECT_EQ(r.count, 3u);
    EXPECT_EQ(d.order(), (std::vector<std::string>{"a", "b", "c"}));
    ASSERT_EQ(r.attempt_count, 3u);
    for (uint32_t i = 0; i < TG_MAX_ATTEMPTS; ++i) {
        EXPECT_EQ(r.attempts[i].candidate, i < 3 ? i : 0u);
        EXPECT_EQ(r.attempts[i].launch, i < 3 ? uint32_t(TG_LAUNCH_AT_START) : 0u);
        EXPECT_EQ(r.attempts[i].delay_ms, 0u);
    }
    EXPECT_EQ(r.request_ctx, &r);
    EXPECT_FALSE(guard.plan_changed(r));
}

}  // namespace
}  // namespace tailgate::plugin

namespace tailgate::plugin {
namespace {

// More candidates than the guard keeps inline: the same checks and undo.
TEST(RouteGuardLarge, BigGroupsAreCheckedAndRestoredToo) {
    Deployments d;
    for (int i = 0; i < 40; ++i) d.add("d" + std::to_string(i));
    RouteGuard guard;
    tg_route& r = d.route();
    guard.save(r);
    std::reverse(r.candidates, r.candidates + r.count);
    r.count = 30;
    EXPECT_EQ(guard.violation(r), "");
    r.candidates[29] = r.candidates[3];
    EXPECT_NE(guard.violation(r).find("candidates[29] repeats"), std::string::npos) << guard.violation(r);
    guard.restore(r);
    ASSERT_EQ(r.count, 40u);
    EXPECT_EQ(d.order().front(), "d0");
    EXPECT_EQ(d.order().back(), "d39");
}

}  // namespace
}  // namespace tailgate::plugin
