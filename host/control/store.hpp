// The revision log: every admin change, in order, in an embedded SQLite file
// under general_settings.state_dir (or --state-dir). Replayed over the config
// file at start. Rows are self-contained (op, target, JSON payload) and
// numbered, so another replica can apply the same log in the same order
// (issue 18 publishes new rows through Redis).
//
// Payloads of deployment changes hold their api_key as given (like the config
// file does): the database file is created 0600.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct sqlite3;

namespace tailgate::control {

struct Change {
    uint64_t revision = 0;
    int64_t at_ms = 0;          // wall clock, ms since the epoch
    std::string origin;         // the replica that made it (hostname:pid today)
    std::string key_hash;       // SHA-256 prefix of the key that authorised it, never the key
    std::string op;             // deployment.add|update|delete|drain|undrain, router_settings.patch, file.reload
    std::string target;         // deployment id, or ""
    std::string payload = "{}"; // JSON
};

// A change as one JSON object (the fleet's revision log in Redis carries these);
// nullopt for text that is not one.
std::string change_json(const Change& c);
std::optional<Change> change_from_json(std::string_view json);

class Store {
public:
    virtual ~Store() = default;
    virtual std::vector<Change> load() = 0;            // every change, by revision
    virtual void append(const Change& c) = 0;          // throws std::runtime_error
    virtual std::string where() const = 0;              // for logs
};
using StorePtr = std::unique_ptr<Store>;

// Opens (creating) <dir>/tailgate-state.db. Throws std::runtime_error.
StorePtr open_sqlite_store(const std::string& dir);
// Keeps the log in memory only (no state_dir configured).
StorePtr memory_store();

}  // namespace tailgate::control
