// health strategy, loaded as the real .so through the loader, on FakeHost's clock.
#include "../strategy_test_support.hpp"

#include <tailgate/testing.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <barrier>
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

class HealthTest : public testing::StrategyTest {
protected:
    HealthTest() : StrategyTest("health") {}
    void SetUp() override {
        for (const char* id : {"a", "b", "c"}) d.add(id);
        host.set_now(1'000'000);
    }

    // Routes every deployment for request `id`; returns the surviving order
    // ({"<refused>"} when the plugin refused everything).
    Ids route(Instance& inst, const std::string& id = "r") {
        Request req("test-group", false, "{}", "{}", id);
        int rc = inst.route(req.raw, d.route(&host));
        if (rc == TG_ERR_NO_CANDIDATE) return {"<refused>"};
        EXPECT_EQ(rc, TG_OK);
        return d.order();
    }

    void event(Instance& inst, uint32_t dep, tg_event_type type, const std::string& req = "r", uint32_t attempt = 0,
               uint32_t cls = TG_ERRC_NONE, int32_t status = 0, int64_t retry_after = -1) {
        tg_event e{};
        e.struct_size = sizeof e;
        e.type = type;
        e.deployment = &d.deployment(dep);
        e.request_id = req.c_str();
        e.model_group = "test-group";
        e.attempt = attempt;
        e.at_ms = now();
        e.ttft_ms = -1;
        e.error_class = cls;
        e.http_status = status;
        e.retry_after_ms = retry_after;
        e.elapsed_ms = elapsed_;
        e.prompt_tokens = -1;
        e.completion_tokens = -1;
        inst.observe(e);
    }
    void fail(Instance& inst, uint32_t dep, uint32_t cls = TG_ERRC_SERVER, int32_t status = 500,
              int64_t retry_after = -1, const std::string& req = "r", uint32_t attempt = 0) {
        event(inst, dep, TG_EVENT_STARTED, req, attempt);
        event(inst, dep, TG_EVENT_FAILURE, req, attempt, cls, status, retry_after);
    }
    void succeed(Instance& inst, uint32_t dep, const std::string& req = "r", uint32_t attempt = 0) {
        event(inst, dep, TG_EVENT_STARTED, req, attempt);
        event(inst, dep, TG_EVENT_SUCCESS, req, attempt);
    }

    int64_t now() {
        return clock_;
    }
    void advance(int64_t ms) {
        clock_ += ms;
        host.set_now(clock_);
    }
    std::pair<uint32_t, int64_t> published(uint32_t dep) const { return host.health(dep); }
    bool logged(const std::string& needle, uint32_t level) const {
        for (auto& [lvl, msg] : host.logs())
            if (lvl == level && msg.find(needle) != std::string::npos) return true;
        return false;
    }

    // Cools `dep` down with one 401 and returns the published cooldown end.
    int64_t cool_with_auth(Instance& inst, uint32_t dep) {
        fail(inst, dep, TG_ERRC_AUTH, 401);
        EXPECT_EQ(published(dep).first, static_cast<uint32_t>(TG_HEALTH_COOLING));
        return published(dep).second;
    }

    int64_t clock_ = 1'000'000;
    double elapsed_ = 0;  // the events' elapsed_ms: how long ago their attempt started
};

const uint32_t kHealthy = TG_HEALTH_HEALTHY, kCooling = TG_HEALTH_COOLING, kHalfOpen = TG_HEALTH_HALF_OPEN;

TEST_F(HealthTest, CoolsDownWhenFailuresExceedAllowedFails) {
    // LiteLLM: allowed_fails 3 tolerates 3 failures; the 4th cools down.
    auto inst = make({{"router.allowed_fails", "3"}, {"router.cooldown_time", "5000ms"}});
    for (int i = 0; i < 3; ++i) {
        fail(*inst, 1);
        EXPECT_EQ(route(*inst), (Ids{"a", "b", "c"})) << "after failure " << i + 1;
    }
    EXPECT_TRUE(host.logs().empty());
    fail(*inst, 1);
    EXPECT_EQ(route(*inst), (Ids{"a", "c"}));
    EXPECT_EQ(published(1), std::make_pair(kCooling, now() + 5000));
    EXPECT_TRUE(logged("deployment 'b' healthy -> cooling for 5000ms: server (HTTP 500): 4 failures within 60000ms > "
                       "allowed_fails 3",
                       TG_LOG_WARN));
    EXPECT_EQ(published(0), std::make_pair(kHealthy, int64_t{0}));
}

