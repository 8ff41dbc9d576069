// The control plane: owns the revision log and builds generations from the
// config file plus the log. Every change (a reload, an admin call) builds a
// complete new generation off the request path and publishes it only when it
// validated; otherwise the running one stays. Calls are serialised by one
// mutex: they are rare, and never on an Asio thread (admin handlers run on
// Poco's pool, reloads on the signal thread).
#pragma once

#include "common/key_hash.hpp"

#include "control/general_reload.hpp"
#include "control/generation.hpp"
#include "control/overlay.hpp"
#include "control/store.hpp"
#include "fleet/link.hpp"

#include <atomic>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

namespace tailgate::control {

struct Outcome {
    bool ok = false;
    int status = 200;   // HTTP status for an admin caller
    std::string error;  // "file:line: key.path: message" lines when !ok
    uint64_t revision = 0;
    std::string target;  // the deployment a change concerned
    GeneralChanges general;  // a reload: general_settings applied, and those that need a restart
};

class ControlPlane {
public:
    using Publish = std::function<void(GenerationPtr)>;

    // `file` is the config as loaded at start (already validated).
    ControlPlane(std::string config_path, std::shared_ptr<const config::Config> file, StorePtr store);

    // A fleet (shared state through Redis, issue 18): routers get the link,
    // admin changes take their revision numbers from the fleet's log and are
    // published to it. Set before start().
    void set_fleet(fleet::LinkPtr link) { fleet_ = std::move(link); }

    // Replays the store over the file and builds the first generation. A
    // stored change that no longer applies is skipped with a warning.
    GenerationPtr start(Publish publish);

    // Revisions other replicas published (fleet/syncer.hpp), applied in
    // revision order with the same validation as an admin change; those
    // already applied are skipped, one that arrives after a later one makes
    // the log replay from the file. Never on an Asio thread (plugins load).
    void apply_fleet(const std::vector<fleet::Revision>& revisions);

    // Re-reads the config file (and its includes), re-applies the log.
    Outcome reload(const std::string& who);
    // Validates, persists and publishes one admin change (revision assigned here).
    Outcome apply(Change c);

    GenerationPtr current() const;
    Effective effective() const;
    uint64_t revision() const { return revision_.load(std::memory_order_relaxed); }
    std::string store_location() const { return store_->where(); }

    struct Status {
        uint64_t reloads_ok = 0, reloads_failed = 0, changes_ok = 0, changes_refused = 0;
        std::string last_result = "none";  // "ok" or the error
        int64_t last_at_ms = 0;
    };
    Status status() const;
    // tailgate_config_reloads_total{result}, tailgate_config_changes_total{result}, tailgate_config_revision.
    std::string render_metrics() const;

private:
    std::optional<std::string> build(const Effective& next, uint64_t revision, GenerationPtr& out) const;
    void commit(GenerationPtr gen, Effective next, uint64_t revision);
    void record(bool ok, const std::string& result);
    // Fleet mode: a revision number from the fleet's log, or the refusal.
    std::optional<std::string> fleet_revision(Change& c);
    bool has_revision(uint64_t rev) const;
    void merge_fleet(std::vector<Change> fresh, Effective& next, std::vector<Change>& log) const;

    const std::string path_;
    StorePtr store_;
    Publish publish_;
    mutable std::mutex mu_;
    std::shared_ptr<const config::Config> file_;  // the last file that validated
    std::vector<Change> log_;                     // applied changes (deployment/router ops)
    Effective effective_;
    GenerationPtr current_;
    MetricStores series_;  // every generation's series: a reload resets no counter
    std::atomic<uint64_t> revision_{0};
    Status status_;
    fleet::LinkPtr fleet_;  // null: a process alone
};


}  // namespace tailgate::control
