// The ABI grows only at the end: a plugin built against the version-1 header
// (tests/plugins/v1-compat) keeps working in today's host, and the 1.1 members
// (request fields, request contexts, state handover) reach plugins built now.
#include "config/config.hpp"
#include "log_capture.hpp"
#include "plugin/loader.hpp"
#include "router/router.hpp"

#include <tailgate/testing.hpp>

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace tailgate;

namespace {

const char* kTwo = R"(
model_list:
  - model_name: chat
    litellm_params: {model: openai/c1, api_base: "http://127.0.0.1:1/v1"}
    model_info: {id: c1}
  - model_name: chat
    litellm_params: {model: openai/c2, api_base: "http://127.0.0.1:2/v1"}
    model_info: {id: c2}
router_settings:
)";

struct AbiGrowth : ::testing::Test {
    plugin::Registry registry{{TAILGATE_TEST_PLUGIN_DIR}};
    std::unique_ptr<router::Router> make(const std::string& chain) {
        auto cfg = std::make_shared<const config::Config>(
            config::load_string(std::string(kTwo) + "  strategies: " + chain + "\n", "abi_growth_test.yaml"));
        return std::make_unique<router::Router>(cfg, registry);
    }
    static router::RequestInfo req() {
        router::RequestInfo r;
        r.request_id = "req-abi";
        r.model_group = "chat";
        return r;
    }
};

}  // namespace

TEST_F(AbiGrowth, VersionOnePluginStillRoutesAndObserves) {
    test_support::LogCapture log;
    auto r = make("[v1-compat]");
    auto q = req();
    auto res = r->route(q);
    ASSERT_TRUE(std::holds_alternative<router::RoutedPlan>(res)) << log.text();
    auto& routed = std::get<router::RoutedPlan>(res);
    ASSERT_EQ(routed.plan.attempts.size(), 2u);
    EXPECT_EQ(r->deployment(routed.plan.attempts[0].deployment).id, "c2");
    EXPECT_EQ(routed.plan.attempts[0].launch, Launch::AtStart);
    EXPECT_EQ(r->deployment(routed.plan.attempts[1].deployment).id, "c1");
    EXPECT_EQ(routed.plan.attempts[1].launch, Launch::OnFailure);
    EXPECT_EQ(routed.note, "v1-compat: last first");
    r->observer_for(q, &routed)->on_attempt(dispatch::AttemptEvent{EventType::Success, 0, 1});
    EXPECT_EQ(log.count("v1-compat observed 2 c2"), 1u) << log.text();
    std::string metrics;
    r->append_plugin_metrics(metrics);
    EXPECT_NE(metrics.find("tailgate_plugin_failures_total{plugin=\"v1-compat\"} 0"), std::string::npos);
}

TEST_F(AbiGrowth, RequestFieldsReachTheStrategy) {
    auto r = make("[{name: test-reverse, args: {echo: true}}]");
    auto q = req();
    q.user = "alice";
    q.max_tokens = 64;
    q.has_tools = true;
    q.has_response_format = true;
    q.prompt_tokens_estimate = 12;
    q.headers = {{"x-tenant", "blue"}};
    q.caller_key_hash = "0123456789abcdef";
    auto res = r->route(q);
    ASSERT_TRUE(std::holds_alternative<router::RoutedPlan>(res));
    EXPECT_EQ(std::get<router::RoutedPlan>(res).note,
              "test-reverse: reversed; echo user=alice max_tokens=64 flags=3 prompt_est=12 x-tenant=blue "
              "caller=0123456789abcdef routed 1");

    auto plain = r->route(req());  // absent fields read as absent
    EXPECT_EQ(std::get<router::RoutedPlan>(plain).note,
              "test-reverse: reversed; echo user=- max_tokens=- flags=0 prompt_est=- x-tenant=- caller=- routed 2");
}

TEST_F(AbiGrowth, StateHandoverMovesTheOldInstancesStateToTheNewOne) {
    sdk::testing::FakeHost host;
    sdk::testing::Deployments d;
    d.add("x");
    sdk::testing::Request rq("test-group");
    auto old_inst = registry.create("test-reverse", host.api(), {{"echo", "true"}});
    auto new_inst = registry.create("test-reverse", host.api(), {{"echo", "true"}});
    auto other = registry.create("v1-compat", host.api(), {});
    for (int i = 0; i < 3; ++i) ASSERT_EQ(old_inst->route(rq.raw, d.route(&host)), TG_OK);

    EXPECT_EQ(new_inst->adopt_state_from(*old_inst), "");
    ASSERT_EQ(new_inst->route(rq.raw, d.route(&host)), TG_OK);
    EXPECT_NE(host.notes().back().find("routed 4"), std::string::npos) << host.notes().back();

    EXPECT_NE(new_inst->adopt_state_from(*other).find("cannot hand state of strategy 'v1-compat'"),
              std::string::npos);
    EXPECT_NE(other->adopt_state_from(*other).find("has no tg_plugin_adopt_state"), std::string::npos);
}

// Every generation has its own Registry: the library an unchanged file maps to
// is still the same one, so the handover happens.
TEST_F(AbiGrowth, HandoverAcrossRegistriesOfTheSameFile) {
    sdk::testing::FakeHost host;
    plugin::Registry next_generation{{TAILGATE_TEST_PLUGIN_DIR}};
    auto old_inst = registry.create("test-reverse", host.api(), {});
    auto new_inst = next_generation.create("test-reverse", host.api(), {});
    EXPECT_EQ(new_inst->adopt_state_from(*old_inst), "");
}

TEST_F(AbiGrowth, RouterHandsEachInstanceItsPredecessorsState) {
    auto before = make("[{name: test-reverse, args: {echo: true}}, v1-compat]");
    for (int i = 0; i < 2; ++i) ASSERT_TRUE(std::holds_alternative<router::RoutedPlan>(before->route(req())));
    auto after = make("[v1-compat, {name: test-reverse, args: {echo: true}}]");
    // test-reverse takes over (2 requests routed); v1-compat has no hook and starts fresh.
    EXPECT_EQ(after->adopt_state_from(*before), 1u);
    auto res = after->route(req());
    ASSERT_TRUE(std::holds_alternative<router::RoutedPlan>(res));
    EXPECT_NE(std::get<router::RoutedPlan>(res).note.find("routed 3"), std::string::npos)
        << std::get<router::RoutedPlan>(res).note;
}
