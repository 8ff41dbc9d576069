// least-busy strategy, loaded as the real .so through the loader: fewest
// in-flight attempts first, ties spread at random.
#include "../strategy_test_support.hpp"

#include <tailgate/testing.hpp>

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace tailgate::plugin {
namespace {

using sdk::testing::Request;
using Ids = std::vector<std::string>;

class LeastBusyTest : public testing::StrategyTest {
protected:
    LeastBusyTest() : StrategyTest("least-busy") {}

    Ids route(Instance& inst) {
        Request req;
        tg_route& r = d.route(&host);
        r.attempts[0] = tg_attempt{0, TG_LAUNCH_AT_START, 0, 0};
        r.attempt_count = 1;  // an earlier strategy's plan: positions change, so it is cleared
        EXPECT_EQ(inst.route(req.raw, r), TG_OK);
        EXPECT_EQ(r.attempt_count, 0u);
        return d.order();
    }
};

TEST_F(LeastBusyTest, FewestInFlightFirst) {
    d.add("a");
    d.add("b");
    d.add("c");
    d.stats(0).in_flight = 5;
    d.stats(1).in_flight = 0;
    d.stats(2).in_flight = 2;
    auto inst = make();
    EXPECT_EQ(route(*inst), (Ids{"b", "c", "a"}));
    d.stats(1).in_flight = 9;
    EXPECT_EQ(route(*inst), (Ids{"c", "a", "b"}));
    ASSERT_FALSE(host.notes().empty());
    EXPECT_EQ(host.notes().back(), "least-busy: c (2 in flight)");
}

TEST_F(LeastBusyTest, TiesAreSpreadRandomly) {
    d.add("a").rpm = 100;  // weights play no part
    d.add("b");
    d.add("c");
    d.stats(0).in_flight = 1;
    d.stats(1).in_flight = 1;
    d.stats(2).in_flight = 3;
    auto inst = make();
    std::map<std::string, int> first;
    for (int i = 0; i < 2000; ++i) {
        Ids order = route(*inst);
        ASSERT_EQ(order.back(), "c");
        ++first[order.front()];
    }
    // Expected 1000 each; 800 is about 9 sigma away.
    EXPECT_GT(first["a"], 800);
    EXPECT_GT(first["b"], 800);
}

TEST_F(LeastBusyTest, CoolingCandidatesGoLast) {
    d.add("a");
    d.add("b");
    d.stats(0).health = TG_HEALTH_COOLING;
    d.stats(1).in_flight = 4;
    auto inst = make();
    EXPECT_EQ(route(*inst), (Ids{"b", "a"}));
}

TEST_F(LeastBusyTest, OldStatsWithoutInFlightCountAsIdle) {
    d.add("a");
    d.add("b");
    d.stats(0).in_flight = 3;
    d.stats(0).struct_size = offsetof(tg_deployment_stats, in_flight);  // a host too old to say
    d.stats(1).in_flight = 1;
    auto inst = make();
    EXPECT_EQ(route(*inst), (Ids{"a", "b"}));
}

TEST_F(LeastBusyTest, ArgsAreChecked) {
    d.add("a");
    EXPECT_EQ(refusal({{"router.num_retries", "2"}}), "");
    EXPECT_NE(refusal({{"seed", "1"}}).find("unknown arg 'seed'"), std::string::npos);
}

}  // namespace
}  // namespace tailgate::plugin
