#include "metrics/metrics.hpp"

#include "common/prometheus_text.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace tailgate::metrics {

namespace {

constexpr std::memory_order relaxed = std::memory_order_relaxed;

const char* const kStatusNames[kStatusClasses] = {"2xx", "4xx", "5xx", "error"};
const char* const kOutcomeNames[kOutcomes] = {"success", "failure", "cancelled", "refused"};

// A bucket bound as Prometheus users expect to read it: "0.00005", "2.5", "600".
std::string format_bound(double b) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.9f", b);
    std::string s(buf);
    while (!s.empty() && s.back() == '0') s.pop_back();
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
}

std::string format_value(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    return fmt::format("{}", v);
}

class Writer {
public:
    explicit Writer(std::string& out) : out_(out) {}

    void family(const char* name, const char* type, const char* help) { prometheus::family(out_, name, type, help); }
    // name{labels} value
    void sample(std::string_view name, std::string_view labels, uint64_t v) {
        prometheus::sample(out_, name, labels, std::to_string(v));
    }
    void sample(std::string_view name, std::string_view labels, int64_t v) {
        prometheus::sample(out_, name, labels, std::to_string(v));
    }
    void sample(std::string_view name, std::string_view labels, double v) {
        prometheus::sample(out_, name, labels, format_value(v));
    }
    void histogram(std::string_view name, std::string_view labels, const Histogram& h,
                   const std::vector<std::string>& le) {
        auto snap = h.snapshot();
        std::string bucket = std::string(name) + "_bucket";
        std::string lbl(labels);
        if (!lbl.empty()) lbl += ',';
        for (size_t i = 0; i < snap.cumulative.size(); ++i) {
            std::string l = lbl + "le=\"" + (i < le.size() ? le[i] : std::string("+Inf")) + "\"";
            sample(bucket, l, snap.cumulative[i]);
        }
        sample(std::string(name) + "_sum", labels, snap.sum);
        sample(std::string(name) + "_count", labels, snap.count());
    }

private:
    std::string& out_;
};

std::vector<std::string> bound_labels(std::span<const double> bounds) {
    std::vector<std::string> out;
    for (double b : bounds) out.push_back(format_bound(b));
    return out;
}

std::string label(std::string_view name, std::string_view value) {
    return std::string(name) + "=\"" + prometheus::escape_label_value(value) + "\"";
}

}  // namespace

StatusClass status_class(int s) {
    if (s >= 200 && s < 300) return StatusClass::S2xx;
    if (s >= 400 && s < 499) return StatusClass::S4xx;
    if (s >= 500 && s < 600) return StatusClass::S5xx;
    return StatusClass::Error;
}

Metrics::Metrics(const config::Config& cfg, std::shared_ptr<MetricStore> store)
    : store_(store ? std::move(store) : std::make_shared<MetricStore>()) {
    group_names_ = cfg.model_groups();
    for (uint32_t g = 0; g < group_names_.size(); ++g) {
        group_ids_.emplace(group_names_[g], g);
        group_labels_.push_back(label("model_group", group_names_[g]));
        group_refs_.push_back(store_->group(group_names_[g]));
        groups_.push_back(group_refs_.back().get());
    }
    group_labels_.push_back(label("model_group", "_other"));
    groups_.push_back(&store_->other);

    for (const auto& d : cfg.deployments) {
        uint32_t g = group_ids_.at(d.model_name);
        dep_group_.push_back(g);
        DeploymentInfo info;
        info.dep_label = label("deployment", d.id);
        info.full_labels = group_labels_[g] + "," + info.dep_label + "," + label("provider", d.upstream.provider);
        info.in_cost = d.input_cost_per_token;
        info.out_cost = d.output_cost_per_token;
        deps_.push_back(store_->deployment(info.full_labels, info.dep_label, info.in_cost >= 0 || info.out_cost >= 0));
        dep_info_.push_back(std::move(info));
    }

    auto mark = [&](const std::vector<std::pair<std::string, std::vector<std::string>>>& list) {
        for (const auto& [from, tos] : list) {
            if (!group_ids_.count(from)) continue;
            for (const auto& to : tos)
                if (group_ids_.count(to)) {
                    configured_fallbacks_.emplace_back(from, to);
                    store_->fallback(from, to);  // rendered (as 0) from the start
                }
        }
    };
    mark(cfg.router.fallbacks);
    mark(cfg.router.context_window_fallbacks);
    store_->prune();
}

