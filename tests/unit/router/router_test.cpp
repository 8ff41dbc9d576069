// Router: plan assembly (retries, fallbacks, context-window fallbacks), refusals, chain errors.
#include "config/config.hpp"
#include "plugin/loader.hpp"
#include "router/router.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <sstream>

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

// kConfig with per-request chains on; simple-shuffle is request-only.
const std::string kOverrideConfig = std::string(kConfig) +
                                    "  allow_request_strategy_override: true\n"
                                    "  request_strategies: [test-reverse, simple-shuffle]\n";

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
    EXPECT_EQ(at[0].launch, Launch::AtStart);
    EXPECT_EQ(at[1].launch, Launch::OnFailure);
    EXPECT_EQ(at[1].delay.count(), 0) << "a different deployment needs no backoff";
    EXPECT_GE(at[2].delay.count(), 125) << "back to a deployment already tried: backoff with jitter";
    EXPECT_LE(at[2].delay.count(), 250);
    EXPECT_EQ(at[3].group, 1u);
    EXPECT_EQ(at[3].launch, Launch::OnFailure);
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

    auto r2 = make(kOverrideConfig);
    q.strategies = {"simple-shuffle"};
    EXPECT_TRUE(std::holds_alternative<router::RoutedPlan>(r2->route(q)));
    q.strategies = {"no-such-strategy"};
    auto bad = r2->route(q);
    ASSERT_TRUE(std::holds_alternative<ApiError>(bad));
    const auto& e = std::get<ApiError>(bad);
    EXPECT_EQ(e.status, 400);
    EXPECT_EQ(e.param, "strategies");
    EXPECT_EQ(e.code, "unknown_strategy");
    EXPECT_EQ(e.message,
              "strategies[0] is not an allowed strategy; allowed: test-reverse, simple-shuffle "
              "(router_settings.strategies and request_strategies)");
}

// Names from a request are matched against the configured ones and never
// reach the loader: a path, a relative path, or a .so that sits in a search
// directory without being configured is refused, and the library is never
// opened (ctor-marker's constructor would set an environment variable).
TEST_F(RouterFixture, RequestStrategyNamesNeverLoadAnything) {
    ASSERT_TRUE(registry.find("ctor-marker")) << "the fixture plugin must be in a search directory";
    unsetenv("TAILGATE_TEST_CTOR_MARKER");
    auto r = make(kOverrideConfig);
    const std::string marker = std::string(TAILGATE_TEST_PLUGIN_DIR) + "/ctor-marker.so";
    for (const std::string& name : {marker, std::string("../lib/tailgate/test-plugins/ctor-marker"),
                                    std::string("ctor-marker"), std::string("race"), std::string(".."),
                                    std::string("test-reverse/"), std::string("Test-Reverse")}) {
        auto q = req("a");
        q.strategies = {"test-reverse", name};
        auto res = r->route(q);
        ASSERT_TRUE(std::holds_alternative<ApiError>(res)) << name;
        const auto& e = std::get<ApiError>(res);
        EXPECT_EQ(e.status, 400) << name;
        EXPECT_EQ(e.code, "unknown_strategy") << name;
        EXPECT_EQ(e.message.rfind("strategies[1] is not an allowed strategy; allowed: ", 0), 0u) << e.message;
        EXPECT_EQ(e.message.find('/'), std::string::npos) << "no path in: " << e.message;
        EXPECT_EQ(e.message.find("test-plugins"), std::string::npos) << e.message;
    }
    EXPECT_EQ(std::getenv("TAILGATE_TEST_CTOR_MARKER"), nullptr) << "a request made the gateway dlopen a file";
    EXPECT_EQ(r->instances().size(), 2u) << "nothing is created per request";
}

