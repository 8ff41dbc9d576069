#include "keys/repository.hpp"

#include "keys/json.hpp"

namespace tailgate::keys {

namespace {

using store::Connection;
using store::Params;
using store::Row;
using store::Value;

constexpr const char* kSchemaV1 =
    "CREATE TABLE tg_teams ("
    " team_id TEXT PRIMARY KEY, team_alias TEXT, models TEXT NOT NULL, metadata TEXT NOT NULL,"
    " rpm_limit BIGINT, tpm_limit BIGINT, max_parallel_requests BIGINT,"
    " max_budget DOUBLE PRECISION, budget_duration TEXT, budget_reset_at_ms BIGINT,"
    " spend DOUBLE PRECISION NOT NULL DEFAULT 0, loser_spend DOUBLE PRECISION NOT NULL DEFAULT 0,"
    " blocked BIGINT NOT NULL DEFAULT 0,"
    " created_at_ms BIGINT NOT NULL, updated_at_ms BIGINT NOT NULL, deleted_at_ms BIGINT);"
    "CREATE INDEX tg_teams_updated ON tg_teams (updated_at_ms);"
    "CREATE TABLE tg_keys ("
    " token TEXT PRIMARY KEY, key_name TEXT NOT NULL, key_alias TEXT, team_id TEXT, user_id TEXT,"
    " models TEXT NOT NULL, metadata TEXT NOT NULL,"
    " rpm_limit BIGINT, tpm_limit BIGINT, max_parallel_requests BIGINT,"
    " max_budget DOUBLE PRECISION, budget_duration TEXT, budget_reset_at_ms BIGINT,"
    " spend DOUBLE PRECISION NOT NULL DEFAULT 0, loser_spend DOUBLE PRECISION NOT NULL DEFAULT 0,"
    " expires_at_ms BIGINT, blocked BIGINT NOT NULL DEFAULT 0,"
    " created_at_ms BIGINT NOT NULL, updated_at_ms BIGINT NOT NULL, deleted_at_ms BIGINT);"
    "CREATE UNIQUE INDEX tg_keys_alias ON tg_keys (key_alias) WHERE key_alias IS NOT NULL AND deleted_at_ms IS NULL;"
    "CREATE INDEX tg_keys_team ON tg_keys (team_id);"
    "CREATE INDEX tg_keys_updated ON tg_keys (updated_at_ms);"
    "CREATE TABLE tg_spend_logs ("
    " request_id TEXT NOT NULL, attempt BIGINT NOT NULL, api_key TEXT NOT NULL, key_alias TEXT, team_id TEXT,"
    " user_id TEXT, model TEXT NOT NULL, model_group TEXT NOT NULL, deployment TEXT NOT NULL,"
    " upstream_model TEXT NOT NULL, call_type TEXT NOT NULL, kind TEXT NOT NULL,"
    " prompt_tokens BIGINT NOT NULL, completion_tokens BIGINT NOT NULL, total_tokens BIGINT NOT NULL,"
    " spend DOUBLE PRECISION NOT NULL, estimated BIGINT NOT NULL, status TEXT NOT NULL,"
    " start_ms BIGINT NOT NULL, end_ms BIGINT NOT NULL, metadata TEXT NOT NULL,"
    " PRIMARY KEY (request_id, attempt));"
    "CREATE INDEX tg_spend_logs_start ON tg_spend_logs (start_ms);"
    "CREATE INDEX tg_spend_logs_key ON tg_spend_logs (api_key, start_ms);"
    "CREATE INDEX tg_spend_logs_team ON tg_spend_logs (team_id, start_ms);"
    "CREATE TABLE tg_spend_daily ("
    " day TEXT NOT NULL, api_key TEXT NOT NULL, team_id TEXT NOT NULL, model_group TEXT NOT NULL,"
    " deployment TEXT NOT NULL, kind TEXT NOT NULL,"
    " spend DOUBLE PRECISION NOT NULL, prompt_tokens BIGINT NOT NULL, completion_tokens BIGINT NOT NULL,"
    " requests BIGINT NOT NULL,"
    " PRIMARY KEY (day, api_key, team_id, model_group, deployment, kind))";

// Each spend write and budget reset counts up its row's spend_seq, so a
// replica can tell which of two views of a row is newer (keys/usage.hpp).
constexpr const char* kSchemaV2 =
    "ALTER TABLE tg_keys ADD COLUMN spend_seq BIGINT NOT NULL DEFAULT 0;"
    "ALTER TABLE tg_teams ADD COLUMN spend_seq BIGINT NOT NULL DEFAULT 0";

constexpr store::Migration kMigrations[] = {
    {1, "keys, teams, spend logs, daily spend", kSchemaV1},
    {2, "spend write sequence per key and team", kSchemaV2},
};

Value opt(const std::optional<int64_t>& v) { return v ? Value(*v) : Value(); }
Value opt(const std::optional<double>& v) { return v ? Value(*v) : Value(); }
Value text_or_null(const std::string& s) { return s.empty() ? Value() : Value(s); }
Value ms_or_null(TimeMs t) { return t > 0 ? Value(t) : Value(); }
std::optional<int64_t> opt_i64(const Row& r, size_t i) { return r.null(i) ? std::nullopt : std::optional(r.i64(i)); }
std::optional<double> opt_f64(const Row& r, size_t i) { return r.null(i) ? std::nullopt : std::optional(r.f64(i)); }

constexpr const char* kKeyColumns =
    "token, key_name, key_alias, team_id, user_id, models, metadata, rpm_limit, tpm_limit, max_parallel_requests,"
    " max_budget, budget_duration, budget_reset_at_ms, spend, loser_spend, expires_at_ms, blocked, created_at_ms,"
    " updated_at_ms, deleted_at_ms, spend_seq";

void limits_params(Params& p, const Limits& l, TimeMs reset_at) {
    p.push_back(opt(l.rpm));
    p.push_back(opt(l.tpm));
    p.push_back(opt(l.max_parallel));
    p.push_back(opt(l.max_budget));
    p.push_back(text_or_null(l.budget_duration));
    p.push_back(ms_or_null(reset_at));
}

Limits limits_of(const Row& r, size_t i) {
    Limits l;
    l.rpm = opt_i64(r, i);
    l.tpm = opt_i64(r, i + 1);
    l.max_parallel = opt_i64(r, i + 2);
    l.max_budget = opt_f64(r, i + 3);
    l.budget_duration = r.text(i + 4);
    return l;
}

KeyRecord key_of(const Row& r) {
    KeyRecord k;
    k.token = r.text(0);
    k.key_name = r.text(1);
    k.key_alias = r.text(2);
    k.team_id = r.text(3);
    k.user_id = r.text(4);
    k.models = string_list(r.text(5));
    k.metadata_json = r.text(6).empty() ? "{}" : r.text(6);
    k.limits = limits_of(r, 7);
    k.budget_reset_at = r.i64(12);
    k.spend = r.f64(13);
    k.loser_spend = r.f64(14);
    k.expires = r.i64(15);
    k.blocked = r.i64(16) != 0;
    k.created_at = r.i64(17);
    k.updated_at = r.i64(18);
    k.deleted_at = r.i64(19);
    k.spend_seq = r.i64(20);
    return k;
}

std::vector<KeyRecord> keys_of(const store::Rows& rows) {
    std::vector<KeyRecord> out;
    out.reserve(rows.size());
    for (const Row& r : rows) out.push_back(key_of(r));
    return out;
}

Params key_params(const KeyRecord& k) {
    Params p{k.token, k.key_name, text_or_null(k.key_alias), text_or_null(k.team_id), text_or_null(k.user_id),
             string_list_json(k.models), k.metadata_json};
    limits_params(p, k.limits, k.budget_reset_at);
    p.insert(p.end(), {k.spend, k.loser_spend, ms_or_null(k.expires), int64_t{k.blocked}, k.created_at, k.updated_at,
                       ms_or_null(k.deleted_at), k.spend_seq});
    return p;
}

constexpr const char* kTeamColumns =
    "team_id, team_alias, models, metadata, rpm_limit, tpm_limit, max_parallel_requests, max_budget,"
    " budget_duration, budget_reset_at_ms, spend, loser_spend, blocked, created_at_ms, updated_at_ms, deleted_at_ms,"
    " spend_seq";

TeamRecord team_of(const Row& r) {
    TeamRecord t;
    t.team_id = r.text(0);
    t.team_alias = r.text(1);
    t.models = string_list(r.text(2));
    t.metadata_json = r.text(3).empty() ? "{}" : r.text(3);
    t.limits = limits_of(r, 4);
    t.budget_reset_at = r.i64(9);
    t.spend = r.f64(10);
    t.loser_spend = r.f64(11);
    t.blocked = r.i64(12) != 0;
    t.created_at = r.i64(13);
    t.updated_at = r.i64(14);
    t.deleted_at = r.i64(15);
    t.spend_seq = r.i64(16);
    return t;
}

std::vector<TeamRecord> teams_of(const store::Rows& rows) {
    std::vector<TeamRecord> out;
    for (const Row& r : rows) out.push_back(team_of(r));
    return out;
}

std::string select_keys(const char* where) { return std::string("SELECT ") + kKeyColumns + " FROM tg_keys " + where; }
std::string select_teams(const char* where) { return std::string("SELECT ") + kTeamColumns + " FROM tg_teams " + where; }

std::string filter_sql(const KeyFilter& f, Params& p) {
    std::string where = "WHERE deleted_at_ms IS NULL";
    if (!f.team_id.empty()) {
        where += " AND team_id = ?";
        p.push_back(f.team_id);
    }
    if (!f.key_alias.empty()) {
        where += " AND key_alias = ?";
        p.push_back(f.key_alias);
    }
    if (!f.user_id.empty()) {
        where += " AND user_id = ?";
        p.push_back(f.user_id);
    }
    return where;
}

std::vector<StoredSpend> spend_of(Connection& c, const char* table, const char* id_col,
                                  const std::vector<std::string>& ids) {
    std::vector<StoredSpend> out;
    constexpr size_t kChunk = 500;
    for (size_t i = 0; i < ids.size(); i += kChunk) {
        const size_t n = std::min(kChunk, ids.size() - i);
        std::string sql = std::string("SELECT ") + id_col + ", spend, budget_reset_at_ms, spend_seq FROM " + table +
                          " WHERE " + id_col + " IN (";
        Params p;
        for (size_t j = 0; j < n; ++j) {
            sql += j ? ",?" : "?";
            p.push_back(ids[i + j]);
        }
        sql += ")";
        for (const Row& r : c.query(sql, p)) out.push_back(StoredSpend{r.text(0), SpendRow{r.f64(1), r.i64(2), r.i64(3)}});
    }
    return out;
}

}  // namespace

std::span<const store::Migration> migrations() { return kMigrations; }

void insert_key(Connection& c, const KeyRecord& k) {
    c.exec(std::string("INSERT INTO tg_keys (") + kKeyColumns +
               ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
           key_params(k));
}

void update_key(Connection& c, const KeyRecord& k) {
    Params p{k.key_name, text_or_null(k.key_alias), text_or_null(k.team_id), text_or_null(k.user_id),
             string_list_json(k.models), k.metadata_json};
    limits_params(p, k.limits, k.budget_reset_at);
    p.insert(p.end(), {ms_or_null(k.expires), int64_t{k.blocked}, k.updated_at, k.token});
    c.exec("UPDATE tg_keys SET key_name = ?, key_alias = ?, team_id = ?, user_id = ?, models = ?, metadata = ?,"
           " rpm_limit = ?, tpm_limit = ?, max_parallel_requests = ?, max_budget = ?, budget_duration = ?,"
           " budget_reset_at_ms = ?, expires_at_ms = ?, blocked = ?, updated_at_ms = ?,"
           " spend_seq = spend_seq + 1 WHERE token = ?",  // the period may have changed: a newer row
           p);
}

std::optional<KeyRecord> find_key(Connection& c, const std::string& token) {
    auto rows = c.query(select_keys("WHERE token = ? AND deleted_at_ms IS NULL"), {token});
    if (rows.empty()) return std::nullopt;
    return key_of(rows.front());
}

std::optional<KeyRecord> find_key_by_alias(Connection& c, const std::string& alias) {
    auto rows = c.query(select_keys("WHERE key_alias = ? AND deleted_at_ms IS NULL"), {alias});
    if (rows.empty()) return std::nullopt;
    return key_of(rows.front());
}

void delete_key(Connection& c, const std::string& token, TimeMs at) {
    c.exec("UPDATE tg_keys SET deleted_at_ms = ?, updated_at_ms = ? WHERE token = ? AND deleted_at_ms IS NULL",
           {at, at, token});
}

void move_key(Connection& c, const KeyRecord& old_key, const KeyRecord& new_key) {
    c.transaction([&] {
        delete_key(c, old_key.token, new_key.updated_at);
        // The spend as stored now (the writer may have added to it since old_key was read).
        KeyRecord k = new_key;
        auto rows = c.query("SELECT spend, loser_spend, spend_seq FROM tg_keys WHERE token = ?", {old_key.token});
        if (!rows.empty()) {
            k.spend = rows.front().f64(0);
            k.loser_spend = rows.front().f64(1);
            k.spend_seq = rows.front().i64(2);  // the moved usage has seen rows up to it
        }
        insert_key(c, k);
    });
}

std::vector<KeyRecord> list_keys(Connection& c, const KeyFilter& f) {
    Params p;
    std::string sql = std::string("SELECT ") + kKeyColumns + " FROM tg_keys " + filter_sql(f, p) +
                      " ORDER BY created_at_ms, token LIMIT ? OFFSET ?";
    p.emplace_back(std::in_place_type<int64_t>, f.limit);
    p.emplace_back(std::in_place_type<int64_t>, f.offset);
    return keys_of(c.query(sql, p));
}

int64_t count_keys(Connection& c, const KeyFilter& f) {
    Params p;
    auto rows = c.query("SELECT COUNT(*) FROM tg_keys " + filter_sql(f, p), p);
    return rows.empty() ? 0 : rows.front().i64(0);
}

std::vector<KeyRecord> keys_of_team(Connection& c, const std::string& team_id) {
    return keys_of(c.query(select_keys("WHERE team_id = ? AND deleted_at_ms IS NULL ORDER BY created_at_ms"), {team_id}));
}

void insert_team(Connection& c, const TeamRecord& t) {
    // A deleted team's id may be used again (its spend logs keep the id as text).
    c.exec("DELETE FROM tg_teams WHERE team_id = ? AND deleted_at_ms IS NOT NULL", {t.team_id});
    Params p{t.team_id, text_or_null(t.team_alias), string_list_json(t.models), t.metadata_json};
    limits_params(p, t.limits, t.budget_reset_at);
    p.insert(p.end(), {t.spend, t.loser_spend, int64_t{t.blocked}, t.created_at, t.updated_at, ms_or_null(t.deleted_at),
                       t.spend_seq});
    c.exec(std::string("INSERT INTO tg_teams (") + kTeamColumns +
               ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
           p);
}

void update_team(Connection& c, const TeamRecord& t) {
    Params p{text_or_null(t.team_alias), string_list_json(t.models), t.metadata_json};
    limits_params(p, t.limits, t.budget_reset_at);
    p.insert(p.end(), {int64_t{t.blocked}, t.updated_at, t.team_id});
    c.exec("UPDATE tg_teams SET team_alias = ?, models = ?, metadata = ?, rpm_limit = ?, tpm_limit = ?,"
           " max_parallel_requests = ?, max_budget = ?, budget_duration = ?, budget_reset_at_ms = ?, blocked = ?,"
           " updated_at_ms = ?, spend_seq = spend_seq + 1 WHERE team_id = ?",
           p);
}

std::optional<TeamRecord> find_team(Connection& c, const std::string& team_id) {
    auto rows = c.query(select_teams("WHERE team_id = ? AND deleted_at_ms IS NULL"), {team_id});
    if (rows.empty()) return std::nullopt;
    return team_of(rows.front());
}

void delete_team(Connection& c, const std::string& team_id, TimeMs at) {
    c.exec("UPDATE tg_teams SET deleted_at_ms = ?, updated_at_ms = ? WHERE team_id = ? AND deleted_at_ms IS NULL",
           {at, at, team_id});
}

std::vector<TeamRecord> list_teams(Connection& c) {
    return teams_of(c.query(select_teams("WHERE deleted_at_ms IS NULL ORDER BY created_at_ms")));
}

std::vector<KeyRecord> keys_changed_since(Connection& c, TimeMs since) {
    return keys_of(c.query(select_keys("WHERE updated_at_ms > ? ORDER BY updated_at_ms"), {since}));
}

std::vector<TeamRecord> teams_changed_since(Connection& c, TimeMs since) {
    return teams_of(c.query(select_teams("WHERE updated_at_ms > ? ORDER BY updated_at_ms"), {since}));
}

std::vector<StoredSpend> key_spend(Connection& c, const std::vector<std::string>& tokens) {
    return spend_of(c, "tg_keys", "token", tokens);
}

std::vector<StoredSpend> team_spend(Connection& c, const std::vector<std::string>& team_ids) {
    return spend_of(c, "tg_teams", "team_id", team_ids);
}

}  // namespace tailgate::keys
