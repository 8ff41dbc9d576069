// usage strategy (LiteLLM's usage-based routing), loaded as the real .so through
// the loader, on FakeHost's clock: limits by rpm and tpm, the sliding window,
// tokens from SUCCESS events (streams too), all-at-limit refusal with a retry hint.
#include "../strategy_test_support.hpp"

#include <tailgate/testing.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace tailgate::plugin {
namespace {

using sdk::testing::Request;
using Ids = std::vector<std::string>;

const Ids kRefused{"<refused>"};

class UsageTest : public testing::StrategyTest {
protected:
    UsageTest() : StrategyTest("usage") {}
    void SetUp() override { host.set_now(clock_); }

    Ids route(Instance& inst, bool stream = false) {
        Request req("test-group", stream);
        tg_route& r = d.route(&host);
        const int rc = inst.route(req.raw, r);
        if (rc == TG_ERR_NO_CANDIDATE) return kRefused;
        EXPECT_EQ(rc, TG_OK);
        EXPECT_EQ(r.attempt_count, 0u);  // plans nothing
        return d.order();
    }
    void event(Instance& inst, uint32_t dep, tg_event_type type, int64_t prompt = -1, int64_t completion = -1,
               bool stream = false) {
        tg_event e{};
        e.struct_size = sizeof e;
        e.type = type;
        e.deployment = &d.deployment(dep);
        e.request_id = "r";
        e.model_group = "test-group";
        e.stream = stream ? 1 : 0;
        e.at_ms = clock_;
        e.ttft_ms = -1;
        e.retry_after_ms = -1;
        e.prompt_tokens = prompt;
        e.completion_tokens = completion;
        inst.observe(e);
    }
    // One attempt of `dep`: started, then succeeded reporting the given usage.
    void served(Instance& inst, uint32_t dep, int64_t prompt = -1, int64_t completion = -1, bool stream = false) {
        event(inst, dep, TG_EVENT_STARTED);
        event(inst, dep, TG_EVENT_SUCCESS, prompt, completion, stream);
    }
    void advance(int64_t ms) {
        clock_ += ms;
        host.set_now(clock_);
    }
    int64_t last_hint() const {
        auto h = host.retry_hints();
        return h.empty() ? -1 : h.back();
    }