TEST_F(RouterFixture, RequestStrategiesUseTheInstancesMadeAtStart) {
    auto r = make(R"(
model_list:
  - model_name: a
    litellm_params: {model: openai/a1, api_base: "http://127.0.0.1:1/v1"}
    model_info: {id: a1}
  - model_name: a
    litellm_params: {model: openai/a2, api_base: "http://127.0.0.1:2/v1"}
    model_info: {id: a2}
router_settings:
  allow_request_strategy_override: true
  strategies: [{name: test-reverse, args: {plan: race}}]
  request_strategies: [simple-shuffle, test-reverse]
)");
    // The chain's test-reverse plus a request-only simple-shuffle; the request
    // list's test-reverse is the chain's (no second instance).
    ASSERT_EQ(r->instances().size(), 2u);
    EXPECT_EQ(r->instances()[0]->name(), "test-reverse");
    EXPECT_EQ(r->instances()[1]->name(), "simple-shuffle");
    const std::vector<plugin::Instance*> at_start = r->instances();

    auto q = req("a");
    q.strategies = {"simple-shuffle", "test-reverse"};
    for (int i = 0; i < 20; ++i) {
        auto res = r->route(q);
        ASSERT_TRUE(std::holds_alternative<router::RoutedPlan>(res));
        // plan: race is the chain entry's arg: the request got that very instance.
        const auto& at = std::get<router::RoutedPlan>(res).plan.attempts;
        ASSERT_GE(at.size(), 2u);
        EXPECT_EQ(at[0].launch, Launch::AtStart);
        EXPECT_EQ(at[1].launch, Launch::AtStart);
    }
    q.strategies = {"simple-shuffle"};
    ASSERT_TRUE(std::holds_alternative<router::RoutedPlan>(r->route(q)));
    EXPECT_EQ(r->instances(), at_start);
}

TEST_F(RouterFixture, RequestStrategyListsAreCappedAndUnique) {
    auto r = make(kOverrideConfig);
    auto q = req("a");
    q.strategies.assign(config::kMaxRequestStrategies + 1, "test-reverse");
    auto res = r->route(q);
    ASSERT_TRUE(std::holds_alternative<ApiError>(res));
    EXPECT_EQ(std::get<ApiError>(res).code, "too_many_strategies");
    EXPECT_EQ(std::get<ApiError>(res).param, "strategies");

    q.strategies = {"test-reverse", "simple-shuffle", "test-reverse"};
    res = r->route(q);
    ASSERT_TRUE(std::holds_alternative<ApiError>(res));
    EXPECT_EQ(std::get<ApiError>(res).code, "duplicate_strategy");
    EXPECT_EQ(std::get<ApiError>(res).message, "strategies[2]: 'test-reverse' is listed twice");
}

