#include "keys/spend.hpp"

#include "keys/budget.hpp"

#include <map>
#include <tuple>

namespace tailgate::keys {

namespace {

using store::Connection;
using store::Params;

constexpr size_t kRowsPerInsert = 50;

std::string day_of(TimeMs t) { return iso_time(t).substr(0, 10); }

void insert_logs(Connection& c, const std::vector<SpendEvent>& batch) {
    static const std::string kHead =
        "INSERT INTO tg_spend_logs (request_id, attempt, api_key, key_alias, team_id, user_id, model, model_group,"
        " deployment, upstream_model, call_type, kind, prompt_tokens, completion_tokens, total_tokens, spend,"
        " estimated, status, start_ms, end_ms, metadata) VALUES ";
    for (size_t i = 0; i < batch.size(); i += kRowsPerInsert) {
        const size_t n = std::min(kRowsPerInsert, batch.size() - i);
        std::string sql = kHead;
        Params p;
        p.reserve(n * 21);
        for (size_t j = 0; j < n; ++j) {
            const SpendEvent& e = batch[i + j];
            sql += j ? ",(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)" : "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
            p.insert(p.end(), {e.request_id, int64_t{e.attempt}, e.api_key, e.key_alias, e.team_id, e.user_id, e.model,
                               e.model_group, e.deployment, e.upstream_model, e.call_type,
                               std::string(spend_kind_name(e.kind)), e.prompt_tokens, e.completion_tokens,
                               e.prompt_tokens + e.completion_tokens, e.cost, int64_t{e.estimated}, e.status, e.start,
                               e.end, e.metadata_json});
        }
        sql += " ON CONFLICT (request_id, attempt) DO NOTHING";
        c.exec(sql, p);
    }
}

struct Sums {
    double spend = 0, loser = 0;
};

constexpr size_t kRowsPerUpdate = 100;

// Adds each owner's sums to its row and counts up the row's spend_seq; returns the rows as updated.
std::map<std::string, SpendRow> update_owners(Connection& c, const char* table, const char* id, const char* also,
                                              const std::map<std::string, Sums>& owners) {
    std::map<std::string, SpendRow> rows;
    auto it = owners.begin();
    while (it != owners.end()) {
        std::string sql = std::string("UPDATE ") + table + " SET spend = " + table + ".spend + v.column2, loser_spend = " +
                          table + ".loser_spend + v.column3, spend_seq = " + table + ".spend_seq + 1 FROM (VALUES ";
        Params p;
        size_t n = 0;
        for (; it != owners.end() && n < kRowsPerUpdate; ++it, ++n) {
            sql += n ? ",(?,?,?)" : "(?,?,?)";
            p.insert(p.end(), {it->first, it->second.spend, it->second.loser});
        }
        sql += std::string(") AS v WHERE ") + table + "." + id + " = v.column1" + also + " RETURNING " + table + "." +
               id + ", " + table + ".spend, " + table + ".budget_reset_at_ms, " + table + ".spend_seq";
        for (const store::Row& r : c.query(sql, p)) rows[r.text(0)] = SpendRow{r.f64(1), r.i64(2), r.i64(3)};
    }
    return rows;
}

WrittenRows add_to_owners(Connection& c, const std::vector<SpendEvent>& batch) {
    std::map<std::string, Sums> keys, teams;
    for (const SpendEvent& e : batch) {
        Sums& k = keys[e.api_key];
        (e.kind == SpendKind::Winner ? k.spend : k.loser) += e.cost;
        if (e.team_id.empty()) continue;
        Sums& t = teams[e.team_id];
        (e.kind == SpendKind::Winner ? t.spend : t.loser) += e.cost;
    }
    // One statement per chunk of owners, not one per owner: a batch of 1,000
    // keys is ten statements (UPDATE ... FROM VALUES: SQLite >= 3.33,
    // RETURNING: SQLite >= 3.35, PostgreSQL).
    WrittenRows out;
    out.keys = update_owners(c, "tg_keys", "token", "", keys);
    out.teams = update_owners(c, "tg_teams", "team_id", " AND tg_teams.deleted_at_ms IS NULL", teams);
    return out;
}

struct Daily {
    double spend = 0;
    int64_t prompt = 0, completion = 0, requests = 0;
};

void add_to_days(Connection& c, const std::vector<SpendEvent>& batch) {
    using Key = std::tuple<std::string, std::string, std::string, std::string, std::string, std::string>;
    std::map<Key, Daily> days;
    for (const SpendEvent& e : batch) {
        Daily& d = days[Key{day_of(e.start), e.api_key, e.team_id, e.model_group, e.deployment, spend_kind_name(e.kind)}];
        d.spend += e.cost;
        d.prompt += e.prompt_tokens;
        d.completion += e.completion_tokens;
        ++d.requests;
    }
    // Chunks of rows per statement, as the logs (the keys of `days` are distinct, as ON CONFLICT needs).
    static const std::string kHead =
        "INSERT INTO tg_spend_daily (day, api_key, team_id, model_group, deployment, kind, spend,"
        " prompt_tokens, completion_tokens, requests) VALUES ";
    static const std::string kTail =
        " ON CONFLICT (day, api_key, team_id, model_group, deployment, kind) DO UPDATE SET"
        " spend = tg_spend_daily.spend + excluded.spend,"
        " prompt_tokens = tg_spend_daily.prompt_tokens + excluded.prompt_tokens,"
        " completion_tokens = tg_spend_daily.completion_tokens + excluded.completion_tokens,"
        " requests = tg_spend_daily.requests + excluded.requests";
    auto it = days.begin();
    while (it != days.end()) {
        std::string sql = kHead;
        Params p;
        size_t n = 0;
        for (; it != days.end() && n < kRowsPerInsert; ++it, ++n) {
            const auto& [k, d] = *it;
            const auto& [day, key, team, group, deployment, kind] = k;
            sql += n ? ",(?,?,?,?,?,?,?,?,?,?)" : "(?,?,?,?,?,?,?,?,?,?)";
            p.insert(p.end(), {day, key, team, group, deployment, kind, d.spend, d.prompt, d.completion, d.requests});
        }
        c.exec(sql + kTail, p);
    }
}

void reset_table(Connection& c, const char* table, const char* id, TimeMs now) {
    const std::string select = std::string("SELECT ") + id + ", budget_duration, budget_reset_at_ms FROM " + table +
                               " WHERE budget_reset_at_ms IS NOT NULL AND budget_reset_at_ms <= ? AND"
                               " deleted_at_ms IS NULL";
    const std::string update = std::string("UPDATE ") + table +
                               " SET spend = 0, budget_reset_at_ms = ?, spend_seq = spend_seq + 1 WHERE " + id +
                               " = ? AND budget_reset_at_ms = ?";
    for (const store::Row& r : c.query(select, {now})) {
        const auto period = parse_period(r.text(1));
        if (!period) continue;
        const TimeMs at = r.i64(2);
        c.exec(update, {next_reset(at, *period, now), r.text(0), at});
    }
}

}  // namespace

const char* spend_kind_name(SpendKind k) {
    switch (k) {
        case SpendKind::Winner: return "winner";
        case SpendKind::Loser: return "loser";
        case SpendKind::Shadow: return "shadow";
        case SpendKind::Abandoned: return "abandoned";
    }
    return "winner";
}

void reset_budgets(Connection& c, TimeMs now) {
    reset_table(c, "tg_keys", "token", now);
    reset_table(c, "tg_teams", "team_id", now);
}

WrittenRows write_batch(Connection& c, const std::vector<SpendEvent>& batch, bool logs, TimeMs now) {
    WrittenRows rows;
    c.transaction([&] {
        rows = WrittenRows{};  // a retried transaction starts over
        reset_budgets(c, now);
        if (batch.empty()) return;
        if (logs) insert_logs(c, batch);
        rows = add_to_owners(c, batch);
        add_to_days(c, batch);
    });
    return rows;
}

}  // namespace tailgate::keys
