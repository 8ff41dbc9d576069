#include "keys/cache.hpp"
#include "keys/policy.hpp"

#include <gtest/gtest.h>

using namespace tailgate::keys;

namespace {

constexpr TimeMs kNow = 1'800'000'020'000;  // a minute boundary + 20 s
constexpr TimeMs kMinute = 60'000;

CallerPtr caller(KeyRecord k, std::optional<TeamRecord> team = std::nullopt) {
    static KeyCache cache;
    if (k.token.empty()) k.token = std::string(64, 'a' + static_cast<char>(cache.size() % 26));
    return cache.put(k, team);
}

}  // namespace

TEST(Policy, ModelListsWithWildcards) {
    EXPECT_TRUE(model_allowed({}, "anything"));
    EXPECT_TRUE(model_allowed({"all-proxy-models"}, "x"));
    EXPECT_TRUE(model_allowed({"gpt-4o", "openai/*"}, "openai/o1"));
    EXPECT_TRUE(model_allowed({"claude-*-sonnet"}, "claude-3-5-sonnet"));
    EXPECT_FALSE(model_allowed({"claude-*-sonnet"}, "claude-3-opus"));
    EXPECT_FALSE(model_allowed({"gpt-4o"}, "gpt-4o-mini"));
}

TEST(Policy, KeyAndTeamListsBothApplyAndTheRefusalNamesTheAllowedModels) {
    TeamRecord team;
    team.team_id = "t1";
    team.models = {"a", "b"};
    KeyRecord k;
    k.team_id = "t1";
    k.models = {"b", "c"};
    const auto c = caller(k, team);
    const std::string b = "b", a = "a", cc = "c";
    EXPECT_FALSE(check_models(*c, {&b, 1}));
    auto e = check_models(*c, {&a, 1});
    ASSERT_TRUE(e);
    EXPECT_EQ(e->status, 403);
    EXPECT_NE(e->message.find("[\"b\",\"c\"]"), std::string::npos) << e->message;
    e = check_models(*c, {&cc, 1});
    ASSERT_TRUE(e);
    EXPECT_NE(e->message.find("team"), std::string::npos);
}

TEST(Policy, StandingBlockedExpiredAndBudget) {
    KeyRecord k;
    k.expires = kNow - 1;
    EXPECT_EQ(check_standing(*caller(k), kNow)->status, 401);
    k.expires = 0;
    k.blocked = true;
    EXPECT_EQ(check_standing(*caller(k), kNow)->status, 401);
    k.blocked = false;
    k.limits.max_budget = 1.0;
    k.spend = 1.0;
    const auto e = check_standing(*caller(k), kNow);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->status, 400);
    EXPECT_EQ(e->type, "budget_exceeded");
    k.spend = 0.5;
    EXPECT_FALSE(check_standing(*caller(k), kNow));
}

TEST(Policy, BudgetPeriodEndsAndSpendStartsAgain) {
    KeyRecord k;
    k.limits.max_budget = 1.0;
    k.limits.budget_duration = "1d";
    k.spend = 2.0;
    k.budget_reset_at = kNow + 1000;
    const auto c = caller(k);
    EXPECT_TRUE(check_standing(*c, kNow));
    EXPECT_FALSE(check_standing(*c, kNow + 1000));
    EXPECT_EQ(c->key_usage->reset_at(), kNow + 1000 + 86'400'000);
    c->key_usage->add_spend(0.75);
    EXPECT_DOUBLE_EQ(c->key_usage->spend(k.limits, kNow + 2000), 0.75);
    c->key_usage->written(0.75);  // stored now, not counted twice
    EXPECT_DOUBLE_EQ(c->key_usage->spend(k.limits, kNow + 2000), 0.75);
}

TEST(Policy, RpmWindowAndRetryAfter) {
    KeyRecord k;
    k.limits.rpm = 2;
    const auto c = caller(k);
    Lease l1, l2, l3;
    EXPECT_FALSE(admit(*c, kNow, l1));
    EXPECT_FALSE(admit(*c, kNow, l2));
    auto e = admit(*c, kNow, l3);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->status, 429);
    EXPECT_EQ(e->retry_after_s, 40);  // the minute ends in 40 s
    const TimeMs next_minute = kNow - kNow % kMinute + kMinute;
    EXPECT_FALSE(admit(*c, next_minute, l3));
}

TEST(Policy, ParallelSlotsComeBackWithTheLease) {
    TeamRecord team;
    team.team_id = "t2";
    team.limits.max_parallel = 1;
    KeyRecord k;
    k.team_id = "t2";
    k.limits.max_parallel = 5;
    const auto c = caller(k, team);
    {
        Lease first;
        EXPECT_FALSE(admit(*c, kNow, first));
        Lease second;
        auto e = admit(*c, kNow, second);
        ASSERT_TRUE(e);
        EXPECT_NE(e->message.find("team"), std::string::npos);
        EXPECT_EQ(c->key_usage->in_flight(), 1);  // the refused one took nothing
    }
    Lease again;
    EXPECT_FALSE(admit(*c, kNow, again));
}

TEST(Policy, TpmCountsTokensOfFinishedRequests) {
    KeyRecord k;
    k.limits.tpm = 100;
    const auto c = caller(k);
    Lease l;
    EXPECT_FALSE(admit(*c, kNow, l));
    c->key_usage->add_tokens(100, kNow);
    Lease l2;
    auto e = admit(*c, kNow, l2);
    ASSERT_TRUE(e);
    EXPECT_NE(e->message.find("tpm_limit 100"), std::string::npos);
}
