// What the request path and the control plane see of the shared state: a
// thread-safe, non-blocking exchange point between them and the background
// synchroniser (fleet/syncer.hpp), which alone talks to Redis.
//
// Every call here is a few instructions under a short mutex: the request
// path buffers (attempt outcomes, health changes), and reads answers the
// synchroniser prepared (probe leases, quota blocks). No call ever waits for
// Redis. When Redis is unreachable (active() false) the answers are those of
// a process alone: the probe lease is always granted, nothing is buffered.
//
// For other features (issue 20's key cache and fleet-wide key limits):
// publish()/subscribe() carry small messages to every other replica within
// about one sync_interval; on_round() lets a feature publish what it batched
// once per round, and on_state() tells it when the channel went down or up;
// quota_take()/quota_settle() hand out units of
// a fleet-wide limit over a sliding minute (quota leases, fleet/quota.hpp:
// the rpm/tpm of deployments; the same would serve key limits).
#pragma once

#include "common/vocabulary.hpp"
#include "fleet/quota.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tailgate::fleet {

int64_t wall_ms();

// One attempt outcome as replicas exchange it (the request id stays home).
struct Outcome {
    EventType type = EventType::Started;
    uint32_t attempt = 0;
    Launch launch = Launch::AtStart;
    bool stream = false;
    double elapsed_ms = 0;
    double ttft_ms = -1;
    ErrorClass error_class = ErrorClass::None;
    int http_status = 0;
    int64_t retry_after_ms = -1;
    int64_t prompt_tokens = -1;
    int64_t completion_tokens = -1;
    CancelReason cancel_reason = CancelReason::None;
    int64_t at_wall_ms = 0;  // when it happened, wall clock (ms since the epoch)
};

// An outcome another replica reported.
struct RemoteOutcome {
    std::string deployment;  // deployment identity (model_info.id)
    std::string replica;     // who saw it
    Outcome outcome;
};

// A config revision as the fleet's log holds it (control/ gives the JSON meaning).
struct Revision {
    uint64_t number = 0;
    std::string json;
};

// A message of publish()/subscribe().
struct Message {
    std::string topic;
    std::string payload;
};

// What the request path queued since the synchroniser last looked.
struct Outbox {
    std::vector<std::string> deployments;  // the ids `events` index
    struct Event {
        uint32_t deployment;
        Outcome outcome;
    };
    std::vector<Event> events;
    std::vector<std::pair<std::string, int64_t>> cooldowns;  // id, until (wall ms); 0 = recovered
    std::vector<std::string> lease_wanted;                   // probe leases to ask for
    std::vector<std::string> lease_released;                 // probe leases to give back
    std::vector<Revision> revisions;                          // to publish
    std::vector<Message> messages;
    uint64_t dropped = 0;  // events not buffered (buffer full)
    bool empty() const {
        return events.empty() && cooldowns.empty() && lease_wanted.empty() && lease_released.empty() &&
               revisions.empty() && messages.empty();
    }
};

class Link {
public:
    // quota_lease: how long a quota grant stays usable; quota_horizon: how
    // long the local allowance should last at the recent rate (a refill's round trip, with margin).
    Link(std::string replica_id, std::chrono::milliseconds probe_lease,
         std::chrono::milliseconds quota_lease = std::chrono::milliseconds(5000),
         std::chrono::milliseconds quota_horizon = std::chrono::milliseconds(400));
    Link(const Link&) = delete;
    Link& operator=(const Link&) = delete;

    const std::string& replica() const { return replica_; }
    // Connected and synchronising; false: every answer is the local one.
    bool active() const { return active_.load(std::memory_order_acquire); }

    // ---- the request path (any thread, never blocks) ----
    void record(std::string_view deployment, const Outcome& o);
    // May this replica send the half-open probe of `deployment` now? Granted
    // when it holds the lease, or when Redis is unreachable; otherwise the
    // synchroniser asks for the lease and a later request may get it.
    bool probe_lease(std::string_view deployment);
    // This replica's health strategy left half-open (or entered a cooldown,
    // or recovered): the lease goes back, and late replicas learn the cooldown.
    void health_changed(std::string_view deployment, Health to, int64_t cooldown_until_wall_ms);

