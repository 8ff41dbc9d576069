// Fleet-wide key usage (keys/usage.hpp with a fleet): the round's message
// format, and counts that hold what the other replicas reported.
#include "keys/cache.hpp"
#include "keys/usage.hpp"

#include <gtest/gtest.h>

using namespace tailgate::keys;

namespace {

constexpr TimeMs kNow = 1'800'000'020'000;  // a minute boundary + 20 s
constexpr int64_t kThisMinute = kNow / 60'000;

UsageDelta delta(std::string id, int64_t requests, int64_t tokens = 0, double spend = 0, int64_t in_flight = -1) {
    UsageDelta d;
    d.id = std::move(id);
    d.minute = kThisMinute;
    d.requests = requests;
    d.tokens = tokens;
    d.spend = spend;
    d.in_flight = in_flight;
    return d;
}

}  // namespace

TEST(FleetUsage, MessagesRoundTripWithEscapedIds) {
    std::vector<UsageDelta> in{delta("k" + std::string(64, 'f'), 3, 120, 0.000123456789, 2),
                               delta("tteam\twith\\odd\nname", -1, 0, 1e-9, -1)};
    in[1].written = 0.1 + 0.2;
    in[1].row = SpendRow{12.5 + 0.1, kNow + 86'400'000, 41};
    const std::string text = encode_usage("replica\t1", kNow, in);
    std::string replica;
    TimeMs sent = 0;
    std::vector<UsageDelta> out;
    ASSERT_TRUE(decode_usage(text, replica, sent, out)) << text;
    EXPECT_EQ(replica, "replica\t1");
    EXPECT_EQ(sent, kNow);
    ASSERT_EQ(out.size(), 2u);
    for (size_t i = 0; i < 2; ++i) {
        EXPECT_EQ(out[i].id, in[i].id);
        EXPECT_EQ(out[i].minute, in[i].minute);
        EXPECT_EQ(out[i].requests, in[i].requests);
        EXPECT_EQ(out[i].tokens, in[i].tokens);
        EXPECT_EQ(out[i].spend, in[i].spend);  // shortest round-trip form: exact
        EXPECT_EQ(out[i].written, in[i].written);
        EXPECT_EQ(out[i].row.spend, in[i].row.spend);
        EXPECT_EQ(out[i].row.reset_at, in[i].row.reset_at);
        EXPECT_EQ(out[i].row.seq, in[i].row.seq);
        EXPECT_EQ(out[i].in_flight, in[i].in_flight);
    }
    out.clear();
    EXPECT_FALSE(decode_usage("r\t1\nk1\t2\t3\n", replica, sent, out));
    EXPECT_FALSE(decode_usage("no header", replica, sent, out));
    EXPECT_FALSE(decode_usage("r\t1\nx\t1\t1\t1\t1\t1\t1\t1\t1\t1\n", replica, sent, out));
    EXPECT_FALSE(decode_usage("r\t1\nk1\t1\t1\t1\t1\t1\t1\t1\n", replica, sent, out)) << "the older 8 fields";
}

TEST(FleetUsage, OnlyChangedUsagesAreReportedOncePerRound) {
    KeyCache cache;
    cache.outbox().enable();
    KeyRecord k;
    k.token = std::string(64, 'a');
    auto c = cache.put(k, std::nullopt);
    Limits none;
    EXPECT_TRUE(cache.outbox().take().empty());
    ASSERT_FALSE(c->key_usage->admit(none, kNow));
    ASSERT_FALSE(c->key_usage->admit(none, kNow));
    c->key_usage->add_tokens(40, kNow);
    c->key_usage->add_spend(0.5);
    auto changed = cache.outbox().take();
    ASSERT_EQ(changed.size(), 1u) << "marked once per round, however often it changed";
    auto d = changed[0]->take_delta(kNow, 1000);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->id, "k" + k.token);
    EXPECT_EQ(d->minute, kThisMinute);
    EXPECT_EQ(d->requests, 2);
    EXPECT_EQ(d->tokens, 40);
    EXPECT_DOUBLE_EQ(d->spend, 0.5);
    EXPECT_FALSE(changed[0]->take_delta(kNow, 1000)) << "nothing new";
    ASSERT_FALSE(c->key_usage->admit(none, kNow));
    EXPECT_EQ(cache.outbox().take().size(), 1u) << "marked again after the round took it";
}

