// Quota leases (host/fleet/quota.hpp): the local allowance's bookkeeping with
// an injected clock. Redis's side (the grant script) runs in fleet_test.cpp
// against a real redis-server and in tests/e2e/test_fleet_limits.py.
#include "fleet/quota.hpp"

#include <gtest/gtest.h>

using namespace tailgate::fleet;
using namespace std::chrono_literals;

namespace {

constexpr auto R = QuotaKind::Requests;
constexpr auto T = QuotaKind::Tokens;

struct Book : ::testing::Test {
    QuotaBook book{5000ms, 400ms};
    QuotaBook::Time now = QuotaBook::Clock::time_point{} + 1000h;

    void tick(std::chrono::milliseconds d) { now += d; }
    // One synchroniser round: every refill answered by a Redis that grants
    // up to `fleet_left` units (and records the debts it is told).
    int64_t fleet_used = 0;
    int64_t replicas = 20;  // as Redis counts them: the smallest allowance is limit / (20 x replicas)
    std::vector<QuotaRefill> round(int64_t limit = 60) {
        auto asks = book.refills(now);
        for (const auto& r : asks) {
            fleet_used += r.debt;
            const int64_t g = std::max<int64_t>(0, std::min(r.want, limit - fleet_used));
            fleet_used += g;
            book.granted(r, g, g < r.want ? 30000 : -1, replicas, now, now + 2ms);
        }
        tick(2ms);
        return asks;
    }
};

}  // namespace

TEST_F(Book, AloneOrDownEveryAnswerIsLocal) {
    EXPECT_EQ(book.take("d", R, 60, 1, now), QuotaAnswer::Local);
    EXPECT_TRUE(book.refills(now).empty()) << "nothing is asked of a Redis that is not there";
    book.set_active(true, now);
    book.set_active(false, now);
    EXPECT_EQ(book.take("d", R, 60, 1, now), QuotaAnswer::Local);
}

TEST_F(Book, ColdUntilRedisAnswersThenFromTheAllowanceOnly) {
    book.set_active(true, now);
    // The first request finds nothing granted yet: counted alone, and the debt
    // goes to Redis with the first refill.
    EXPECT_EQ(book.take("d", R, 60, 1, now), QuotaAnswer::Local);
    book.settle("d", R, 60, 1, now);  // its attempt started
    auto asks = round();
    ASSERT_EQ(asks.size(), 1u);
    EXPECT_EQ(asks[0].debt, 1);
    EXPECT_GE(asks[0].want, 1);
    EXPECT_EQ(asks[0].limit, 60);
    const int64_t have = book.allowance("d", R, now);
    EXPECT_EQ(have, asks[0].want);
    for (int64_t i = 0; i < have; ++i) EXPECT_EQ(book.take("d", R, 60, 1, now), QuotaAnswer::Granted);
    EXPECT_EQ(book.take("d", R, 60, 1, now), QuotaAnswer::Exhausted) << "empty: at the limit, no wait";
    EXPECT_EQ(book.allowance("d", R, now), 0);
}

TEST_F(Book, RefilledBeforeItRunsOutAndSizedFromTheRate) {
    book.set_active(true, now);
    book.take("d", R, 1000, 1, now);
    round(1000);
    // 50 requests/s for two seconds, a round every 100 ms: never empty.
    int exhausted = 0;
    for (int ms = 0; ms < 2000; ms += 20) {
        if (ms % 100 == 0) round(1000);
        // The first rounds learn the rate (the first grant is one unit).
        if (book.take("d", R, 1000, 1, now) != QuotaAnswer::Granted && ms >= 400) ++exhausted;
        tick(18ms);
    }
    EXPECT_EQ(exhausted, 0);
    // Sized for the horizon (400 ms at 50/s = 20, +1), not the whole limit.
    const auto asks = book.refills(now);
    EXPECT_LE(book.allowance("d", R, now), 25);
    for (const auto& a : asks) EXPECT_LE(a.want, 25);
}

TEST_F(Book, NeverMoreThanTheFleetGrants) {
    book.set_active(true, now);
    int64_t admitted = 0;
    for (int i = 0; i < 400; ++i) {
        if (i % 5 == 0) round(60);
        if (book.take("d", R, 60, 1, now) == QuotaAnswer::Granted) ++admitted;
        else if (book.take("d", R, 60, 0, now) == QuotaAnswer::Local) book.settle("d", R, 60, 1, now), ++admitted;
        tick(10ms);
    }
    EXPECT_LE(fleet_used, 60);
    EXPECT_LE(admitted, 60);
    EXPECT_GE(admitted, 55);
}

