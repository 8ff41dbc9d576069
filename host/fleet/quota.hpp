// Quota leases: strict fleet-wide rpm/tpm without a request ever waiting on
// Redis. Each replica holds a small local allowance per limited deployment
// and kind (requests, tokens), granted atomically by Redis (the grant script
// in syncer.cpp: a sorted set of grants over the sliding 60 s window hands
// out k <= limit - used), refilled in the background before it runs out
// (sized from this replica's recent rate). A request is admitted only against
// the local allowance; an empty allowance means "at the limit".
//
// This class is the bookkeeping alone, with the time passed in (unit tests
// inject a clock); Link wraps it with a mutex and the steady clock, and the
// Syncer turns refills() / expired() into Redis commands and feeds the
// replies back (granted()).
//
// States of one (deployment, kind):
//   cold   nothing heard from Redis since (re)connecting, or idle for longer
//          than a lease: take() answers Local (the caller counts alone, as
//          without Redis) and what is used is kept as debt, told to Redis with
//          the first refill (so the fleet's count includes it);
//   warm   take() answers from the grants held: Granted, or Exhausted when
//          they are spent (refills go on in the background; Redis may answer
//          0 when the fleet is at its limit, with the time until a slot frees).
// Redis unreachable (set_active(false)): every answer is Local, what is used
// becomes debt (the last 60 s of it is reported on return: reconciliation).
//
// Strictness: a grant made at Redis time t for k units counts in the window
// until t + lease + 60 s; locally its units are usable only until
// sent + 0.9 * lease (sent <= t), so every request started under it lies
// within the span Redis counts it. Units not used when a grant expires are
// given back (the grant's count is lowered to what was used).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace tailgate::fleet {

enum class QuotaKind : uint8_t { Requests = 0, Tokens = 1 };
enum class QuotaAnswer : uint8_t {
    Local,      // no fleet-wide answer (alone, Redis down, cold): count locally
    Granted,    // taken from the local allowance (or, for a peek, some is left)
    Exhausted,  // none left: treat the deployment as at its limit
};

// One ask for Redis.
struct QuotaRefill {
    std::string deployment;
    QuotaKind kind = QuotaKind::Requests;
    int64_t limit = 0;
    int64_t want = 0;  // units asked for (>= 0)
    int64_t debt = 0;  // units used that Redis has not counted yet
    uint64_t seq = 0;  // names the grant (and the debt) in Redis
    uint64_t epoch = 0;
};

// A grant that expired with units unused: its count in Redis goes down to `used`.
struct QuotaReturn {
    std::string deployment;
    QuotaKind kind = QuotaKind::Requests;
    uint64_t seq = 0;
    int64_t granted = 0;
    int64_t used = 0;
};

class QuotaBook {
public:
    using Clock = std::chrono::steady_clock;
    using Time = Clock::time_point;
    using Millis = std::chrono::milliseconds;

    // lease: how long a grant stays usable (Redis counts it for lease + 60 s);
    // horizon: how far ahead the allowance should last at the recent rate
    // (a few sync intervals: the time a refill takes to come back).
    QuotaBook(Millis lease, Millis horizon);

    // ---- the request path ----
    // Takes n units (n == 0: "is any left?", takes nothing).
    QuotaAnswer take(std::string_view id, QuotaKind k, int64_t limit, int64_t n, Time now);
    // n > 0: n more units were used (tokens after the fact, an attempt started
    // without a reservation): from the allowance, beyond it as debt.
    // n < 0: -n units taken earlier were not used: back into the allowance.
    void settle(std::string_view id, QuotaKind k, int64_t limit, int64_t n, Time now);
    // When Exhausted: ms until Redis expects a slot to free (-1 unknown).
    int64_t free_in_ms(std::string_view id, QuotaKind k, Time now) const;

    // ---- the synchroniser ----
    // A limit of the running config: asked for at once and kept warm while
    // connected (one unit held, renewed every lease), so a replica's first
    // request after a (re)connect or a quiet spell finds an answer.
    void prime(std::string_view id, QuotaKind k, int64_t limit, Time now);
    // The running config's limits, all of them (after a reload): those not in
    // `limits` stop being kept warm (and are forgotten once idle).
    struct Limit {
        std::string deployment;
        QuotaKind kind;
        int64_t limit;
    };
    void prime_all(const std::vector<Limit>& limits, Time now);
    void set_active(bool on, Time now);
    bool active() const { return active_; }
    // Asks to send now (each marked pending until granted() or set_active(false)).
    std::vector<QuotaRefill> refills(Time now);
    // Redis's answer to a refill sent at `sent`: `granted` units (0 at the
    // limit), `free_in_ms` until the oldest grant leaves the window, and how
    // many replicas asked for this limit lately (the allowance held is at
    // least limit / (20 x replicas): a sudden burst far below the limit is not
    // refused while the rate-sized refills catch up; at most 5 % of the limit
    // sits idle in the fleet, and goes back when its lease ends).
    void granted(const QuotaRefill& r, int64_t granted, int64_t free_in_ms, int64_t replicas, Time sent, Time now);
    // Grants that expired with units unused (removed here; give them back).
    std::vector<QuotaReturn> expired(Time now);

    // For tests and /metrics: units usable now (sum over live grants), or -1 when not warm.
    int64_t allowance(std::string_view id, QuotaKind k, Time now) const;

private:
    struct Grant {
        uint64_t seq = 0;
        int64_t granted = 0;
        int64_t left = 0;
        Time usable_until{};
    };
    struct Entry {
        int64_t limit = 0;
        std::deque<Grant> grants;
        std::deque<std::pair<Time, int64_t>> debt;  // used, not told to Redis: (second, units)
        bool pending = false;
        bool warm = false;
        bool primed = false;
        int64_t replicas = 1;  // asking for this limit, as Redis last counted them
        Time last_reply{};
        Time last_use{};
        Time next_ask{};
        Time exhausted_at{};
        int64_t free_in_ms = -1;
        int64_t sent_debt = 0;  // debt in the pending refill
        // Recent rate: units used in the current and the previous slot.
        Time slot{};
        int64_t cur = 0, prev = 0;
    };
    using Table = std::map<std::string, Entry, std::less<>>;

    Entry& entry(std::string_view id, QuotaKind k, int64_t limit);
    bool warm(const Entry& e, Time now) const;
    void count_use(Entry& e, int64_t n, Time now) const;
    void add_debt(Entry& e, int64_t n, Time now) const;
    int64_t debt_of(Entry& e, Time now) const;  // drops what left the window
    double rate_per_s(const Entry& e, Time now) const;
    static int64_t usable(const Entry& e, Time now);
    // Takes up to n units from the live grants, oldest first; returns what they could not cover.
    static int64_t draw(Entry& e, int64_t n, Time now);

    const Millis lease_;
    const Millis horizon_;
    bool active_ = false;
    uint64_t epoch_ = 0;
    uint64_t seq_ = 0;
    std::array<Table, 2> tables_;
};

}  // namespace tailgate::fleet