TEST(FleetUsage, WithoutAFleetNothingIsMarked) {
    KeyCache cache;
    KeyRecord k;
    k.token = std::string(64, 'b');
    auto c = cache.put(k, std::nullopt);
    ASSERT_FALSE(c->key_usage->admit(Limits{}, kNow));
    EXPECT_TRUE(cache.outbox().take().empty());
}

TEST(FleetUsage, RpmAndTpmCountTheOthersReports) {
    Usage u;
    Limits l;
    l.rpm = 10;
    l.tpm = 1000;
    ASSERT_FALSE(u.admit(l, kNow));
    u.remote("b", delta("kx", 6), kNow, kNow);
    u.remote("c", delta("kx", 2), kNow, kNow);
    ASSERT_FALSE(u.admit(l, kNow));  // 1 + 8 + 1 = 10
    const auto over = u.admit(l, kNow);
    ASSERT_TRUE(over);
    EXPECT_EQ(over->what, "rpm_limit 10");
    // A report of the last minute is ignored; the window rolls for everyone.
    UsageDelta old = delta("kx", 100);
    old.minute = kThisMinute - 1;
    u.remote("b", old, kNow, kNow);
    EXPECT_TRUE(u.admit(l, kNow));
    EXPECT_FALSE(u.admit(l, kNow + 60'000)) << "a new minute starts from zero";
    u.remote("b", delta("kx", 0, 1000), kNow, kNow + 60'000);  // last minute's tokens: ignored
    EXPECT_FALSE(u.admit(l, kNow + 60'000));
    UsageDelta tokens = delta("kx", 0, 1000);
    tokens.minute = kThisMinute + 1;
    u.remote("b", tokens, kNow + 60'000, kNow + 60'000);
    const auto tpm = u.admit(l, kNow + 60'001);
    ASSERT_TRUE(tpm);
    EXPECT_EQ(tpm->what, "tpm_limit 1000");
}

TEST(FleetUsage, ParallelCountsTheOthersInFlightUntilTheyStopReporting) {
    Usage u;
    Limits l;
    l.max_parallel = 3;
    const TimeMs now = now_ms();
    u.remote("b", delta("kx", 0, 0, 0, 2), now, now);
    EXPECT_TRUE(u.enter(l));
    EXPECT_FALSE(u.enter(l)) << "1 here + 2 on b";
    u.remote("b", delta("kx", 0, 0, 0, 0), now, now);
    EXPECT_TRUE(u.enter(l));
    u.remote("c", delta("kx", 0, 0, 0, 5), now - Usage::kInFlightTtlMs - 1000, now - Usage::kInFlightTtlMs - 1000);
    EXPECT_TRUE(u.enter(l)) << "c's count is older than the TTL: forgotten";
    EXPECT_FALSE(u.enter(l));
}

TEST(FleetUsage, BudgetsCountTheOthersSpendOnceWhetherWrittenOrNot) {
    Usage u;
    Limits l;
    u.stored(SpendRow{1.0, 0, 10});
    u.add_spend(0.25);
    auto spent = [](double usd, double written, SpendRow row = {}) {
        UsageDelta d = delta("kx", 0, 0, usd);
        d.written = written;
        d.row = row;
        return d;
    };
    u.remote("b", spent(0.5, 0), kNow, kNow);
    u.remote("c", spent(0.125, 0), kNow, kNow);
    EXPECT_DOUBLE_EQ(u.spend(l, kNow), 1.0 + 0.25 + 0.5 + 0.125);
    // b wrote it: its write returned the row with it in; counted once.
    u.remote("b", spent(0, 0.5, SpendRow{1.5, 0, 11}), kNow, kNow);
    EXPECT_DOUBLE_EQ(u.spend(l, kNow), 1.5 + 0.25 + 0.125);
    // A read of the store that is older than that row changes nothing.
    u.stored(SpendRow{1.0, 0, 10});
    EXPECT_DOUBLE_EQ(u.spend(l, kNow), 1.5 + 0.25 + 0.125);
    // This process's own write: the row has b's and its own, whatever came first.
    u.written(0.25, SpendRow{1.75, 0, 12});
    EXPECT_DOUBLE_EQ(u.spend(l, kNow), 1.75 + 0.125);
    // c's report of a write that came before this process's (seq 12 holds it) arrives late: in the row already.
    u.remote("c", spent(0.0625, 0.0625, SpendRow{1.5625, 0, 11}), kNow, kNow);
    EXPECT_DOUBLE_EQ(u.spend(l, kNow), 1.75 + 0.125);
    // c's 0.125 is never written (it crashed): forgotten after a while.
    EXPECT_DOUBLE_EQ(u.spend(l, kNow + Usage::kRemotePendingTtlMs + 1), 1.75);
}

TEST(FleetUsage, AReadThatRacedAWriteIsNotCountedTwice) {
    // The failure this replaced: a replica read the row after b's commit became
    // visible but before b's clock said "committed", and counted b's write in
    // the row and again from b's report, for good on a key without a budget.
    Usage u;
    Limits none;
    u.remote("b", delta("kx", 1, 0, 0.25), kNow, kNow);  // b recorded 0.25
    u.stored(SpendRow{2.25, 0, 7});                      // a read that has b's write (seq 7) ...
    u.remote("b", [] {                                    // ... then b's report of that write
        UsageDelta d = delta("kx", 0, 0, 0);
        d.written = 0.25;
        d.row = SpendRow{2.25, 0, 7};
        return d;
    }(), kNow, kNow);
    EXPECT_DOUBLE_EQ(u.spend(none, kNow), 2.25);
}

TEST(FleetUsage, ARowFromBeforeABudgetResetIsNotTakenAfterIt) {
    Usage u;
    Limits l;
    l.budget_duration = "1d";
    const TimeMs reset = kNow + 1000;
    u.stored(SpendRow{3.0, reset, 4});
    EXPECT_DOUBLE_EQ(u.spend(l, kNow), 3.0);
    EXPECT_DOUBLE_EQ(u.spend(l, reset), 0.0) << "the period ended here before the store reset it";
    UsageDelta late = delta("kx", 0, 0, 0);
    late.row = SpendRow{3.5, reset, 5};  // written before the store's reset, reported after
    u.remote("b", late, reset, reset);
    EXPECT_DOUBLE_EQ(u.spend(l, reset + 1), 0.0);
    UsageDelta after = delta("kx", 0, 0, 0);
    after.row = SpendRow{0.5, u.reset_at(), 7};  // the store reset (seq 6) and a write since
    u.remote("b", after, reset + 2, reset + 2);
    EXPECT_DOUBLE_EQ(u.spend(l, reset + 3), 0.5);
}

TEST(FleetUsage, ARemoteReportBeforeTheKeyIsCachedIsNotCountedTwice) {
    KeyCache cache;
    const std::string token(64, 'c');
    const TimeMs now = now_ms();
    UsageDelta unwritten = delta("k" + token, 1, 0, 0.5);
    UsageDelta written = delta("k" + token, 0, 0, 0.25);
    written.written = 0.25;
    written.row = SpendRow{2.25, 0, 3};
    cache.key_usage(token)->remote("b", unwritten, now, now);
    cache.key_usage(token)->remote("c", written, now, now);
    KeyRecord k;
    k.token = token;
    k.spend = 2.0;  // read before c's write: older than the row c reported
    k.spend_seq = 2;
    auto c = cache.put(k, std::nullopt);
    EXPECT_DOUBLE_EQ(c->key_usage->spend(Limits{}, now), 2.25 + 0.5);
    k.spend = 2.25;  // read after it: the same row
    k.spend_seq = 3;
    c = cache.put(k, std::nullopt);
    EXPECT_DOUBLE_EQ(c->key_usage->spend(Limits{}, now), 2.25 + 0.5);
}