TEST_F(Book, UnusedReservationsComeBackAndExpiredGrantsAreReturned) {
    book.set_active(true, now);
    book.take("d", R, 60, 1, now);
    auto asks = book.refills(now);
    ASSERT_EQ(asks.size(), 1u);
    book.granted(asks[0], 5, -1, 1, now, now);
    const int64_t have = book.allowance("d", R, now);
    ASSERT_EQ(have, 5);
    ASSERT_EQ(book.take("d", R, 60, 1, now), QuotaAnswer::Granted);
    EXPECT_EQ(book.allowance("d", R, now), have - 1);
    book.settle("d", R, 60, -1, now);  // its attempt never started
    EXPECT_EQ(book.allowance("d", R, now), have);
    ASSERT_EQ(book.take("d", R, 60, 1, now), QuotaAnswer::Granted);  // this one is used
    // Nobody asks any more: the grant's lease ends, what is left goes back.
    tick(5100ms);
    auto back = book.expired(now);
    ASSERT_EQ(back.size(), 1u);
    EXPECT_EQ(back[0].deployment, "d");
    EXPECT_EQ(back[0].used, 1);
    EXPECT_EQ(back[0].granted, have);
    EXPECT_EQ(book.allowance("d", R, now), -1) << "no answer from Redis for a lease: cold again";
}

TEST_F(Book, AGrantIsNotUsedPastNinetyPercentOfItsLease) {
    book.set_active(true, now);
    book.take("d", R, 60, 1, now);
    const auto sent = now;
    auto asks = book.refills(now);
    ASSERT_EQ(asks.size(), 1u);
    book.granted(asks[0], 3, -1, 1, sent, now + 100ms);
    now = sent + 4499ms;
    EXPECT_EQ(book.take("d", R, 60, 1, now), QuotaAnswer::Granted);
    now = sent + 4500ms;
    EXPECT_NE(book.take("d", R, 60, 1, now), QuotaAnswer::Granted) << "Redis counts it from t + lease on: stop short";
}

TEST_F(Book, AtTheLimitItWaitsForTheSlotInTheBackgroundAndSaysWhen) {
    book.set_active(true, now);
    book.take("d", R, 2, 1, now);
    auto asks = book.refills(now);
    ASSERT_EQ(asks.size(), 1u);
    book.granted(asks[0], 0, 30000, 1, now, now);  // the fleet used it all
    EXPECT_EQ(book.take("d", R, 2, 1, now), QuotaAnswer::Exhausted);
    EXPECT_EQ(book.free_in_ms("d", R, now), 30000);
    tick(100ms);
    EXPECT_TRUE(book.refills(now).empty()) << "not asked again at once";
    EXPECT_EQ(book.free_in_ms("d", R, now), 29900);
    tick(450ms);
    EXPECT_EQ(book.refills(now).size(), 1u) << "asked again within half a second";
}

TEST_F(Book, TokensAreTakenAfterTheFactAndOverdraftIsToldToRedis) {
    book.set_active(true, now);
    EXPECT_EQ(book.take("d", T, 10000, 0, now), QuotaAnswer::Local);
    round(10000);
    const int64_t first = book.allowance("d", T, now);
    ASSERT_GT(first, 0);
    ASSERT_LT(first, 700);
    EXPECT_EQ(book.take("d", T, 10000, 0, now), QuotaAnswer::Granted) << "some left";
    book.settle("d", T, 10000, 700, now);  // a response used more than the allowance
    EXPECT_EQ(book.take("d", T, 10000, 0, now), QuotaAnswer::Exhausted);
    auto asks = round(10000);
    ASSERT_EQ(asks.size(), 1u);
    EXPECT_EQ(asks[0].debt, 700 - first) << "what no grant covered";
}

