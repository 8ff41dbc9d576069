// health across a reload (tg_plugin_adopt_state) and in a dry run
// (TG_REQUEST_PREVIEW): state follows the deployment's identity, never its
// index; a preview reserves no half-open probe.
#include "../strategy_test_support.hpp"

#include <tailgate/testing.hpp>

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tailgate::plugin {
namespace {

using sdk::testing::Deployments;
using sdk::testing::FakeHost;
using sdk::testing::Request;
using Ids = std::vector<std::string>;
using testing::Args;

const uint32_t kHealthy = TG_HEALTH_HEALTHY, kCooling = TG_HEALTH_COOLING, kHalfOpen = TG_HEALTH_HALF_OPEN;

class HealthReloadTest : public testing::StrategyTest {
protected:
    HealthReloadTest() : StrategyTest("health") {}
    void SetUp() override {
        for (const char* id : {"a", "b", "c"}) d.add(id);
        // The next configuration: "a" removed, "n" added, the rest reordered.
        for (const char* id : {"c", "n", "b"}) next.add(id);
        host.set_now(clock_);
    }

    static Ids route_on(Instance& inst, Deployments& deps, FakeHost& h, const std::string& id, uint32_t flags = 0) {
        Request req("test-group", false, "{}", "{}", id);
        req.flags(flags);
        const int rc = inst.route(req.raw, deps.route(&h));
        if (rc == TG_ERR_NO_CANDIDATE) return {"<refused>"};
        EXPECT_EQ(rc, TG_OK);
        return deps.order();
    }
    static void event(Instance& inst, Deployments& deps, uint32_t dep, tg_event_type type, const std::string& req,
                      uint32_t cls = TG_ERRC_NONE, int32_t status = 0) {
        tg_event e{};
        e.struct_size = sizeof e;
        e.type = type;
        e.deployment = &deps.deployment(dep);
        e.request_id = req.c_str();
        e.model_group = "test-group";
        e.ttft_ms = -1;
        e.error_class = cls;
        e.http_status = status;
        e.retry_after_ms = -1;
        e.prompt_tokens = -1;
        e.completion_tokens = -1;
        inst.observe(e);
    }
    static void fail(Instance& inst, Deployments& deps, uint32_t dep, const std::string& req = "f") {
        event(inst, deps, dep, TG_EVENT_STARTED, req);
        event(inst, deps, dep, TG_EVENT_FAILURE, req, TG_ERRC_SERVER, 500);
    }
    void advance(int64_t ms) {
        clock_ += ms;
        host.set_now(clock_);
        next_host.set_now(clock_);
    }

    int64_t clock_ = 1'000'000;
};

TEST_F(HealthReloadTest, ACoolingDeploymentStaysCooledUnderItsNewIndex) {
    const Args args{{"router.allowed_fails", "0"}, {"router.cooldown_time", "5000ms"}};
    auto old = make(args);
    fail(*old, d, 1);  // "b", index 1 here
    ASSERT_EQ(host.health(1), std::make_pair(kCooling, clock_ + 5000));
    advance(1000);

    auto fresh = reload(*old, args);
    // "b" is index 2 now: the host hears of its cooldown at once, under that index.
    EXPECT_EQ(next_host.health(2), std::make_pair(kCooling, clock_ + 4000));
    EXPECT_EQ(next_host.health(0).first, kHealthy) << "c";
    EXPECT_EQ(route_on(*fresh, next, next_host, "r1"), (Ids{"c", "n"}));

    advance(4000);  // the cooldown ends: one probe, then healthy on success
    EXPECT_EQ(route_on(*fresh, next, next_host, "probe"), (Ids{"c", "n", "b"}));
    EXPECT_EQ(next_host.health(2).first, kHalfOpen);
    event(*fresh, next, 2, TG_EVENT_STARTED, "probe");
    event(*fresh, next, 2, TG_EVENT_SUCCESS, "probe");
    EXPECT_EQ(next_host.health(2).first, kHealthy);
}

TEST_F(HealthReloadTest, FailCountsCarryAndAChangedThresholdAppliesToTheNextFailure) {
    auto old = make({{"router.allowed_fails", "2"}});
    fail(*old, d, 2);  // "c": 1 failure of 3 allowed... then the reload lowers the threshold
    auto fresh = reload(*old, {{"router.allowed_fails", "1"}});
    fail(*fresh, next, 0);  // "c" again, index 0 now: 2 failures > allowed_fails 1
    EXPECT_EQ(next_host.health(0).first, kCooling);
    EXPECT_EQ(route_on(*fresh, next, next_host, "r"), (Ids{"n", "b"}));
}

TEST_F(HealthReloadTest, RemovedAndAddedDeploymentsStartFresh) {
    const Args args{{"router.allowed_fails", "0"}};
    auto old = make(args);
    fail(*old, d, 0);  // "a": removed by the reload
    auto fresh = reload(*old, args);
    EXPECT_EQ(route_on(*fresh, next, next_host, "r"), (Ids{"c", "n", "b"}));
    EXPECT_EQ(next_host.health(1).first, kHealthy) << "the added deployment";
}

// The previous instance keeps observing the requests that started on it: what
// they report lands in the state both share, and the new router learns of it
// on its next route.
TEST_F(HealthReloadTest, TheOldInstancesLastEventsReachTheSharedState) {
    const Args args{{"router.allowed_fails", "0"}};
    auto old = make(args);
    auto fresh = reload(*old, args);
    fail(*old, d, 1);  // a late failure of "b" on the old generation
    EXPECT_EQ(route_on(*fresh, next, next_host, "r"), (Ids{"c", "n"}));
    EXPECT_EQ(next_host.health(2).first, kCooling) << "published to the new router while routing";
}

TEST_F(HealthReloadTest, AHalfOpenProbeReservedBeforeTheReloadStaysReserved) {
    const Args args{{"router.allowed_fails", "0"}, {"router.cooldown_time", "1000ms"}};
    auto old = make(args);
    fail(*old, d, 1);
    advance(1000);
    EXPECT_EQ(route_on(*old, d, host, "probe"), (Ids{"a", "b", "c"}));  // "b" reserved for "probe"
    auto fresh = reload(*old, args);
    EXPECT_EQ(route_on(*fresh, next, next_host, "other"), (Ids{"c", "n"})) << "one probe at a time";
    event(*old, d, 1, TG_EVENT_STARTED, "probe");
    event(*old, d, 1, TG_EVENT_SUCCESS, "probe");
    EXPECT_EQ(route_on(*fresh, next, next_host, "after"), (Ids{"c", "n", "b"}));
}

TEST_F(HealthReloadTest, APreviewReservesNoProbe) {
    auto inst = make({{"router.allowed_fails", "0"}, {"router.cooldown_time", "1000ms"}});
    fail(*inst, d, 1);
    advance(1000);  // "b" half-open: the next request probes it
    for (int i = 0; i < 50; ++i)
        ASSERT_EQ(route_on(*inst, d, host, "preview-" + std::to_string(i), TG_REQUEST_PREVIEW), (Ids{"a", "b", "c"}))
            << "a dry run shows the probe it would send";
    EXPECT_EQ(route_on(*inst, d, host, "real"), (Ids{"a", "b", "c"})) << "the probe is still free";
    EXPECT_EQ(route_on(*inst, d, host, "second"), (Ids{"a", "c"})) << "and now reserved by the real request";
}

}  // namespace
}  // namespace tailgate::plugin
