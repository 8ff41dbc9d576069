// Router: plan assembly (retries, fallbacks, context-window fallbacks), refusals, chain errors.
#include "config/config.hpp"
#include "plugin/loader.hpp"
#include "router/router.hpp"

#include <gtest/gtest.h>

using namespace tailgate;

namespace {

const char* kConfig = R"(
model_list:
  - model_name: a
    litellm_params: {model: openai/a1, api_base: "http://127.0.0.1:1/v1"}
    model_info: {id: a1}
  - model_name: a
    litellm_params: {model: openai/a2, api_base: "http://127.0.0.1:2/v1"}
    model_info: {id: a2}
  - model_name: b
    litellm_params: {model: openai/b1, api_base: "http://127.0.0.1:3/v1"}
    model_info: {id: b1}
  - model_name: big
    litellm_params: {model: openai/big, api_base: "http://127.0.0.1:4/v1"}
    model_info: {id: big}
router_settings:
  num_retries: 2
  fallbacks: [{a: [b]}]
  context_window_fallbacks: [{a: [big]}]
  strategies: [{name: test-reverse}]
)";

struct RouterFixture : ::testing::Test {
    plugin::Registry registry{{TAILGATE_TEST_PLUGIN_DIR, TAILGATE_PLUGIN_DIR}};
    std::unique_ptr<router::Router> make(const std::string& yaml) {
        auto cfg = std::make_shared<const config::Config>(config::load_string(yaml, "router_test.yaml"));
        return std::make_unique<router::Router>(cfg, registry);
    }
    static router::RequestInfo req(const std::string& group) {
        router::RequestInfo r;
        r.request_id = "t";
        r.model_group = group;
        return r;
    }
    static std::vector<std::string> ids(const router::Router& r, const dispatch::Plan& p) {
        std::vector<std::string> out;
        for (const auto& a : p.attempts) out.push_back(r.deployment(a.deployment).id);
        return out;
    }
};

}  // namespace

TEST_F(RouterFixture, RetriesThenFallbackThenContextWindowFallback) {
    auto r = make(kConfig);
    auto res = r->route(req("a"));
    ASSERT_TRUE(std::holds_alternative<router::RoutedPlan>(res));
    const auto& rp = std::get<router::RoutedPlan>(res);
    // test-reverse puts a2 first; 1 + 2 retries over (a2, a1); then b with its own
    // retries; then big (context-window failures only).
    EXPECT_EQ(ids(*r, rp.plan), (std::vector<std::string>{"a2", "a1", "a2", "b1", "b1", "b1", "big", "big", "big"}));
    EXPECT_EQ(rp.groups, (std::vector<std::string>{"a", "b", "big"}));
    const auto& at = rp.plan.attempts;
    EXPECT_EQ(at[0].launch, TG_LAUNCH_AT_START);
    EXPECT_EQ(at[1].launch, TG_LAUNCH_ON_FAILURE);
    EXPECT_EQ(at[1].delay.count(), 0) << "a different deployment needs no backoff";
    EXPECT_GE(at[2].delay.count(), 125) << "back to a deployment already tried: backoff with jitter";
    EXPECT_LE(at[2].delay.count(), 250);
    EXPECT_EQ(at[3].group, 1u);
    EXPECT_EQ(at[3].launch, TG_LAUNCH_ON_FAILURE);
    EXPECT_FALSE(at[3].context_window_only);
    EXPECT_GT(at[4].delay.count(), 0);
    EXPECT_TRUE(at[6].context_window_only);
    EXPECT_EQ(at[6].group, 2u);
}

TEST_F(RouterFixture, PerRequestOverridesRetriesAndFallbacks) {
    auto r = make(kConfig);
    auto q = req("a");
    q.num_retries = 0;
    q.fallbacks = std::vector<std::string>{"big"};
    auto res = r->route(q);
    ASSERT_TRUE(std::holds_alternative<router::RoutedPlan>(res));
    auto& rp = std::get<router::RoutedPlan>(res);
    EXPECT_EQ(ids(*r, rp.plan), (std::vector<std::string>{"a2", "big", "big"}));
    EXPECT_EQ(rp.groups, (std::vector<std::string>{"a", "big", "big"}));
}

TEST_F(RouterFixture, UnknownGroupIs404ListingGroups) {
    auto r = make(kConfig);
    auto res = r->route(req("nope"));
    ASSERT_TRUE(std::holds_alternative<ApiError>(res));
    auto& e = std::get<ApiError>(res);
    EXPECT_EQ(e.status, 404);
    EXPECT_NE(e.message.find("a, b, big"), std::string::npos) << e.message;
}

TEST_F(RouterFixture, UnknownFallbackGroupIs400) {
    auto r = make(kConfig);
    auto q = req("a");
    q.fallbacks = std::vector<std::string>{"missing"};
    auto res = r->route(q);
    ASSERT_TRUE(std::holds_alternative<ApiError>(res));
    EXPECT_EQ(std::get<ApiError>(res).param, "fallbacks");
}

TEST_F(RouterFixture, RefusalWithoutFallbackIs503) {
    auto r = make(R"(
model_list:
  - model_name: a
    litellm_params: {model: openai/a1, api_base: "http://127.0.0.1:1/v1"}
router_settings:
  strategies: [{name: test-reverse, args: {refuse: true}}]
)");
    auto res = r->route(req("a"));
    ASSERT_TRUE(std::holds_alternative<ApiError>(res));
    EXPECT_EQ(std::get<ApiError>(res).status, 503);
}

TEST_F(RouterFixture, PerRequestStrategiesNeedTheConfigFlag) {
    auto r = make(kConfig);
    auto q = req("a");
    q.strategies = {"test-reverse"};
    auto res = r->route(q);
    ASSERT_TRUE(std::holds_alternative<ApiError>(res));
    EXPECT_EQ(std::get<ApiError>(res).code, "strategy_override_disabled");

    std::string allowed = std::string(kConfig) + "  allow_request_strategy_override: true\n";
    auto r2 = make(allowed);
    q.strategies = {"simple-shuffle"};
    EXPECT_TRUE(std::holds_alternative<router::RoutedPlan>(r2->route(q)));
    q.strategies = {"no-such-strategy"};
    auto bad = r2->route(q);
    ASSERT_TRUE(std::holds_alternative<ApiError>(bad));
    EXPECT_NE(std::get<ApiError>(bad).message.find("available"), std::string::npos);
}

TEST_F(RouterFixture, ThrowingStrategyIsContained) {
    auto r = make(R"(
model_list:
  - model_name: a
    litellm_params: {model: openai/a1, api_base: "http://127.0.0.1:1/v1"}
    model_info: {id: only}
router_settings:
  strategies: [{name: throwing}]
)");
    auto res = r->route(req("a"));
    ASSERT_TRUE(std::holds_alternative<router::RoutedPlan>(res)) << "its decision is ignored, the request proceeds";
    EXPECT_EQ(ids(*r, std::get<router::RoutedPlan>(res).plan), (std::vector<std::string>{"only"}));
}