uint32_t Metrics::group_index(std::string_view name) const {
    auto it = group_ids_.find(std::string(name));
    return it == group_ids_.end() ? other_group() : it->second;
}

void Metrics::request_finished(const RequestSample& s, bool stream_counted) noexcept {
    store_->in_flight_requests.fetch_sub(1, relaxed);
    if (stream_counted) store_->in_flight_streams.fetch_sub(1, relaxed);
    GroupSeries& g = *groups_[std::min<uint32_t>(s.group, other_group())];
    StatusClass sc = (s.stream_error || s.client_gone) ? StatusClass::Error : status_class(s.http_status);
    g.requests[static_cast<size_t>(sc)].inc();
    if (s.client_gone) store_->client_disconnects.inc();
    if (s.total_s >= 0) g.duration[s.stream ? 1 : 0].observe(s.total_s);
    if (s.ttft_s >= 0) g.ttft.observe(s.ttft_s);
    if (s.overhead_s >= 0) store_->overhead.observe(s.overhead_s);
}

void Metrics::attempt_first_byte(uint32_t d, double ttft_ms) noexcept {
    if (ttft_ms >= 0) deps_[d]->ttft.observe(ttft_ms / 1000.0);
}

void Metrics::attempt_ended(uint32_t d, Outcome o, const dispatch::AttemptEvent& ev) noexcept {
    DeploymentSeries& s = *deps_[d];
    s.attempts[static_cast<size_t>(o)].inc();
    if (o == Outcome::Success) s.latency.observe(ev.elapsed_ms / 1000.0);
    if (o == Outcome::Failure) s.failures[static_cast<size_t>(ev.error_class)].inc();
    const DeploymentInfo& info = dep_info_[d];
    double cost = 0;
    bool costed = false;
    if (ev.prompt_tokens > 0) {
        s.tokens_in.inc(static_cast<uint64_t>(ev.prompt_tokens));
        if (info.in_cost >= 0) cost += info.in_cost * static_cast<double>(ev.prompt_tokens), costed = true;
    }
    if (ev.completion_tokens > 0) {
        s.tokens_out.inc(static_cast<uint64_t>(ev.completion_tokens));
        if (info.out_cost >= 0) cost += info.out_cost * static_cast<double>(ev.completion_tokens), costed = true;
    }
    if (costed && cost > 0) s.cost_usd.add(cost);
}

// A retry moved to another group: a failure path, so a locked lookup by name is fine.
void Metrics::fallback(uint32_t group, uint32_t to_group) noexcept {
    if (group >= other_group() || to_group >= other_group()) return;
    try {
        store_->fallback(group_names_[group], group_names_[to_group]).inc();
    } catch (...) {  // out of memory: the count is lost, the request is not
    }
}

bool Metrics::health_changed(uint32_t d, Health from, Health to, int64_t until) noexcept {
    if (d >= deps_.size() || to != Health::Cooling || from == Health::Cooling) return false;
    DeploymentSeries& s = *deps_[d];
    if (s.last_cooldown_until.exchange(until, relaxed) == until) return false;
    s.cooldowns.inc();
    return true;
}

std::vector<std::pair<std::string, std::shared_ptr<const GroupSeries>>> Metrics::groups_to_render() const {
    std::vector<std::pair<std::string, std::shared_ptr<const GroupSeries>>> out;
    for (uint32_t g = 0; g < group_refs_.size(); ++g) out.emplace_back(group_labels_[g], group_refs_[g]);
    for (auto& [name, series] : store_->live_groups())
        if (!group_ids_.count(name)) out.emplace_back(label("model_group", name), std::move(series));
    return out;
}

std::string Metrics::render(const GaugeSampler& sample) const {
    std::string out;
    out.reserve(4096 + deps_.size() * 6000 + groups_.size() * 3000);
    Writer w(out);
    w.family("tailgate_build_info", "gauge", "Tailgate version (always 1).");
    w.sample("tailgate_build_info", "version=\"" TAILGATE_VERSION "\"", uint64_t{1});
    render_requests(out);
    render_strategies(out);
    render_deployments(out, sample);
    return out;
}