// Each instance observes each attempt event once, whichever chain the request
// used (test-reverse logs "observe ..." at debug level for every event).
TEST_F(RouterFixture, EventsReachEachInstanceOnce) {
    auto lines = std::make_shared<std::ostringstream>();
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(*lines);
    auto previous = spdlog::default_logger();
    auto capture = std::make_shared<spdlog::logger>("capture", sink);
    capture->set_level(spdlog::level::debug);
    capture->set_pattern("%v");
    spdlog::set_default_logger(capture);

    auto r = make(kOverrideConfig);
    for (const std::vector<std::string>& chain : {std::vector<std::string>{},
                                                  {"test-reverse"},
                                                  {"simple-shuffle", "test-reverse"},
                                                  {"simple-shuffle"}}) {
        auto q = req("a");
        q.strategies = chain;
        ASSERT_TRUE(std::holds_alternative<router::RoutedPlan>(r->route(q)));
        r->observer_for(q)->on_attempt(dispatch::AttemptEvent{EventType::Started, 0, 0});
    }
    spdlog::set_default_logger(previous);
    const std::string text = lines->str();
    size_t observed = 0;
    for (size_t p = text.find("observe "); p != std::string::npos; p = text.find("observe ", p + 1)) ++observed;
    EXPECT_EQ(observed, 4u) << text;
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

// ---- limits (usage plugin) and route_retry_after -------------------------------

namespace {

// Two deployments of `g` at rpm 1 each, chained [health, usage], on a settable clock.
struct LimitFixture : RouterFixture {
    int64_t now = 1'000'000;
    std::unique_ptr<router::Router> make_limited(const std::string& extra_router_settings = "") {
        const std::string yaml = R"(
model_list:
  - model_name: g
    litellm_params: {model: openai/x1, api_base: "http://127.0.0.1:1/v1", rpm: 1}
    model_info: {id: x1}
  - model_name: g
    litellm_params: {model: openai/x2, api_base: "http://127.0.0.1:2/v1", rpm: 1}
    model_info: {id: x2}
router_settings:
  routing_strategy: usage-based-routing-v2
  allowed_fails: 0
)" + extra_router_settings;
        auto cfg = std::make_shared<const config::Config>(config::load_string(yaml, "router_test.yaml"));
        return std::make_unique<router::Router>(cfg, registry, [this] { return now; });
    }
    // One attempt on deployment `dep`: started, then `end` (SUCCESS or FAILURE).
    static void attempt(router::Router& r, uint32_t dep, EventType end = EventType::Success) {
        auto obs = r.observer_for(req("g"));
        obs->on_attempt(dispatch::AttemptEvent{EventType::Started, 0, dep});
        dispatch::AttemptEvent done{end, 0, dep};
        if (end == EventType::Failure) {
            done.error_class = ErrorClass::Server;
            done.http_status = 500;
        }
        obs->on_attempt(done);
    }
};

}  // namespace

TEST_F(LimitFixture, AllAtLimitIs429WithThePluginsRetryHint) {
    auto r = make_limited();
    ASSERT_EQ(r->chain_names(), (std::vector<std::string>{"health", "usage"}));
    attempt(*r, 0);  // both used their one request of the window, at t = 1000 s
    attempt(*r, 1);
    now += 15'500;
    auto res = r->route(req("g"));
    ASSERT_TRUE(std::holds_alternative<ApiError>(res));
    const auto& e = std::get<ApiError>(res);
    EXPECT_EQ(e.status, 429);
    EXPECT_EQ(e.type, "rate_limit_error");
    EXPECT_EQ(e.code, "all_deployments_at_limit");
    // Their requests leave the 61 one-second buckets at 1061 s: 45.5 s from now,
    // rounded up (the gateway caps it at max_client_retry_after when sending).
    EXPECT_EQ(e.retry_after_s, 46);
    EXPECT_NE(e.message.find("strategy 'usage' refused all deployments"), std::string::npos) << e.message;
    EXPECT_NE(e.message.find("x1 (rpm 1/1), x2 (rpm 1/1)"), std::string::npos) << e.message;
    EXPECT_NE(e.message.find("retry in 45500 ms"), std::string::npos) << e.message;
}

TEST_F(LimitFixture, PanicRoutingNeverPicksDeploymentsAtTheirLimit) {
    auto r = make_limited("  panic_routing: true\n");
    attempt(*r, 0);
    attempt(*r, 1);
    // Nothing is cooling: at-limit deployments are healthy, so no panic attempt.
    auto res = r->route(req("g"));
    ASSERT_TRUE(std::holds_alternative<ApiError>(res));
    EXPECT_EQ(std::get<ApiError>(res).status, 429);
    EXPECT_EQ(std::get<ApiError>(res).code, "all_deployments_at_limit");
}

TEST_F(LimitFixture, SoonerCooldownWinsOverTheLimitHint) {
    auto r = make_limited("  panic_routing: false\n  cooldown_time: 5\n");
    attempt(*r, 0, EventType::Failure);  // x1 cools for 5 s (and used its request)
    attempt(*r, 1);                    // x2 at its limit for ~61 s
    now += 1'000;
    auto res = r->route(req("g"));
    ASSERT_TRUE(std::holds_alternative<ApiError>(res));
    const auto& e = std::get<ApiError>(res);
    EXPECT_EQ(e.status, 429);
    EXPECT_EQ(e.code, "all_deployments_cooling_down");
    EXPECT_EQ(e.retry_after_s, 4);  // x1's cooldown ends in 4 s; x2's slot frees in 60 s
}

