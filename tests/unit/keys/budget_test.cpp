#include "keys/budget.hpp"

#include <gtest/gtest.h>

using namespace tailgate::keys;

namespace {
TimeMs at(const char* iso) { return *parse_iso_time(iso); }
}  // namespace

TEST(Budget, PeriodsInLiteLLMsNotation) {
    EXPECT_EQ(parse_period("30s")->ms, 30'000);
    EXPECT_EQ(parse_period("10m")->ms, 600'000);
    EXPECT_EQ(parse_period("24h")->ms, 86'400'000);
    EXPECT_EQ(parse_period("30d")->ms, 30LL * 86'400'000);
    EXPECT_EQ(parse_period("1mo")->months, 1);
    for (const char* bad : {"", "d", "0d", "-1d", "1y", "1.5d", "soon", "1 d"}) EXPECT_FALSE(parse_period(bad)) << bad;
}

TEST(Budget, CalendarMonthsClampToTheMonthsEnd) {
    EXPECT_EQ(iso_time(advance(at("2026-01-31T10:00:00Z"), *parse_period("1mo"))), "2026-02-28T10:00:00.000Z");
    EXPECT_EQ(iso_time(advance(at("2028-01-31T00:00:00Z"), *parse_period("1mo"))), "2028-02-29T00:00:00.000Z");
    EXPECT_EQ(iso_time(advance(at("2026-11-15T00:00:00Z"), *parse_period("3mo"))), "2027-02-15T00:00:00.000Z");
}

TEST(Budget, AMissedResetLandsOnTheNextBoundary) {
    const Period day = *parse_period("1d");
    const TimeMs reset = at("2026-03-01T00:00:00Z");
    EXPECT_EQ(next_reset(reset, day, at("2026-02-28T12:00:00Z")), reset);  // not due yet
    EXPECT_EQ(iso_time(next_reset(reset, day, at("2026-03-04T05:00:00Z"))), "2026-03-05T00:00:00.000Z");
    EXPECT_EQ(iso_time(next_reset(reset, *parse_period("1mo"), at("2026-05-01T00:00:00Z"))),
              "2026-06-01T00:00:00.000Z");
}

TEST(Budget, IsoTimes) {
    EXPECT_EQ(at("1970-01-01T00:00:01Z"), 1000);
    EXPECT_EQ(at("1970-01-01T00:00:00.250Z"), 250);
    EXPECT_EQ(at("1970-01-01T01:00:00+01:00"), 0);
    EXPECT_EQ(at("1970-01-02"), 86'400'000);
    EXPECT_EQ(iso_time(at("2030-12-31T23:59:59.999Z")), "2030-12-31T23:59:59.999Z");
    for (const char* bad : {"", "2026-13-01", "2026-02-30T00:00:00Z", "2026-01-01T25:00:00Z", "yesterday",
                            "2026-01-01T00:00:00+0100"})
        EXPECT_FALSE(parse_iso_time(bad)) << bad;
}

TEST(Budget, NewKeysAreLongRandomAndNamedByTheirEnd) {
    const std::string a = new_key(), b = new_key();
    EXPECT_NE(a, b);
    EXPECT_EQ(a.rfind("sk-", 0), 0u);
    EXPECT_EQ(a.size(), 3u + 43u);  // 256 bits in base64url
    EXPECT_EQ(key_name_of(a), "sk-..." + a.substr(a.size() - 4));
}
