// Versioned schema migrations, applied at start, per component.
//
// Each component (keys, and later the revision log or stored responses) owns a
// list of migrations numbered 1, 2, 3...; tailgate_migrations records which
// ran. migrate() applies the missing ones in order, in one transaction (both
// backends have transactional DDL: a failed migration leaves nothing behind),
// holding a lock other replicas wait on (PostgreSQL: an advisory lock; SQLite:
// the write lock), and refuses a database whose schema is newer than this
// binary knows.
#pragma once

#include "store/database.hpp"

#include <span>
#include <string_view>

namespace tailgate::store {

struct Migration {
    int version;
    const char* name;
    const char* sql;                     // ';'-separated statements, portable SQL
    const char* postgres_sql = nullptr;  // when PostgreSQL needs other text
};

// Returns the number of migrations applied now. Throws DbError.
int migrate(Connection& c, std::string_view component, std::span<const Migration> migrations);

// The versions of `component` recorded in the database, ascending.
std::vector<int> applied_versions(Connection& c, std::string_view component);

}  // namespace tailgate::store
