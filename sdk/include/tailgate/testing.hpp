// Test helpers for strategy plugins (header-only, C++17, no test framework
// dependency). Not used by plugins at run time.
//
//   tailgate::sdk::testing::FakeHost host;                 // a tg_host_api that records
//   tailgate::sdk::testing::Deployments d;                 // deployments + live stats
//   d.add("a").weight = 3;  d.add("b").rpm = 100;
//   tg_route& r = d.route(&host);                          // all deployments, plan empty
//   tailgate::sdk::testing::Request req("gpt-4o");
//   int rc = tg_plugin_route(instance, &req.raw, &r);      // or via the host's loader
//   d.order()  -> {"b", "a"}
#pragma once

#include <tailgate/plugin_abi.h>

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace tailgate::sdk::testing {

// A host table whose callbacks record what the plugin did. The clock is
// `now` (settable). Thread-safe. Pass api() to tg_plugin_create.
class FakeHost {
public:
    FakeHost() {
        api_.struct_size = sizeof(tg_host_api);
        api_.host = this;
        api_.log = [](void* h, uint32_t level, const char* msg) {
            auto* self = static_cast<FakeHost*>(h);
            std::lock_guard<std::mutex> lock(self->mu_);
            self->logs_.emplace_back(level, msg ? msg : "");
        };
        api_.now_ms = [](void* h) -> int64_t {
            auto* self = static_cast<FakeHost*>(h);
            std::lock_guard<std::mutex> lock(self->mu_);
            return self->now_;
        };
        api_.publish_latency = [](void* h, uint32_t index, uint32_t which, const tg_latency_summary* s) {
            auto* self = static_cast<FakeHost*>(h);
            std::lock_guard<std::mutex> lock(self->mu_);
            if (s) self->latency_[{index, which}] = *s;
        };
        api_.publish_health = [](void* h, uint32_t index, uint32_t health, int64_t until) {
            auto* self = static_cast<FakeHost*>(h);
            std::lock_guard<std::mutex> lock(self->mu_);
            self->health_[index] = {health, until};
        };
        api_.route_note = [](tg_route* route, const char* text) {
            if (route == nullptr || route->host_private == nullptr) return;
            auto* self = static_cast<FakeHost*>(route->host_private);
            std::lock_guard<std::mutex> lock(self->mu_);
            self->notes_.emplace_back(text ? text : "");
        };
        api_.route_retry_after = [](tg_route* route, int64_t ms) {
            if (route == nullptr || route->host_private == nullptr) return;
            auto* self = static_cast<FakeHost*>(route->host_private);
            std::lock_guard<std::mutex> lock(self->mu_);
            self->retry_hints_.push_back(ms);
        };
        api_.deployment_count = [](void* h) -> uint32_t {
            auto* self = static_cast<FakeHost*>(h);
            std::lock_guard<std::mutex> lock(self->mu_);
            return static_cast<uint32_t>(self->deployments_.size());
        };
        api_.deployment_at = [](void* h, uint32_t i) -> const tg_deployment* {
            auto* self = static_cast<FakeHost*>(h);
            std::lock_guard<std::mutex> lock(self->mu_);
            return i < self->deployments_.size() ? self->deployments_[i] : nullptr;
        };
    }
    FakeHost(const FakeHost&) = delete;
    FakeHost& operator=(const FakeHost&) = delete;

    const tg_host_api* api() const { return &api_; }

    void set_now(int64_t ms) {
        std::lock_guard<std::mutex> lock(mu_);
        now_ = ms;
    }
    // Deployments answered by deployment_count/deployment_at (not owned).
    void set_deployments(std::vector<const tg_deployment*> d) {
        std::lock_guard<std::mutex> lock(mu_);
        deployments_ = std::move(d);
    }

    std::vector<std::pair<uint32_t, std::string>> logs() const {
        std::lock_guard<std::mutex> lock(mu_);
        return logs_;
    }
    std::vector<std::string> notes() const {
        std::lock_guard<std::mutex> lock(mu_);
        return notes_;
    }
    // Every route_retry_after(ms) reported through a route whose host_private is this host.
    std::vector<int64_t> retry_hints() const {
        std::lock_guard<std::mutex> lock(mu_);
        return retry_hints_;
    }
    // which: 0 = ttft, 1 = total. samples == 0 when never published.
    tg_latency_summary latency(uint32_t index, uint32_t which) const {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = latency_.find({index, which});
        return it == latency_.end() ? tg_latency_summary{} : it->second;
    }
    // {health, cooldown_until_ms}; {HEALTHY, 0} when never published.
    std::pair<uint32_t, int64_t> health(uint32_t index) const {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = health_.find(index);
        return it == health_.end() ? std::pair<uint32_t, int64_t>{TG_HEALTH_HEALTHY, 0} : it->second;
    }

private:
    tg_host_api api_{};
    mutable std::mutex mu_;
    int64_t now_ = 0;
    std::vector<std::pair<uint32_t, std::string>> logs_;
    std::vector<std::string> notes_;
    std::vector<int64_t> retry_hints_;
    std::map<std::pair<uint32_t, uint32_t>, tg_latency_summary> latency_;
    std::map<uint32_t, std::pair<uint32_t, int64_t>> health_;
    std::vector<const tg_deployment*> deployments_;
};

// Deployments with their stats, and a tg_route over them. Addresses of added
// deployments and stats stay valid for the life of the object.
class Deployments {
public:
    Deployments() = default;
    Deployments(const Deployments&) = delete;
    Deployments& operator=(const Deployments&) = delete;

    // Adds a deployment (weight/rpm/tpm 0, costs unknown); returns it for tweaks.
    tg_deployment& add(const std::string& id, const std::string& provider = "openai",
                       const std::string& model_group = "test-group") {
        strings_.push_back(id);
        const char* id_c = strings_.back().c_str();
        strings_.push_back(provider);
        const char* prov_c = strings_.back().c_str();
        strings_.push_back(model_group);
        const char* group_c = strings_.back().c_str();
        tg_deployment d{};
        d.struct_size = sizeof(tg_deployment);
        d.index = static_cast<uint32_t>(deployments_.size());
        d.id = id_c;
        d.model_group = group_c;
        d.provider = prov_c;
        d.upstream_model = id_c;
        d.api_base = "http://127.0.0.1:1";
        d.input_cost_per_token = -1;
        d.output_cost_per_token = -1;
        deployments_.push_back(d);
        tg_deployment_stats s{};
        s.struct_size = sizeof(tg_deployment_stats);
        stats_.push_back(s);
        return deployments_.back();
    }
    tg_deployment& deployment(uint32_t i) { return deployments_.at(i); }
    tg_deployment_stats& stats(uint32_t i) { return stats_.at(i); }
    size_t size() const { return deployments_.size(); }

    // Resets the route to every deployment in insertion order, with no plan.
    // `host` (may be null) receives route notes through host_private.
    tg_route& route(FakeHost* host = nullptr) {
        candidates_.clear();
        for (size_t i = 0; i < deployments_.size(); ++i)
            candidates_.push_back(tg_candidate{&deployments_[i], &stats_[i]});
        route_ = tg_route{};
        route_.struct_size = sizeof(tg_route);
        route_.candidates = candidates_.data();
        route_.count = static_cast<uint32_t>(candidates_.size());
        route_.attempts = attempts_;
        route_.attempt_count = 0;
        route_.host_private = host;
        return route_;
    }
    tg_route& current() { return route_; }

    // Ids of the route's candidates, in order.
    std::vector<std::string> order() const {
        std::vector<std::string> out;
        for (uint32_t i = 0; i < route_.count; ++i) out.emplace_back(route_.candidates[i].deployment->id);
        return out;
    }
    std::vector<const tg_deployment*> pointers() const {
        std::vector<const tg_deployment*> out;
        for (auto& d : deployments_) out.push_back(&d);
        return out;
    }

private:
    std::deque<std::string> strings_;
    std::deque<tg_deployment> deployments_;
    std::deque<tg_deployment_stats> stats_;
    std::vector<tg_candidate> candidates_;
    tg_attempt attempts_[TG_MAX_ATTEMPTS] = {};
    tg_route route_{};
};

// A tg_request with its strings kept alive.
struct Request {
    explicit Request(std::string group = "test-group", bool stream = false, std::string overrides = "{}",
                     std::string metadata = "{}", std::string id = "req-1")
        : id_(std::move(id)), group_(std::move(group)), overrides_(std::move(overrides)),
          metadata_(std::move(metadata)) {
        raw.struct_size = sizeof(tg_request);
        raw.request_id = id_.c_str();
        raw.model_group = group_.c_str();
        raw.endpoint = TG_ENDPOINT_CHAT;
        raw.stream = stream ? 1 : 0;
        raw.overrides_json = overrides_.c_str();
        raw.metadata_json = metadata_.c_str();
        raw.now_ms = 0;
    }
    Request(const Request&) = delete;
    Request& operator=(const Request&) = delete;

    tg_request raw{};

private:
    std::string id_, group_, overrides_, metadata_;
};

}  // namespace tailgate::sdk::testing
