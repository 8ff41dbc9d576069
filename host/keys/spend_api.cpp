// GET /spend/logs and GET /global/spend/report.
#include "keys/api_util.hpp"
#include "keys/budget.hpp"
#include "keys/json.hpp"
#include "common/key_hash.hpp"

#include <map>

namespace tailgate::keys {

namespace {

constexpr TimeMs kDay = 86'400'000;

// A query's start_date / end_date: a date ("2026-01-31", LiteLLM's form: the
// end date counts whole) or a time.
std::optional<ApiError> time_bound(const std::map<std::string, std::string>& q, const char* name, bool end,
                                   TimeMs& out) {
    const std::string v = query_value(q, name);
    if (v.empty()) return std::nullopt;
    const auto t = parse_iso_time(v);
    if (!t) return ApiError::bad_request(std::string("'") + name + "' must be a date (2026-01-31) or an ISO 8601 time",
                                         name, "invalid_field");
    out = end && v.size() == 10 ? *t + kDay - 1 : *t;
    return std::nullopt;
}

std::string token_filter(const std::string& v) {
    const bool is_token = v.size() == 64 && v.find_first_not_of("0123456789abcdef") == std::string::npos;
    return is_token ? v : key_token_hash(v);
}

std::string log_row(const store::Row& r) {
    std::string out = "{\"request_id\":" + json_quote(r.text(0)) + ",\"attempt\":" + std::to_string(r.i64(1)) +
                      ",\"api_key\":" + json_quote(r.text(2)) + ",\"key_alias\":" + json_quote(r.text(3)) +
                      ",\"team_id\":" + json_quote(r.text(4)) + ",\"user\":" + json_quote(r.text(5)) +
                      ",\"model\":" + json_quote(r.text(6)) + ",\"model_group\":" + json_quote(r.text(7)) +
                      ",\"model_id\":" + json_quote(r.text(8)) + ",\"upstream_model\":" + json_quote(r.text(9)) +
                      ",\"call_type\":" + json_quote(r.text(10)) + ",\"kind\":" + json_quote(r.text(11));
    out += ",\"prompt_tokens\":" + std::to_string(r.i64(12)) + ",\"completion_tokens\":" + std::to_string(r.i64(13)) +
           ",\"total_tokens\":" + std::to_string(r.i64(14)) + ",\"spend\":" + number_json(r.f64(15)) +
           ",\"estimated\":" + (r.i64(16) ? "true" : "false") + ",\"status\":" + json_quote(r.text(17)) +
           ",\"startTime\":" + json_quote(iso_time(r.i64(18))) + ",\"endTime\":" + json_quote(iso_time(r.i64(19))) +
           ",\"metadata\":" + (r.text(20).empty() ? "{}" : r.text(20)) + "}";
    return out;
}

struct Totals {
    double cost = 0, loser = 0;
    int64_t in = 0, out = 0, requests = 0;
    void add(const store::Row& r) {
        const bool winner = r.text(5) == "winner";
        (winner ? cost : loser) += r.f64(6);
        in += r.i64(7);
        out += r.i64(8);
        if (winner) requests += r.i64(9);
    }
    std::string members() const {
        return "\"total_cost\":" + number_json(cost) + ",\"total_input_tokens\":" + std::to_string(in) +
               ",\"total_output_tokens\":" + std::to_string(out) + ",\"requests\":" + std::to_string(requests) +
               ",\"loser_cost\":" + number_json(loser);
    }
};

// group_by=team (LiteLLM's default): per day, per team, per model group.
std::string by_team(const store::Rows& rows) {
    std::map<std::string, std::map<std::string, std::map<std::string, Totals>>> days;  // day -> team -> group
    for (const auto& r : rows) days[r.text(0)][r.text(2)][r.text(3)].add(r);
    std::string out = "[";
    for (const auto& [day, teams] : days) {
        if (out.size() > 1) out += ',';
        out += "{\"group_by_day\":" + json_quote(day) + ",\"teams\":[";
        bool first = true;
        for (const auto& [team, groups] : teams) {
            Totals sum;
            std::string meta = "[";
            for (const auto& [group, t] : groups) {
                sum.cost += t.cost;
                sum.loser += t.loser;
                meta += (meta.size() > 1 ? "," : "") + std::string("{\"model\":") + json_quote(group) +
                        ",\"spend\":" + number_json(t.cost) + ",\"total_tokens\":" + std::to_string(t.in + t.out) + "}";
            }
            out += (first ? "" : ",") + std::string("{\"team_name\":") + json_quote(team.empty() ? "Unassigned" : team) +
                   ",\"total_spend\":" + number_json(sum.cost) + ",\"loser_spend\":" + number_json(sum.loser) +
                   ",\"metadata\":" + meta + "]}";
            first = false;
        }
        out += "]}";
    }
    return out + "]";
}

// group_by=api_key (LiteLLM's shape), model_group or deployment: totals per
// value, each with its model groups' details.
std::string by_column(const store::Rows& rows, size_t column, const char* name) {
    std::map<std::string, std::pair<Totals, std::map<std::string, Totals>>> groups;
    for (const auto& r : rows) {
        auto& g = groups[r.text(column)];
        g.first.add(r);
        g.second[r.text(3)].add(r);
    }
    std::string out = "[";
    for (const auto& [value, g] : groups) {
        if (out.size() > 1) out += ',';
        out += "{\"" + std::string(name) + "\":" + json_quote(value) + "," + g.first.members() + ",\"model_details\":[";
        bool first = true;
        for (const auto& [group, t] : g.second) {
            out += (first ? "" : ",") + std::string("{\"model\":") + json_quote(group) + "," + t.members() + "}";
            first = false;
        }
        out += "]}";
    }
    return out + "]";
}

}  // namespace

MgmtReply KeyApi::spend_logs(const MgmtRequest& r) {
    return guarded([&] {
        const auto q = parse_query(r.query);
        TimeMs from = 0, to = 0;
        if (auto e = time_bound(q, "start_date", false, from)) return fail(*e);
        if (auto e = time_bound(q, "end_date", true, to)) return fail(*e);
        std::string sql =
            "SELECT request_id, attempt, api_key, key_alias, team_id, user_id, model, model_group, deployment,"
            " upstream_model, call_type, kind, prompt_tokens, completion_tokens, total_tokens, spend, estimated,"
            " status, start_ms, end_ms, metadata FROM tg_spend_logs WHERE 1 = 1";
        store::Params p;
        auto where = [&](const char* clause, store::Value v) {
            sql += clause;
            p.push_back(std::move(v));
        };
        if (auto v = query_value(q, "api_key"); !v.empty()) where(" AND api_key = ?", token_filter(v));
        if (auto v = query_value(q, "team_id"); !v.empty()) where(" AND team_id = ?", v);
        if (auto v = query_value(q, "request_id"); !v.empty()) where(" AND request_id = ?", v);
        if (auto v = query_value(q, "kind"); !v.empty()) where(" AND kind = ?", v);
        if (auto v = query_value(q, "model"); !v.empty()) {
            sql += " AND (model = ? OR model_group = ?)";
            p.insert(p.end(), {v, v});
        }
        if (from) where(" AND start_ms >= ?", from);
        if (to) where(" AND start_ms <= ?", to);
        sql += " ORDER BY start_ms DESC, request_id, attempt LIMIT ? OFFSET ?";
        p.push_back(std::clamp<int64_t>(query_int(q, "limit", 100), 1, 10000));
        p.push_back(std::max<int64_t>(0, query_int(q, "offset", 0)));
        const auto rows = svc_.db().run([&](store::Connection& c) { return c.query(sql, p); });
        std::string out = "[";
        for (size_t i = 0; i < rows.size(); ++i) out += (i ? "," : "") + log_row(rows[i]);
        return reply(200, out + "]");
    });
}

MgmtReply KeyApi::global_spend_report(const MgmtRequest& r) {
    return guarded([&] {
        const auto q = parse_query(r.query);
        const TimeMs now = now_ms();
        TimeMs from = now - 30 * kDay, to = now;
        if (auto e = time_bound(q, "start_date", false, from)) return fail(*e);
        if (auto e = time_bound(q, "end_date", true, to)) return fail(*e);
        std::string group_by = query_value(q, "group_by");
        if (group_by.empty()) group_by = "team";
        static const std::pair<const char*, size_t> kColumns[] = {{"api_key", 1}, {"model_group", 3}, {"deployment", 4}};
        const auto rows = svc_.db().run([&](store::Connection& c) {
            return c.query("SELECT day, api_key, team_id, model_group, deployment, kind, spend, prompt_tokens,"
                           " completion_tokens, requests FROM tg_spend_daily WHERE day >= ? AND day <= ?"
                           " ORDER BY day",
                           {iso_time(from).substr(0, 10), iso_time(to).substr(0, 10)});
        });
        if (group_by == "team") return reply(200, by_team(rows));
        for (const auto& [name, column] : kColumns)
            if (group_by == name) return reply(200, by_column(rows, column, name));
        return fail(ApiError::bad_request("'group_by' must be one of team, api_key, model_group, deployment",
                                          "group_by", "invalid_field"));
    });
}

}  // namespace tailgate::keys