TEST_F(HealthTest, DefaultsAreLiteLLMs) {
    auto inst = make();  // allowed_fails 3, cooldown_time 5 s
    for (int i = 0; i < 3; ++i) fail(*inst, 0);
    EXPECT_EQ(route(*inst), (Ids{"a", "b", "c"}));
    fail(*inst, 0);
    EXPECT_EQ(published(0), std::make_pair(kCooling, now() + 5000));
}

TEST_F(HealthTest, AllowedFailsZeroCoolsOnFirstFailure) {
    auto inst = make({{"router.allowed_fails", "0"}});
    fail(*inst, 2, TG_ERRC_TIMEOUT, 0);
    EXPECT_EQ(route(*inst), (Ids{"a", "b"}));
}

TEST_F(HealthTest, FailuresOlderThanTheWindowDoNotCount) {
    auto inst = make({{"router.allowed_fails", "2"}, {"fail_window", "10s"}});
    fail(*inst, 0);
    advance(6000);
    fail(*inst, 0);
    advance(4000);  // the first failure is now 10 s old: out of the window
    fail(*inst, 0);
    EXPECT_EQ(published(0).first, kHealthy);
    advance(1000);
    fail(*inst, 0);  // 3 within the last 10 s (t=6, 10, 11)
    EXPECT_EQ(published(0).first, kCooling);
}

TEST_F(HealthTest, SuccessResetsTheCount) {
    auto inst = make({{"router.allowed_fails", "2"}});
    fail(*inst, 0);
    fail(*inst, 0);
    succeed(*inst, 0);
    fail(*inst, 0);
    fail(*inst, 0);
    EXPECT_EQ(published(0).first, kHealthy);
    fail(*inst, 0);
    EXPECT_EQ(published(0).first, kCooling);
}

TEST_F(HealthTest, AuthAndNotFoundCoolDownAtOnce) {
    auto inst = make({{"router.allowed_fails", "100"}});
    fail(*inst, 0, TG_ERRC_AUTH, 401);
    fail(*inst, 1, TG_ERRC_AUTH, 403);
    fail(*inst, 2, TG_ERRC_NOT_FOUND, 404);
    EXPECT_EQ(route(*inst), (Ids{"<refused>"}));
    for (uint32_t i = 0; i < 3; ++i) EXPECT_EQ(published(i), std::make_pair(kCooling, now() + 5000));
    EXPECT_TRUE(logged("deployment 'a' healthy -> cooling for 5000ms: auth (HTTP 401): 1 failure within 60000ms > "
                       "AuthenticationErrorAllowedFails 0",
                       TG_LOG_WARN));
}

TEST_F(HealthTest, StatusDecidesWhenTheClassIsUnknown) {
    auto inst = make({{"router.allowed_fails", "100"}});
    fail(*inst, 0, TG_ERRC_NONE, 401);
    fail(*inst, 1, TG_ERRC_NONE, 404);
    for (int i = 0; i < 5; ++i) fail(*inst, 2, TG_ERRC_NONE, 422);
    EXPECT_EQ(route(*inst), (Ids{"c"}));
}

TEST_F(HealthTest, ClientErrorsNeverCount) {
    auto inst = make({{"router.allowed_fails", "0"}, {"allowed_fails_policy.BadRequestErrorAllowedFails", "0"}});
    for (int i = 0; i < 50; ++i) {
        fail(*inst, 0, TG_ERRC_BAD_REQUEST, 400);
        fail(*inst, 1, TG_ERRC_CONTEXT_WINDOW, 400);
    }
    EXPECT_EQ(route(*inst), (Ids{"a", "b", "c"}));
    EXPECT_EQ(published(0).first, kHealthy);
    EXPECT_EQ(published(1).first, kHealthy);
    EXPECT_TRUE(logged("BadRequestErrorAllowedFails has no effect", TG_LOG_INFO));
}

TEST_F(HealthTest, CancellationsNeverCount) {
    auto inst = make({{"router.allowed_fails", "0"}});
    for (int i = 0; i < 50; ++i) {
        event(*inst, 0, TG_EVENT_STARTED);
        event(*inst, 0, TG_EVENT_CANCELLED);
    }
    EXPECT_EQ(route(*inst), (Ids{"a", "b", "c"}));
    EXPECT_TRUE(host.logs().empty());
}

