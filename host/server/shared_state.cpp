// The gateway's side of the shared state (issue 18): the Link every router
// and the control plane use, the synchroniser on the gateway's io_context,
// and where what other replicas send goes: outcomes to the running router's
// strategies, revisions to the control plane (on a worker thread), cooldowns
// read back after a reconnect to the router's host-side filter.
#include "server/gateway_impl.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

namespace tailgate::server {

namespace {

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
