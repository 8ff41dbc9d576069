// Prometheus metrics: preallocated series, relaxed atomics, rendered on scrape.
//
// Every label set is known from the config (model groups, deployments,
// providers) or is a fixed enum (status class, outcome, error class), so all
// series are looked up once per generation, in the process-lifetime
// MetricStore (metric_store.hpp: a reload never resets a counter). Recording
// is an index into a vector plus one or two relaxed atomic adds: no map
// lookup, no string formatting, no lock on the request path. Rendering
// (GET /metrics) walks everything and formats the text exposition format.
//
// Labels never carry per-request values (ids, client-supplied names, keys):
// a request for a model name that is not configured is counted under the
// model_group "_other".
#pragma once

#include "common/rejection.hpp"
#include "common/vocabulary.hpp"
#include "config/config.hpp"
#include "dispatch/executor.hpp"
#include "metrics/metric_store.hpp"

#include <boost/container/small_vector.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

namespace tailgate::metrics {

using SteadyClock = std::chrono::steady_clock;

enum class StatusClass : uint8_t { S2xx, S4xx, S5xx, Error };
inline constexpr size_t kStatusClasses = 4;
StatusClass status_class(int http_status);  // 499 (client gone) and non-4xx/5xx/2xx -> Error

enum class Outcome : uint8_t { Success, Failure, Cancelled, Refused };
inline constexpr size_t kOutcomes = 4;
static_assert(std::tuple_size_v<decltype(DeploymentSeries::attempts)> == kOutcomes);
static_assert(std::tuple_size_v<decltype(GroupSeries::requests)> == kStatusClasses);

// What the gateway reports when a client request ends.
struct RequestSample {
    uint32_t group = 0;         // Metrics::group_of / group_index / other_group
    bool stream = false;
    int http_status = 0;        // what the client got (200 for a stream that then failed)
    bool stream_error = false;  // a committed stream ended with an error event
    bool client_gone = false;   // the client disconnected first
    double total_s = -1;        // handler start -> response done
    double ttft_s = -1;         // streams: handler start -> first byte written; < 0 none
    double overhead_s = -1;     // see README (Metrics); < 0 when not measured
};

class Metrics {
public:
    // The series of `cfg`, from `store` (a private one when null: tests).
    explicit Metrics(const config::Config& cfg, std::shared_ptr<MetricStore> store = nullptr);
    Metrics(const Metrics&) = delete;
    Metrics& operator=(const Metrics&) = delete;

    // Model group ids: configured groups in config order, then "_other".
    uint32_t group_of(uint32_t deployment) const noexcept { return dep_group_[deployment]; }
    uint32_t group_index(std::string_view name) const;  // hash lookup: error paths only
    uint32_t other_group() const noexcept { return static_cast<uint32_t>(group_names_.size()); }
    size_t deployment_count() const noexcept { return deps_.size(); }

    // ---- gateway ----
    void request_started() noexcept { store_->in_flight_requests.fetch_add(1, std::memory_order_relaxed); }
    void stream_started() noexcept { store_->in_flight_streams.fetch_add(1, std::memory_order_relaxed); }
    // Ends a request_started() (and the stream_started() when sample.stream_counted).
    void request_finished(const RequestSample& s, bool stream_counted) noexcept;
    // A request refused by an admission cap or because the gateway is draining.
    void rejected(Rejection r) noexcept { store_->rejections[static_cast<size_t>(r)].inc(); }

    // ---- attempts (RequestObserver) ----
    void attempt_first_byte(uint32_t deployment, double ttft_ms) noexcept;
    void attempt_ended(uint32_t deployment, Outcome o, const dispatch::AttemptEvent& ev) noexcept;
    void retry(uint32_t group) noexcept { groups_[group]->retries.inc(); }
    void fallback(uint32_t group, uint32_t to_group) noexcept;
    void race_fanout(uint32_t group) noexcept { groups_[group]->race_fanouts.inc(); }
    void race_win(uint32_t deployment) noexcept { deps_[deployment]->race_wins.inc(); }
    void hedge_eligible(uint32_t group) noexcept { groups_[group]->hedge_eligible.inc(); }
    void hedge_launched(uint32_t group) noexcept { groups_[group]->hedges_launched.inc(); }
    void hedge_won(uint32_t group) noexcept { groups_[group]->hedges_won.inc(); }
    void hedge_refused(uint32_t group) noexcept { groups_[group]->hedges_refused.inc(); }