TEST_F(HealthTest, RetryAfterSetsTheMinimumCooldown) {
    auto inst = make({{"router.allowed_fails", "0"}, {"router.cooldown_time", "5s"}});
    fail(*inst, 0, TG_ERRC_RATE_LIMIT, 429, 30000);  // longer than cooldown_time: honoured
    EXPECT_EQ(published(0), std::make_pair(kCooling, now() + 30000));
    EXPECT_TRUE(logged("upstream Retry-After 30000ms", TG_LOG_WARN));
    fail(*inst, 1, TG_ERRC_RATE_LIMIT, 429, 1000);  // shorter: cooldown_time still applies
    EXPECT_EQ(published(1), std::make_pair(kCooling, now() + 5000));
    fail(*inst, 2, TG_ERRC_SERVER, 503, 12000);  // 503 + Retry-After
    EXPECT_EQ(published(2), std::make_pair(kCooling, now() + 12000));

    auto other = make({{"router.allowed_fails", "0"}});
    fail(*other, 0, TG_ERRC_SERVER, 500, 12000);  // not a 429/503: Retry-After ignored
    EXPECT_EQ(published(0), std::make_pair(kCooling, now() + 5000));
}

TEST_F(HealthTest, RetryAfterBelowTheThresholdDoesNotCoolDown) {
    auto inst = make({{"router.allowed_fails", "1"}});
    fail(*inst, 0, TG_ERRC_RATE_LIMIT, 429, 60000);
    EXPECT_EQ(published(0).first, kHealthy);
    fail(*inst, 0, TG_ERRC_RATE_LIMIT, 429, 60000);
    EXPECT_EQ(published(0), std::make_pair(kCooling, now() + 60000));
}

TEST_F(HealthTest, CooldownEndsHalfOpenAndSuccessRestores) {
    auto inst = make({{"router.cooldown_time", "5s"}});
    const int64_t until = cool_with_auth(*inst, 1);
    advance(4999);
    EXPECT_EQ(route(*inst), (Ids{"a", "c"}));
    EXPECT_EQ(published(1), std::make_pair(kCooling, until));
    advance(1);
    EXPECT_EQ(route(*inst, "probe"), (Ids{"a", "b", "c"}));
    EXPECT_EQ(published(1), std::make_pair(kHalfOpen, int64_t{0}));
    EXPECT_TRUE(logged("deployment 'b' cooling -> half-open: cooldown over", TG_LOG_INFO));
    EXPECT_EQ(host.notes().back(), "health: probing b");
    succeed(*inst, 1, "probe");
    EXPECT_EQ(published(1), std::make_pair(kHealthy, int64_t{0}));
    EXPECT_TRUE(logged("deployment 'b' half-open -> healthy: probe succeeded", TG_LOG_INFO));
    for (int i = 0; i < 3; ++i) EXPECT_EQ(route(*inst, "after-" + std::to_string(i)), (Ids{"a", "b", "c"}));
}

TEST_F(HealthTest, HalfOpenAllowsOneProbeAtATime) {
    auto inst = make();
    cool_with_auth(*inst, 0);
    advance(5000);
    EXPECT_EQ(route(*inst, "p1"), (Ids{"a", "b", "c"}));  // p1 reserves the probe
    EXPECT_EQ(route(*inst, "p2"), (Ids{"b", "c"}));
    EXPECT_EQ(host.notes().back(), "health: skipped a (probe in flight)");
    event(*inst, 0, TG_EVENT_STARTED, "p1");
    advance(60000);  // a running probe holds however long it takes (the reservation timeout no longer applies)
    EXPECT_EQ(route(*inst, "p3"), (Ids{"b", "c"}));
    EXPECT_EQ(published(0).first, kHalfOpen);
    event(*inst, 0, TG_EVENT_SUCCESS, "p1");
    EXPECT_EQ(route(*inst, "p4"), (Ids{"a", "b", "c"}));
    EXPECT_EQ(route(*inst, "p5"), (Ids{"a", "b", "c"}));
}

TEST_F(HealthTest, ConcurrentRoutesReserveTheProbeOnce) {
    auto inst = make();
    for (int round = 0; round < 20; ++round) {
        cool_with_auth(*inst, 1);
        advance(5000 * (1 << std::min(round, 3)) + 10'000'000);  // well past any backoff
        constexpr int kThreads = 8;
        std::atomic<int> with_b{0}, bad{0};
        std::barrier sync(kThreads);
        std::vector<std::thread> threads;
        for (int t = 0; t < kThreads; ++t)
            threads.emplace_back([&, t] {
                Deployments mine;  // same indices as d: the plugin keys its state by index
                for (const char* id : {"a", "b", "c"}) mine.add(id);
                Request req("test-group", false, "{}", "{}", "req-" + std::to_string(round) + "-" + std::to_string(t));
                sync.arrive_and_wait();
                if (inst->route(req.raw, mine.route()) != TG_OK) ++bad;
                auto o = mine.order();
                if (std::find(o.begin(), o.end(), "b") != o.end()) ++with_b;
            });
        for (auto& th : threads) th.join();
        ASSERT_EQ(bad.load(), 0);
        ASSERT_EQ(with_b.load(), 1) << "round " << round;
        succeed(*inst, 1, "anyone");  // restore for the next round
        ASSERT_EQ(published(1).first, kHealthy);
    }
}

