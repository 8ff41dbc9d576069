// The key store's tables and statements (tg_keys, tg_teams, tg_spend_logs,
// tg_spend_daily), as functions of a store::Connection: they run on the
// database's pool threads, never on a request's.
#pragma once

#include "keys/records.hpp"
#include "keys/usage.hpp"
#include "store/database.hpp"
#include "store/migrations.hpp"

#include <optional>
#include <span>
#include <string>
#include <vector>

namespace tailgate::keys {

std::span<const store::Migration> migrations();
inline constexpr const char* kComponent = "keys";

// Keys. Lookups skip deleted keys unless said otherwise.
void insert_key(store::Connection& c, const KeyRecord& k);  // DbError{duplicate} on a taken token or alias
void update_key(store::Connection& c, const KeyRecord& k);  // every field but token, spend and created_at
std::optional<KeyRecord> find_key(store::Connection& c, const std::string& token);
std::optional<KeyRecord> find_key_by_alias(store::Connection& c, const std::string& alias);
void delete_key(store::Connection& c, const std::string& token, TimeMs at);
// Regenerate: the record moves to a new token (spend and settings kept), the old one is deleted.
void move_key(store::Connection& c, const KeyRecord& old_key, const KeyRecord& new_key);

struct KeyFilter {
    std::string team_id, key_alias, user_id;
    int64_t offset = 0, limit = 100;
};
std::vector<KeyRecord> list_keys(store::Connection& c, const KeyFilter& f);
int64_t count_keys(store::Connection& c, const KeyFilter& f);
std::vector<KeyRecord> keys_of_team(store::Connection& c, const std::string& team_id);

// Teams.
void insert_team(store::Connection& c, const TeamRecord& t);
void update_team(store::Connection& c, const TeamRecord& t);
std::optional<TeamRecord> find_team(store::Connection& c, const std::string& team_id);
void delete_team(store::Connection& c, const std::string& team_id, TimeMs at);
std::vector<TeamRecord> list_teams(store::Connection& c);

// Rows changed after `since` (updated_at), deleted ones included: what another
// replica did, for the caches.
std::vector<KeyRecord> keys_changed_since(store::Connection& c, TimeMs since);
std::vector<TeamRecord> teams_changed_since(store::Connection& c, TimeMs since);

// Spend as stored: the rows of the given keys or teams.
struct StoredSpend {
    std::string id;
    SpendRow row;
};
std::vector<StoredSpend> key_spend(store::Connection& c, const std::vector<std::string>& tokens);
std::vector<StoredSpend> team_spend(store::Connection& c, const std::vector<std::string>& team_ids);

}  // namespace tailgate::keys
