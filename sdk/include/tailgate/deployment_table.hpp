// Per-deployment state of a strategy, kept by deployment identity across reloads.
//
//   struct Window { std::mutex mu; ... };                 // synchronises itself
//   DeploymentTable<Window> windows_{host, [] { return std::make_shared<Window>(); }};
//   Window& w = windows_.at(*candidate.deployment);       // route() / observe()
//
//   bool adopt_state(Strategy& previous) override {       // reload handover
//       windows_.adopt(static_cast<Mine&>(previous).windows_);
//       return true;
//   }
//
// Identity is tg_deployment.id: the deployment's model_info.id, else a hash the
// host derives from group, upstream model and api_base. An index is not an
// identity (indices shift when deployments are added or removed), so adopt()
// matches by id: a deployment the previous configuration also had shares the
// previous instance's state object; one it did not have keeps a fresh one; a
// removed one's state goes with the previous instance.
//
// Shared, not moved: the previous instance keeps serving the requests that
// started on it (their events) and routes until the new configuration is
// published, so both instances may use one State object at the same time.
// State must therefore synchronise itself (a mutex inside it, or atomics).
#pragma once

#include <tailgate/plugin.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tailgate::sdk {

template <class State>
class DeploymentTable {
public:
    using Factory = std::function<std::shared_ptr<State>()>;

    // One state per deployment the host lists (made here; lookups of these are
    // lock-free). An index the host did not list gets one on first use, under a lock.
    DeploymentTable(const Host& host, Factory make) : make_(std::move(make)) {
        const uint32_t n = host.deployment_count();
        ids_.reserve(n);
        states_.reserve(n);
        for (uint32_t i = 0; i < n; ++i) {
            const tg_deployment* d = host.deployment_at(i);
            ids_.emplace_back(d != nullptr && d->id != nullptr ? d->id : "");
            states_.push_back(make_());
        }
    }
    DeploymentTable(const DeploymentTable&) = delete;
    DeploymentTable& operator=(const DeploymentTable&) = delete;

    State& at(const tg_deployment& d) { return at(d.index); }
    State& at(uint32_t index) {
        if (index < states_.size()) return *states_[index];
        std::lock_guard<std::mutex> lk(extra_mu_);
        auto& s = extra_[index];
        if (!s) s = make_();
        return *s;
    }
    // The listed deployments: [0, listed()) with their identity.
    uint32_t listed() const { return static_cast<uint32_t>(states_.size()); }
    const std::string& id(uint32_t index) const { return ids_.at(index); }

    // Reload handover (call from Strategy::adopt_state, before this instance
    // serves): every listed deployment whose identity `previous` also listed
    // shares that state object. Calls adopted(index, state) for each; returns
    // how many were adopted.
    template <class OnAdopted>
    size_t adopt(const DeploymentTable& previous, OnAdopted adopted) {
        std::unordered_map<std::string_view, const std::shared_ptr<State>*> before;
        before.reserve(previous.ids_.size());
        for (size_t j = 0; j < previous.ids_.size(); ++j)
            if (!previous.ids_[j].empty()) before.emplace(previous.ids_[j], &previous.states_[j]);
        size_t n = 0;
        for (size_t i = 0; i < states_.size(); ++i) {
            auto it = before.find(ids_[i]);
            if (it == before.end()) continue;
            states_[i] = *it->second;
            adopted(static_cast<uint32_t>(i), *states_[i]);
            ++n;
        }
        return n;
    }
    size_t adopt(const DeploymentTable& previous) {
        return adopt(previous, [](uint32_t, State&) {});
    }

    // f(index, id, state) for every deployment with a state (those not listed:
    // id "", called under the table's lock).
    template <class F>
    void for_each(F f) const {
        for (size_t i = 0; i < states_.size(); ++i) f(static_cast<uint32_t>(i), ids_[i], *states_[i]);
        static const std::string kNoId;
        std::lock_guard<std::mutex> lk(extra_mu_);
        for (auto& [index, s] : extra_) f(index, kNoId, *s);
    }

private:
    Factory make_;
    std::vector<std::string> ids_;                  // by index, fixed after construction
    std::vector<std::shared_ptr<State>> states_;    // by index; only adopt() replaces entries
    mutable std::mutex extra_mu_;
    std::unordered_map<uint32_t, std::shared_ptr<State>> extra_;  // indices the host did not list
};

}  // namespace tailgate::sdk