TEST_F(HealthTest, UnstartedReservationExpires) {
    auto inst = make({{"probe_reserve_time", "500ms"}});
    cool_with_auth(*inst, 0);
    advance(5000);
    EXPECT_EQ(route(*inst, "p1"), (Ids{"a", "b", "c"}));
    advance(499);
    EXPECT_EQ(route(*inst, "p2"), (Ids{"b", "c"}));
    advance(1);
    EXPECT_EQ(route(*inst, "p3"), (Ids{"a", "b", "c"}));  // p1 never launched it: p3 reserves
    EXPECT_EQ(route(*inst, "p4"), (Ids{"b", "c"}));
}

TEST_F(HealthTest, ReservationFollowsTheRequestsOutcomeElsewhere) {
    auto inst = make({{"probe_reserve_time", "1s"}});
    cool_with_auth(*inst, 1);
    advance(5000);
    EXPECT_EQ(route(*inst, "p1"), (Ids{"a", "b", "c"}));  // b reserved by p1, behind a
    // p1's attempt on a fails: p1 may retry on b next, so b stays reserved, with a fresh window.
    advance(900);
    fail(*inst, 0, TG_ERRC_TIMEOUT, 0, -1, "p1");
    advance(900);
    EXPECT_EQ(route(*inst, "p2"), (Ids{"a", "c"}));
    // p1 succeeds on c: it will not launch b any more, the reservation goes.
    succeed(*inst, 2, "p1");
    EXPECT_EQ(route(*inst, "p3"), (Ids{"a", "b", "c"}));
    // p3's attempt on a is cancelled (client left): released as well.
    event(*inst, 0, TG_EVENT_STARTED, "p3");
    event(*inst, 0, TG_EVENT_CANCELLED, "p3");
    EXPECT_EQ(route(*inst, "p4"), (Ids{"a", "b", "c"}));
    // The same request routed again (a fallback to the same group) keeps its probe.
    EXPECT_EQ(route(*inst, "p4"), (Ids{"a", "b", "c"}));
    EXPECT_EQ(route(*inst, "p5"), (Ids{"a", "c"}));
}

TEST_F(HealthTest, ProbeFailureBacksOffTwiceAsLongCapped) {
    auto inst = make({{"router.cooldown_time", "1s"}, {"max_cooldown_time", "5s"}});
    cool_with_auth(*inst, 0);
    EXPECT_EQ(published(0).second, now() + 1000);
    const int64_t expected[] = {2000, 4000, 5000, 5000};
    int n = 0;
    for (int64_t len : expected) {
        advance(published(0).second - now());
        const std::string probe = "probe-" + std::to_string(n++);
        EXPECT_EQ(route(*inst, probe), (Ids{"a", "b", "c"}));
        fail(*inst, 0, TG_ERRC_SERVER, 502, -1, probe);
        EXPECT_EQ(published(0), std::make_pair(kCooling, now() + len));
    }
    EXPECT_TRUE(logged("deployment 'a' half-open -> cooling for 5000ms: probe failed: server (HTTP 502) (backoff x2, "
                       "max 5000ms)",
                       TG_LOG_WARN));
    // Recovery resets the backoff: the next cooldown is cooldown_time again.
    advance(5000);
    EXPECT_EQ(route(*inst, "ok"), (Ids{"a", "b", "c"}));
    succeed(*inst, 0, "ok");
    EXPECT_EQ(published(0).first, kHealthy);
    cool_with_auth(*inst, 0);
    EXPECT_EQ(published(0).second, now() + 1000);
    advance(1000);
    route(*inst, "again");
    fail(*inst, 0, TG_ERRC_SERVER, 500, -1, "again");
    EXPECT_EQ(published(0).second, now() + 2000);
}

TEST_F(HealthTest, DefaultMaxCooldownIsTenTimesCooldownTime) {
    auto inst = make({{"cooldown_time", "1s"}});
    cool_with_auth(*inst, 0);
    int64_t len = 0;
    for (int i = 0; i < 8; ++i) {
        advance(published(0).second - now());
        route(*inst, "p" + std::to_string(i));
        fail(*inst, 0, TG_ERRC_CONNECT, 0, -1, "p" + std::to_string(i));
        len = published(0).second - now();
    }
    EXPECT_EQ(len, 10000);
}