TEST_F(Book, UsageWhileRedisIsDownIsReconciledOnReturn) {
    book.set_active(true, now);
    book.take("d", R, 60, 1, now);
    round();
    book.set_active(false, now);  // Redis gone: counted alone
    EXPECT_EQ(book.take("d", R, 60, 1, now), QuotaAnswer::Local);
    for (int i = 0; i < 7; ++i) book.settle("d", R, 60, 1, now);
    tick(30s);
    book.settle("d", R, 60, 1, now);
    tick(40s);
    for (int i = 0; i < 2; ++i) book.settle("d", R, 60, 1, now);
    book.set_active(true, now);  // back: the last minute's usage is told to Redis
    auto asks = book.refills(now);
    ASSERT_EQ(asks.size(), 1u);
    EXPECT_EQ(asks[0].debt, 3) << "only what is still in the window";
}

TEST_F(Book, ARefillLostWithTheConnectionKeepsItsDebt) {
    book.set_active(true, now);
    book.take("d", R, 60, 1, now);
    book.settle("d", R, 60, 4, now);
    auto asks = book.refills(now);
    ASSERT_EQ(asks.size(), 1u);
    EXPECT_EQ(asks[0].debt, 4);
    book.set_active(false, now);  // no reply: maybe Redis never saw it
    book.granted(asks[0], 5, -1, 1, now, now);  // a late reply of the old connection is ignored
    book.set_active(true, now);
    EXPECT_EQ(book.allowance("d", R, now), -1);
    book.take("d", R, 60, 1, now);
    asks = book.refills(now);
    ASSERT_EQ(asks.size(), 1u);
    EXPECT_EQ(asks[0].debt, 4);
}

TEST_F(Book, IdleDeploymentsStopAskingAndAreForgotten) {
    book.set_active(true, now);
    book.take("d", R, 60, 1, now);
    round();
    tick(6s);
    book.expired(now);
    EXPECT_TRUE(book.refills(now).empty()) << "idle: nothing asked";
    tick(60s);
    EXPECT_TRUE(book.refills(now).empty());
    EXPECT_EQ(book.allowance("d", R, now), -1);
}

TEST_F(Book, PrimedLimitsAreAnsweredBeforeTheFirstRequestAndKeptWarm) {
    book.set_active(true, now);
    book.prime("d", R, 60, now);
    round();
    EXPECT_EQ(book.allowance("d", R, now), 3) << "5 % of the limit held for the first requests (alone, as far as it knows)";
    tick(2min);  // quiet: renewed every lease, returned when it ends
    for (int i = 0; i < 1200; ++i) {  // rounds every 100 ms
        book.expired(now);
        round();
        tick(98ms);
        const int64_t have = book.allowance("d", R, now);
        EXPECT_GE(have, 1) << " at " << i << " (renewed before it lapses)";
        EXPECT_LE(have, 4) << " at " << i;
        if (HasFailure()) break;
    }
    EXPECT_LE(fleet_used, 40) << "about one unit per lease (this fake Redis gets nothing back)";
    EXPECT_EQ(book.take("d", R, 60, 1, now), QuotaAnswer::Granted) << "warm after a quiet spell";
}

TEST_F(Book, TheSmallestAllowanceIsAShareOfTheLimit) {
    book.set_active(true, now);
    book.prime("d", R, 100000, now);
    auto asks = book.refills(now);
    ASSERT_EQ(asks.size(), 1u);
    EXPECT_EQ(asks[0].want, 100000 / 20) << "no rate yet, alone: 5 % of the limit";
    book.granted(asks[0], 5000, -1, /*replicas=*/4, now, now);
    ASSERT_EQ(book.take("d", R, 100000, 4990, now), QuotaAnswer::Granted);
    tick(3s);  // the burst's rate is forgotten; 10 units left
    asks = book.refills(now);
    ASSERT_EQ(asks.size(), 1u);
    EXPECT_EQ(asks[0].want, 100000 / 80 - 10) << "four replicas: 5 % of it between them";
}

TEST_F(Book, ALimitAReloadRemovedIsNoLongerKeptWarm) {
    book.set_active(true, now);
    book.prime_all({{"a", R, 60}, {"b", T, 1000}}, now);
    EXPECT_EQ(round().size(), 2u);
    book.prime_all({{"b", T, 1000}}, now);  // a reload removed a's rpm
    tick(6s);
    book.expired(now);
    const auto asks = round();
    ASSERT_EQ(asks.size(), 1u) << "only b is kept warm";
    EXPECT_EQ(asks[0].deployment, "b");
    tick(70s);
    book.expired(now);
    round();
    EXPECT_EQ(book.allowance("a", R, now), -1);
}
