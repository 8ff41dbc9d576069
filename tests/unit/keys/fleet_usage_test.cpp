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
    in[1].written_at = kNow - 7;
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
        EXPECT_EQ(out[i].written_at, in[i].written_at);
        EXPECT_EQ(out[i].in_flight, in[i].in_flight);
    }
    out.clear();
    EXPECT_FALSE(decode_usage("r\t1\nk1\t2\t3\n", replica, sent, out));
    EXPECT_FALSE(decode_usage("no header", replica, sent, out));
    EXPECT_FALSE(decode_usage("r\t1\nx\t1\t1\t1\t1\t1\t1\t1\n", replica, sent, out));
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
    u.stored(1.0, 0, kNow - 5000);
    u.add_spend(0.25);
    auto spent = [](double usd, double written, TimeMs at = 0) {
        UsageDelta d = delta("kx", 0, 0, usd);
        d.written = written;
        d.written_at = at;
        return d;
    };
    u.remote("b", spent(0.5, 0), kNow, kNow);
    u.remote("c", spent(0.125, 0), kNow, kNow);
    EXPECT_DOUBLE_EQ(u.spend(l, kNow), 1.0 + 0.25 + 0.5 + 0.125);
    u.remote("b", spent(0, 0.5, kNow - 100), kNow, kNow);  // b wrote it: still counted, once
    EXPECT_DOUBLE_EQ(u.spend(l, kNow), 1.0 + 0.25 + 0.5 + 0.125);
    // A read of the store that began after b's commit has it: not added twice.
    u.stored(1.5, 0, kNow - 50);
    EXPECT_DOUBLE_EQ(u.spend(l, kNow), 1.5 + 0.25 + 0.125);
    // A report that arrives after such a read, of a write committed before it, is in the store already.
    u.remote("c", spent(0.0625, 0.0625, kNow - 60), kNow, kNow);
    EXPECT_DOUBLE_EQ(u.spend(l, kNow), 1.5 + 0.25 + 0.125);
    // c's 0.125 is never written (it crashed): forgotten after a while.
    EXPECT_DOUBLE_EQ(u.spend(l, kNow + Usage::kRemotePendingTtlMs + 1), 1.5 + 0.25);
}

TEST(FleetUsage, ARemoteReportBeforeTheKeyIsCachedIsNotCountedTwice) {
    KeyCache cache;
    const std::string token(64, 'c');
    const TimeMs now = now_ms();
    UsageDelta unwritten = delta("k" + token, 1, 0, 0.5);
    UsageDelta written = delta("k" + token, 0, 0, 0.25);
    written.written = 0.25;
    written.written_at = now - 20;
    cache.key_usage(token)->remote("b", unwritten, now, now);
    cache.key_usage(token)->remote("c", written, now, now);
    KeyRecord k;
    k.token = token;
    k.spend = 2.25;  // the store has c's 0.25: read after c's commit
    auto c = cache.put(k, std::nullopt, now - 10);
    EXPECT_DOUBLE_EQ(c->key_usage->spend(Limits{}, now), 2.25 + 0.5);
}
