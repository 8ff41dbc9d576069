// simple-shuffle, loaded as the real .so through the loader (TAILGATE_PLUGIN_DIR).
#include "plugin/loader.hpp"

#include <tailgate/testing.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace tailgate::plugin {
namespace {

using sdk::testing::Deployments;
using sdk::testing::FakeHost;
using sdk::testing::Request;

constexpr int kPicks = 20000;

class SimpleShuffleTest : public ::testing::Test {
protected:
    InstancePtr make(std::vector<std::pair<std::string, std::string>> args = {{"seed", "20261125"}}) {
        return reg.create("simple-shuffle", host.api(), args);
    }
    std::string refusal(std::vector<std::pair<std::string, std::string>> args) {
        try {
            make(std::move(args));
        } catch (const PluginError& e) {
            return e.what();
        }
        return "";
    }
    // Share of first picks per deployment id over kPicks routes; checks that
    // every result is a permutation of the expected candidate set.
    std::map<std::string, double> first_shares(Instance& inst, Deployments& d, size_t expect_count) {
        std::map<std::string, int> counts;
        Request req;
        for (int i = 0; i < kPicks; ++i) {
            tg_route& r = d.route(&host);
            EXPECT_EQ(inst.route(req.raw, r), TG_OK);
            EXPECT_EQ(r.count, expect_count);
            auto order = d.order();
            EXPECT_EQ(std::set<std::string>(order.begin(), order.end()).size(), order.size());
            ++counts[order.front()];
        }
        std::map<std::string, double> shares;
        for (auto& [id, n] : counts) shares[id] = static_cast<double>(n) / kPicks;
        return shares;
    }
    // Pearson chi-square of observed first-pick shares against expected ones.
    static double chi_square(const std::map<std::string, double>& got, const std::map<std::string, double>& want) {
        double chi = 0;
        for (auto& [id, p] : want) {
            auto it = got.find(id);
            const double observed = (it == got.end() ? 0.0 : it->second) * kPicks;
            const double expected = p * kPicks;
            chi += (observed - expected) * (observed - expected) / expected;
        }
        return chi;
    }
    static void expect_shares(const std::map<std::string, double>& got, const std::map<std::string, double>& want,
                              double tolerance = 0.015) {
        for (auto& [id, p] : want) {
            auto it = got.find(id);
            EXPECT_NEAR(it == got.end() ? 0.0 : it->second, p, tolerance) << id;
        }
        for (auto& [id, p] : got) EXPECT_TRUE(want.count(id)) << "unexpected pick " << id;
    }

