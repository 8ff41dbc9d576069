// cost strategy, loaded as the real .so through the loader; also chained after health.
#include "plugin/loader.hpp"

#include <tailgate/testing.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <deque>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace tailgate::plugin {
namespace {

using sdk::testing::Deployments;
using sdk::testing::FakeHost;
using sdk::testing::Request;
using Args = std::vector<std::pair<std::string, std::string>>;
using Ids = std::vector<std::string>;

class CostTest : public ::testing::Test {
protected:
    InstancePtr make(Args args = {}) {
        host.set_deployments(d.pointers());
        return reg.create("cost", host.api(), args);
    }
    tg_deployment& priced(const std::string& id, double in, double out, const std::string& group = "test-group") {
        tg_deployment& dep = d.add(id, "openai", group);
        dep.input_cost_per_token = in;
        dep.output_cost_per_token = out;
        return dep;
    }
    // Adds a deployment without config prices whose upstream model is `upstream`.
    tg_deployment& model(const std::string& id, const std::string& upstream) {
        upstreams.push_back(upstream);
        tg_deployment& dep = d.add(id);
        dep.upstream_model = upstreams.back().c_str();
        return dep;
    }
    Ids route(Instance& inst, bool stream = false, uint32_t endpoint = TG_ENDPOINT_CHAT) {
        Request req("test-group", stream);
        req.raw.endpoint = endpoint;
        tg_route& r = d.route(&host);
        const uint32_t before = r.count;
        EXPECT_EQ(inst.route(req.raw, r), TG_OK);
        EXPECT_EQ(r.count, before);  // filters nothing
        EXPECT_EQ(r.attempt_count, 0u);  // plans nothing
        return d.order();
    }
    void usage(Instance& inst, uint32_t dep, int64_t prompt, int64_t completion) {
        tg_event e{};
        e.struct_size = sizeof e;
        e.type = TG_EVENT_SUCCESS;
        e.deployment = &d.deployment(dep);
        e.request_id = "u";
        e.model_group = "some-other-request-group";
        e.ttft_ms = -1;
        e.retry_after_ms = -1;
        e.prompt_tokens = prompt;
        e.completion_tokens = completion;
        inst.observe(e);
    }
    int warnings_about(const std::string& id) const {
        int n = 0;
        for (auto& [lvl, msg] : host.logs())
            n += lvl == TG_LOG_WARN && msg.find("deployment '" + id + "'") != std::string::npos;
        return n;
    }