    int64_t clock_ = 1'000'000;  // a whole second: buckets start at :000
};

TEST_F(UsageTest, SkipsDeploymentsAtTheirRpm) {
    d.add("a").rpm = 2;
    d.add("b").rpm = 5;
    auto inst = make();
    served(*inst, 0);
    EXPECT_EQ(route(*inst).size(), 2u) << "1 of 2 requests: still open";
    served(*inst, 0);
    EXPECT_EQ(route(*inst), (Ids{"b"})) << "2 of 2: a is at its limit";
    for (int i = 0; i < 4; ++i) served(*inst, 1);
    EXPECT_EQ(route(*inst), (Ids{"b"}));
    served(*inst, 1);
    EXPECT_EQ(route(*inst), kRefused);
}

TEST_F(UsageTest, FailedAndCancelledAttemptsCountAsRequests) {
    d.add("a").rpm = 2;
    d.add("b");
    auto inst = make();
    event(*inst, 0, TG_EVENT_STARTED);
    event(*inst, 0, TG_EVENT_FAILURE);
    event(*inst, 0, TG_EVENT_STARTED);
    event(*inst, 0, TG_EVENT_CANCELLED);
    EXPECT_EQ(route(*inst), (Ids{"b"})) << "every upstream call counts against rpm";
}

TEST_F(UsageTest, SkipsDeploymentsAtTheirTpm) {
    d.add("a").tpm = 100;
    d.add("b").tpm = 1000;
    auto inst = make();
    served(*inst, 0, 60, 39);  // 99 of 100
    EXPECT_EQ(route(*inst), (Ids{"b", "a"})) << "open, but busier in tokens";
    served(*inst, 0, -1, 1);  // completion only: 100 of 100
    EXPECT_EQ(route(*inst), (Ids{"b"}));
    served(*inst, 1, 999, 1);
    EXPECT_EQ(route(*inst), kRefused);
}

TEST_F(UsageTest, NoLimitMeansNoLimit) {
    d.add("a");
    auto inst = make();
    for (int i = 0; i < 10000; ++i) served(*inst, 0, 1000, 1000);
    EXPECT_EQ(route(*inst), (Ids{"a"}));
}

TEST_F(UsageTest, LowestTokensFirstThenFewestRequests) {
    d.add("a");
    d.add("b");
    d.add("c");
    auto inst = make();
    served(*inst, 0, 300, 0);
    served(*inst, 1, 100, 0);
    served(*inst, 2, 200, 0);
    EXPECT_EQ(route(*inst), (Ids{"b", "c", "a"}));
    served(*inst, 1, 150, 0);  // b: 250 tokens
    EXPECT_EQ(route(*inst), (Ids{"c", "b", "a"}));
}

TEST_F(UsageTest, WithoutTokensFewestRequestsFirst) {
    d.add("a");
    d.add("b");
    auto inst = make();
    served(*inst, 0);  // upstream reported no usage
    served(*inst, 0);
    served(*inst, 1);
    EXPECT_EQ(route(*inst), (Ids{"b", "a"}));
}

TEST_F(UsageTest, TiesAreSpreadRandomly) {
    d.add("a");
    d.add("b");
    d.add("c");
    auto inst = make();
    std::map<std::string, int> first;
    for (int i = 0; i < 3000; ++i) ++first[route(*inst).front()];
    for (const char* id : {"a", "b", "c"}) {
        EXPECT_GT(first[id], 800) << id;  // expected 1000 each; 800 is > 7 sigma away
        EXPECT_LT(first[id], 1200) << id;
    }
}

TEST_F(UsageTest, StreamUsageCounts) {
    d.add("a").tpm = 50;
    d.add("b");
    auto inst = make();
    served(*inst, 0, 10, 40, /*stream=*/true);
    EXPECT_EQ(route(*inst, true), (Ids{"b"}));
}

TEST_F(UsageTest, StreamsWithoutUsageCountOnlyAsRequests) {
    d.add("a").tpm = 50;
    d.add("b").tpm = 50;
    auto inst = make();
    for (int i = 0; i < 5; ++i) served(*inst, 0, -1, -1, /*stream=*/true);
    EXPECT_EQ(route(*inst, true), (Ids{"b", "a"})) << "no tokens known: open, ordered by requests";
}

TEST_F(UsageTest, OnlySuccessesBringTokens) {
    d.add("a").tpm = 100;
    auto inst = make();
    event(*inst, 0, TG_EVENT_STARTED);
    event(*inst, 0, TG_EVENT_FIRST_BYTE, 500, 500);
    event(*inst, 0, TG_EVENT_FAILURE, 500, 500);
    event(*inst, 0, TG_EVENT_CANCELLED, 500, 500);
    EXPECT_EQ(route(*inst), (Ids{"a"}));
    event(*inst, 0, TG_EVENT_SHADOW_DONE, 50, 50);  // a shadow sample ran to the end upstream
    EXPECT_EQ(route(*inst), kRefused);
}

TEST_F(UsageTest, WindowSlidesOverSixtySeconds) {
    d.add("a").rpm = 2;
    auto inst = make();
    served(*inst, 0);  // at t0
    advance(30'000);
    served(*inst, 0);  // at t0 + 30 s
    EXPECT_EQ(route(*inst), kRefused);
    advance(30'000);  // t0 + 60 s: the first still counts (every event counts for >= 60 s)
    EXPECT_EQ(route(*inst), kRefused);
    advance(999);
    EXPECT_EQ(route(*inst), kRefused);
    advance(1);  // t0 + 61 s: its one-second bucket left the window
    EXPECT_EQ(route(*inst), (Ids{"a"}));
    served(*inst, 0);
    EXPECT_EQ(route(*inst), kRefused) << "the one at t0 + 30 s still counts";
    advance(30'000);  // t0 + 91 s
    EXPECT_EQ(route(*inst), (Ids{"a"}));
}

TEST_F(UsageTest, OldBucketsAreRecycled) {
    d.add("a").rpm = 3;
    auto inst = make();
    // Minutes apart, the same ring slots are reused: nothing from earlier windows leaks.
    for (int minute = 0; minute < 5; ++minute) {
        served(*inst, 0);
        served(*inst, 0);
        EXPECT_EQ(route(*inst), (Ids{"a"})) << minute;
        advance(61'000);
    }
}

TEST_F(UsageTest, AllAtLimitRefusesWithTheTimeTheFirstSlotFrees) {
    d.add("a").rpm = 1;
    d.add("b").tpm = 100;
    auto inst = make();
    advance(250);  // t = 1'000'250: bucket 1000 s
    served(*inst, 0);
    advance(10'000);  // bucket 1010 s
    served(*inst, 1, 100, 0);
    advance(5'000);  // now 1'015'250
    EXPECT_EQ(route(*inst), kRefused);
    // a's request (bucket 1000 s) leaves the window at 1061 s: 45'750 ms from now;
    // b's tokens (bucket 1010 s) at 1071 s. The sooner one is the hint.
    EXPECT_EQ(last_hint(), 45'750);
    ASSERT_FALSE(host.notes().empty());
    EXPECT_EQ(host.notes().back(),
              "usage: every deployment at its limit: a (rpm 1/1), b (tpm 100/100); a slot frees in 45750 ms");
    advance(45'750);
    EXPECT_EQ(route(*inst), (Ids{"a"}));
}

TEST_F(UsageTest, HintWaitsUntilEnoughOfTheWindowIsGone) {
    d.add("a").rpm = 3;
    auto inst = make();
    served(*inst, 0);  // bucket 1000 s
    advance(20'000);
    served(*inst, 0);  // bucket 1020 s
    served(*inst, 0);
    advance(1'000);
    served(*inst, 0);  // bucket 1021 s: 4 requests, rpm 3 (a concurrent burst overshot)
    EXPECT_EQ(route(*inst), kRefused);
    // Below 3 needs the 1000 s and the 1020 s buckets gone: at 1081 s.
    EXPECT_EQ(last_hint(), 1'081'000 - clock_);
}

TEST_F(UsageTest, BothLimitsMustClear) {
    d.add("a").rpm = 2;
    d.deployment(0).tpm = 100;
    auto inst = make();
    served(*inst, 0, 100, 0);  // bucket 1000 s: at tpm
    advance(10'000);
    served(*inst, 0);  // bucket 1010 s: now also at rpm
    EXPECT_EQ(route(*inst), kRefused);
    // At 1061 s both the tokens and one request are gone.
    EXPECT_EQ(last_hint(), 51'000);
}

TEST_F(UsageTest, SomeOpenStillReportsTheHintForLaterStrategies) {
    d.add("a").rpm = 1;
    d.add("b");
    auto inst = make();
    served(*inst, 0);
    EXPECT_EQ(route(*inst), (Ids{"b"}));
    EXPECT_EQ(last_hint(), 61'000);
    ASSERT_FALSE(host.notes().empty());
    EXPECT_NE(host.notes().back().find("at limit: a (rpm 1/1)"), std::string::npos) << host.notes().back();
}

TEST_F(UsageTest, HostsWithoutTheRetryCallbackStillGetTheRefusal) {
    d.add("a").rpm = 1;
    host.set_deployments(d.pointers());
    tg_host_api old = *host.api();
    // A host built before the member existed: the callback beyond struct_size must never be called.
    old.struct_size = offsetof(tg_host_api, route_retry_after);
    auto inst = reg.create("usage", &old, {});
    served(*inst, 0);
    EXPECT_EQ(route(*inst), kRefused);
    EXPECT_TRUE(host.retry_hints().empty());
}

TEST_F(UsageTest, CoolingCandidatesGoLast) {
    d.add("a");
    d.add("b");
    d.stats(0).health = TG_HEALTH_COOLING;
    auto inst = make();
    served(*inst, 1, 500, 500);  // b is busier, but a is cooling
    EXPECT_EQ(route(*inst), (Ids{"b", "a"}));
    ASSERT_FALSE(host.notes().empty());
    EXPECT_EQ(host.notes().back(), "usage: b (1 req, 1000 tok in 60s)");
}

TEST_F(UsageTest, ArgsAreChecked) {
    d.add("a");
    EXPECT_EQ(refusal({{"router.num_retries", "2"}, {"router.allowed_fails", "3"}}), "");
    EXPECT_NE(refusal({{"rank", "tokens"}}).find("unknown arg 'rank'"), std::string::npos);
}

TEST_F(UsageTest, DeploymentsTheHostDidNotListStillCount) {
    auto inst = make();  // the host lists none
    d.add("a").rpm = 1;
    served(*inst, 0);
    EXPECT_EQ(route(*inst), kRefused);
}

TEST_F(UsageTest, ConcurrentRoutesAndEventsAreSafe) {
    for (int i = 0; i < 4; ++i) d.add("d" + std::to_string(i)).rpm = 1'000'000;
    auto inst = make();
    std::atomic<bool> stop{false};
    std::vector<std::thread> observers;
    for (int t = 0; t < 2; ++t)
        observers.emplace_back([&, t] {
            for (int i = 0; !stop.load(); ++i) {
                tg_event e{};
                e.struct_size = sizeof e;
                e.type = i % 2 ? TG_EVENT_SUCCESS : TG_EVENT_STARTED;
                e.deployment = &d.deployment(static_cast<uint32_t>((i + t) % 4));
                e.at_ms = clock_ + i % 5000;
                e.prompt_tokens = 3;
                e.completion_tokens = 4;
                inst->observe(e);
            }
        });
    // Routing needs its own candidate arrays per thread.
    std::vector<std::thread> routers;
    for (int t = 0; t < 2; ++t)
        routers.emplace_back([&] {
            std::vector<tg_deployment_stats> stats(4);
            for (auto& s : stats) s.struct_size = sizeof s;
            std::vector<tg_candidate> cand(4);
            tg_attempt attempts[TG_MAX_ATTEMPTS] = {};
            Request req;
            for (int i = 0; i < 5000; ++i) {
                for (uint32_t k = 0; k < 4; ++k) cand[k] = tg_candidate{&d.deployment(k), &stats[k]};
                tg_route r{};
                r.struct_size = sizeof r;
                r.candidates = cand.data();
                r.count = 4;
                r.attempts = attempts;
                EXPECT_EQ(inst->route(req.raw, r), TG_OK);
                EXPECT_EQ(r.count, 4u);
            }
        });
    for (auto& t : routers) t.join();
    stop = true;
    for (auto& t : observers) t.join();
}

}  // namespace
}  // namespace tailgate::plugin

namespace tailgate::plugin {
namespace {

// Fleets (tg_host_api 1.3): quota leases decide, the window does not.
class UsageQuotaTest : public UsageTest {
protected:
    // Routes one request; returns the order and leaves its context in ctx.
    Ids route_ctx(Instance& inst, void*& ctx, bool preview = false) {
        Request req("test-group", false);
        if (preview) req.raw.flags |= TG_REQUEST_PREVIEW;
        tg_route& r = d.route(&host);
        r.request_ctx = ctx;
        const int rc = inst.route(req.raw, r);
        ctx = r.request_ctx;
        if (rc == TG_ERR_NO_CANDIDATE) return kRefused;
        EXPECT_EQ(rc, TG_OK);
        return d.order();
    }
    void event_ctx(Instance& inst, uint32_t dep, tg_event_type type, void* ctx, int64_t prompt = -1,
                   int64_t completion = -1) {
        tg_event e{};
        e.struct_size = sizeof e;
        e.type = type;
        e.deployment = &d.deployment(dep);
        e.request_id = "r";
        e.model_group = "test-group";
        e.at_ms = clock_;
        e.ttft_ms = -1;
        e.retry_after_ms = -1;
        e.prompt_tokens = prompt;
        e.completion_tokens = completion;
        e.request_ctx = ctx;
        inst.observe(e);
    }
};

TEST_F(UsageQuotaTest, AdmitsOnlyAgainstTheFleetAllowance) {
    d.add("a").rpm = 100;
    d.add("b");
    host.set_quota(0, TG_QUOTA_REQUESTS, 1, 4200);
    auto inst = make();
    void* ctx = nullptr;
    EXPECT_EQ(route_ctx(*inst, ctx).size(), 2u) << "a holds a unit for this request";
    ASSERT_NE(ctx, nullptr);
    EXPECT_EQ(host.quota_left(0, TG_QUOTA_REQUESTS), 0);
    event_ctx(*inst, 0, TG_EVENT_STARTED, ctx);  // uses the reservation
    inst->release_request(ctx);
    EXPECT_TRUE(host.settles().empty()) << "the reservation was used: nothing to settle";
    void* ctx2 = nullptr;
    EXPECT_EQ(route_ctx(*inst, ctx2), (Ids{"b"})) << "1 of 100 in this window, but the fleet's allowance is spent";
    bool noted = false;
    for (const auto& n : host.notes()) noted |= n.find("fleet allowance spent") != std::string::npos;
    EXPECT_TRUE(noted);
    EXPECT_EQ(last_hint(), 4200) << "Retry-After from Redis's window";
    inst->release_request(ctx2);
}

TEST_F(UsageQuotaTest, UnusedReservationsGoBackAndRetriesAreSettled) {
    d.add("a").rpm = 100;
    d.add("b").rpm = 100;
    host.set_quota(0, TG_QUOTA_REQUESTS, 5);
    host.set_quota(1, TG_QUOTA_REQUESTS, 5);
    auto inst = make();
    void* ctx = nullptr;
    EXPECT_EQ(route_ctx(*inst, ctx).size(), 2u);
    EXPECT_EQ(host.quota_left(0, TG_QUOTA_REQUESTS) + host.quota_left(1, TG_QUOTA_REQUESTS), 8);
    event_ctx(*inst, 0, TG_EVENT_STARTED, ctx);
    event_ctx(*inst, 0, TG_EVENT_STARTED, ctx);  // a second attempt on a: no reservation left for it
    inst->release_request(ctx);                   // b's unit was never used
    EXPECT_EQ(host.quota_left(0, TG_QUOTA_REQUESTS), 3);
    EXPECT_EQ(host.quota_left(1, TG_QUOTA_REQUESTS), 5);
    const auto s = host.settles();
    ASSERT_EQ(s.size(), 2u);
    EXPECT_EQ(s[0].index, 0u);
    EXPECT_EQ(s[0].amount, 1);
    EXPECT_EQ(s[1].index, 1u);
    EXPECT_EQ(s[1].amount, -1);
}

TEST_F(UsageQuotaTest, TokensAreSettledAfterTheResponse) {
    d.add("a").tpm = 1000;
    host.set_quota(0, TG_QUOTA_TOKENS, 10);
    auto inst = make();
    void* ctx = nullptr;
    EXPECT_EQ(route_ctx(*inst, ctx), (Ids{"a"})) << "some tokens left";
    EXPECT_EQ(host.quota_left(0, TG_QUOTA_TOKENS), 10) << "only asked, nothing taken";
    event_ctx(*inst, 0, TG_EVENT_STARTED, ctx);
    event_ctx(*inst, 0, TG_EVENT_SUCCESS, ctx, 30, 20);
    inst->release_request(ctx);
    EXPECT_EQ(host.quota_left(0, TG_QUOTA_TOKENS), -40);
    void* ctx2 = nullptr;
    EXPECT_EQ(route_ctx(*inst, ctx2), kRefused) << "50 of 1000 in the window, none left in the fleet";
    inst->release_request(ctx2);
}

TEST_F(UsageQuotaTest, WithoutAFleetAnswerTheWindowDecidesAndRedisHearsOfIt) {
    d.add("a").rpm = 2;
    host.set_quota(0, TG_QUOTA_REQUESTS, 0, -1, /*local=*/true);
    auto inst = make();
    for (int i = 0; i < 2; ++i) {
        void* ctx = nullptr;
        EXPECT_EQ(route_ctx(*inst, ctx), (Ids{"a"}));
        event_ctx(*inst, 0, TG_EVENT_STARTED, ctx);
        inst->release_request(ctx);
    }
    void* ctx = nullptr;
    EXPECT_EQ(route_ctx(*inst, ctx), kRefused) << "2 of 2 in this replica's window";
    inst->release_request(ctx);
    const auto s = host.settles();
    ASSERT_EQ(s.size(), 2u) << "counted alone: both attempts settled";
    EXPECT_EQ(s[0].amount + s[1].amount, 2);
}

TEST_F(UsageQuotaTest, APreviewReservesNothing) {
    d.add("a").rpm = 100;
    host.set_quota(0, TG_QUOTA_REQUESTS, 1);
    auto inst = make();
    void* ctx = nullptr;
    EXPECT_EQ(route_ctx(*inst, ctx, /*preview=*/true), (Ids{"a"}));
    EXPECT_EQ(ctx, nullptr);
    EXPECT_EQ(host.quota_left(0, TG_QUOTA_REQUESTS), 1);
}

}  // namespace
}  // namespace tailgate::plugin