// Client side: requests, durations, overhead, in flight, disconnects, rejections.
void Metrics::render_requests(std::string& out) const {
    Writer w(out);
    const auto latency_le = bound_labels(kLatencyBuckets);
    const auto overhead_le = bound_labels(kOverheadBuckets);
    auto groups = groups_to_render();
    const std::string other_label = group_labels_.back();
    w.family("tailgate_requests_total", "counter",
             "Client requests to the API endpoints by model group and status class "
             "(error = client disconnected or a stream that failed after it started).");
    auto requests = [&](const std::string& lbl, const GroupSeries& g) {
        for (size_t c = 0; c < kStatusClasses; ++c)
            w.sample("tailgate_requests_total", lbl + ",status_class=\"" + kStatusNames[c] + "\"", g.requests[c].value());
    };
    for (const auto& [lbl, g] : groups) requests(lbl, *g);
    requests(other_label, store_->other);

    w.family("tailgate_request_duration_seconds", "histogram",
             "Client-seen request duration, from the request reaching the handler to the last byte sent.");
    auto durations = [&](const std::string& lbl, const GroupSeries& g) {
        for (int st = 0; st < 2; ++st)
            w.histogram("tailgate_request_duration_seconds", lbl + ",stream=\"" + (st ? "true" : "false") + "\"",
                        g.duration[st], latency_le);
    };
    for (const auto& [lbl, g] : groups) durations(lbl, *g);
    durations(other_label, store_->other);

    w.family("tailgate_request_ttft_seconds", "histogram",
             "Client-seen time to first byte of streamed responses (request start to first byte written).");
    for (const auto& [lbl, g] : groups) w.histogram("tailgate_request_ttft_seconds", lbl, g->ttft, latency_le);

    w.family("tailgate_gateway_overhead_seconds", "histogram",
             "Time spent inside Tailgate outside upstream waits: request start to first attempt launched, "
             "plus winner commit to first byte written to the client.");
    w.histogram("tailgate_gateway_overhead_seconds", "", store_->overhead, overhead_le);

    w.family("tailgate_in_flight_requests", "gauge", "API requests being handled.");
    w.sample("tailgate_in_flight_requests", "", store_->in_flight_requests.load(relaxed));
    w.family("tailgate_in_flight_streams", "gauge", "Streamed API requests being handled.");
    w.sample("tailgate_in_flight_streams", "", store_->in_flight_streams.load(relaxed));

    w.family("tailgate_client_disconnects_total", "counter", "Clients that went away before their response ended.");
    w.sample("tailgate_client_disconnects_total", "", store_->client_disconnects.value());

    w.family("tailgate_requests_rejected_total", "counter",
             "API requests refused before routing, by reason (a concurrency cap, or draining at shutdown).");
    for (size_t r = 0; r < kRejectionReasons; ++r)
        w.sample("tailgate_requests_rejected_total",
                 std::string("reason=\"") + rejection_name(static_cast<Rejection>(r)) + "\"",
                 store_->rejections[r].value());
}

// Retries, fallbacks, races and hedges per model group.
void Metrics::render_strategies(std::string& out) const {
    Writer w(out);
    const auto groups = groups_to_render();
    auto per_group = [&](const char* name, const char* help, Counter GroupSeries::*field) {
        w.family(name, "counter", help);
        for (const auto& [lbl, g] : groups) w.sample(name, lbl, ((*g).*field).value());
    };
    per_group("tailgate_retries_total",
              "Attempts launched after every earlier attempt of the request had failed (retries and fallbacks).",
              &GroupSeries::retries);
    w.family("tailgate_fallbacks_total", "counter",
             "Retries that moved to a fallback model group (by requested group and fallback group).");
    for (const auto& [from, to, v] : store_->fallbacks()) {
        const bool configured = std::find(configured_fallbacks_.begin(), configured_fallbacks_.end(),
                                          std::make_pair(from, to)) != configured_fallbacks_.end();
        const std::string from_label = label("model_group", from);
        const bool live = std::any_of(groups.begin(), groups.end(), [&](const auto& g) { return g.first == from_label; });
        if (configured || (v > 0 && live))
            w.sample("tailgate_fallbacks_total", from_label + "," + label("fallback_group", to), v);
    }
    per_group("tailgate_race_fanouts_total", "Requests that started more than one attempt at once (races).",
              &GroupSeries::race_fanouts);
    per_group("tailgate_hedge_eligible_requests_total", "Requests whose plan held a delayed (hedge) attempt.",
              &GroupSeries::hedge_eligible);
    per_group("tailgate_hedges_launched_total", "Hedge attempts launched while earlier attempts still ran.",
              &GroupSeries::hedges_launched);
    per_group("tailgate_hedges_won_total", "Requests won by a hedge attempt.", &GroupSeries::hedges_won);
    per_group("tailgate_hedges_refused_total", "Hedge attempts refused by the strategy's budget.",
              &GroupSeries::hedges_refused);
}