TEST_F(HealthTest, ProbeRetryAfterExtendsTheBackoff) {
    auto inst = make({{"router.cooldown_time", "1s"}});
    cool_with_auth(*inst, 0);
    advance(1000);
    route(*inst, "p");
    fail(*inst, 0, TG_ERRC_RATE_LIMIT, 429, 45000, "p");
    EXPECT_EQ(published(0), std::make_pair(kCooling, now() + 45000));
}

TEST_F(HealthTest, InconclusiveProbeOutcomesReleaseIt) {
    auto inst = make();
    cool_with_auth(*inst, 0);
    advance(5000);
    EXPECT_EQ(route(*inst, "p1"), (Ids{"a", "b", "c"}));
    fail(*inst, 0, TG_ERRC_BAD_REQUEST, 400, -1, "p1");  // the client's fault
    EXPECT_EQ(published(0).first, kHalfOpen);
    EXPECT_EQ(route(*inst, "p2"), (Ids{"a", "b", "c"}));
    event(*inst, 0, TG_EVENT_STARTED, "p2");
    event(*inst, 0, TG_EVENT_CANCELLED, "p2");  // lost a race
    EXPECT_EQ(published(0).first, kHalfOpen);
    EXPECT_EQ(route(*inst, "p3"), (Ids{"a", "b", "c"}));
}

TEST_F(HealthTest, FirstByteOfAStreamingProbeRestores) {
    auto inst = make();
    cool_with_auth(*inst, 2);
    advance(5000);
    route(*inst, "s");
    event(*inst, 2, TG_EVENT_STARTED, "s");
    event(*inst, 2, TG_EVENT_FIRST_BYTE, "s");
    EXPECT_EQ(published(2).first, kHealthy);
    EXPECT_TRUE(logged("half-open -> healthy: probe streams content", TG_LOG_INFO));
}

TEST_F(HealthTest, LateOutcomesWhileCoolingChangeNothing) {
    auto inst = make({{"router.allowed_fails", "0"}});
    fail(*inst, 0, TG_ERRC_SERVER, 500, -1, "x");
    const auto cooled = published(0);
    advance(100);
    elapsed_ = 150;  // attempts launched before the cooldown
    fail(*inst, 0, TG_ERRC_SERVER, 503, 999999, "y");
    succeed(*inst, 0, "z");
    EXPECT_EQ(published(0), cooled);
    EXPECT_EQ(route(*inst), (Ids{"b", "c"}));
}

TEST_F(HealthTest, AttemptsSentWhileCoolingNeverExtendItAndRecoverOnSuccess) {
    // Panic routing: every deployment cooling, the host sends the request to the one
    // that recovers first. Its failures change nothing; its success ends the cooldown.
    auto inst = make({{"router.allowed_fails", "0"}, {"router.cooldown_time", "20s"}});
    fail(*inst, 0, TG_ERRC_SERVER, 500, -1, "x");
    const auto cooled = published(0);
    for (int i = 0; i < 5; ++i) {
        advance(1000);
        fail(*inst, 0, TG_ERRC_SERVER, 500, 60000, "panic-" + std::to_string(i));
        EXPECT_EQ(published(0), cooled) << "a refusal-time attempt escalated the cooldown";
    }
    advance(1000);
    succeed(*inst, 0, "recovered");
    EXPECT_EQ(published(0), std::make_pair(kHealthy, int64_t{0}));
    EXPECT_TRUE(logged("deployment 'a' cooling -> healthy: answered while cooling (panic routing)", TG_LOG_INFO));
    EXPECT_EQ(route(*inst), (Ids{"a", "b", "c"}));
}

TEST_F(HealthTest, OnlyTheProbeBacksOffWhileHalfOpen) {
    // An attempt planned before the cooldown, or sent beside the probe, lands while
    // half-open: only the probe's own outcome decides.
    auto inst = make();
    cool_with_auth(*inst, 1);
    advance(5000);
    EXPECT_EQ(route(*inst, "probe"), (Ids{"a", "b", "c"}));
    elapsed_ = 6000;  // started before the cooldown: only its outcome lands now
    event(*inst, 1, TG_EVENT_FAILURE, "old-request", 2, TG_ERRC_TIMEOUT, 0);
    EXPECT_EQ(published(1).first, kHalfOpen);
    elapsed_ = 0;
    fail(*inst, 1, TG_ERRC_SERVER, 500, -1, "probe");
    EXPECT_EQ(published(1), std::make_pair(kCooling, now() + 10000));
}

