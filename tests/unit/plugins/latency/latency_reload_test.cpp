// latency across a reload: windows follow the deployment's identity, not its
// index; the new router hears the carried summaries at once.
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

constexpr uint32_t kTtft = 0, kTotal = 1;

class LatencyReloadTest : public testing::StrategyTest {
protected:
    LatencyReloadTest() : StrategyTest("latency") {}
    void SetUp() override {
        for (const char* id : {"a", "b", "c"}) d.add(id);
        for (const char* id : {"c", "n", "b"}) next.add(id);  // "a" removed, "n" added
    }
    static void observe(Instance& inst, Deployments& deps, uint32_t i, tg_event_type type, bool stream, double ms) {
        tg_event e{};
        e.struct_size = sizeof e;
        e.type = type;
        e.deployment = &deps.deployment(i);
        e.request_id = "req";
        e.model_group = "test-group";
        e.stream = stream ? 1 : 0;
        e.elapsed_ms = ms;
        e.ttft_ms = type == TG_EVENT_FIRST_BYTE ? ms : -1;
        e.retry_after_ms = -1;
        e.prompt_tokens = -1;
        e.completion_tokens = -1;
        inst.observe(e);
    }
    // n successful non-stream attempts of `ms`, and n streams with a first byte after ms / 2.
    static void serve(Instance& inst, Deployments& deps, uint32_t i, double ms, int n = 25) {
        for (int k = 0; k < n; ++k) {
            observe(inst, deps, i, TG_EVENT_SUCCESS, false, ms);
            observe(inst, deps, i, TG_EVENT_FIRST_BYTE, true, ms / 2);
        }
    }
    static Ids order(Instance& inst, Deployments& deps, FakeHost& h) {
        Request req("test-group");
        EXPECT_EQ(inst.route(req.raw, deps.route(&h)), TG_OK);
        return deps.order();
    }
};

TEST_F(LatencyReloadTest, WindowsFollowTheIdentityAcrossNewIndices) {
    const Args args{{"statistic", "p95"}, {"min_samples", "5"}};
    auto old = make(args);
    serve(*old, d, 0, 50);   // a: removed by the reload
    serve(*old, d, 1, 400);  // b
    serve(*old, d, 2, 100);  // c
    const tg_latency_summary b_before = host.latency(1, kTotal), c_before = host.latency(2, kTotal);
    ASSERT_EQ(b_before.samples, 25u);

    auto fresh = reload(*old, args);
    // Published under the new indices before any request: c is 0, b is 2, n has nothing.
    EXPECT_EQ(next_host.latency(0, kTotal).p95_ms, c_before.p95_ms);
    EXPECT_EQ(next_host.latency(2, kTotal).p95_ms, b_before.p95_ms);
    EXPECT_EQ(next_host.latency(2, kTotal).samples, 25u);
    EXPECT_EQ(next_host.latency(2, kTtft).samples, 25u);
    EXPECT_EQ(next_host.latency(1, kTotal).samples, 0u) << "the added deployment starts with no data";
    // The added one is explored first (no data), then the measured ones by latency.
    EXPECT_EQ(order(*fresh, next, next_host), (Ids{"n", "c", "b"}));

    // The old instance's last samples land in the same (shared) window.
    serve(*old, d, 1, 400, 5);
    observe(*fresh, next, 2, TG_EVENT_SUCCESS, false, 400);
    EXPECT_EQ(next_host.latency(2, kTotal).samples, 31u);
}

TEST_F(LatencyReloadTest, AChangedWindowShapeStartsEmpty) {
    auto old = make({{"ttl", "1h"}});
    serve(*old, d, 1, 400);
    std::string why;
    auto fresh = reload(*old, {{"ttl", "10m"}}, &why);
    EXPECT_NE(why.find("declined"), std::string::npos) << why;
    EXPECT_EQ(next_host.latency(2, kTotal).samples, 0u);
}

}  // namespace
}  // namespace tailgate::plugin
