// The virtual keys of a gateway: authentication from memory, the store behind
// it, and the writer that batches spend into it.
//
// Threads: authenticate() runs on a front-end thread and answers from the
// cache; only a key not seen before waits for one lookup on the database's
// pool (concurrent requests with the same new key share it). record() runs
// wherever a response ends (an Asio thread) and only appends to a queue. One
// maintenance thread of its own writes the queue every flush interval, resets
// ended budget periods, and every refresh interval reads what other replicas
// changed (keys, teams, spend) into the cache. A crash loses at most the spend
// of the last flush interval (general_settings.proxy_batch_write_at).
#pragma once

#include "common/api_error.hpp"
#include "keys/cache.hpp"
#include "keys/fleet.hpp"
#include "keys/policy.hpp"
#include "keys/spend.hpp"
#include "store/database.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace tailgate::keys {

struct Settings {
    std::string master_key;  // "" : no authentication at all
    std::chrono::milliseconds flush_interval{1000};
    std::chrono::milliseconds refresh_interval{5000};
    std::chrono::milliseconds lookup_timeout{5000};  // a new key waits this long for the database
    bool spend_logs = true;
    size_t max_queued_events = 1'000'000;  // unwritten spend while the database is down
};

struct Auth {
    CallerPtr caller;              // set when authenticated
    std::optional<ApiError> error;  // 401, or 503 when a new key cannot be looked up
};

class KeyService {
public:
    // Applies the schema migrations (throws store::DbError when the database
    // cannot be reached or is newer than this binary) and starts the writer.
    KeyService(store::DatabasePtr db, Settings s, FleetPtr fleet = nullptr);
    ~KeyService();  // writes what is queued

    // Joins a fleet (keys/fleet.hpp): changes invalidate the other replicas'
    // caches, usage is shared. Once, before traffic; the fleet's callbacks
    // must stop before this service goes.
    void attach_fleet(FleetPtr fleet);

    bool auth_enabled() const { return !settings_.master_key.empty(); }
    // The caller presenting `key`; checks standing (blocked, expired, budget).
    Auth authenticate(std::string_view key);
    bool is_master(const Caller& c) const { return c.master; }
    const CallerPtr& master() const { return master_; }
    // The master key's token: its spend is logged under it.
    const std::string& master_token() const { return master_token_; }

    // A finished attempt's cost: counted now, written with the next batch.
    void record(SpendEvent ev);
    // Tokens for tpm, counted when the usage is known (the winner's end).
    static void count_tokens(const Caller& c, int64_t tokens, TimeMs now);

    // Writes the queue now (tests, shutdown); false when the database refused.
    bool flush();
    // Reads other replicas' changes now.
    void refresh();

    // The management API's side (keys/key_api.cpp).
    store::Database& db() { return *db_; }
    KeyCache& cache() { return cache_; }
    // A key or team changed here: update this cache and tell the fleet.
    void changed_key(const KeyRecord& k, const std::optional<TeamRecord>& team);
    void removed_key(const std::string& token);
    // Keeps the writer from writing while held (a key moving to a new token).
    std::unique_lock<std::mutex> hold_writer() { return std::unique_lock<std::mutex>(flush_mu_); }
    // A regenerated key: usage and spend not yet written follow it to its new token.
    void regenerated_key(const std::string& old_token, const KeyRecord& k, const std::optional<TeamRecord>& team);
    void changed_team(const std::string& team_id, const std::optional<TeamRecord>& team);

    // Prometheus text: the store's health, the writer's queue, spend and budgets.
    // `live(deployment)`: whether that deployment is in the running config; the
    // spend of one removed is kept (continued if it comes back) but not shown,
    // as the gateway's own per-deployment series.
    std::string render_metrics(bool alias_labels, const std::function<bool(const std::string&)>& live = {});
    bool database_available() const { return db_->available(); }
    const std::string& database_where() const { return db_->where(); }
    size_t queued_events() const;
    uint64_t lookups_from_database() const { return db_lookups_.load(std::memory_order_relaxed); }

private:
    struct Loaded {
        std::optional<KeyRecord> first;
        std::optional<TeamRecord> second;
    };
    Auth lookup(const std::string& token, TimeMs now);
    Auth standing(CallerPtr c, TimeMs now) const;
    void maintain();
    void apply_remote(const std::vector<KeyRecord>& keys, const std::vector<TeamRecord>& teams);
    void refresh_spend();
    void on_fleet_change(const FleetChange& ch);
    std::string collect_usage();                 // a fleet round: what changed here
    void receive_usage(std::string_view payload);  // another replica's round
    void render_store_metrics(std::string& out, const std::function<bool(const std::string&)>& live);
    void render_owner_metrics(std::string& out, bool alias_labels);

    store::DatabasePtr db_;
    Settings settings_;
    FleetPtr fleet_;
    KeyCache cache_;
    CallerPtr master_;
    std::string master_token_;

    std::mutex loading_mu_;
    std::unordered_map<std::string, std::shared_future<Loaded>> loading_;  // single flight per new key
    std::atomic<uint64_t> db_lookups_{0};

    mutable std::mutex queue_mu_;
    std::vector<SpendEvent> queue_;
    std::vector<SpendEvent> retry_;  // a batch the database refused, written first next time
    std::vector<UsagePtr> busy_;     // usages last reported with requests in flight (sent again)
    std::atomic<bool> resync_{false};  // the fleet channel is back: re-read changes now
    std::atomic<uint64_t> usage_sent_{0}, usage_received_{0}, fleet_changes_received_{0};
    std::atomic<uint64_t> dropped_{0}, write_failures_{0}, written_events_{0};
    std::atomic<size_t> writing_{0};  // events of the batch being written: taken from the queue, not yet committed
    std::atomic<TimeMs> last_write_{0};
    TimeMs watermark_ = 0;  // updated_at of the newest change read by refresh
    std::map<std::string, std::string> renamed_;  // regenerated: old token -> new (spend of requests in flight)
    std::mutex flush_mu_;    // one writer at a time (the thread, flush() from tests and shutdown)

    // Spend since start by model group, deployment and kind (Prometheus counters).
    mutable std::mutex totals_mu_;
    std::map<std::tuple<std::string, std::string, SpendKind>, double> totals_;

    std::mutex wake_mu_;
    std::condition_variable wake_;
    bool stopping_ = false;
    std::thread thread_;
};
using KeyServicePtr = std::shared_ptr<KeyService>;

}  // namespace tailgate::keys
