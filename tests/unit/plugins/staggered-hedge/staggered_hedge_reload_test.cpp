// staggered-hedge across a reload (the budget spent stays spent, totals carry),
// in a dry run (TG_REQUEST_PREVIEW counts nothing) and its state_json (budget left).
#include "../strategy_test_support.hpp"

#include <tailgate/testing.hpp>

#include <gtest/gtest.h>

#include <rapidjson/document.h>

#include <deque>
#include <string>

namespace tailgate::plugin {
namespace {

using namespace testing;
using sdk::testing::Deployments;
using sdk::testing::FakeHost;

class HedgeReloadTest : public StrategyTest {
protected:
    HedgeReloadTest() : StrategyTest("staggered-hedge") {}
    void SetUp() override {
        for (const char* id : {"a", "b", "c"}) d.add(id);
        for (const char* id : {"c", "b"}) next.add(id);
    }
    // Routes request `id` over `deps`; true when the plan holds a hedge.
    static bool route(Instance& inst, Deployments& deps, FakeHost& h, const std::string& id, uint32_t flags = 0) {
        OverrideRequest q({}, id);
        q.req.flags(flags);
        tg_route& r = deps.route(&h);
        EXPECT_EQ(inst.route(q.req.raw, r), TG_OK);
        return r.attempt_count > 1 && r.attempts[1].launch == TG_LAUNCH_AFTER_DELAY;
    }
    bool admit(Instance& inst, Deployments& deps, const std::string& id) {
        ids_.push_back(id);
        tg_event e{};
        e.struct_size = sizeof e;
        e.type = TG_EVENT_STARTED;
        e.deployment = &deps.deployment(1);
        e.request_id = ids_.back().c_str();
        e.model_group = "test-group";
        e.attempt = 1;
        e.ttft_ms = -1;
        e.retry_after_ms = -1;
        e.prompt_tokens = -1;
        e.completion_tokens = -1;
        return inst.admit(e);
    }
    static rapidjson::Document state(const Instance& inst) {
        rapidjson::Document doc;
        const std::string text = inst.state_json();
        doc.Parse(text.c_str());
        EXPECT_TRUE(doc.IsObject()) << text;
        return doc;
    }
    static int64_t budget_left(const Instance& inst) { return state(inst)["budget_left"].GetInt64(); }

    std::deque<std::string> ids_;
};

const Args kBudget{{"delay", "100ms"}, {"max_extra_load", "0.05"}, {"min_hedges_per_second", "0"},
                   {"budget_window", "10s"}};

TEST_F(HedgeReloadTest, TheBudgetSpentStaysSpent) {
    auto old = make(kBudget);
    for (int i = 0; i < 40; ++i) route(*old, d, host, "r" + std::to_string(i));  // 5 % of 40: 2 hedges
    EXPECT_EQ(budget_left(*old), 2);
    ASSERT_TRUE(admit(*old, d, "r39"));

    auto fresh = reload(*old, kBudget);
    EXPECT_EQ(budget_left(*fresh), 1) << "the window and what was spent in it carry over";
    EXPECT_TRUE(admit(*fresh, next, "n1"));
    EXPECT_FALSE(admit(*fresh, next, "n2"));
    EXPECT_FALSE(admit(*old, d, "late")) << "one budget: the old instance's last requests draw on it too";
    const auto s = state(*fresh);
    EXPECT_EQ(s["totals"]["requests"].GetInt64(), 40);
    EXPECT_EQ(s["totals"]["admitted"].GetInt64(), 2);
    EXPECT_EQ(s["totals"]["refused"].GetInt64(), 2);
}

TEST_F(HedgeReloadTest, AFreshInstanceWouldHaveNoBudget) {
    // The control for the test above: without the handover nothing is carried.
    auto old = make(kBudget);
    for (int i = 0; i < 40; ++i) route(*old, d, host, "r" + std::to_string(i));
    next_host.set_deployments(next.pointers());
    auto unrelated = reg.create("staggered-hedge", next_host.api(), kBudget);
    EXPECT_EQ(budget_left(*unrelated), 0);
    EXPECT_FALSE(admit(*unrelated, next, "n1"));
}

TEST_F(HedgeReloadTest, AChangedBudgetWindowStartsUnspentButKeepsTheTotals) {
    auto old = make(kBudget);
    for (int i = 0; i < 40; ++i) route(*old, d, host, "r" + std::to_string(i));
    Args wider = kBudget;
    wider.back().second = "20s";
    auto fresh = reload(*old, wider);
    EXPECT_EQ(budget_left(*fresh), 0);
    EXPECT_EQ(state(*fresh)["totals"]["requests"].GetInt64(), 40);
}

TEST_F(HedgeReloadTest, PreviewsPlanTheSameAndCountNothing) {
    auto inst = make(kBudget);
    for (int i = 0; i < 40; ++i) route(*inst, d, host, "r" + std::to_string(i));
    const std::string before = inst->state_json();
    for (int i = 0; i < 500; ++i)
        ASSERT_TRUE(route(*inst, d, host, "p" + std::to_string(i), TG_REQUEST_PREVIEW)) << "the plan still hedges";
    EXPECT_EQ(inst->state_json(), before) << "no request counted, no eligible plan counted";
    EXPECT_EQ(budget_left(*inst), 2);
}

}  // namespace
}  // namespace tailgate::plugin
