// KeyService::render_metrics: the store's health, the spend writer's queue,
// spend by model group and deployment, and spend and remaining budget per key
// and team. Keys are labelled by the first 16 hex digits of their token (the
// key's SHA-256), never the key; by key_alias only when the operator opts in
// (general_settings.metrics_key_alias). Only keys cached here (used since
// start) with some spend or a budget get a series.
#include "common/prometheus_text.hpp"
#include "keys/json.hpp"
#include "keys/service.hpp"

#include <set>

namespace tailgate::keys {

namespace {

using prometheus::escape_label_value;

// Values as the key store writes them in its JSON (number_json).
void sample(std::string& out, const char* name, const std::string& labels, double v) {
    prometheus::sample(out, name, labels, number_json(v));
}

}  // namespace

std::string KeyService::render_metrics(bool alias_labels, const std::function<bool(const std::string&)>& live) {
    std::string out;
    render_store_metrics(out, live);
    render_owner_metrics(out, alias_labels);
    return out;
}

// The store and the spend writer: one sample each, from a table.
void KeyService::render_store_metrics(std::string& out, const std::function<bool(const std::string&)>& live) {
    const TimeMs now = now_ms(), last = last_write_.load();
    const std::string backend = db_->backend() == store::Backend::Postgres ? "postgresql" : "sqlite";
    struct Scalar {
        const char* name;
        const char* type;
        const char* help;
        std::string labels;
        double value;
    };
    const Scalar scalars[] = {
        {"tailgate_database_up", "gauge", "Whether the key store's database is reachable (1) or not (0).",
         "backend=\"" + backend + "\"", db_->available() ? 1.0 : 0.0},
        {"tailgate_database_statements_total", "counter", "SQL statements the key store executed.", "",
         static_cast<double>(db_->statements())},
        {"tailgate_database_queries_total", "counter",
         "Of those statements, queries (reads): key lookups, refreshes, budget resets; none per cached request.", "",
         static_cast<double>(db_->queries())},
        {"tailgate_key_cache_entries", "gauge", "Virtual keys cached in memory.", "", static_cast<double>(cache_.size())},
        {"tailgate_key_lookups_total", "counter", "Keys not cached that were looked up in the database.", "",
         static_cast<double>(db_lookups_.load())},
        {"tailgate_key_fleet_usage_sent_total", "counter",
         "Key and team usage reports sent to the other replicas (one per changed key or team per sync round).", "",
         static_cast<double>(usage_sent_.load())},
        {"tailgate_key_fleet_usage_received_total", "counter", "Key and team usage reports received from the others.",
         "", static_cast<double>(usage_received_.load())},
        {"tailgate_key_fleet_changes_received_total", "counter",
         "Key and team changes other replicas announced (each drops this replica's cached copy).", "",
         static_cast<double>(fleet_changes_received_.load())},
        {"tailgate_spend_queue_events", "gauge", "Spend events recorded and not yet written to the database.", "",
         static_cast<double>(queued_events())},
        {"tailgate_spend_written_events_total", "counter", "Spend events written to the database.", "",
         static_cast<double>(written_events_.load())},
        {"tailgate_spend_write_failures_total", "counter", "Spend batches the database refused (retried).", "",
         static_cast<double>(write_failures_.load())},
        {"tailgate_spend_dropped_events_total", "counter", "Spend events dropped: the queue was full.", "",
         static_cast<double>(dropped_.load())},
        {"tailgate_spend_last_write_age_seconds", "gauge", "Seconds since spend was last written (-1: never).", "",
         last ? static_cast<double>(now - last) / 1000.0 : -1.0},
    };
    for (const Scalar& m : scalars) {
        prometheus::family(out, m.name, m.type, m.help);
        sample(out, m.name, m.labels, m.value);
    }
    prometheus::family(
        out, "tailgate_spend_usd_total", "counter",
        "Spend since start in USD by model group, deployment and kind (winner, loser, shadow, abandoned).");
    std::lock_guard lk(totals_mu_);
    for (const auto& [k, usd] : totals_) {
        const auto& [group, deployment, kind] = k;
        if (live && !deployment.empty() && !live(deployment)) continue;
        sample(out, "tailgate_spend_usd_total",
               "model_group=\"" + escape_label_value(group) + "\",deployment=\"" + escape_label_value(deployment) +
                   "\",kind=\"" + spend_kind_name(kind) + "\"",
               usd);
    }
}

// Spend and remaining budget of each key cached here (used since start) and of its team.
void KeyService::render_owner_metrics(std::string& out, bool alias_labels) {
    const TimeMs now = now_ms();
    std::string keys, remaining, teams, team_remaining;
    std::set<std::string> teams_seen;
    for (const CallerPtr& c : cache_.callers()) {
        if (!c->key) continue;
        const KeyRecord& k = *c->key;
        const double spend = c->key_usage->spend(k.limits, now);
        if (spend <= 0 && !k.limits.max_budget) continue;
        const std::string l =
            "key=\"" + k.token.substr(0, 16) + "\"" +
            (alias_labels && !k.key_alias.empty() ? ",key_alias=\"" + escape_label_value(k.key_alias) + "\"" : "");
        sample(keys, "tailgate_key_spend_usd", l, spend);
        if (k.limits.max_budget)
            sample(remaining, "tailgate_key_budget_remaining_usd", l, std::max(0.0, *k.limits.max_budget - spend));
        if (!c->team || !teams_seen.insert(c->team->team_id).second) continue;
        const double ts = c->team_usage->spend(c->team->limits, now);
        const std::string tl = "team=\"" + escape_label_value(c->team->team_id) + "\"";
        sample(teams, "tailgate_team_spend_usd", tl, ts);
        if (c->team->limits.max_budget)
            sample(team_remaining, "tailgate_team_budget_remaining_usd", tl,
                   std::max(0.0, *c->team->limits.max_budget - ts));
    }
    prometheus::family(out, "tailgate_key_spend_usd", "gauge",
                       "A virtual key's spend in its current budget period, USD.");
    out += keys;
    prometheus::family(out, "tailgate_key_budget_remaining_usd", "gauge",
                       "A virtual key's max_budget minus its spend, USD.");
    out += remaining;
    prometheus::family(out, "tailgate_team_spend_usd", "gauge", "A team's spend in its current budget period, USD.");
    out += teams;
    prometheus::family(out, "tailgate_team_budget_remaining_usd", "gauge",
                       "A team's max_budget minus its spend, USD.");
    out += team_remaining;
}

}  // namespace tailgate::keys
