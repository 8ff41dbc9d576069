// What one key or team is using right now: its requests and tokens in the
// current minute, its requests in flight and its spend in the current budget
// period. Shared by every request of the key (or of the team's keys) and kept
// across updates of the record.
//
// With a fleet (Redis, keys/fleet.hpp) every count also holds what the other
// replicas reported: each change here marks the Usage in the cache's
// UsageOutbox, KeyService sends the deltas once per synchronisation round and
// adds the others' to remote counters (remote()). The request path never waits
// for that: the check is against what has arrived (see README, "fleet-wide").
#pragma once

#include "keys/budget.hpp"
#include "keys/records.hpp"

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tailgate::keys {

// Why a request over a limit was refused, and when to try again.
struct OverLimit {
    std::string what;        // "rpm_limit 10", "tpm_limit 1000", "max_parallel_requests 2"
    long retry_after_s = 1;  // until the minute window ends (parallel: 1)
};

class Usage;

// The usages changed since the last synchronisation round (fleet only).
class UsageOutbox {
public:
    void enable() { enabled_.store(true, std::memory_order_release); }
    bool enabled() const { return enabled_.load(std::memory_order_relaxed); }
    void add(std::shared_ptr<Usage> u);
    std::vector<std::shared_ptr<Usage>> take();

private:
    std::atomic<bool> enabled_{false};
    std::mutex mu_;
    std::vector<std::shared_ptr<Usage>> changed_;
};

// A key's or team's spend row in the store, as one statement read or wrote
// it. `seq` counts the row's spend writes and budget resets, so of two rows
// the one with the higher seq holds everything the other does: a view built
// on the newest row it has seen counts each write exactly once, whichever
// replica wrote it and in whatever order the reads, writes and reports came.
struct SpendRow {
    double spend = 0;
    TimeMs reset_at = 0;  // budget_reset_at_ms (0: none)
    int64_t seq = 0;      // 0: not from the store (a test, a record built in memory)
};

// What one replica counted for a key or team since its last report.
struct UsageDelta {
    std::string id;        // "k<token>" or "t<team id>"
    int64_t minute = 0;    // the UTC minute requests and tokens belong to
    int64_t requests = 0;
    int64_t tokens = 0;
    double spend = 0;        // recorded (counts at once)
    double written = 0;      // of its recorded spend, written to the store since
    SpendRow row;            // the row its last write returned (seq 0: it wrote nothing)
    int64_t in_flight = -1;  // its requests in flight now; -1: unchanged, not sent
};

// The fleet message of one round: a header line "<replica>\t<sent wall ms>",
// then one line per delta "<id>\t<minute>\t<requests>\t<tokens>\t<spend>\t<written>\t<row spend>\t<row reset
// at>\t<row seq>\t<in flight>"
// (tab, newline and backslash in an id escaped).
std::string encode_usage(const std::string& replica, TimeMs sent_at, const std::vector<UsageDelta>& deltas);
// False when `text` is not such a message.
bool decode_usage(std::string_view text, std::string& replica, TimeMs& sent_at, std::vector<UsageDelta>& out);

class Usage : public std::enable_shared_from_this<Usage> {
public:
    Usage() = default;
    // `id` names it to the fleet ("k<token>", "t<team id>").
    Usage(UsageOutbox* outbox, std::string id) : outbox_(outbox), id_(std::move(id)) {}

    // Counts the request against rpm (fixed one-minute windows, UTC minutes) and
    // checks tpm; nothing is counted when it is refused.
    std::optional<OverLimit> admit(const Limits& l, TimeMs now);
    // Takes back an admitted request's count (another check refused it).
    void unadmit(TimeMs now);
    // One more request in flight, unless that is over max_parallel.
    bool enter(const Limits& l);
    void leave() {
        in_flight_.fetch_sub(1, std::memory_order_relaxed);
        mark();
    }
    int64_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }
    void add_tokens(int64_t n, TimeMs now);

    // Spend in the current budget period: the newest store row seen, plus what
    // this process and the others recorded and have not written yet. A period
    // that ended starts a new one.
    double spend(const Limits& l, TimeMs now);
    TimeMs reset_at() const;
    void add_spend(double usd);
    // The writer stored `usd` of this process's spend; `row` is the row its
    // statement returned (nullopt: none, the amount is added to the last one).
    void written(double usd, const std::optional<SpendRow>& row = std::nullopt);
    // The store's row as a statement read it (start, refresh): taken unless a
    // newer one was seen already.
    void stored(const SpendRow& row);

    // ---- the fleet ----
    // What changed here since the last call (nullopt: nothing to send). A
    // nonzero in-flight count is sent again every `keepalive_ms` (others
    // forget a replica's count after kInFlightTtlMs).
    std::optional<UsageDelta> take_delta(TimeMs now, TimeMs keepalive_ms);
    // Another replica's report (sent at `sent_at`, wall ms).
    void remote(const std::string& replica, const UsageDelta& d, TimeMs sent_at, TimeMs now);
    void rename(std::string id);  // a regenerated key's usage under its new token
    static constexpr TimeMs kInFlightTtlMs = 3000;
    // A replica's unwritten spend not reported written for this long is
    // forgotten (it crashed: that spend is lost with it).
    static constexpr TimeMs kRemotePendingTtlMs = 30'000;

private:
    void roll_window(TimeMs now);
    void roll_period(const Limits& l, TimeMs now);
    bool adopt(const SpendRow& row);  // under mu_; false: older than what is held
    void mark();
    int64_t remote_in_flight(TimeMs now);  // under mu_

    std::atomic<int64_t> in_flight_{0};
    mutable std::mutex mu_;
    int64_t minute_ = -1;
    int64_t requests_ = 0;
    int64_t tokens_ = 0;
    double stored_spend_ = 0;  // the newest row's spend
    int64_t stored_seq_ = 0;   // and its seq
    double pending_ = 0;       // recorded here, not yet written
    TimeMs reset_at_ = 0;
    TimeMs rolled_from_ = 0;  // the reset_at of the last period that ended here
    bool seeded_ = false;

    // The fleet (all under mu_ but the flags).
    UsageOutbox* outbox_ = nullptr;
    std::string id_;
    std::atomic<bool> queued_{false};      // in the outbox
    std::atomic<bool> has_remote_if_{false};
    int64_t delta_requests_ = 0, delta_tokens_ = 0;  // this minute's, not yet sent
    double delta_spend_ = 0, delta_written_ = 0;
    SpendRow delta_row_;  // the row this process's last write returned, not yet sent
    int64_t sent_in_flight_ = 0;
    TimeMs sent_in_flight_at_ = 0;
    int64_t remote_requests_ = 0, remote_tokens_ = 0;  // the others', this minute
    // Other replicas' spend: what each recorded and has not written yet (so
    // in no row). What they wrote arrives as the row their write returned.
    struct RemotePending {
        double usd = 0;
        TimeMs at = 0;  // last report
    };
    std::map<std::string, RemotePending> remote_pending_;
    std::map<std::string, std::pair<int64_t, TimeMs>> remote_in_flight_;  // replica -> (count, received at)
};
using UsagePtr = std::shared_ptr<Usage>;

}  // namespace tailgate::keys
