// What one key or team is using right now: its requests and tokens in the
// current minute, its requests in flight and its spend in the current budget
// period. Shared by every request of the key (or of the team's keys) and kept
// across updates of the record. Local to this process: fleet-wide counting is a
// SharedCounters seam (keys/fleet.hpp).
#pragma once

#include "keys/budget.hpp"
#include "keys/records.hpp"

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace tailgate::keys {

// Why a request over a limit was refused, and when to try again.
struct OverLimit {
    std::string what;        // "rpm_limit 10", "tpm_limit 1000", "max_parallel_requests 2"
    long retry_after_s = 1;  // until the minute window ends (parallel: 1)
};

class Usage {
public:
    // Counts the request against rpm (fixed one-minute windows, UTC minutes) and
    // checks tpm; nothing is counted when it is refused.
    std::optional<OverLimit> admit(const Limits& l, TimeMs now);
    // Takes back an admitted request's count (another check refused it).
    void unadmit(TimeMs now);
    // One more request in flight, unless that is over max_parallel.
    bool enter(const Limits& l);
    void leave() { in_flight_.fetch_sub(1, std::memory_order_relaxed); }
    int64_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }
    void add_tokens(int64_t n, TimeMs now);

    // Spend in the current budget period: what the store has plus what this
    // process recorded and has not written yet. A period that ended starts a new one.
    double spend(const Limits& l, TimeMs now);
    TimeMs reset_at() const;
    void add_spend(double usd);
    void written(double usd);                          // the writer stored that much
    void stored(double spend, TimeMs reset_at);        // the store's value (start, refresh)

private:
    void roll_window(TimeMs now);
    void roll_period(const Limits& l, TimeMs now);

    std::atomic<int64_t> in_flight_{0};
    mutable std::mutex mu_;
    int64_t minute_ = -1;
    int64_t requests_ = 0;
    int64_t tokens_ = 0;
    double stored_spend_ = 0;  // as last read or written
    double pending_ = 0;       // recorded here, not yet written
    TimeMs reset_at_ = 0;
};
using UsagePtr = std::shared_ptr<Usage>;

}  // namespace tailgate::keys