TEST_F(LimitFixture, SoonerLimitHintWinsOverTheCooldown) {
    auto r = make_limited("  panic_routing: false\n  cooldown_time: 300\n");
    attempt(*r, 0, EventType::Failure);  // x1 cools for 300 s
    attempt(*r, 1);                    // x2 frees a slot at 1061 s
    now += 1'000;
    auto res = r->route(req("g"));
    ASSERT_TRUE(std::holds_alternative<ApiError>(res));
    const auto& e = std::get<ApiError>(res);
    EXPECT_EQ(e.code, "all_deployments_at_limit");
    EXPECT_EQ(e.retry_after_s, 60);
}

TEST_F(LimitFixture, PanicRoutingStillTriesTheCoolingOneBesideALimitedOne) {
    auto r = make_limited("  cooldown_time: 5\n");  // panic_routing defaults to true
    attempt(*r, 0, EventType::Failure);  // x1 cooling
    attempt(*r, 1);                    // x2 at its limit
    auto res = r->route(req("g"));
    ASSERT_TRUE(std::holds_alternative<router::RoutedPlan>(res));
    const auto& rp = std::get<router::RoutedPlan>(res);
    EXPECT_TRUE(rp.panic);
    EXPECT_EQ(ids(*r, rp.plan), (std::vector<std::string>{"x1"}));
}

TEST_F(LimitFixture, AWindowLaterTheyServeAgain) {
    auto r = make_limited();
    attempt(*r, 0);
    attempt(*r, 1);
    ASSERT_TRUE(std::holds_alternative<ApiError>(r->route(req("g"))));
    now += 61'000;
    auto res = r->route(req("g"));
    ASSERT_TRUE(std::holds_alternative<router::RoutedPlan>(res));
}

// router_settings.model_group_alias: exact group > alias > wildcard; an alias is
// served by its group, with that group's fallbacks and upstream model.
TEST_F(RouterFixture, ModelGroupAliasResolvesAfterExactBeforeWildcard) {
    auto r = make(R"(
model_list:
  - model_name: a
    litellm_params: {model: openai/a1, api_base: "http://127.0.0.1:1/v1"}
    model_info: {id: a1}
  - model_name: b
    litellm_params: {model: openai/b1, api_base: "http://127.0.0.1:3/v1"}
    model_info: {id: b1}
  - model_name: "*"
    litellm_params: {model: "openai/*", api_base: "http://127.0.0.1:5/v1"}
    model_info: {id: star}
router_settings:
  fallbacks: [{a: [b]}]
  model_group_alias: {gpt-4: a, hidden-b: {model: b, hidden: true}}
  strategies: [{name: test-reverse}]
)");
    std::string capture;
    const std::string* g = r->resolve_group("gpt-4", &capture);
    ASSERT_NE(g, nullptr);
    EXPECT_EQ(*g, "a");  // not the "*" group, which also matches the name
    EXPECT_EQ(capture, "a");
    ASSERT_NE(r->resolve_group("hidden-b"), nullptr);
    EXPECT_EQ(*r->resolve_group("hidden-b"), "b");
    EXPECT_EQ(*r->resolve_group("a"), "a");
    EXPECT_EQ(*r->resolve_group("gpt-5"), "*");

    auto res = r->route(req("gpt-4"));
    ASSERT_TRUE(std::holds_alternative<router::RoutedPlan>(res));
    const auto& rp = std::get<router::RoutedPlan>(res);
    EXPECT_EQ(ids(*r, rp.plan), (std::vector<std::string>{"a1", "b1"}));  // a's fallbacks apply
}
