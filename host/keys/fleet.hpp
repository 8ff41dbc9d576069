// The seam to other replicas (issue 18: Redis). A change to a key or a team is
// published so other replicas drop their cached copy at once; without a fleet
// channel, KeyService's refresh reads changes from the database every
// refresh interval (general_settings.key_refresh_interval), so replicas sharing
// one PostgreSQL converge within that interval either way.
//
// Limits (rpm, tpm, max_parallel_requests) are counted per replica today: a
// fleet-wide count would implement SharedCounters over the same channel.
#pragma once

#include <functional>
#include <memory>
#include <string>

namespace tailgate::keys {

struct FleetChange {
    enum class Kind { Key, Team } kind = Kind::Key;
    std::string id;  // key token or team id
};

class Fleet {
public:
    virtual ~Fleet() = default;
    virtual void publish(const FleetChange& change) = 0;
    // Called (on the channel's thread) for every change another replica published.
    virtual void subscribe(std::function<void(const FleetChange&)> on_change) = 0;
};
using FleetPtr = std::shared_ptr<Fleet>;

// Fleet-wide counting of one limit window: adds `n` to `name` in the window
// starting at `window_ms` and returns the fleet's total.
class SharedCounters {
public:
    virtual ~SharedCounters() = default;
    virtual int64_t add(const std::string& name, int64_t window_ms, int64_t n) = 0;
};

}  // namespace tailgate::keys
