// StrategyStats (GET /stats/strategies): log-scale bins, sliding windows on a
// fake clock, hedge/race/censoring aggregation.
#include "metrics/strategy_stats.hpp"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <chrono>
#include <cmath>

using tailgate::metrics::StrategyStats;
using namespace std::chrono_literals;

namespace {

StrategyStats::Clock::time_point at(std::chrono::milliseconds t) {
    return StrategyStats::Clock::time_point(std::chrono::duration_cast<StrategyStats::Clock::duration>(t));
}

StrategyStats make() { return StrategyStats({"gpt", "backup"}, {"p", "q", "c"}, {0, 0, 1}); }

StrategyStats::Request plain(double total_ms, uint32_t dep = 0) {
    StrategyStats::Request r;
    r.group = 0;
    r.total_ms = total_ms;
    r.winner = 0;
    StrategyStats::Attempt a;
    a.deployment = dep;
    a.success = true;
    a.total_ms = total_ms - 1;
    r.attempts.push_back(a);
    return r;
}

// Primary `p` cancelled as loser, hedge `q` won.
StrategyStats::Request hedged(double total_ms) {
    StrategyStats::Request r;
    r.group = 0;
    r.stream = true;
    r.total_ms = total_ms;
    r.ttft_ms = total_ms - 5;
    r.hedges = 1;
    r.hedge_won = true;
    r.winner = 1;
    StrategyStats::Attempt p;
    p.deployment = 0;
    p.lost = true;
    p.total_ms = total_ms - 3;  // a lower bound only
    StrategyStats::Attempt q;
    q.deployment = 1;
    q.success = true;
    q.ttft_ms = 20;
    q.total_ms = 30;
    r.attempts.push_back(p);
    r.attempts.push_back(q);
    return r;
}

rapidjson::Document parse(const std::string& s) {
    rapidjson::Document d;
    d.Parse(s.c_str());
    EXPECT_FALSE(d.HasParseError()) << s;
    return d;
}

const rapidjson::Value& group(const rapidjson::Document& d, const char* window, const char* g) {
    return d["windows"][window]["model_groups"][g];
}

const rapidjson::Value& dep(const rapidjson::Document& d, const char* window, unsigned i) {
    return d["windows"][window]["deployments"][i];
}

}  // namespace

TEST(StrategyStats, Bins) {
    EXPECT_EQ(StrategyStats::bin_for(0), 0u);
    EXPECT_EQ(StrategyStats::bin_for(-5), 0u);
    EXPECT_EQ(StrategyStats::bin_for(NAN), 0u);
    EXPECT_EQ(StrategyStats::bin_for(1e12), StrategyStats::kBins);
    for (double ms : {1.5, 7.0, 20.0, 100.0, 333.0, 2500.0, 60000.0}) {
        size_t b = StrategyStats::bin_for(ms);
        double v = StrategyStats::bin_value(b);
        EXPECT_LT(std::abs(v - ms) / ms, 0.14) << ms << " -> bin " << b << " value " << v;
    }
    // monotonic
    for (double ms = 1; ms < 1e6; ms *= 1.07) EXPECT_LE(StrategyStats::bin_for(ms), StrategyStats::bin_for(ms * 1.07));
}

TEST(StrategyStats, EmptyIsValidJsonWithNulls) {
    auto s = make();
    auto d = parse(s.render(at(1000s)));
    const auto& g = group(d, "5m", "gpt");
    EXPECT_EQ(g["requests"].GetUint64(), 0u);
    EXPECT_TRUE(g["latency_ms"]["p50"].IsNull());
    EXPECT_TRUE(g["hedging"]["trigger_rate"].IsNull());
    EXPECT_TRUE(g["hedging"]["win_rate"].IsNull());
    EXPECT_EQ(d["windows"]["5m"]["seconds"].GetInt(), 300);
    EXPECT_EQ(d["windows"]["1h"]["seconds"].GetInt(), 3600);
    EXPECT_EQ(d["windows"]["5m"]["deployments"].Size(), 3u);
}

