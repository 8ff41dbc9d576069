// The host never trusts a strategy's output: every deliberately broken plugin of
// tests/plugins/hostile-* and plan-then-fail is refused with a clear log line,
// its decision undone as a whole, and the request served by the right group.
// Also run under ASan/UBSan by tests/plugins/run_asan.sh (ctest label "asan").
#include "config/config.hpp"
#include "log_capture.hpp"
#include "plugin/loader.hpp"
#include "router/router.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace tailgate;

namespace {

// Group `chat` has two deployments, `other` one. test-reverse (plan: race)
// runs first, so a correct result is "c2 and c1 raced at t=0".
std::string config_with(const std::string& hostile) {
    return R"(
model_list:
  - model_name: chat
    litellm_params: {model: openai/c1, api_base: "http://127.0.0.1:1/v1"}
    model_info: {id: c1}
  - model_name: chat
    litellm_params: {model: openai/c2, api_base: "http://127.0.0.1:2/v1"}
    model_info: {id: c2}
  - model_name: other
    litellm_params: {model: openai/o1, api_base: "http://127.0.0.1:3/v1"}
    model_info: {id: o1}
router_settings:
  strategies: [{name: test-reverse, args: {plan: race}}, {name: )" +
           hostile + "}]\n";
}

struct HostileCase {
    const char* plugin;
    const char* reason;  // must appear in the log line
};

class HostilePlugin : public ::testing::TestWithParam<HostileCase> {
protected:
    plugin::Registry registry{{TAILGATE_TEST_PLUGIN_DIR}};
    std::unique_ptr<router::Router> make(const std::string& yaml) {
        auto cfg = std::make_shared<const config::Config>(config::load_string(yaml, "hostile_test.yaml"));
        return std::make_unique<router::Router>(cfg, registry);
    }
    static router::RequestInfo req(const std::string& group) {
        router::RequestInfo r;
        r.request_id = "req-hostile";
        r.model_group = group;
        return r;
    }
};

}  // namespace

TEST_P(HostilePlugin, IsContainedAndLogged) {
    const HostileCase c = GetParam();
    test_support::LogCapture log;
    auto r = make(config_with(c.plugin));
    auto res = r->route(req("chat"));
    ASSERT_TRUE(std::holds_alternative<router::RoutedPlan>(res)) << log.text();
    const auto& plan = std::get<router::RoutedPlan>(res).plan;
    // test-reverse's race plan, untouched by the hostile strategy that ran after it.
    ASSERT_EQ(plan.attempts.size(), 2u);
    EXPECT_EQ(r->deployment(plan.attempts[0].deployment).id, "c2");
    EXPECT_EQ(r->deployment(plan.attempts[1].deployment).id, "c1");
    for (const auto& a : plan.attempts) {
        EXPECT_EQ(a.launch, Launch::AtStart);
        EXPECT_EQ(r->deployment(a.deployment).model_name, "chat");
    }
    const std::string text = log.text();
    EXPECT_NE(text.find(std::string("strategy '") + c.plugin + "'"), std::string::npos) << text;
    EXPECT_NE(text.find("failed routing request req-hostile"), std::string::npos) << text;
    EXPECT_NE(text.find(c.reason), std::string::npos) << text;

    std::string metrics;
    r->append_plugin_metrics(metrics);
    EXPECT_NE(metrics.find(std::string("tailgate_plugin_failures_total{plugin=\"") + c.plugin + "\"} 1\n"),
              std::string::npos)
        << metrics;
    EXPECT_NE(metrics.find("tailgate_plugin_failures_total{plugin=\"test-reverse\"} 0\n"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    BrokenOutputs, HostilePlugin,
    ::testing::Values(HostileCase{"hostile-null-candidates", "set candidates to NULL"},
                      HostileCase{"hostile-null-deployment", "candidates[0].deployment is NULL"},
                      HostileCase{"hostile-foreign-deployment", "is not one of the deployments handed in"},
                      HostileCase{"hostile-other-group", "is not one of the deployments handed in"},
                      HostileCase{"hostile-duplicate", "repeats a deployment already listed"},
                      HostileCase{"hostile-own-array", "replaced the candidates array"},
                      HostileCase{"hostile-plan-overflow", "exceeds TG_MAX_ATTEMPTS"},
                      // Through the SDK: clear_plan(), add_attempt(), count lowered, then a throw.
                      HostileCase{"plan-then-fail", "plan-then-fail: gave up after rewriting the plan"},
                      HostileCase{"throwing", "returned TG_ERR_INTERNAL: throwing: route() always throws"}),
    [](const ::testing::TestParamInfo<HostileCase>& info) {
        std::string name = info.param.plugin;
        for (char& ch : name)
            if (ch == '-') ch = '_';
        return name;
    });

TEST_F(HostilePlugin, FailureLogIsRateLimitedButEveryFailureCounts) {
    test_support::LogCapture log;
    auto r = make(config_with("hostile-null-candidates"));
    for (int i = 0; i < 50; ++i) ASSERT_TRUE(std::holds_alternative<router::RoutedPlan>(r->route(req("chat"))));
    // One line per second per instance: 50 back-to-back failures log once
    // (the run takes far less than a second on any machine that runs tests).
    EXPECT_EQ(log.count("strategy 'hostile-null-candidates'"), 1u) << log.text();
    std::string metrics;
    r->append_plugin_metrics(metrics);
    EXPECT_NE(metrics.find("tailgate_plugin_failures_total{plugin=\"hostile-null-candidates\"} 50\n"),
              std::string::npos)
        << metrics;
}

TEST_F(HostilePlugin, FailingStrategyStillGetsItsRequestContextBackAndReleased) {
    test_support::LogCapture log;
    auto r = make(config_with("plan-then-fail"));
    {
        auto q = req("chat");
        auto res = r->route(q);
        ASSERT_TRUE(std::holds_alternative<router::RoutedPlan>(res));
        auto& routed = std::get<router::RoutedPlan>(res);
        auto obs = r->observer_for(q, &routed);
        obs->on_attempt(dispatch::AttemptEvent{EventType::Started, 0, routed.plan.attempts[0].deployment});
        EXPECT_EQ(log.count("plan-then-fail ctx=1"), 1u) << log.text();
        EXPECT_EQ(log.count("plan-then-fail released"), 0u) << "released while the request still runs";
    }
    EXPECT_EQ(log.count("plan-then-fail released 1"), 1u) << log.text();
    // A request routed to an error (unknown fallback) releases its context too.
    {
        auto q = req("chat");
        q.fallbacks = std::vector<std::string>{"nope"};
        EXPECT_TRUE(std::holds_alternative<ApiError>(r->route(q)));
    }
    EXPECT_EQ(log.count("plan-then-fail released 2"), 1u) << log.text();
}
