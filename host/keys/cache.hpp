// The key store's memory: every key looked up so far (and the keys found not
// to exist, for a while), their teams, and each one's live usage. A request
// finds its caller here without a database round trip; a miss is loaded once
// by KeyService, a change made through the API is written here directly, and
// changes made by other replicas arrive through KeyService's refresh.
#pragma once

#include "keys/records.hpp"
#include "keys/usage.hpp"

#include <functional>
#include <memory>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace tailgate::keys {

// Who is calling, as the request path sees it: immutable, rebuilt when the key
// or its team changes (the usage objects carry over).
struct Caller {
    bool master = false;
    std::shared_ptr<const KeyRecord> key;  // null for the master key
    UsagePtr key_usage;
    std::shared_ptr<const TeamRecord> team;  // null when the key has no team (or it is gone)
    UsagePtr team_usage;
    std::string hash_prefix;  // key_hash_prefix: logs and strategies
};
using CallerPtr = std::shared_ptr<const Caller>;

class KeyCache {
public:
    explicit KeyCache(TimeMs absent_ttl_ms = 30'000) : absent_ttl_(absent_ttl_ms) {}

    enum class Hit { Found, Absent, Miss };
    Hit find(const std::string& token, TimeMs now, CallerPtr& out) const;

    // Caches a key (and its team, when given) and returns its caller. The
    // records' spend rows go to the usages unless they have seen newer ones.
    CallerPtr put(const KeyRecord& k, const std::optional<TeamRecord>& team);
    void put_absent(const std::string& token, TimeMs now);
    void erase(const std::string& token);
    // Drops what is cached about a key (record or absence) but keeps its usage:
    // the next request reads the record again.
    void forget(const std::string& token);
    // A regenerated key: its live usage (limits' windows, in-flight requests,
    // spend not yet written) continues under the new token.
    void move_usage(const std::string& from, const std::string& to);
    // A team changed (or went: nullopt): every cached key of it gets a new caller.
    void put_team(const std::string& team_id, const std::optional<TeamRecord>& team);
    bool has_team(const std::string& team_id) const;

    // The cached callers (metrics, spend refresh), a snapshot.
    std::vector<CallerPtr> callers() const;
    size_t size() const;
    UsagePtr team_usage(const std::string& team_id);
    // A key's usage, made when absent (another replica's report may come first).
    UsagePtr key_usage(const std::string& token);
    // The usages changed since the last round (a fleet: KeyService reports them).
    UsageOutbox& outbox() { return outbox_; }

private:
    struct Team {
        std::shared_ptr<const TeamRecord> rec;
        UsagePtr usage;
    };
    UsagePtr key_usage_locked(const KeyRecord& k);
    Team& team_locked(const std::string& id);
    CallerPtr build_locked(std::shared_ptr<const KeyRecord> k);

    TimeMs absent_ttl_;
    UsageOutbox outbox_;  // before the usages: they point to it
    mutable std::shared_mutex mu_;
    std::unordered_map<std::string, CallerPtr> callers_;       // by token
    std::unordered_map<std::string, UsagePtr> key_usage_;      // by token, outlives record changes
    std::unordered_map<std::string, TimeMs> absent_;           // token -> until
    std::unordered_map<std::string, Team> teams_;
};

}  // namespace tailgate::keys