TEST(StrategyStats, QuantilesAndDeployments) {
    auto s = make();
    const auto t = at(10'000s);
    for (int i = 1; i <= 100; ++i) s.record(plain(i * 10.0, i % 2 ? 0 : 1), t);
    auto d = parse(s.render(t));
    const auto& g = group(d, "5m", "gpt");
    EXPECT_EQ(g["requests"].GetUint64(), 100u);
    EXPECT_EQ(g["latency_ms"]["count"].GetUint64(), 100u);
    EXPECT_NEAR(g["latency_ms"]["p50"].GetDouble(), 500, 500 * 0.14);
    EXPECT_NEAR(g["latency_ms"]["p95"].GetDouble(), 950, 950 * 0.14);
    EXPECT_NEAR(g["latency_ms"]["p99"].GetDouble(), 990, 990 * 0.14);
    EXPECT_EQ(g["hedging"]["hedged"].GetUint64(), 0u);
    EXPECT_DOUBLE_EQ(g["hedging"]["trigger_rate"].GetDouble(), 0.0);
    EXPECT_EQ(g["primary_on_hedged_or_raced"]["requests"].GetUint64(), 0u);
    EXPECT_EQ(dep(d, "5m", 0)["attempts"].GetUint64(), 50u);
    EXPECT_DOUBLE_EQ(dep(d, "5m", 0)["success_rate"].GetDouble(), 1.0);
    EXPECT_EQ(dep(d, "5m", 1)["total_ms"]["count"].GetUint64(), 50u);
    EXPECT_EQ(group(d, "5m", "backup")["requests"].GetUint64(), 0u);
}

TEST(StrategyStats, HedgedPrimaryIsCensoredNotMeasured) {
    auto s = make();
    const auto t = at(10'000s);
    for (int i = 0; i < 10; ++i) s.record(hedged(130), t);
    auto d = parse(s.render(t));
    const auto& g = group(d, "5m", "gpt");
    EXPECT_EQ(g["requests"].GetUint64(), 10u);
    EXPECT_EQ(g["hedging"]["hedged"].GetUint64(), 10u);
    EXPECT_DOUBLE_EQ(g["hedging"]["trigger_rate"].GetDouble(), 1.0);
    EXPECT_DOUBLE_EQ(g["hedging"]["win_rate"].GetDouble(), 1.0);
    EXPECT_EQ(g["wasted_attempts"].GetUint64(), 10u);
    EXPECT_EQ(g["extra_attempts"].GetUint64(), 10u);
    EXPECT_DOUBLE_EQ(g["extra_load"].GetDouble(), 1.0);
    const auto& p = g["primary_on_hedged_or_raced"];
    EXPECT_EQ(p["requests"].GetUint64(), 10u);
    EXPECT_EQ(p["censored"].GetUint64(), 10u);
    EXPECT_EQ(p["uncensored"].GetUint64(), 0u);
    EXPECT_EQ(p["uncensored_latency_ms"]["count"].GetUint64(), 0u);
    EXPECT_TRUE(p["uncensored_latency_ms"]["p50"].IsNull());  // no invented value
    EXPECT_NEAR(p["client_latency_ms"]["p50"].GetDouble(), 130, 130 * 0.14);
    EXPECT_NEAR(g["ttft_ms"]["p50"].GetDouble(), 125, 125 * 0.14);
    // The loser's lower bound never enters the deployment's total latency.
    EXPECT_EQ(dep(d, "5m", 0)["attempts"].GetUint64(), 10u);
    EXPECT_EQ(dep(d, "5m", 0)["total_ms"]["count"].GetUint64(), 0u);
    EXPECT_DOUBLE_EQ(dep(d, "5m", 0)["success_rate"].GetDouble(), 0.0);
    EXPECT_EQ(dep(d, "5m", 1)["ttft_ms"]["count"].GetUint64(), 10u);

    // A hedged request whose primary still won: uncensored, its own latency.
    auto r = hedged(300);
    r.winner = 0;
    r.hedge_won = false;
    r.attempts[0].lost = false;
    r.attempts[0].success = true;
    r.attempts[0].ttft_ms = 290;
    r.attempts[1].lost = true;
    r.attempts[1].success = false;
    s.record(r, t);
    d = parse(s.render(t));
    const auto& p2 = group(d, "5m", "gpt")["primary_on_hedged_or_raced"];
    EXPECT_EQ(p2["uncensored"].GetUint64(), 1u);
    EXPECT_EQ(p2["censored"].GetUint64(), 10u);
    EXPECT_NEAR(p2["uncensored_latency_ms"]["p50"].GetDouble(), 290, 290 * 0.14);
    EXPECT_NEAR(group(d, "5m", "gpt")["hedging"]["win_rate"].GetDouble(), 10.0 / 11, 1e-3);
}

TEST(StrategyStats, RaceWinsPerDeployment) {
    auto s = make();
    const auto t = at(10'000s);
    StrategyStats::Request r;
    r.group = 0;
    r.race = true;
    r.total_ms = 50;
    r.winner = 1;
    StrategyStats::Attempt a, b;
    a.deployment = 0;
    a.lost = true;
    b.deployment = 1;
    b.success = true;
    b.total_ms = 45;
    r.attempts = {a, b};
    s.record(r, t);
    s.record(r, t);
    auto d = parse(s.render(t));
    const auto& g = group(d, "5m", "gpt");
    EXPECT_EQ(g["races"]["count"].GetUint64(), 2u);
    EXPECT_EQ(g["races"]["wins"]["q"].GetUint64(), 2u);
    EXPECT_EQ(g["races"]["wins"]["p"].GetUint64(), 0u);
    EXPECT_FALSE(g["races"]["wins"].HasMember("c"));  // another group's deployment
    EXPECT_EQ(g["primary_on_hedged_or_raced"]["censored"].GetUint64(), 2u);
    EXPECT_EQ(g["hedging"]["hedged"].GetUint64(), 0u);
    EXPECT_EQ(dep(d, "5m", 1)["race_wins"].GetUint64(), 2u);
}

TEST(StrategyStats, SlidingWindowsExpire) {
    auto s = make();
    s.record(plain(100), at(10'000s));
    s.cooldown(2, at(10'000s));
    s.record(plain(100), at(10'000s + 200s));
    auto d = parse(s.render(at(10'000s + 200s)));
    EXPECT_EQ(group(d, "5m", "gpt")["requests"].GetUint64(), 2u);
    EXPECT_EQ(dep(d, "5m", 2)["cooldowns"].GetUint64(), 1u);
    // 6 min later: the first one left the 5 min window, both are in the hour.
    d = parse(s.render(at(10'000s + 360s)));
    EXPECT_EQ(group(d, "5m", "gpt")["requests"].GetUint64(), 1u);
    EXPECT_EQ(group(d, "1h", "gpt")["requests"].GetUint64(), 2u);
    EXPECT_EQ(dep(d, "5m", 2)["cooldowns"].GetUint64(), 0u);
    EXPECT_EQ(dep(d, "1h", 2)["cooldowns"].GetUint64(), 1u);
    // A slot reused a whole ring later starts from zero.
    s.record(plain(100), at(10'000s + 3600s));
    d = parse(s.render(at(10'000s + 3600s)));
    EXPECT_EQ(group(d, "5m", "gpt")["requests"].GetUint64(), 1u);
    // Same 1 h slot as the 10 000 s bucket, which was zeroed; 10 200 s is still inside.
    EXPECT_EQ(group(d, "1h", "gpt")["requests"].GetUint64(), 2u);
    // Two hours later nothing is left.
    d = parse(s.render(at(10'000s + 7200s + 3600s)));
    EXPECT_EQ(group(d, "1h", "gpt")["requests"].GetUint64(), 0u);
    // A late writer (older than the slot's bucket) is dropped, not mixed in.
    s.record(plain(100), at(10'000s + 3600s - 3600s));
    d = parse(s.render(at(10'000s + 3600s)));
    EXPECT_EQ(group(d, "5m", "gpt")["requests"].GetUint64(), 1u);
}
