// The seam to other replicas (issue 18: Redis; the server implements it over
// fleet::Link, server/shared_state.cpp). Without it, KeyService's refresh reads
// changes from the database every general_settings.key_refresh_interval, so
// replicas sharing one database converge within that interval either way, and
// limits are counted per replica.
//
// With it:
//  - a change to a key or a team is published, and the other replicas drop
//    their cached copy at once (the next request reads it again);
//  - usage is shared: once per synchronisation round KeyService reports what
//    this replica counted since the last round (requests and tokens of the
//    minute, spend, requests in flight), and adds the others' reports to its
//    own counters; limits and budgets are then checked against the fleet's
//    counts as they have arrived (never waiting for them);
//  - after an outage of the channel (messages were lost), KeyService re-reads
//    what changed from the database at once.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace tailgate::keys {

struct FleetChange {
    enum class Kind { Key, Team } kind = Kind::Key;
    std::string id;  // key token or team id
};

class Fleet {
public:
    virtual ~Fleet() = default;
    // This replica's name in the fleet.
    virtual const std::string& replica() const = 0;
    virtual void publish(const FleetChange& change) = 0;
    // Called (on the channel's thread) for every change another replica published.
    virtual void subscribe(std::function<void(const FleetChange&)> on_change) = 0;
    // `collect` runs once per synchronisation round (the channel's thread; quick)
    // and returns what to send ("": nothing); `receive` gets every other
    // replica's. Neither is called while the channel is down.
    virtual void share_usage(std::function<std::string()> collect,
                             std::function<void(std::string_view)> receive) = 0;
    // `fn` runs (on the channel's thread; quick) when the channel is back after an outage.
    virtual void on_reconnect(std::function<void()> fn) = 0;
};
using FleetPtr = std::shared_ptr<Fleet>;

}  // namespace tailgate::keys