TEST_F(HealthTest, DisableCooldownsPassesEverything) {
    auto inst = make({{"router.disable_cooldowns", "true"}, {"router.allowed_fails", "0"}});
    for (int i = 0; i < 10; ++i) fail(*inst, 0, TG_ERRC_AUTH, 401);
    Request req;
    tg_route& r = d.route(&host);
    r.attempts[0] = tg_attempt{1, TG_LAUNCH_AT_START, 0, 0};
    r.attempt_count = 1;
    EXPECT_EQ(inst->route(req.raw, r), TG_OK);
    EXPECT_EQ(d.order(), (Ids{"a", "b", "c"}));
    EXPECT_EQ(r.attempt_count, 1u);
    EXPECT_EQ(published(0), std::make_pair(kHealthy, int64_t{0}));  // nothing published
    EXPECT_TRUE(host.logs().empty());
    EXPECT_TRUE(host.notes().empty());

    // A plugin-level disable_cooldowns: false overrides the router's true.
    auto enabled = make({{"router.disable_cooldowns", "true"}, {"disable_cooldowns", "false"}});
    fail(*enabled, 0, TG_ERRC_AUTH, 401);
    EXPECT_EQ(route(*enabled), (Ids{"b", "c"}));
}

TEST_F(HealthTest, PerClassPolicy) {
    auto inst = make({{"router.allowed_fails", "3"},
                      {"router.allowed_fails_policy.TimeoutErrorAllowedFails", "5"},
                      {"router.allowed_fails_policy.RateLimitErrorAllowedFails", "0"},
                      {"router.allowed_fails_policy.AuthenticationErrorAllowedFails", "2"}});
    // More tolerance for timeouts than for 429.
    fail(*inst, 0, TG_ERRC_RATE_LIMIT, 429);
    EXPECT_EQ(published(0).first, kCooling);
    EXPECT_TRUE(logged("RateLimitErrorAllowedFails 0", TG_LOG_WARN));
    for (int i = 0; i < 5; ++i) fail(*inst, 1, TG_ERRC_TIMEOUT, 0);
    EXPECT_EQ(published(1).first, kHealthy);
    // A class with its own policy has its own counter: 3 other failures still pass.
    for (int i = 0; i < 3; ++i) fail(*inst, 1, TG_ERRC_SERVER, 500);
    fail(*inst, 1, TG_ERRC_CONNECT, 0);  // 4th failure counted under allowed_fails: cools
    EXPECT_EQ(published(1).first, kCooling);
    EXPECT_TRUE(logged("deployment 'b' healthy -> cooling for 5000ms: connect: 4 failures within 60000ms > "
                       "allowed_fails 3",
                       TG_LOG_WARN));
    // Timeouts alone: the 6th cools.
    for (int i = 0; i < 5; ++i) fail(*inst, 2, TG_ERRC_TIMEOUT, 0);
    EXPECT_EQ(published(2).first, kHealthy);
    fail(*inst, 2, TG_ERRC_TIMEOUT, 0);
    EXPECT_EQ(published(2).first, kCooling);
    // 401 tolerated twice by policy.
    auto other = make({{"router.allowed_fails_policy.AuthenticationErrorAllowedFails", "2"}});
    fail(*other, 0, TG_ERRC_AUTH, 401);
    fail(*other, 0, TG_ERRC_AUTH, 401);
    EXPECT_EQ(route(*other), (Ids{"a", "b", "c"}));
    fail(*other, 0, TG_ERRC_AUTH, 401);
    EXPECT_EQ(route(*other), (Ids{"b", "c"}));
}

TEST_F(HealthTest, WithoutPolicyAllClassesShareOneCounter) {
    auto inst = make({{"router.allowed_fails", "3"}});
    fail(*inst, 0, TG_ERRC_TIMEOUT, 0);
    fail(*inst, 0, TG_ERRC_RATE_LIMIT, 429);
    fail(*inst, 0, TG_ERRC_PROTOCOL, 200);
    EXPECT_EQ(published(0).first, kHealthy);
    fail(*inst, 0, TG_ERRC_SERVER, 502);
    EXPECT_EQ(published(0).first, kCooling);
}