    // ---- health (published by a plugin through the router) ----
    // Counts a transition into Cooling (one that ends at `until`); true when
    // counted. A cooldown counted already (the same `until`: a generation
    // re-publishing a state it took over on a reload) is not counted again.
    bool health_changed(uint32_t deployment, Health from, Health to, int64_t until) noexcept;

    // ---- scrape ----
    struct DeploymentGauges {
        uint32_t in_flight = 0;
        Health health = Health::Healthy;
    };
    using GaugeSampler = std::function<DeploymentGauges(uint32_t deployment)>;
    // The text exposition format (version 0.0.4).
    std::string render(const GaugeSampler& sample) const;
    static constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

private:
    struct DeploymentInfo {
        std::string full_labels;  // model_group="..",deployment="..",provider=".."
        std::string dep_label;    // deployment=".."
        double in_cost = -1, out_cost = -1;
    };
    void render_requests(std::string& out) const;
    void render_strategies(std::string& out) const;
    void render_deployments(std::string& out, const GaugeSampler& sample) const;
    // This generation's groups, then the groups only an older running one has.
    std::vector<std::pair<std::string, std::shared_ptr<const GroupSeries>>> groups_to_render() const;

    std::shared_ptr<MetricStore> store_;
    std::vector<std::string> group_names_;
    std::vector<std::string> group_labels_;  // model_group=".." (with "_other" last)
    std::unordered_map<std::string, uint32_t> group_ids_;
    std::vector<uint32_t> dep_group_;
    std::vector<DeploymentInfo> dep_info_;
    // The store's series this generation uses (held: they are rendered while it runs).
    std::vector<std::shared_ptr<DeploymentSeries>> deps_;
    std::vector<std::shared_ptr<GroupSeries>> group_refs_;
    std::vector<GroupSeries*> groups_;  // group_refs_ then the store's "_other": by group id
    std::vector<std::pair<std::string, std::string>> configured_fallbacks_;  // always rendered
};

// What the gateway needs from one request's attempt events, beyond the
// executor's records. Written under the executor's lock; read by the request's
// thread after the executor finished (its last event precedes the final
// hand-off through the client channel) or after cancel() returned.
struct RequestTrace {
    std::optional<uint32_t> winner;
    SteadyClock::time_point committed_at{};  // when the winner committed
    int64_t prompt_tokens = -1;              // summed over attempts that reported usage
    int64_t completion_tokens = -1;
    bool race = false;                        // more than one attempt started at once
    uint32_t hedges = 0;                      // hedges launched
    bool hedge_won = false;
    uint32_t retries = 0;
    uint32_t refused = 0;
};

// The executor's observer for one request: forwards every event to the
// router's observer, then updates metrics (when `m` is set) and the trace.
class RequestObserver final : public dispatch::Observer {
public:
    RequestObserver(Metrics* m, std::shared_ptr<dispatch::Observer> inner, const dispatch::Plan& plan);
    void on_attempt(const dispatch::AttemptEvent& ev) override;
    const RequestTrace& trace() const { return trace_; }
    // Called when a shadowed primary finishes (true total and ttft, ms).
    void on_shadow(std::function<void(double total_ms, double ttft_ms)> fn) { on_shadow_ = std::move(fn); }

private:
    struct Spec {
        uint32_t deployment;
        uint32_t group;     // routed group index (0 = requested)
        Launch launch;
        bool hedge = false;  // launched as a hedge (others running)
    };
    void commit(uint32_t attempt);

    Metrics* m_;
    std::shared_ptr<dispatch::Observer> inner_;
    boost::container::small_vector<Spec, 4> specs_;  // no allocation for common plans
    uint32_t group_ = 0;         // metrics group of the request (attempt 0's deployment)
    bool has_hedges_ = false;     // the plan holds AFTER_DELAY attempts
    bool cross_group_race_ = false;
    uint32_t running_ = 0;
    uint32_t last_group_ = 0;    // routed group of the last launched attempt
    RequestTrace trace_;
    std::function<void(double, double)> on_shadow_;
};

}  // namespace tailgate::metrics