// Per deployment: this generation's, then those only an older running one has
// (no gauges for those: they are not routed any more).
void Metrics::render_deployments(std::string& out, const GaugeSampler& sample) const {
    Writer w(out);
    const auto latency_le = bound_labels(kLatencyBuckets);
    std::vector<MetricStore::DeploymentView> deps;
    for (size_t d = 0; d < deps_.size(); ++d)
        deps.push_back(MetricStore::DeploymentView{dep_info_[d].full_labels, dep_info_[d].dep_label,
                                                   dep_info_[d].in_cost >= 0 || dep_info_[d].out_cost >= 0, deps_[d]});
    for (auto& v : store_->live_deployments())
        if (std::none_of(deps_.begin(), deps_.end(), [&](const auto& mine) { return mine == v.series; }))
            deps.push_back(std::move(v));

    w.family("tailgate_attempts_total", "counter", "Upstream attempts by deployment and outcome.");
    for (const auto& d : deps)
        for (size_t o = 0; o < kOutcomes; ++o)
            w.sample("tailgate_attempts_total", d.full_labels + ",outcome=\"" + kOutcomeNames[o] + "\"",
                     d.series->attempts[o].value());

    w.family("tailgate_attempt_failures_total", "counter", "Failed upstream attempts by error class.");
    for (const auto& d : deps)
        for (size_t c = 0; c < kErrorClassCount; ++c)
            w.sample("tailgate_attempt_failures_total",
                     d.dep_label + ",error_class=\"" + error_class_name(static_cast<ErrorClass>(c)) + "\"",
                     d.series->failures[c].value());

    w.family("tailgate_deployment_ttft_seconds", "histogram",
             "Upstream time to first content byte of streamed attempts.");
    for (const auto& d : deps) w.histogram("tailgate_deployment_ttft_seconds", d.full_labels, d.series->ttft, latency_le);

    w.family("tailgate_deployment_latency_seconds", "histogram", "Upstream total latency of successful attempts.");
    for (const auto& d : deps)
        w.histogram("tailgate_deployment_latency_seconds", d.full_labels, d.series->latency, latency_le);

    w.family("tailgate_tokens_total", "counter", "Tokens reported by upstream usage (in = prompt, out = completion).");
    for (const auto& d : deps) {
        w.sample("tailgate_tokens_total", d.dep_label + ",direction=\"in\"", d.series->tokens_in.value());
        w.sample("tailgate_tokens_total", d.dep_label + ",direction=\"out\"", d.series->tokens_out.value());
    }

    w.family("tailgate_cost_usd_total", "counter",
             "Cost of reported tokens, from input/output_cost_per_token (deployments with a known cost).");
    for (const auto& d : deps)
        if (d.priced) w.sample("tailgate_cost_usd_total", d.dep_label, d.series->cost_usd.value());

    w.family("tailgate_race_wins_total", "counter", "Races won by this deployment.");
    for (const auto& d : deps) w.sample("tailgate_race_wins_total", d.dep_label, d.series->race_wins.value());

    w.family("tailgate_cooldowns_total", "counter", "Transitions into the cooling state published by the health strategy.");
    for (const auto& d : deps) w.sample("tailgate_cooldowns_total", d.dep_label, d.series->cooldowns.value());

    std::vector<DeploymentGauges> gauges(deps_.size());
    if (sample)
        for (uint32_t d = 0; d < deps_.size(); ++d) gauges[d] = sample(d);
    w.family("tailgate_deployment_state", "gauge", "1 for the deployment's current health state.");
    for (size_t d = 0; d < deps_.size(); ++d)
        for (size_t h = 0; h < kHealthCount; ++h)
            w.sample("tailgate_deployment_state",
                     dep_info_[d].dep_label + ",state=\"" + health_name(static_cast<Health>(h)) + "\"",
                     uint64_t{gauges[d].health == static_cast<Health>(h) ? 1u : 0u});
    w.family("tailgate_deployment_in_flight", "gauge", "Attempts running on the deployment.");
    for (size_t d = 0; d < deps_.size(); ++d)
        w.sample("tailgate_deployment_in_flight", dep_info_[d].dep_label, uint64_t{gauges[d].in_flight});
}

