#include "store/migrations.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

namespace tailgate::store {

namespace {

constexpr const char* kLedger =
    "CREATE TABLE IF NOT EXISTS tailgate_migrations ("
    " component TEXT NOT NULL,"
    " version BIGINT NOT NULL,"
    " name TEXT NOT NULL,"
    " applied_at_ms BIGINT NOT NULL,"
    " PRIMARY KEY (component, version))";

// One lock key for every replica's migrations (PostgreSQL advisory locks are per database).
constexpr int64_t kAdvisoryLock = 0x7461696c67617465;  // "tailgate"

int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

std::vector<int> applied_versions(Connection& c, std::string_view component) {
    std::vector<int> out;
    for (const Row& r : c.query("SELECT version FROM tailgate_migrations WHERE component = ? ORDER BY version",
                                {std::string(component)}))
        out.push_back(static_cast<int>(r.i64(0)));
    return out;
}

int migrate(Connection& c, std::string_view component, std::span<const Migration> migrations) {
    c.script(kLedger);
    const bool pg = c.backend() == Backend::Postgres;
    int applied = 0;
    c.transaction([&] {
        // Replicas starting together: one migrates, the others wait and then find nothing to do.
        if (pg) c.query("SELECT pg_advisory_xact_lock(?)", {kAdvisoryLock});
        const std::vector<int> done = applied_versions(c, component);
        const int latest_known = migrations.empty() ? 0 : migrations.back().version;
        if (!done.empty() && done.back() > latest_known)
            throw DbError("the database's " + std::string(component) + " schema is at version " +
                          std::to_string(done.back()) + ", newer than this binary knows (" +
                          std::to_string(latest_known) + "): upgrade tailgate or use another database");
        for (const Migration& m : migrations) {
            if (std::find(done.begin(), done.end(), m.version) != done.end()) continue;
            c.script(pg && m.postgres_sql ? m.postgres_sql : m.sql);
            c.exec("INSERT INTO tailgate_migrations (component, version, name, applied_at_ms) VALUES (?, ?, ?, ?)",
                   {std::string(component), int64_t{m.version}, std::string(m.name), now_ms()});
            spdlog::info("database: {} schema migrated to version {} ({})", component, m.version, m.name);
            ++applied;
        }
    });
    return applied;
}

}  // namespace tailgate::store