    // Quota leases (fleet/quota.hpp): take `n` units of deployment `id`'s
    // fleet-wide `limit` from this replica's allowance (n == 0: is any left?).
    // Local: no fleet answer (Redis down, or not heard yet): count alone.
    // Exhausted: at the limit; *free_in_ms (if given) says when a slot may free (-1 unknown).
    QuotaAnswer quota_take(std::string_view id, QuotaKind k, int64_t limit, int64_t n, int64_t* free_in_ms = nullptr);
    // n > 0: used beyond what was taken (told to Redis with the next refill);
    // n < 0: taken but not used, back into the allowance.
    void quota_settle(std::string_view id, QuotaKind k, int64_t limit, int64_t n);
    // Units usable now, -1 when there is no fleet answer (tests, state).
    int64_t quota_allowance(std::string_view id, QuotaKind k) const;

    // ---- other features: small messages to every other replica ----
    void publish(std::string topic, std::string payload);
    using Subscriber = std::function<void(const Message&)>;
    // `fn` runs on the synchroniser's thread: quick, no blocking.
    void subscribe(std::string topic, Subscriber fn);
    // `fn` runs at the start of every synchronisation round (the synchroniser's
    // thread, Redis connected), before the outbox is taken: a feature that
    // batches (fleet-wide key usage) publishes what it gathered since the last.
    void on_round(std::function<void()> fn);
    // `fn(active)` runs when the link goes up or down (transitions only; the
    // synchroniser's thread). Messages sent while down are lost: a feature
    // that relies on them resynchronises when it comes back up.
    void on_state(std::function<void(bool)> fn);

    // ---- the control plane (admin threads, may wait) ----
    // A fleet-wide revision number for a new change; nullopt when Redis does
    // not answer within `timeout` (the change must then be refused).
    std::optional<uint64_t> allocate_revision(std::chrono::milliseconds timeout);
    // Publishes a revision applied here (also every revision of the local log
    // at start, so a Redis that lost its data is seeded again).
    void publish_revision(Revision r);

    // ---- the synchroniser ----
    void set_active(bool on);
    Outbox take();
    void lease_granted(const std::string& deployment, std::chrono::steady_clock::time_point until);
    void deliver(const Message& m) const;
    // Revisions this replica knows (published or applied), for re-seeding Redis.
    std::vector<Revision> known_revisions() const;
    // Allocation requests waiting for an INCR.
    std::vector<std::shared_ptr<std::promise<uint64_t>>> take_allocations();
    void set_wake(std::function<void()> wake);
    void quota_prime_all(const std::vector<QuotaBook::Limit>& limits);
    std::vector<QuotaRefill> quota_refills(std::chrono::steady_clock::time_point now);
    std::vector<QuotaReturn> quota_expired(std::chrono::steady_clock::time_point now);
    void quota_granted(const QuotaRefill& r, int64_t granted, int64_t free_in_ms, int64_t replicas,
                       std::chrono::steady_clock::time_point sent);
    std::chrono::milliseconds quota_lease() const { return quota_lease_; }

    // Answers of quota_take (tailgate_shared_state_quota_answers_total).
    struct QuotaCounts {
        std::atomic<uint64_t> granted{0}, exhausted{0}, local{0};
        std::atomic<uint64_t> units_granted{0}, refills{0}, returns{0};
    };
    QuotaCounts& quota_counts() const { return quota_counts_; }

private:
    uint32_t intern(std::string_view id);  // under mu_

    const std::string replica_;
    const std::chrono::milliseconds lease_time_;
    std::atomic<bool> active_{false};
    mutable std::mutex mu_;
    Outbox out_;
    std::map<std::string, uint32_t, std::less<>> ids_;  // ids of out_.deployments
    struct Lease {
        std::chrono::steady_clock::time_point held_until{};
        bool wanted = false;
    };
    std::map<std::string, Lease, std::less<>> leases_;
    std::map<uint64_t, std::string> known_;  // revision -> JSON
    std::vector<std::shared_ptr<std::promise<uint64_t>>> allocations_;
    std::map<std::string, std::vector<Subscriber>, std::less<>> subscribers_;
    std::vector<std::function<void()>> round_hooks_;
    std::vector<std::function<void(bool)>> state_hooks_;
    std::function<void()> wake_;
    const std::chrono::milliseconds quota_lease_;
    QuotaBook quotas_;  // under mu_
    mutable QuotaCounts quota_counts_;
};

using LinkPtr = std::shared_ptr<Link>;

}  // namespace tailgate::fleet