// ---------------------------------------------------------------------------

RequestObserver::RequestObserver(Metrics* m, std::shared_ptr<dispatch::Observer> inner, const dispatch::Plan& plan)
    : m_(m), inner_(std::move(inner)) {
    specs_.reserve(plan.attempts.size());
    for (size_t i = 0; i < plan.attempts.size(); ++i) {
        const auto& a = plan.attempts[i];
        specs_.push_back(Spec{a.deployment, a.group, i == 0 ? Launch::AtStart : a.launch});
        if (a.launch == Launch::AfterDelay && i > 0) has_hedges_ = true;
        if (a.launch == Launch::AtStart && a.group > 0) cross_group_race_ = true;
    }
    if (m_ && !specs_.empty()) group_ = m_->group_of(specs_[0].deployment);
}

void RequestObserver::commit(uint32_t i) {
    if (trace_.winner) return;
    trace_.winner = i;
    trace_.committed_at = SteadyClock::now();
    const Spec& s = specs_[i];
    trace_.hedge_won = s.hedge;
    if (!m_) return;
    if (trace_.race) m_->race_win(s.deployment);
    if (s.hedge) m_->hedge_won(group_);
}

void RequestObserver::on_attempt(const dispatch::AttemptEvent& ev) {
    if (inner_) inner_->on_attempt(ev);
    if (ev.attempt >= specs_.size()) return;
    Spec& s = specs_[ev.attempt];
    auto add_tokens = [&] {
        if (ev.prompt_tokens >= 0) trace_.prompt_tokens = std::max<int64_t>(trace_.prompt_tokens, 0) + ev.prompt_tokens;
        if (ev.completion_tokens >= 0)
            trace_.completion_tokens = std::max<int64_t>(trace_.completion_tokens, 0) + ev.completion_tokens;
    };
    switch (ev.type) {
        case EventType::Started: {
            const bool others_running = running_ > 0;
            ++running_;
            if (ev.attempt == 0) {
                if (m_ && has_hedges_) m_->hedge_eligible(group_);
            } else if (s.launch == Launch::AfterDelay && others_running) {
                s.hedge = true;
                ++trace_.hedges;
                if (m_) m_->hedge_launched(group_);
            } else if (s.launch == Launch::AtStart && others_running) {
                if (!trace_.race) {
                    trace_.race = true;
                    if (m_) m_->race_fanout(group_);
                }
            } else {
                // Everything launched before has failed: a retry (or a fallback).
                ++trace_.retries;
                if (m_) {
                    m_->retry(group_);
                    if (!cross_group_race_ && s.group > 0 && s.group != last_group_)
                        m_->fallback(group_, m_->group_of(s.deployment));
                }
            }
            last_group_ = s.group;
            break;
        }
        case EventType::FirstByte:
            if (m_) m_->attempt_first_byte(s.deployment, ev.ttft_ms);
            commit(ev.attempt);
            break;
        case EventType::Success:
            if (running_) --running_;
            commit(ev.attempt);
            add_tokens();
            if (m_) m_->attempt_ended(s.deployment, Outcome::Success, ev);
            break;
        case EventType::Failure:
            if (running_) --running_;
            add_tokens();
            if (m_) m_->attempt_ended(s.deployment, Outcome::Failure, ev);
            break;
        case EventType::Cancelled:
            if (running_) --running_;
            add_tokens();
            if (m_) m_->attempt_ended(s.deployment, Outcome::Cancelled, ev);
            break;
        case EventType::ShadowDone:
            if (running_) --running_;
            if (on_shadow_) on_shadow_(ev.elapsed_ms, ev.ttft_ms);
            break;
        case EventType::Refused:
            ++trace_.refused;
            if (m_) {
                m_->attempt_ended(s.deployment, Outcome::Refused, ev);
                m_->hedge_refused(group_);
            }
            break;
        default: break;
    }
}

}  // namespace tailgate::metrics
