// The gateway's side of the shared state (issue 18): the Link every router
// and the control plane use, the synchroniser on the gateway's io_context,
// and where what other replicas send goes: outcomes to the running router's
// strategies, revisions to the control plane (on a worker thread), cooldowns
// read back after a reconnect to the router's host-side filter. The key
// service joins through keys::Fleet (KeysOverLink below): key and team changes
// and per-key usage travel as Link messages.
#include "server/gateway_impl.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

namespace tailgate::server {

namespace {

constexpr const char* kKeyChanges = "keys.change";  // "k<token>" or "t<team id>"
constexpr const char* kKeyUsage = "keys.usage";     // keys::encode_usage()

// keys::Fleet over the shared-state Link.
class KeysOverLink final : public keys::Fleet {
public:
    explicit KeysOverLink(fleet::LinkPtr link) : link_(std::move(link)) {}

    const std::string& replica() const override { return link_->replica(); }

    void publish(const keys::FleetChange& ch) override {
        link_->publish(kKeyChanges, (ch.kind == keys::FleetChange::Kind::Key ? "k" : "t") + ch.id);
    }

    void subscribe(std::function<void(const keys::FleetChange&)> on_change) override {
        link_->subscribe(kKeyChanges, [fn = std::move(on_change)](const fleet::Message& m) {
            if (m.payload.size() < 2 || (m.payload[0] != 'k' && m.payload[0] != 't')) return;
            fn(keys::FleetChange{m.payload[0] == 'k' ? keys::FleetChange::Kind::Key : keys::FleetChange::Kind::Team,
                                 m.payload.substr(1)});
        });
    }

    void share_usage(std::function<std::string()> collect, std::function<void(std::string_view)> receive) override {
        fleet::Link* link = link_.get();  // the Link owns the hook: no cycle
        link_->on_round([link, collect = std::move(collect)] {
            if (std::string p = collect(); !p.empty()) link->publish(kKeyUsage, std::move(p));
        });
        link_->subscribe(kKeyUsage, [fn = std::move(receive)](const fleet::Message& m) { fn(m.payload); });
    }

    void on_reconnect(std::function<void()> fn) override {
        link_->on_state([fn = std::move(fn)](bool up) {
            if (up) fn();
        });
    }

private:
    fleet::LinkPtr link_;
};

std::string default_replica_id() {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
    return std::string(host) + ":" + std::to_string(::getpid());
}

}  // namespace

void Gateway::Impl::make_fleet() {
    const auto& s = cfg->shared;
    if (!s.enabled) return;
    // Quota leases: a grant is usable for 5 s; the allowance is sized to last
    // three sync rounds and a round trip at the recent rate.
    fleet_link = std::make_shared<fleet::Link>(s.replica_id.empty() ? default_replica_id() : s.replica_id,
                                               s.probe_lease, std::chrono::milliseconds(5000),
                                               3 * s.sync_interval + std::chrono::milliseconds(100));
    control->set_fleet(fleet_link);
    keys->attach_fleet(std::make_shared<KeysOverLink>(fleet_link));
}

void Gateway::Impl::start_fleet() {
    if (!fleet_link) return;
    fleet_worker = std::make_unique<fleet::Worker>();
    fleet::Syncer::Inbound in;
    in.outcomes = [this](const std::vector<fleet::RemoteOutcome>& v) { snapshot()->router().observe_remote(v); };
    in.revisions = [this](std::vector<fleet::Revision> revs) {
        fleet_worker->post([this, revs = std::move(revs)] { control->apply_fleet(revs); });
    };
    in.cooldown = [this](const std::string& id, int64_t until_wall) {
        const LivePtr lv = snapshot();
        const auto& r = lv->router();
        if (auto i = r.index_of(id)) r.carry_cooldown(*i, r.now_ms() + (until_wall - fleet::wall_ms()));
    };
    in.deployment_ids = [this] {
        std::vector<std::string> ids;
        for (const auto& d : snapshot()->config().deployments) ids.push_back(d.id);
        return ids;
    };
    in.quota_limits = [this] {
        std::vector<fleet::Syncer::Inbound::Limit> out;
        for (const auto& d : snapshot()->config().deployments) {
            if (d.rpm > 0) out.push_back({d.id, fleet::QuotaKind::Requests, d.rpm});
            if (d.tpm > 0) out.push_back({d.id, fleet::QuotaKind::Tokens, d.tpm});
        }
        return out;
    };
    fleet_syncer = std::make_shared<fleet::Syncer>(io, cfg->shared, fleet_link, std::move(in));
    fleet_syncer->start(control->revision());
    spdlog::info("shared state: replica '{}' syncing through Redis at {} every {} ms (configured at {})",
                 fleet_link->replica(), cfg->shared.endpoint(), cfg->shared.sync_interval.count(), cfg->shared.where);
}

void Gateway::Impl::stop_fleet() {
    if (fleet_syncer) fleet_syncer->stop();
    if (fleet_worker) fleet_worker->stop();
}

}  // namespace tailgate::server
