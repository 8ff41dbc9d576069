// The background synchroniser: the only code that talks to Redis. Every
// sync_interval, on a strand of the gateway's io_context, one pipelined round
// sends what the Link buffered (a batch of attempt outcomes and messages as
// one stream entry, cooldown keys, probe leases, new revisions) and reads what
// the other replicas sent since the last round. A round still unanswered
// delays the next one (nothing piles up); replies older than command_timeout
// mean Redis is down: the connection is dropped, the Link goes inactive
// (replicas go on alone) and a reconnect follows with a growing backoff. Each
// reconnect resynchronises: revisions are re-seeded and caught up, cooldowns
// read back.
//
// Redis keys (prefix = shared_state.key_prefix):
//   <prefix>events          stream of batches (fleet/batch.hpp), trimmed to ~2,000 entries
//   <prefix>cool:<id>       a deployment's cooldown end (wall ms), expires with it
//   <prefix>probe:<id>      the replica holding a half-open deployment's probe lease
//   <prefix>rev:seq         the last revision number handed out (INCR)
//   <prefix>revisions       sorted set: score = revision, member = the change as JSON
//   <prefix>replica:<name>  heartbeat of each replica (expires after 5 s)
//   <prefix>quota:rpm:<id>  quota leases of a deployment's rpm (tpm: quota:tpm:<id>): sorted set of
//                           grants and debts over the sliding minute (fleet/quota.hpp, syncer.cpp)
#pragma once

#include "config/config.hpp"
#include "fleet/link.hpp"
#include "fleet/redis_connection.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace tailgate::fleet {

class Syncer : public std::enable_shared_from_this<Syncer> {
public:
    // What the others sent, delivered on the synchroniser's strand (an Asio
    // thread): quick handlers only; the revisions one must hand its work off.
    struct Inbound {
        std::function<void(const std::vector<RemoteOutcome>&)> outcomes;
        std::function<void(std::vector<Revision>)> revisions;
        std::function<void(const std::string& deployment, int64_t until_wall_ms)> cooldown;
        std::function<std::vector<std::string>()> deployment_ids;  // of the running config
        // The rpm/tpm limits of the running config (quota leases primed on
        // every connect, and again every second: a reload's changes follow).
        using Limit = QuotaBook::Limit;
        std::function<std::vector<Limit>()> quota_limits;
    };

    Syncer(boost::asio::io_context& io, const config::SharedStateSettings& settings, LinkPtr link, Inbound in);
    ~Syncer();

    // Starts connecting in the background; never waits for Redis.
    void start(uint64_t revision_cursor);
    // Closes the connection and stops the timers; waits (at most ~1 s) for the
    // strand to do it. Call while the io_context still runs.
    void stop();

    // tailgate_shared_state_* series (Prometheus text).
    std::string render_metrics() const;

private:
    void tick();
    void schedule_tick();
    void connect();
    void on_connect(const std::string& error);
    void lost(const std::string& why);
    void initial_sync();
    void round();
    void send(std::vector<std::string> argv, ReplyFn fn = {});
    void round_reply();
    void send_outbox(Outbox& box);
    void read_events(const redisReply* r);
    void read_revisions(const redisReply* r);
    void ask_lease(const std::string& id);
    void serve_allocations();
    void send_quotas(std::chrono::steady_clock::time_point now);
    std::string quota_member(uint64_t seq) const;
    std::string key(const std::string& suffix) const { return s_.key_prefix + suffix; }

    boost::asio::io_context& io_;
    Strand strand_;
    const config::SharedStateSettings s_;
    LinkPtr link_;
    Inbound in_;
    boost::asio::steady_timer timer_;
    std::shared_ptr<RedisConnection> conn_;
    std::shared_ptr<boost::asio::ssl::context> tls_ctx_;  // rediss://: made on the first connect
    bool connecting_ = false;
    bool synced_ = false;
    bool stopped_ = false;
    bool ever_up_ = false;
    bool down_logged_ = false;
    std::chrono::steady_clock::time_point next_connect_{};
    Millis backoff_{0};
    int round_pending_ = 0;  // replies of the current round still awaited
    std::string stream_cursor_;         // last stream entry read ("" before the first connect)
    uint64_t revision_cursor_ = 0;      // highest revision fetched
    std::chrono::steady_clock::time_point last_heartbeat_{};
    const std::string nonce_;  // this process's quota grants, apart from a restarted replica's of the same name

    // Metrics (read from other threads).
    std::atomic<bool> up_{false};
    std::atomic<int64_t> last_sync_ms_{0};  // steady ms of the last completed round; 0: never
    std::atomic<uint64_t> commands_{0}, rounds_{0}, connects_{0}, failures_{0};
    std::atomic<uint64_t> events_sent_{0}, events_received_{0}, events_dropped_{0}, events_stale_{0};
    std::atomic<uint64_t> revisions_received_{0};
    const int64_t started_ms_;
};

using SyncerPtr = std::shared_ptr<Syncer>;

}  // namespace tailgate::fleet