    Registry reg{{TAILGATE_PLUGIN_DIR}};
    FakeHost host;
};

TEST_F(SimpleShuffleTest, PicksByWeight) {
    Deployments d;
    d.add("a").weight = 1;
    d.add("b").weight = 2;
    d.add("c").weight = 3;
    d.add("d").weight = 4;
    auto inst = make();
    auto got = first_shares(*inst, d, 4);
    const std::map<std::string, double> want{{"a", 0.1}, {"b", 0.2}, {"c", 0.3}, {"d", 0.4}};
    expect_shares(got, want);
    EXPECT_LT(chi_square(got, want), 16.27);  // df = 3, p = 0.001
}

TEST_F(SimpleShuffleTest, WeightWinsOverRpmAndTpm) {
    Deployments d;
    auto& a = d.add("a");
    a.weight = 1;
    a.rpm = 1000;
    a.tpm = 1;
    auto& b = d.add("b");
    b.weight = 3;
    b.rpm = 1;
    b.tpm = 1000;
    auto inst = make();
    expect_shares(first_shares(*inst, d, 2), {{"a", 0.25}, {"b", 0.75}});
}

TEST_F(SimpleShuffleTest, FallsBackToRpm) {
    Deployments d;
    d.add("a").rpm = 100;
    d.add("b").rpm = 300;
    d.add("c").tpm = 1000000;  // tpm is ignored once any rpm is set; no rpm -> 0
    auto inst = make();
    expect_shares(first_shares(*inst, d, 3), {{"a", 0.25}, {"b", 0.75}});
}

TEST_F(SimpleShuffleTest, FallsBackToTpm) {
    Deployments d;
    d.add("a").tpm = 30000;
    d.add("b").tpm = 10000;
    auto inst = make();
    expect_shares(first_shares(*inst, d, 2), {{"a", 0.75}, {"b", 0.25}});
}

TEST_F(SimpleShuffleTest, UniformWithoutAnyWeight) {
    Deployments d;
    for (const char* id : {"a", "b", "c", "d"}) d.add(id);
    auto inst = make();
    const std::map<std::string, double> want{{"a", 0.25}, {"b", 0.25}, {"c", 0.25}, {"d", 0.25}};
    auto got = first_shares(*inst, d, 4);
    expect_shares(got, want);
    EXPECT_LT(chi_square(got, want), 16.27);
}

TEST_F(SimpleShuffleTest, MissingWeightCountsAsZeroButStaysAsFallback) {
    Deployments d;
    d.add("weighted").weight = 5;
    d.add("unweighted");
    auto inst = make();
    Request req;
    for (int i = 0; i < 500; ++i) {
        ASSERT_EQ(inst->route(req.raw, d.route()), TG_OK);
        ASSERT_EQ(d.order(), (std::vector<std::string>{"weighted", "unweighted"}));
    }
}

TEST_F(SimpleShuffleTest, RestFollowInWeightedOrderWithoutReplacement) {
    // weights a=2, b=1, c=1: P(second = b) = P(a first)/2 + P(c first)*1/3 = 1/4 + 1/12 = 1/3.
    Deployments d;
    d.add("a").weight = 2;
    d.add("b").weight = 1;
    d.add("c").weight = 1;
    auto inst = make();
    Request req;
    std::map<std::string, int> second;
    for (int i = 0; i < kPicks; ++i) {
        ASSERT_EQ(inst->route(req.raw, d.route()), TG_OK);
        ++second[d.order()[1]];
    }
    EXPECT_NEAR(second["b"] / double(kPicks), 1.0 / 3, 0.015);
    EXPECT_NEAR(second["c"] / double(kPicks), 1.0 / 3, 0.015);
    EXPECT_NEAR(second["a"] / double(kPicks), 1.0 / 3, 0.015);  // 1/4*2/3 + 1/4*2/3
}

TEST_F(SimpleShuffleTest, CoolingCandidatesAreSkipped) {
    Deployments d;
    d.add("a").weight = 1;
    d.add("b").weight = 100;
    d.add("c").weight = 1;
    d.stats(1).health = TG_HEALTH_COOLING;
    auto inst = make();
    auto got = first_shares(*inst, d, 2);
    expect_shares(got, {{"a", 0.5}, {"c", 0.5}});
}

TEST_F(SimpleShuffleTest, HalfOpenIsNotCooling) {
    Deployments d;
    d.add("a");
    d.add("b");
    d.stats(0).health = TG_HEALTH_HALF_OPEN;
    auto inst = make();
    expect_shares(first_shares(*inst, d, 2), {{"a", 0.5}, {"b", 0.5}});
}

TEST_F(SimpleShuffleTest, AllCoolingKeepsEveryone) {
    Deployments d;
    d.add("a").weight = 1;
    d.add("b").weight = 3;
    d.stats(0).health = TG_HEALTH_COOLING;
    d.stats(1).health = TG_HEALTH_COOLING;
    auto inst = make();
    expect_shares(first_shares(*inst, d, 2), {{"a", 0.25}, {"b", 0.75}});
}

TEST_F(SimpleShuffleTest, WeightSourceIsChosenAmongRemainingCandidates) {
    // The only weighted deployment is cooling: the others are ranked by rpm.
    Deployments d;
    d.add("w").weight = 10;
    d.add("a").rpm = 10;
    d.add("b").rpm = 30;
    d.stats(0).health = TG_HEALTH_COOLING;
    auto inst = make();
    expect_shares(first_shares(*inst, d, 2), {{"a", 0.25}, {"b", 0.75}});
}

TEST_F(SimpleShuffleTest, ClearsEarlierPlanAndNotesThePick) {
    Deployments d;
    d.add("only").weight = 2;
    auto inst = make();
    Request req;
    tg_route& r = d.route(&host);
    r.attempts[0] = tg_attempt{0, TG_LAUNCH_AT_START, 0, 0};
    r.attempt_count = 1;
    ASSERT_EQ(inst->route(req.raw, r), TG_OK);
    EXPECT_EQ(r.attempt_count, 0u);
    EXPECT_EQ(host.notes(), (std::vector<std::string>{"simple-shuffle: only by weight"}));
}

TEST_F(SimpleShuffleTest, NoCandidatesIsRefused) {
    Deployments d;
    auto inst = make();
    Request req;
    EXPECT_EQ(inst->route(req.raw, d.route()), TG_ERR_NO_CANDIDATE);
}

TEST_F(SimpleShuffleTest, SameSeedSameSequence) {
    Deployments d1, d2;
    for (Deployments* d : {&d1, &d2})
        for (const char* id : {"a", "b", "c", "d", "e"}) d->add(id).weight = 1;
    auto x = make({{"seed", "7"}});
    auto y = make({{"seed", "7"}});
    auto z = make({{"seed", "8"}});
    Request req;
    int differs_from_other_seed = 0;
    for (int i = 0; i < 200; ++i) {
        ASSERT_EQ(x->route(req.raw, d1.route()), TG_OK);
        ASSERT_EQ(y->route(req.raw, d2.route()), TG_OK);
        ASSERT_EQ(d1.order(), d2.order());
        ASSERT_EQ(z->route(req.raw, d2.route()), TG_OK);
        differs_from_other_seed += d1.order() != d2.order();
    }
    EXPECT_GT(differs_from_other_seed, 100);
}

TEST_F(SimpleShuffleTest, BadArgsAreRefused) {
    const std::string prefix =
        std::string(TAILGATE_PLUGIN_DIR) + "/simple-shuffle.so: strategy 'simple-shuffle' refused its configuration: ";
    EXPECT_EQ(refusal({{"seed", "-1"}}), prefix + "seed: expected a non-negative integer, got '-1'");
    EXPECT_EQ(refusal({{"seed", "12abc"}}), prefix + "seed: expected a non-negative integer, got '12abc'");
    EXPECT_EQ(refusal({{"sed", "1"}}), prefix + "unknown arg 'sed' (simple-shuffle accepts: seed)");
}

TEST_F(SimpleShuffleTest, UnseededIsThreadSafeAndRandom) {
    auto inst = make({});
    std::atomic<int> bad{0};
    std::atomic<int> a_first{0};
    constexpr int kThreads = 4, kPer = 5000;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&] {
            Deployments d;
            d.add("a").weight = 1;
            d.add("b").weight = 1;
            d.add("c").weight = 2;
            Request req;
            for (int i = 0; i < kPer; ++i) {
                if (inst->route(req.raw, d.route()) != TG_OK) ++bad;
                auto o = d.order();
                if (std::set<std::string>(o.begin(), o.end()).size() != 3) ++bad;
                if (o.front() == "a") ++a_first;
            }
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(bad.load(), 0);
    EXPECT_NEAR(a_first.load() / double(kThreads * kPer), 0.25, 0.02);
}

}  // namespace
}  // namespace tailgate::plugin
