#include "control/control_plane.hpp"
#include "common/api_error.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

namespace tailgate::control {

namespace {

int64_t wall_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string origin_name() {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
    return std::string(host) + ":" + std::to_string(::getpid());
}

// The log over a (re-read) file; changes that no longer apply are skipped
// (e.g. an update of a deployment the file no longer has), with a warning.
Effective replay(const config::Config& file, std::vector<Change>& log) {
    Effective e;
    e.config = std::make_shared<const config::Config>(file);
    std::vector<Change> kept;
    for (auto& c : log) {
        try {
            e = apply_change(e, c);
            kept.push_back(std::move(c));
        } catch (const config::ConfigError& err) {
            spdlog::warn("config revision {} ({} {}) no longer applies and is skipped: {}", c.revision, c.op, c.target,
                         err.what());
        }
    }
    log = std::move(kept);
    return e;
}

// Once per reload: what general_settings did; never a value (the master key is one).
void log_general(const GeneralChanges& g, const std::string& path) {
    auto join = [](const std::vector<std::string>& keys) {
        std::string s;
        for (const auto& k : keys) s += (s.empty() ? "" : ", ") + k;
        return s;
    };
    if (!g.live.empty()) spdlog::info("config reload: applied {}", join(g.live));
    for (const auto& key : g.requires_restart)
        spdlog::warn("config reload: {}: requires restart: {} (the running value stays until then)", path, key);
}

}  // namespace


ControlPlane::ControlPlane(std::string config_path, std::shared_ptr<const config::Config> file, StorePtr store)
    : path_(std::move(config_path)), store_(std::move(store)), file_(std::move(file)) {}

GenerationPtr ControlPlane::start(Publish publish) {
    std::lock_guard lk(mu_);
    publish_ = std::move(publish);
    uint64_t rev = 0;
    for (auto& c : store_->load()) {
        rev = std::max(rev, c.revision);
        if (c.op != "file.reload") log_.push_back(std::move(c));
    }
    if (!log_.empty()) spdlog::info("state store {}: re-applying {} admin change(s) over {}", store_->where(),
                                    log_.size(), path_);
    effective_ = replay(*file_, log_);
    current_ = build_generation(effective_.config, rev, nullptr, effective_.drained, series_, fleet_);
    revision_.store(rev);
    // The fleet's log learns every change this replica has (a Redis that lost
    // its data is seeded again; one that has them ignores the copies).
    if (fleet_)
        for (const auto& c : log_) fleet_->publish_revision(fleet::Revision{c.revision, change_json(c)});
    publish_(current_);
    return current_;
}

// Builds the generation `next` describes; the error text when it cannot be.
std::optional<std::string> ControlPlane::build(const Effective& next, uint64_t revision, GenerationPtr& out) const {
    try {
        out = build_generation(next.config, revision, current_.get(), next.drained, series_, fleet_);
        return std::nullopt;
    } catch (const std::exception& e) {  // a plugin refused to load or its args
        return std::string(e.what());
    }
}

void ControlPlane::commit(GenerationPtr gen, Effective next, uint64_t revision) {
    if (gen) {
        publish_(gen);
        current_ = std::move(gen);
    }
    effective_ = std::move(next);
    revision_.store(revision);
}

Outcome ControlPlane::reload(const std::string& who) {
    std::lock_guard lk(mu_);
    Outcome out;
    std::shared_ptr<const config::Config> file;
    try {
        config::Config loaded = config::load_file(path_);
        out.general = reconcile_general(effective_.config->general, loaded.general);
        file = std::make_shared<const config::Config>(std::move(loaded));
    } catch (const std::exception& e) {
        out.status = 400;
        out.error = e.what();
        spdlog::error("config reload ({}) refused, the running config stays (revision {}): {}", who, revision_.load(),
                      out.error);
        record(false, out.error);
        ++status_.reloads_failed;
        return out;
    }
    std::vector<Change> log = log_;
    Effective next = replay(*file, log);
    // In a fleet, revision numbers belong to the fleet's log of admin changes;
    // each replica reloads its own file, so a reload takes none.
    const uint64_t rev = revision_.load() + (fleet_ ? 0 : 1);
    GenerationPtr gen;
    if (auto err = build(next, rev, gen)) {
        out.status = 400;
        out.error = *err;
        spdlog::error("config reload ({}) refused, the running config stays (revision {}): {}", who, revision_.load(),
                      out.error);
    } else {
        commit(std::move(gen), std::move(next), rev);
        file_ = std::move(file);
        log_ = std::move(log);
        out.ok = true;
        out.revision = rev;
        Change c{rev, wall_ms(), origin_name(), "", "file.reload", "", "{\"file\":" + json_quote(path_) + "}"};
        try {
            if (!fleet_) store_->append(c);
        } catch (const std::exception& e) {
            spdlog::error("{}", e.what());  // the reload itself took effect; only its log row is missing
        }
        for (const auto& w : file_->warnings) spdlog::warn("config: {}", w);
        spdlog::info("config reloaded ({}): revision {}, {} deployment(s)", who, rev,
                     current_->config->deployments.size());
        log_general(out.general, path_);
    }
    record(out.ok, out.ok ? "ok" : out.error);
    ++(out.ok ? status_.reloads_ok : status_.reloads_failed);
    return out;
}

Outcome ControlPlane::apply(Change c) {
    std::lock_guard lk(mu_);
    Outcome out;
    c.revision = revision_.load() + 1;
    c.at_ms = wall_ms();
    c.origin = fleet_ ? fleet_->replica() : origin_name();
    if (auto refused = fleet_revision(c)) {
        out.status = 503;
        out.error = *refused;
        record(false, out.error);
        ++status_.changes_refused;
        return out;
    }
    Effective next;
    try {
        next = apply_change(effective_, c);
    } catch (const config::ConfigError& e) {
        out.status = std::string(e.what()).find("no deployment with id") != std::string::npos ? 404 : 400;
        out.error = e.what();
        record(false, out.error);
        ++status_.changes_refused;
        return out;
    }
    if (c.op == "deployment.add") c.target = next.config->deployments.back().id;
    out.target = c.target;
    const bool drain_only = c.op == "deployment.drain" || c.op == "deployment.undrain";
    GenerationPtr gen;  // none for a drain: the flag is host state of the running generation
    if (!drain_only) {
        if (auto err = build(next, c.revision, gen)) {
            out.status = 400;
            out.error = *err;
        }
    }
    if (out.error.empty()) {
        try {
            store_->append(c);  // persisted before it takes effect: an answered change survives a crash
        } catch (const std::exception& e) {
            out.status = 500;
            out.error = e.what();
        }
    }
    if (out.error.empty()) {
        if (drain_only)
            if (auto i = current_->router->index_of(c.target))
                current_->router->set_drained(*i, c.op == "deployment.drain");
        commit(std::move(gen), std::move(next), std::max(c.revision, revision_.load()));
        log_.push_back(c);
        out.ok = true;
        out.revision = c.revision;
        if (fleet_) fleet_->publish_revision(fleet::Revision{c.revision, change_json(c)});
    }
    spdlog::info("config revision {}: {}{}{} by key {}{}", c.revision, c.op, c.target.empty() ? "" : " ",
                 c.target, c.key_hash, out.ok ? "" : " (refused)");
    record(out.ok, out.ok ? "ok" : out.error);
    ++(out.ok ? status_.changes_ok : status_.changes_refused);
    return out;
}

// An admin change in a fleet must reach every replica: its number comes from
// the fleet's log (INCR in Redis), so concurrent changes on two replicas are
// ordered the same way everywhere. Without Redis the change is refused rather
// than applied on one replica only.
std::optional<std::string> ControlPlane::fleet_revision(Change& c) {
    if (!fleet_) return std::nullopt;
    if (auto rev = fleet_->allocate_revision(std::chrono::milliseconds(2000))) {
        c.revision = std::max<uint64_t>(*rev, 1);
        return std::nullopt;
    }
    return std::string("shared state (Redis) is unavailable: a config change must reach every replica of the fleet, "
                       "so it was not applied; try again when tailgate_shared_state_up is 1");
}

bool ControlPlane::has_revision(uint64_t rev) const {
    return std::any_of(log_.begin(), log_.end(), [rev](const Change& c) { return c.revision == rev; });
}

// `fresh` (sorted, none applied yet) over the running state: in order when
// they all come after what is applied, else a replay of the whole log from
// the file (a revision arrived after a later one).
void ControlPlane::merge_fleet(std::vector<Change> fresh, Effective& next, std::vector<Change>& log) const {
    log = log_;
    const uint64_t last = log.empty() ? 0 : log.back().revision;
    if (fresh.front().revision > last) {
        next = effective_;
        for (auto& c : fresh) {
            try {
                next = apply_change(next, c);
                log.push_back(std::move(c));
            } catch (const config::ConfigError& e) {
                spdlog::warn("config revision {} ({} {}) from {} does not apply here and is skipped: {}", c.revision,
                             c.op, c.target, c.origin, e.what());
            }
        }
    } else {
        for (auto& c : fresh) log.push_back(std::move(c));
        std::stable_sort(log.begin(), log.end(), [](const Change& a, const Change& b) { return a.revision < b.revision; });
        next = replay(*file_, log);
    }
}

void ControlPlane::apply_fleet(const std::vector<fleet::Revision>& revisions) {
    std::lock_guard lk(mu_);
    std::vector<Change> fresh;
    for (const auto& r : revisions) {
        auto c = change_from_json(r.json);
        if (!c || c->revision != r.number) {
            spdlog::warn("config revision {} from the fleet's log is unreadable and is skipped", r.number);
            continue;
        }
        if (c->op == "file.reload" || has_revision(c->revision)) continue;
        fresh.push_back(std::move(*c));
    }
    if (fresh.empty()) return;
    std::sort(fresh.begin(), fresh.end(), [](const Change& a, const Change& b) { return a.revision < b.revision; });
    for (const auto& c : fresh) {
        try {
            store_->append(c);  // this replica's copy of the fleet's log (a restart replays it)
        } catch (const std::exception& e) {
            spdlog::debug("{}", e.what());
        }
    }
    const uint64_t top = std::max(revision_.load(), fresh.back().revision);
    Effective next;
    std::vector<Change> log;
    merge_fleet(fresh, next, log);
    GenerationPtr gen;
    if (auto err = build(next, top, gen)) {
        spdlog::error("config revisions up to {} from the fleet do not build here; the running config stays: {}", top,
                      *err);
        record(false, *err);
        ++status_.changes_refused;
        return;
    }
    commit(std::move(gen), std::move(next), top);
    log_ = std::move(log);
    for (const auto& c : fresh)
        spdlog::info("config revision {}: {}{}{} from replica {}", c.revision, c.op, c.target.empty() ? "" : " ",
                     c.target, c.origin);
    record(true, "ok");
    ++status_.changes_ok;
}

void ControlPlane::record(bool ok, const std::string& result) {
    status_.last_result = ok ? "ok" : result;
    status_.last_at_ms = wall_ms();
}

GenerationPtr ControlPlane::current() const {
    std::lock_guard lk(mu_);
    return current_;
}

Effective ControlPlane::effective() const {
    std::lock_guard lk(mu_);
    return effective_;
}

ControlPlane::Status ControlPlane::status() const {
    std::lock_guard lk(mu_);
    return status_;
}

std::string ControlPlane::render_metrics() const {
    const Status s = status();
    std::string out;
    out += "# HELP tailgate_config_reloads_total Config file reloads (SIGHUP, POST /admin/reload) by result.\n";
    out += "# TYPE tailgate_config_reloads_total counter\n";
    out += "tailgate_config_reloads_total{result=\"success\"} " + std::to_string(s.reloads_ok) + "\n";
    out += "tailgate_config_reloads_total{result=\"failure\"} " + std::to_string(s.reloads_failed) + "\n";
    out += "# HELP tailgate_config_changes_total Admin API config changes by result.\n";
    out += "# TYPE tailgate_config_changes_total counter\n";
    out += "tailgate_config_changes_total{result=\"success\"} " + std::to_string(s.changes_ok) + "\n";
    out += "tailgate_config_changes_total{result=\"failure\"} " + std::to_string(s.changes_refused) + "\n";
    out += "# HELP tailgate_config_revision Revision of the running config (file reloads and admin changes).\n";
    out += "# TYPE tailgate_config_revision gauge\n";
    out += "tailgate_config_revision " + std::to_string(revision()) + "\n";
    return out;
}

}  // namespace tailgate::control
