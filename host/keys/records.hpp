// Virtual keys and teams as the key store keeps them (host/keys).
//
// A key is known by its token, the SHA-256 of the key (common/key_hash.hpp);
// the key itself is shown once, by /key/generate or /key/regenerate, and never
// stored. Times are wall-clock milliseconds since the epoch (0: not set).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tailgate::keys {

using TimeMs = int64_t;

// What a key and a team may each set: limits and a budget.
struct Limits {
    std::optional<int64_t> rpm;           // requests per minute
    std::optional<int64_t> tpm;           // tokens (prompt + completion) per minute
    std::optional<int64_t> max_parallel;  // requests in flight
    std::optional<double> max_budget;     // USD per budget period (or ever, without budget_duration)
    std::string budget_duration;          // "30d", "1mo", ...; "" never resets
};

struct KeyRecord {
    std::string token;     // SHA-256 hex of the key
    std::string key_name;  // "sk-...wxyz": enough to recognise it, not to use it
    std::string key_alias;
    std::string team_id;
    std::string user_id;
    std::vector<std::string> models;  // allowed model groups (wildcards); empty: every one the team allows
    std::string metadata_json = "{}";
    Limits limits;
    TimeMs budget_reset_at = 0;
    double spend = 0;        // USD in the current budget period, as stored
    double loser_spend = 0;  // raced/hedged losers' estimated cost, never counted against the budget
    int64_t spend_seq = 0;   // the row's spend writes and resets so far (keys/usage.hpp, SpendRow)
    TimeMs expires = 0;
    bool blocked = false;
    TimeMs created_at = 0, updated_at = 0;
    TimeMs deleted_at = 0;   // soft delete: the spend history keeps its key
};

struct TeamRecord {
    std::string team_id;
    std::string team_alias;
    std::vector<std::string> models;
    std::string metadata_json = "{}";
    Limits limits;
    TimeMs budget_reset_at = 0;
    double spend = 0;
    double loser_spend = 0;
    int64_t spend_seq = 0;
    bool blocked = false;
    TimeMs created_at = 0, updated_at = 0;
    TimeMs deleted_at = 0;
};

// The shown part of a key: "sk-...wxyz".
std::string key_name_of(const std::string& key);
// A new key: "sk-" + 32 random bytes, base64url (256 bits from the OS's CSPRNG).
std::string new_key();
TimeMs now_ms();

}  // namespace tailgate::keys
