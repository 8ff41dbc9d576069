// Budget periods and key lifetimes in LiteLLM's notation: "30s", "10m", "24h",
// "30d", "1mo" (calendar months, UTC).
#pragma once

#include "keys/records.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace tailgate::keys {

struct Period {
    int64_t ms = 0;      // fixed length, or
    int months = 0;      // calendar months
};
// nullopt when malformed or not positive.
std::optional<Period> parse_period(std::string_view text);

// t + one period.
TimeMs advance(TimeMs t, const Period& p);
// The first reset time after `now`, stepping from `reset_at` (a missed reset
// while the gateway was down lands on the next boundary, not in the past).
TimeMs next_reset(TimeMs reset_at, const Period& p, TimeMs now);

// ISO 8601 UTC with milliseconds ("2026-01-31T12:00:00.000Z"), as LiteLLM shows times.
std::string iso_time(TimeMs t);
// Parses "2026-01-31T12:00:00Z", with optional fraction and offset, or a date; nullopt if malformed.
std::optional<TimeMs> parse_iso_time(std::string_view text);

}  // namespace tailgate::keys