TEST_F(HealthTest, PluginArgsOverrideRouterArgs) {
    auto inst = make({{"router.allowed_fails", "3"},
                      {"allowed_fails", "1"},
                      {"router.cooldown_time", "5000ms"},
                      {"cooldown_time", "2s"},
                      {"router.allowed_fails_policy.RateLimitErrorAllowedFails", "0"},
                      {"allowed_fails_policy.RateLimitErrorAllowedFails", "2"},
                      {"router.num_retries", "2"},
                      {"router.timeout", "600000ms"}});
    fail(*inst, 0);
    EXPECT_EQ(published(0).first, kHealthy);
    fail(*inst, 0);
    EXPECT_EQ(published(0), std::make_pair(kCooling, now() + 2000));
    fail(*inst, 1, TG_ERRC_RATE_LIMIT, 429);
    fail(*inst, 1, TG_ERRC_RATE_LIMIT, 429);
    EXPECT_EQ(published(1).first, kHealthy);
    fail(*inst, 1, TG_ERRC_RATE_LIMIT, 429);
    EXPECT_EQ(published(1).first, kCooling);
}

TEST_F(HealthTest, AllCoolingIsRefusedWithPublishedCooldowns) {
    auto inst = make({{"router.allowed_fails", "0"}});
    fail(*inst, 0, TG_ERRC_SERVER, 500);
    advance(1000);
    fail(*inst, 1, TG_ERRC_RATE_LIMIT, 429, 20000);
    advance(1000);
    fail(*inst, 2, TG_ERRC_TIMEOUT, 0);
    EXPECT_EQ(route(*inst), (Ids{"<refused>"}));
    EXPECT_EQ(host.notes().back(), "health: skipped a (cooling 3000ms), b (cooling 19000ms), c (cooling 5000ms)");
    // What the host computes Retry-After from: the shortest remaining cooldown.
    int64_t soonest = INT64_MAX;
    for (uint32_t i = 0; i < 3; ++i) {
        ASSERT_EQ(published(i).first, kCooling);
        soonest = std::min(soonest, published(i).second - now());
    }
    EXPECT_EQ(soonest, 3000);
    advance(3000);
    EXPECT_EQ(route(*inst), (Ids{"a"}));
}

TEST_F(HealthTest, PublishedStatesFollowEveryTransition) {
    auto inst = make({{"router.cooldown_time", "1s"}});
    std::vector<std::pair<uint32_t, int64_t>> seen{published(0)};
    auto snap = [&] {
        if (published(0) != seen.back()) seen.push_back(published(0));
    };
    fail(*inst, 0, TG_ERRC_AUTH, 401);  // t0
    snap();
    const int64_t t0 = now();
    advance(1000);
    route(*inst, "p1");
    snap();
    fail(*inst, 0, TG_ERRC_SERVER, 500, -1, "p1");
    snap();
    advance(2000);
    event(*inst, 0, TG_EVENT_STARTED, "p2");  // observe also advances lazily
    snap();
    event(*inst, 0, TG_EVENT_SUCCESS, "p2");
    snap();
    const std::vector<std::pair<uint32_t, int64_t>> want{{kHealthy, 0},
                                                         {kCooling, t0 + 1000},
                                                         {kHalfOpen, 0},
                                                         {kCooling, t0 + 1000 + 2000},
                                                         {kHalfOpen, 0},
                                                         {kHealthy, 0}};
    EXPECT_EQ(seen, want);
    int transitions = 0;
    for (auto& [lvl, msg] : host.logs()) transitions += msg.find("deployment 'a' ") != std::string::npos;
    EXPECT_EQ(transitions, 5);
}

TEST_F(HealthTest, EarlierPlanIsKeptForRemainingCandidates) {
    auto inst = make({{"router.allowed_fails", "0"}});
    fail(*inst, 1);
    Request req;
    tg_route& r = d.route(&host);
    r.attempts[0] = tg_attempt{2, TG_LAUNCH_AT_START, 0, 0};
    r.attempts[1] = tg_attempt{1, TG_LAUNCH_AFTER_DELAY, 300, 0};
    r.attempts[2] = tg_attempt{0, TG_LAUNCH_ON_FAILURE, 0, 0};
    r.attempt_count = 3;
    ASSERT_EQ(inst->route(req.raw, r), TG_OK);
    EXPECT_EQ(d.order(), (Ids{"a", "c"}));
    ASSERT_EQ(r.attempt_count, 2u);
    EXPECT_EQ(r.attempts[0].candidate, 1u);  // c
    EXPECT_EQ(r.attempts[1].candidate, 0u);  // a
    EXPECT_EQ(r.attempts[1].launch, static_cast<uint32_t>(TG_LAUNCH_ON_FAILURE));
}