    Registry reg{{TAILGATE_PLUGIN_DIR}};
    FakeHost host;
    Deployments d;
    std::deque<std::string> upstreams;
};

TEST_F(CostTest, CheapestFirst) {
    priced("mid", 1e-6, 2e-6);     // 1000*1e-6 + 250*2e-6 = 0.0015
    priced("high", 5e-6, 15e-6);   // 0.00875
    priced("low", 0.1e-6, 0.4e-6); // 0.0002
    priced("free", 0, 0);          // a local model
    auto inst = make();
    EXPECT_EQ(route(*inst), (Ids{"free", "low", "mid", "high"}));
    EXPECT_EQ(host.notes().back(), "cost: free (~$0/request)");
    route(*inst);
    // Works from any starting order.
    tg_route& r = d.route(&host);
    std::swap(r.candidates[0], r.candidates[3]);
    Request req;
    ASSERT_EQ(inst->route(req.raw, r), TG_OK);
    EXPECT_EQ(d.order(), (Ids{"free", "low", "mid", "high"}));
}

TEST_F(CostTest, DefaultExpectationIs1000PromptAnd250CompletionTokens) {
    // in-heavy: 1000*3e-6 + 250*1e-6 = 0.00325; out-heavy: 1000*1e-6 + 250*9e-6 = 0.00325 + tiny
    priced("out-heavy", 1e-6, 9.0001e-6);
    priced("in-heavy", 3e-6, 1e-6);
    auto inst = make();
    EXPECT_EQ(route(*inst), (Ids{"in-heavy", "out-heavy"}));
    EXPECT_EQ(host.notes().back(), "cost: in-heavy (~$0.00325/request)");
}

TEST_F(CostTest, ExpectationFollowsObservedUsageOfTheGroup) {
    priced("cheap-in", 1e-6, 10e-6);    // default: 0.001 + 0.0025 = 0.0035
    priced("cheap-out", 5e-6, 1e-6);    // default: 0.005 + 0.00025 = 0.00525
    priced("elsewhere", 1e-3, 1e-3, "other-group");  // priced per this group's expectation, always last
    auto inst = make();
    EXPECT_EQ(route(*inst), (Ids{"cheap-in", "cheap-out", "elsewhere"}));
    // Long answers to short prompts: output price dominates.
    for (int i = 0; i < 10; ++i) usage(*inst, 0, 100, 2000);
    EXPECT_EQ(route(*inst), (Ids{"cheap-out", "cheap-in", "elsewhere"}));
    // Usage of another group does not move this group's expectation.
    for (int i = 0; i < 50; ++i) usage(*inst, 2, 100000, 0);
    EXPECT_EQ(route(*inst), (Ids{"cheap-out", "cheap-in", "elsewhere"}));
    // Unknown token counts (-1) are not data; failures are not usage.
    usage(*inst, 0, -1, -1);
    EXPECT_EQ(route(*inst), (Ids{"cheap-out", "cheap-in", "elsewhere"}));
}

// A reload keeps what the group's usage taught (by group name): the next
// instance orders as the previous one did, not by the defaults.
TEST_F(CostTest, LearnedUsageCarriesAcrossAReload) {
    priced("cheap-in", 1e-6, 10e-6);
    priced("cheap-out", 5e-6, 1e-6);
    auto old = make();
    for (int i = 0; i < 10; ++i) usage(*old, 0, 100, 2000);
    ASSERT_EQ(route(*old), (Ids{"cheap-out", "cheap-in"}));
    auto fresh = make();
    EXPECT_EQ(route(*fresh), (Ids{"cheap-in", "cheap-out"})) << "a fresh instance knows only the defaults";
    ASSERT_EQ(fresh->adopt_state_from(*old), "");
    EXPECT_EQ(route(*fresh), (Ids{"cheap-out", "cheap-in"}));
}

TEST_F(CostTest, RunningAverageMovesGradually) {
    priced("cheap-in", 1e-6, 10e-6);
    priced("cheap-out", 5e-6, 1e-6);
    auto inst = make({{"default_prompt_tokens", "100"}, {"default_completion_tokens", "2000"}});
    EXPECT_EQ(route(*inst), (Ids{"cheap-out", "cheap-in"}));
    // Break-even: 4e-6*P = 9e-6*C. Averages of (10000, 0) then (0, 1000) x3:
    // P = 2500, C = 750: cheap-in 0.0025+0.0075 = 0.01, cheap-out 0.0125+0.00075 -> cheap-in.
    usage(*inst, 0, 10000, 0);
    EXPECT_EQ(route(*inst), (Ids{"cheap-in", "cheap-out"}));
    for (int i = 0; i < 3; ++i) usage(*inst, 1, 0, 1000);
    EXPECT_EQ(route(*inst), (Ids{"cheap-in", "cheap-out"}));
    for (int i = 0; i < 20; ++i) usage(*inst, 1, 0, 1000);  // P ~ 417, C ~ 958
    EXPECT_EQ(route(*inst), (Ids{"cheap-out", "cheap-in"}));
}

TEST_F(CostTest, PriceTableFallback) {
    model("4o", "gpt-4o");                         // 0.0025 + 0.0025 = 0.005
    model("mini-dated", "gpt-4o-mini-2024-07-18"); // 0.00015 + 0.00015 = 0.0003
    model("groq-8b", "groq/llama-3.1-8b-instant"); // 0.00005 + 0.00002 = 0.00007
    model("gpt4", "GPT-4-0613");                   // 0.03 + 0.015
    priced("configured", 1e-6, 1e-6);              // 0.00125
    auto inst = make();
    EXPECT_EQ(route(*inst), (Ids{"groq-8b", "mini-dated", "configured", "4o", "gpt4"}));
    EXPECT_TRUE(host.logs().empty());
}

TEST_F(CostTest, ConfigPriceWinsOverTheTable) {
    model("4o-discounted", "gpt-4o").input_cost_per_token = 0;  // output still from the table
    model("mini", "gpt-4o-mini");
    auto inst = make();
    // 4o-discounted: 0 + 250*10e-6 = 0.0025; mini: 0.0003
    EXPECT_EQ(route(*inst), (Ids{"mini", "4o-discounted"}));
    auto& dep = d.deployment(0);
    dep.output_cost_per_token = 0;
    auto again = make();
    EXPECT_EQ(route(*again), (Ids{"4o-discounted", "mini"}));
}

TEST_F(CostTest, UnknownPriceGoesLastAndIsLoggedOnce) {
    model("mystery", "my-finetune");
    model("not-a-snapshot", "gpt-4o-minix");  // no table entry: not a dated variant of gpt-4o(-mini)
    priced("known", 30e-6, 60e-6);
    auto inst = make();
    for (int i = 0; i < 5; ++i) EXPECT_EQ(route(*inst), (Ids{"known", "mystery", "not-a-snapshot"}));
    EXPECT_EQ(warnings_about("mystery"), 1);
    EXPECT_EQ(warnings_about("not-a-snapshot"), 1);
    EXPECT_EQ(host.logs().size(), 2u);
    EXPECT_NE(host.logs()[0].second.find("cost: deployment 'mystery' (upstream model 'my-finetune') has no known "
                                         "input_cost_per_token and output_cost_per_token"),
              std::string::npos);
}

TEST_F(CostTest, AllUnknownKeepsOrderAndNotes) {
    model("x", "unknown-1");
    model("y", "unknown-2");
    auto inst = make();
    EXPECT_EQ(route(*inst), (Ids{"x", "y"}));
    EXPECT_EQ(host.notes().back(), "cost: x (price unknown)");
}

TEST_F(CostTest, EmbeddingsNeedOnlyTheInputPrice) {
    priced("input-only", 0.05e-6, -1);
    model("small", "text-embedding-3-small");  // 0.02e-6
    model("large", "text-embedding-3-large");  // 0.13e-6
    auto inst = make();
    EXPECT_EQ(route(*inst, false, TG_ENDPOINT_EMBEDDINGS), (Ids{"small", "input-only", "large"}));
    EXPECT_TRUE(host.logs().empty());
    // For chat, the missing output price makes it unknown.
    EXPECT_EQ(route(*inst), (Ids{"small", "large", "input-only"}));
    EXPECT_EQ(warnings_about("input-only"), 1);
    EXPECT_NE(host.logs().back().second.find("has no known output_cost_per_token"), std::string::npos);
}

TEST_F(CostTest, TiesAreBrokenByLatency) {
    for (const char* id : {"no-data", "slow", "fast", "pricier"}) priced(id, 1e-6, 1e-6);
    d.deployment(3).input_cost_per_token = 1.1e-6;
    d.deployment(2).output_cost_per_token = 1e-6 + 1e-18;  // within 1e-12 per request: a tie
    auto lat = [&](uint32_t i, double total, double ttft) {
        d.stats(i).total = tg_latency_summary{10, total, total, total, total, total};
        d.stats(i).ttft = tg_latency_summary{10, ttft, ttft, ttft, ttft, ttft};
    };
    lat(1, 900, 100);  // slow in total, fast to first byte
    lat(2, 300, 400);
    lat(3, 1, 1);      // fastest, but more expensive: cost comes first
    auto inst = make();
    EXPECT_EQ(route(*inst), (Ids{"fast", "slow", "no-data", "pricier"}));
    EXPECT_EQ(route(*inst, /*stream=*/true), (Ids{"slow", "fast", "no-data", "pricier"}));
}

TEST_F(CostTest, TiesWithoutLatencyKeepOriginalOrder) {
    for (const char* id : {"c", "a", "b"}) priced(id, 2e-6, 2e-6);
    auto inst = make();
    EXPECT_EQ(route(*inst), (Ids{"c", "a", "b"}));
    // Unknown-price deployments tie among themselves: latency, then order.
    model("u1", "unknown-1");
    model("u2", "unknown-2");
    d.stats(4).total = tg_latency_summary{3, 50, 50, 50, 50, 50};
    auto again = make();
    EXPECT_EQ(route(*again), (Ids{"c", "a", "b", "u2", "u1"}));
}

TEST_F(CostTest, EarlierPlanFollowsItsCandidates) {
    priced("expensive", 10e-6, 10e-6);
    priced("cheap", 1e-6, 1e-6);
    auto inst = make();
    Request req;
    tg_route& r = d.route(&host);
    r.attempts[0] = tg_attempt{0, TG_LAUNCH_AT_START, 0, 0};        // expensive
    r.attempts[1] = tg_attempt{1, TG_LAUNCH_AFTER_DELAY, 200, 0};   // cheap
    r.attempt_count = 2;
    ASSERT_EQ(inst->route(req.raw, r), TG_OK);
    EXPECT_EQ(d.order(), (Ids{"cheap", "expensive"}));
    ASSERT_EQ(r.attempt_count, 2u);
    EXPECT_EQ(r.attempts[0].candidate, 1u);
    EXPECT_EQ(r.attempts[1].candidate, 0u);
}

TEST_F(CostTest, PricesOfDeploymentsTheHostDidNotListAreResolved) {
    model("4o", "gpt-4o");
    model("mini", "gpt-4o-mini");
    host.set_deployments({});
    auto inst = reg.create("cost", host.api(), {});
    EXPECT_EQ(route(*inst), (Ids{"mini", "4o"}));
}

TEST_F(CostTest, BadArgsAreRefused) {
    const std::string prefix =
        std::string(TAILGATE_PLUGIN_DIR) + "/cost.so: strategy 'cost' refused its configuration: ";
    auto refusal = [&](Args args) -> std::string {
        try {
            make(std::move(args));
        } catch (const PluginError& e) {
            return e.what();
        }
        return "";
    };
    EXPECT_EQ(refusal({{"prompt_tokens", "5"}}),
              prefix + "unknown arg 'prompt_tokens' (cost accepts: default_prompt_tokens, default_completion_tokens)");
    EXPECT_EQ(refusal({{"default_prompt_tokens", "many"}}),
              prefix + "default_prompt_tokens: expected a number, got 'many'");
    EXPECT_EQ(refusal({{"default_completion_tokens", "-3"}}),
              prefix + "default_completion_tokens: expected a non-negative number of tokens, got '-3'");
    EXPECT_EQ(refusal({{"router.allowed_fails", "3"}, {"router.cooldown_time", "5000ms"}}), "");
}

TEST_F(CostTest, ConcurrentRoutesAndUsageAreSafe) {
    priced("cheap-in", 1e-6, 10e-6);
    priced("cheap-out", 5e-6, 1e-6);
    model("unknown", "nope");
    auto inst = make();
    std::atomic<int> bad{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            Deployments mine;
            mine.add("cheap-in").input_cost_per_token = 1e-6;
            mine.deployment(0).output_cost_per_token = 10e-6;
            mine.add("cheap-out").input_cost_per_token = 5e-6;
            mine.deployment(1).output_cost_per_token = 1e-6;
            mine.add("unknown");
            Request req;
            for (int i = 0; i < 3000; ++i) {
                if (t % 2 == 0) {
                    if (inst->route(req.raw, mine.route()) != TG_OK || mine.order().size() != 3 ||
                        mine.order().back() != "unknown")
                        ++bad;
                } else {
                    tg_event e{};
                    e.struct_size = sizeof e;
                    e.type = TG_EVENT_SUCCESS;
                    e.deployment = &mine.deployment(i % 2);
                    e.prompt_tokens = i % 5000;
                    e.completion_tokens = (i * 7) % 3000;
                    inst->observe(e);
                }
            }
        });
    for (auto& th : threads) th.join();
    EXPECT_EQ(bad.load(), 0);
    EXPECT_EQ(warnings_about("unknown"), 1);
}

