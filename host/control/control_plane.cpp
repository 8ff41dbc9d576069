#include "control/control_plane.hpp"
#include "common/api_error.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

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
    current_ = build_generation(effective_.config, rev, nullptr, effective_.drained, series_);
    revision_.store(rev);
    publish_(current_);
    return current_;
}

// Builds the generation `next` describes; the error text when it cannot be.
std::optional<std::string> ControlPlane::build(const Effective& next, uint64_t revision, GenerationPtr& out) const {
    try {
        out = build_generation(next.config, revision, current_.get(), next.drained, series_);
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
    const uint64_t rev = revision_.load() + 1;
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
            store_->append(c);
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
    c.origin = origin_name();
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
        commit(std::move(gen), std::move(next), c.revision);
        log_.push_back(c);
        out.ok = true;
        out.revision = c.revision;
    }
    spdlog::info("config revision {}: {}{}{} by key {}{}", c.revision, c.op, c.target.empty() ? "" : " ",
                 c.target, c.key_hash, out.ok ? "" : " (refused)");
    record(out.ok, out.ok ? "ok" : out.error);
    ++(out.ok ? status_.changes_ok : status_.changes_refused);
    return out;
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