TEST_F(HealthTest, DeploymentsTheHostDidNotListStillWork) {
    host.set_deployments({});
    auto inst = reg.create("health", host.api(), {{"router.allowed_fails", "0"}});
    fail(*inst, 2, TG_ERRC_SERVER, 500);
    EXPECT_EQ(route(*inst), (Ids{"a", "b"}));
    EXPECT_TRUE(logged("deployment 'c' healthy -> cooling", TG_LOG_WARN));
}

TEST_F(HealthTest, NoCandidatesIsRefused) {
    Deployments none;
    auto inst = make();
    Request req;
    EXPECT_EQ(inst->route(req.raw, none.route()), TG_ERR_NO_CANDIDATE);
}

TEST_F(HealthTest, BadArgsAreRefused) {
    const std::string prefix =
        std::string(TAILGATE_PLUGIN_DIR) + "/health.so: strategy 'health' refused its configuration: ";
    EXPECT_EQ(refusal({{"alowed_fails", "1"}}),
              prefix + "unknown arg 'alowed_fails' (health accepts: allowed_fails, cooldown_time, disable_cooldowns, "
                       "fail_window, max_cooldown_time, probe_reserve_time, allowed_fails_policy.<Key>)");
    EXPECT_EQ(refusal({{"allowed_fails", "-1"}}), prefix + "allowed_fails: expected a non-negative integer, got '-1'");
    EXPECT_EQ(refusal({{"router.allowed_fails", "x"}}),
              prefix + "router.allowed_fails: expected a non-negative integer, got 'x'");
    EXPECT_EQ(refusal({{"cooldown_time", "soon"}}),
              prefix + "cooldown_time: expected a duration like 500ms or 5s, got 'soon'");
    EXPECT_EQ(refusal({{"disable_cooldowns", "maybe"}}),
              prefix + "disable_cooldowns: expected true/false, got 'maybe'");
    EXPECT_EQ(refusal({{"fail_window", "0"}}), prefix + "fail_window: must be greater than 0");
    EXPECT_EQ(refusal({{"cooldown_time", "10s"}, {"max_cooldown_time", "5s"}}),
              prefix + "max_cooldown_time (5000ms) is shorter than cooldown_time (10000ms)");
    EXPECT_EQ(refusal({{"allowed_fails_policy.TimeoutErrorAllowedFails", "1.5"}}),
              prefix + "allowed_fails_policy.TimeoutErrorAllowedFails: expected a non-negative integer, got '1.5'");
    EXPECT_EQ(refusal({{"allowed_fails_policy.Nope", "1"}}).rfind(prefix + "unknown arg 'allowed_fails_policy.Nope'", 0),
              0u);
    // Unknown router-level settings are not the plugin's business; null policy values mean unset.
    EXPECT_EQ(refusal({{"router.something_new", "1"},
                       {"router.allowed_fails_policy.NewErrorAllowedFails", "1"},
                       {"router.allowed_fails_policy.TimeoutErrorAllowedFails", "null"}}),
              "");
    EXPECT_TRUE(logged("health: ignoring unknown router.allowed_fails_policy.NewErrorAllowedFails", TG_LOG_WARN));
}

TEST_F(HealthTest, ConcurrentRoutesAndEventsAreSafe) {
    auto inst = make({{"router.allowed_fails", "2"}, {"router.cooldown_time", "50ms"}});
    std::atomic<bool> stop{false};
    std::atomic<int> bad{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            Deployments mine;
            for (const char* id : {"a", "b", "c"}) mine.add(id);
            for (int i = 0; i < 3000; ++i) {
                const std::string id = "t" + std::to_string(t) + "-" + std::to_string(i);
                Request req("test-group", false, "{}", "{}", id);
                int rc = inst->route(req.raw, mine.route());
                if (rc != TG_OK && rc != TG_ERR_NO_CANDIDATE) ++bad;
                if (rc != TG_OK) continue;
                const tg_deployment* first = mine.current().candidates[0].deployment;
                tg_event e{};
                e.struct_size = sizeof e;
                e.deployment = first;
                e.request_id = id.c_str();
                e.retry_after_ms = -1;
                e.type = TG_EVENT_STARTED;
                inst->observe(e);
                e.type = (i + t) % 3 == 0 ? TG_EVENT_SUCCESS : TG_EVENT_FAILURE;
                e.error_class = (i % 2) ? TG_ERRC_SERVER : TG_ERRC_TIMEOUT;
                inst->observe(e);
            }
        });
    std::thread clock([&] {
        while (!stop) {
            advance(5);
            std::this_thread::yield();
        }
    });
    for (auto& th : threads) th.join();
    stop = true;
    clock.join();
    EXPECT_EQ(bad.load(), 0);
}

}  // namespace
}  // namespace tailgate::plugin