// health first, cost second, on the same tg_route: the cheapest deployment is
// cooling, so the next cheapest comes first; once it recovers it leads again.
TEST_F(CostTest, BehindHealthTheCheapestCoolingOneIsSkipped) {
    priced("mid", 2e-6, 2e-6);
    priced("cheapest", 1e-6, 1e-6);
    priced("high", 9e-6, 9e-6);
    host.set_now(1000);
    auto cost = make();
    auto health = reg.create("health", host.api(), {{"router.allowed_fails", "0"}, {"router.cooldown_time", "5s"}});
    auto chain = [&](const std::string& id) -> Ids {
        Request req("test-group", false, "{}", "{}", id);
        tg_route& r = d.route(&host);
        int rc = health->route(req.raw, r);
        if (rc != TG_OK) return {"<refused>"};
        EXPECT_EQ(cost->route(req.raw, r), TG_OK);
        return d.order();
    };
    EXPECT_EQ(chain("r1"), (Ids{"cheapest", "mid", "high"}));

    tg_event e{};
    e.struct_size = sizeof e;
    e.deployment = &d.deployment(1);
    e.request_id = "r1";
    e.retry_after_ms = -1;
    e.prompt_tokens = e.completion_tokens = -1;
    e.type = TG_EVENT_STARTED;
    health->observe(e);
    cost->observe(e);
    e.type = TG_EVENT_FAILURE;
    e.error_class = TG_ERRC_SERVER;
    e.http_status = 500;
    health->observe(e);
    cost->observe(e);
    EXPECT_EQ(host.health(1), std::make_pair(static_cast<uint32_t>(TG_HEALTH_COOLING), int64_t{6000}));

    EXPECT_EQ(chain("r2"), (Ids{"mid", "high"}));
    host.set_now(6000);
    EXPECT_EQ(chain("r3"), (Ids{"cheapest", "mid", "high"}));  // half-open: r3 probes it, cheapest first
    EXPECT_EQ(chain("r4"), (Ids{"mid", "high"}));              // one probe at a time
}

}  // namespace
}  // namespace tailgate::plugin
