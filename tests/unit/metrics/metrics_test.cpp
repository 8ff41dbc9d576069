// Metrics: histogram bucket math, exposition format, counters moved by exactly
// the events fed; JSON log formatting.
#include "config/config.hpp"
#include "metrics/json_log.hpp"
#include "metrics/metrics.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <rapidjson/document.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <limits>
#include <map>
#include <regex>
#include <sstream>

using namespace tailgate;
using metrics::Metrics;

namespace {

const char* kConfig = R"(
model_list:
  - model_name: gpt
    litellm_params: {model: openai/a, api_base: "http://127.0.0.1:1/v1", input_cost_per_token: 0.001, output_cost_per_token: 0.002}
    model_info: {id: a}
  - model_name: gpt
    litellm_params: {model: openai/b, api_base: "http://127.0.0.1:2/v1"}
    model_info: {id: "b\"q"}
  - model_name: backup
    litellm_params: {model: groq/c, api_base: "http://127.0.0.1:3/v1"}
    model_info: {id: c}
router_settings:
  fallbacks: [{gpt: [backup]}]
)";

config::Config load() { return config::load_string(kConfig, "metrics_test.yaml"); }

// Parses the exposition text into {"name{labels}" -> value}, checking every line's shape.
std::map<std::string, double> parse(const std::string& text) {
    static const std::regex sample(R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$)");
    static const std::regex help(R"(^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$)");
    std::map<std::string, double> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        std::smatch m;
        if (line.rfind("#", 0) == 0) {
            EXPECT_TRUE(std::regex_match(line, m, help)) << line;
            continue;
        }
        EXPECT_TRUE(std::regex_match(line, m, sample)) << line;
        if (m.size() < 4) continue;
        std::string key = m[1].str() + m[2].str();
        EXPECT_EQ(out.count(key), 0u) << "duplicate series " << key;
        out[key] = m[3] == "+Inf" ? std::numeric_limits<double>::infinity() : std::stod(m[3]);
    }
    return out;
}

double get(const std::map<std::string, double>& m, const std::string& key) {
    auto it = m.find(key);
    EXPECT_NE(it, m.end()) << "missing series " << key;
    return it == m.end() ? -1 : it->second;
}

dispatch::AttemptEvent ev(EventType t, uint32_t attempt, uint32_t deployment) {
    dispatch::AttemptEvent e{t, attempt, deployment};
    return e;
}

struct Recorder : dispatch::Observer {
    std::vector<EventType> seen;
    void on_attempt(const dispatch::AttemptEvent& e) override { seen.push_back(e.type); }
};

dispatch::Plan plan(std::initializer_list<dispatch::AttemptSpec> a, bool stream = false) {
    dispatch::Plan p;
    p.attempts = a;
    p.stream = stream;
    return p;
}

const std::string kA = R"(model_group="gpt",deployment="a",provider="openai")";
const std::string kB = R"(model_group="gpt",deployment="b\"q",provider="openai")";

}  // namespace

// ---------------------------------------------------------------------------
// histograms

TEST(Histogram, BucketBoundsAreInclusiveUpperBounds) {
    metrics::Histogram h(metrics::kLatencyBuckets);
    ASSERT_EQ(h.bounds().size(), 16u);
    EXPECT_EQ(h.bucket_for(0), 0u);
    EXPECT_EQ(h.bucket_for(0.005), 0u);  // le="0.005" includes 5 ms
    EXPECT_EQ(h.bucket_for(0.0050001), 1u);
    EXPECT_EQ(h.bucket_for(0.01), 1u);
    EXPECT_EQ(h.bucket_for(1.0), 7u);
    EXPECT_EQ(h.bucket_for(600), 15u);
    EXPECT_EQ(h.bucket_for(600.001), 16u);  // +Inf
    EXPECT_EQ(h.bucket_for(1e300), 16u);
    EXPECT_EQ(h.bucket_for(-3), 0u);
    EXPECT_EQ(h.bucket_for(std::nan("")), 0u);
}

TEST(Histogram, SnapshotIsCumulativeWithSumAndCount) {
    metrics::Histogram h(metrics::kOverheadBuckets);
    h.observe(0.00004);  // <= 50us
    h.observe(0.0003);   // <= 500us
    h.observe(0.0003);
    h.observe(2.0);      // +Inf
    auto s = h.snapshot();
    ASSERT_EQ(s.cumulative.size(), std::size(metrics::kOverheadBuckets) + 1);
    EXPECT_EQ(s.cumulative[0], 1u);  // le=0.00005
    EXPECT_EQ(s.cumulative[1], 1u);  // le=0.0001
    EXPECT_EQ(s.cumulative[2], 1u);  // le=0.00025
    EXPECT_EQ(s.cumulative[3], 3u);  // le=0.0005
    EXPECT_EQ(s.cumulative[10], 3u);  // le=0.1
    EXPECT_EQ(s.cumulative[11], 4u);  // +Inf
    EXPECT_EQ(s.count(), 4u);
    EXPECT_NEAR(s.sum, 0.00004 + 0.0006 + 2.0, 1e-8);
    for (size_t i = 1; i < s.cumulative.size(); ++i) EXPECT_LE(s.cumulative[i - 1], s.cumulative[i]);
}

TEST(Histogram, NegativeObservationsCountAsZero) {
    metrics::Histogram h(metrics::kLatencyBuckets);
    h.observe(-1);
    auto s = h.snapshot();
    EXPECT_EQ(s.cumulative[0], 1u);
    EXPECT_EQ(s.sum, 0);
}

// ---------------------------------------------------------------------------
// rendering

TEST(MetricsRender, EveryLineIsWellFormedAndFamiliesAreTyped) {
    auto cfg = load();
    Metrics m(cfg);
    std::string text = m.render({});
    auto series = parse(text);
    // Every sample belongs to a family declared before it, once.
    std::map<std::string, std::string> types;
    std::istringstream in(text);
    std::string line, current;
    while (std::getline(in, line)) {
        if (line.rfind("# TYPE ", 0) == 0) {
            std::istringstream ls(line.substr(7));
            std::string name, type;
            ls >> name >> type;
            EXPECT_EQ(types.count(name), 0u) << "family declared twice: " << name;
            types[name] = type;
            current = name;
            continue;
        }
        if (line.empty() || line[0] == '#') continue;
        std::string name = line.substr(0, line.find_first_of("{ "));
        std::string family = name;
        for (const char* suffix : {"_bucket", "_sum", "_count"})
            if (types.count(name) == 0 && name.size() > strlen(suffix) &&
                name.compare(name.size() - strlen(suffix), strlen(suffix), suffix) == 0)
                family = name.substr(0, name.size() - strlen(suffix));
        EXPECT_EQ(family, current) << "sample outside its family: " << line;
    }
    EXPECT_EQ(types["tailgate_requests_total"], "counter");
    EXPECT_EQ(types["tailgate_deployment_ttft_seconds"], "histogram");
    EXPECT_EQ(types["tailgate_in_flight_requests"], "gauge");
    EXPECT_EQ(types["tailgate_deployment_state"], "gauge");
    for (const auto& [name, type] : types) {
        if (type == "counter") {
            EXPECT_TRUE(name.size() > 6 && name.substr(name.size() - 6) == "_total") << name;
        }
    }
    // Preallocated series are present (and zero) before any traffic.
    EXPECT_EQ(get(series, R"(tailgate_requests_total{model_group="gpt",status_class="2xx"})"), 0);
    EXPECT_EQ(get(series, R"(tailgate_requests_total{model_group="_other",status_class="4xx"})"), 0);
    EXPECT_EQ(get(series, "tailgate_attempts_total{" + kB + R"(,outcome="success"})"), 0);
    EXPECT_EQ(get(series, R"(tailgate_fallbacks_total{model_group="gpt",fallback_group="backup"})"), 0);
    EXPECT_EQ(series.count(R"(tailgate_fallbacks_total{model_group="backup",fallback_group="gpt"})"), 0u);
    EXPECT_EQ(get(series, R"(tailgate_cost_usd_total{deployment="a"})"), 0);
    EXPECT_EQ(series.count(R"(tailgate_cost_usd_total{deployment="c"})"), 0u);  // cost unknown
    EXPECT_EQ(get(series, R"(tailgate_deployment_state{deployment="a",state="healthy"})"), 1);
    EXPECT_EQ(get(series, "tailgate_deployment_ttft_seconds_bucket{" + kA + R"(,le="0.005"})"), 0);
    EXPECT_EQ(get(series, "tailgate_deployment_ttft_seconds_bucket{" + kA + R"(,le="600"})"), 0);
    EXPECT_EQ(get(series, "tailgate_deployment_ttft_seconds_bucket{" + kA + R"(,le="+Inf"})"), 0);
    EXPECT_EQ(get(series, R"(tailgate_gateway_overhead_seconds_bucket{le="0.00005"})"), 0);
    EXPECT_EQ(get(series, R"(tailgate_gateway_overhead_seconds_bucket{le="0.1"})"), 0);
    EXPECT_EQ(get(series, "tailgate_in_flight_requests"), 0);
}

TEST(MetricsRender, GaugesComeFromTheSampler) {
    auto cfg = load();
    Metrics m(cfg);
    auto s = parse(m.render([](uint32_t d) {
        return Metrics::DeploymentGauges{d + 1, d == 1 ? Health::Cooling : Health::HalfOpen};
    }));
    EXPECT_EQ(get(s, R"(tailgate_deployment_in_flight{deployment="c"})"), 3);
    EXPECT_EQ(get(s, R"(tailgate_deployment_state{deployment="b\"q",state="cooling"})"), 1);
    EXPECT_EQ(get(s, R"(tailgate_deployment_state{deployment="b\"q",state="healthy"})"), 0);
    EXPECT_EQ(get(s, R"(tailgate_deployment_state{deployment="a",state="half_open"})"), 1);
}

// ---------------------------------------------------------------------------
// counters move by exactly the events fed

TEST(MetricsEvents, RequestsByStatusClassAndInFlightGauges) {
    auto cfg = load();
    Metrics m(cfg);
    auto finish = [&](uint32_t group, int status, bool stream, bool stream_error = false, bool gone = false) {
        m.request_started();
        if (stream) m.stream_started();
        metrics::RequestSample s;
        s.group = group;
        s.stream = stream;
        s.http_status = status;
        s.stream_error = stream_error;
        s.client_gone = gone;
        s.total_s = 0.02;
        s.ttft_s = stream ? 0.004 : -1;
        s.overhead_s = 0.0002;
        m.request_finished(s, stream);
    };
    m.request_started();
    m.stream_started();
    auto mid = parse(m.render({}));
    EXPECT_EQ(get(mid, "tailgate_in_flight_requests"), 1);
    EXPECT_EQ(get(mid, "tailgate_in_flight_streams"), 1);
    metrics::RequestSample open;
    open.group = 0;
    open.http_status = 200;
    m.request_finished(open, true);

    for (int i = 0; i < 50; ++i) finish(0, 200, i % 2 == 0);
    finish(0, 502, false);
    finish(0, 200, true, /*stream_error=*/true);
    finish(0, 499, true, false, /*gone=*/true);
    finish(m.group_index("no-such-group"), 404, false);
    finish(m.group_index("backup"), 429, false);
    auto s = parse(m.render({}));
    EXPECT_EQ(get(s, R"(tailgate_requests_total{model_group="gpt",status_class="2xx"})"), 51);
    EXPECT_EQ(get(s, R"(tailgate_requests_total{model_group="gpt",status_class="5xx"})"), 1);
    EXPECT_EQ(get(s, R"(tailgate_requests_total{model_group="gpt",status_class="error"})"), 2);
    EXPECT_EQ(get(s, R"(tailgate_requests_total{model_group="_other",status_class="4xx"})"), 1);
    EXPECT_EQ(get(s, R"(tailgate_requests_total{model_group="backup",status_class="4xx"})"), 1);
    EXPECT_EQ(get(s, "tailgate_client_disconnects_total"), 1);
    EXPECT_EQ(get(s, "tailgate_in_flight_requests"), 0);
    EXPECT_EQ(get(s, "tailgate_in_flight_streams"), 0);
    EXPECT_EQ(get(s, R"(tailgate_request_duration_seconds_count{model_group="gpt",stream="true"})"), 27);
    EXPECT_EQ(get(s, R"(tailgate_request_duration_seconds_count{model_group="gpt",stream="false"})"), 26);
    EXPECT_EQ(get(s, R"(tailgate_request_duration_seconds_bucket{model_group="gpt",stream="false",le="0.01"})"), 0);
    EXPECT_EQ(get(s, R"(tailgate_request_duration_seconds_bucket{model_group="gpt",stream="false",le="0.025"})"), 26);
    EXPECT_EQ(get(s, R"(tailgate_request_ttft_seconds_count{model_group="gpt"})"), 27);
    EXPECT_EQ(get(s, R"(tailgate_request_ttft_seconds_bucket{model_group="gpt",le="0.005"})"), 27);
    EXPECT_EQ(get(s, "tailgate_gateway_overhead_seconds_count"), 55);
    EXPECT_EQ(get(s, R"(tailgate_gateway_overhead_seconds_bucket{le="0.00025"})"), 55);
    EXPECT_NEAR(get(s, "tailgate_gateway_overhead_seconds_sum"), 55 * 0.0002, 1e-9);
}

TEST(MetricsEvents, SuccessfulStreamAttemptAndTokensAndCost) {
    auto cfg = load();
    Metrics m(cfg);
    auto inner = std::make_shared<Recorder>();
    metrics::RequestObserver o(&m, inner, plan({{0}}, true));
    o.on_attempt(ev(EventType::Started, 0, 0));
    auto fb = ev(EventType::FirstByte, 0, 0);
    fb.ttft_ms = 30;
    o.on_attempt(fb);
    auto ok = ev(EventType::Success, 0, 0);
    ok.elapsed_ms = 700;
    ok.prompt_tokens = 10;
    ok.completion_tokens = 20;
    o.on_attempt(ok);
    EXPECT_EQ(inner->seen, (std::vector<EventType>{EventType::Started, EventType::FirstByte, EventType::Success}));
    ASSERT_TRUE(o.trace().winner);
    EXPECT_EQ(*o.trace().winner, 0u);
    EXPECT_EQ(o.trace().prompt_tokens, 10);
    EXPECT_EQ(o.trace().completion_tokens, 20);

    auto s = parse(m.render({}));
    EXPECT_EQ(get(s, "tailgate_attempts_total{" + kA + R"(,outcome="success"})"), 1);
    EXPECT_EQ(get(s, "tailgate_attempts_total{" + kA + R"(,outcome="failure"})"), 0);
    EXPECT_EQ(get(s, "tailgate_deployment_ttft_seconds_count{" + kA + "}"), 1);
    EXPECT_EQ(get(s, "tailgate_deployment_ttft_seconds_bucket{" + kA + R"(,le="0.025"})"), 0);
    EXPECT_EQ(get(s, "tailgate_deployment_ttft_seconds_bucket{" + kA + R"(,le="0.05"})"), 1);
    EXPECT_NEAR(get(s, "tailgate_deployment_ttft_seconds_sum{" + kA + "}"), 0.030, 1e-9);
    EXPECT_EQ(get(s, "tailgate_deployment_latency_seconds_bucket{" + kA + R"(,le="0.5"})"), 0);
    EXPECT_EQ(get(s, "tailgate_deployment_latency_seconds_bucket{" + kA + R"(,le="1"})"), 1);
    EXPECT_EQ(get(s, R"(tailgate_tokens_total{deployment="a",direction="in"})"), 10);
    EXPECT_EQ(get(s, R"(tailgate_tokens_total{deployment="a",direction="out"})"), 20);
    EXPECT_NEAR(get(s, R"(tailgate_cost_usd_total{deployment="a"})"), 10 * 0.001 + 20 * 0.002, 1e-12);
    EXPECT_EQ(get(s, R"(tailgate_race_fanouts_total{model_group="gpt"})"), 0);
    EXPECT_EQ(get(s, R"(tailgate_retries_total{model_group="gpt"})"), 0);
}

TEST(MetricsEvents, RetryThenFallbackCountsFailuresByClass) {
    auto cfg = load();
    Metrics m(cfg);
    dispatch::AttemptSpec a0{0}, a1{1, Launch::OnFailure}, a2{2, Launch::OnFailure};
    a2.group = 1;  // the fallback group "backup"
    metrics::RequestObserver o(&m, nullptr, plan({a0, a1, a2}));
    auto fail = [&](uint32_t i, uint32_t d, ErrorClass c) {
        auto e = ev(EventType::Failure, i, d);
        e.error_class = c;
        o.on_attempt(e);
    };
    o.on_attempt(ev(EventType::Started, 0, 0));
    fail(0, 0, ErrorClass::Server);
    o.on_attempt(ev(EventType::Started, 1, 1));
    fail(1, 1, ErrorClass::RateLimit);
    o.on_attempt(ev(EventType::Started, 2, 2));
    o.on_attempt(ev(EventType::Success, 2, 2));
    EXPECT_EQ(o.trace().retries, 2u);
    auto s = parse(m.render({}));
    EXPECT_EQ(get(s, R"(tailgate_retries_total{model_group="gpt"})"), 2);
    EXPECT_EQ(get(s, R"(tailgate_retries_total{model_group="backup"})"), 0);
    EXPECT_EQ(get(s, R"(tailgate_fallbacks_total{model_group="gpt",fallback_group="backup"})"), 1);
    EXPECT_EQ(get(s, R"(tailgate_attempt_failures_total{deployment="a",error_class="server"})"), 1);
    EXPECT_EQ(get(s, R"(tailgate_attempt_failures_total{deployment="b\"q",error_class="rate_limit"})"), 1);
    EXPECT_EQ(get(s, R"(tailgate_attempt_failures_total{deployment="a",error_class="rate_limit"})"), 0);
    EXPECT_EQ(get(s, "tailgate_attempts_total{" + kA + R"(,outcome="failure"})"), 1);
    EXPECT_EQ(get(s, "tailgate_attempts_total{" + kB + R"(,outcome="failure"})"), 1);
    EXPECT_EQ(get(s, R"(tailgate_attempts_total{model_group="backup",deployment="c",provider="groq",outcome="success"})"),
              1);
}

TEST(MetricsEvents, RaceFanoutCountsOnceAndTheWinner) {
    auto cfg = load();
    Metrics m(cfg);
    metrics::RequestObserver o(&m, nullptr, plan({{0}, {1, Launch::AtStart}}, true));
    o.on_attempt(ev(EventType::Started, 0, 0));
    o.on_attempt(ev(EventType::Started, 1, 1));
    auto fb = ev(EventType::FirstByte, 1, 1);
    fb.ttft_ms = 5;
    o.on_attempt(fb);
    o.on_attempt(ev(EventType::Cancelled, 0, 0));
    o.on_attempt(ev(EventType::Success, 1, 1));
    EXPECT_TRUE(o.trace().race);
    auto s = parse(m.render({}));
    EXPECT_EQ(get(s, R"(tailgate_race_fanouts_total{model_group="gpt"})"), 1);
    EXPECT_EQ(get(s, R"(tailgate_race_wins_total{deployment="b\"q"})"), 1);
    EXPECT_EQ(get(s, R"(tailgate_race_wins_total{deployment="a"})"), 0);
    EXPECT_EQ(get(s, "tailgate_attempts_total{" + kA + R"(,outcome="cancelled"})"), 1);
    EXPECT_EQ(get(s, "tailgate_attempts_total{" + kB + R"(,outcome="success"})"), 1);
    EXPECT_EQ(get(s, R"(tailgate_retries_total{model_group="gpt"})"), 0);
}

TEST(MetricsEvents, HedgeLaunchedWonAndRefused) {
    auto cfg = load();
    Metrics m(cfg);
    {
        dispatch::AttemptSpec h{1, Launch::AfterDelay, dispatch::Millis(100)};
        metrics::RequestObserver o(&m, nullptr, plan({{0}, h}));
        o.on_attempt(ev(EventType::Started, 0, 0));
        o.on_attempt(ev(EventType::Started, 1, 1));  // attempt 0 still running: a hedge
        o.on_attempt(ev(EventType::Cancelled, 0, 0));
        o.on_attempt(ev(EventType::Success, 1, 1));
        EXPECT_EQ(o.trace().hedges, 1u);
        EXPECT_TRUE(o.trace().hedge_won);
    }
    {
        dispatch::AttemptSpec h{1, Launch::AfterDelay, dispatch::Millis(100)};
        metrics::RequestObserver o(&m, nullptr, plan({{0}, h}));
        o.on_attempt(ev(EventType::Started, 0, 0));
        o.on_attempt(ev(EventType::Refused, 1, 1));
        o.on_attempt(ev(EventType::Success, 0, 0));
        EXPECT_EQ(o.trace().refused, 1u);
    }
    {
        // The hedge's delay found attempt 0 already failed: launched as a retry, not a hedge.
        dispatch::AttemptSpec h{1, Launch::AfterDelay, dispatch::Millis(100)};
        metrics::RequestObserver o(&m, nullptr, plan({{0}, h}));
        o.on_attempt(ev(EventType::Started, 0, 0));
        o.on_attempt(ev(EventType::Failure, 0, 0));
        o.on_attempt(ev(EventType::Started, 1, 1));
        o.on_attempt(ev(EventType::Success, 1, 1));
        EXPECT_EQ(o.trace().hedges, 0u);
        EXPECT_EQ(o.trace().retries, 1u);
    }
    auto s = parse(m.render({}));
    EXPECT_EQ(get(s, R"(tailgate_hedge_eligible_requests_total{model_group="gpt"})"), 3);
    EXPECT_EQ(get(s, R"(tailgate_hedges_launched_total{model_group="gpt"})"), 1);
    EXPECT_EQ(get(s, R"(tailgate_hedges_won_total{model_group="gpt"})"), 1);
    EXPECT_EQ(get(s, R"(tailgate_hedges_refused_total{model_group="gpt"})"), 1);
    EXPECT_EQ(get(s, R"(tailgate_retries_total{model_group="gpt"})"), 1);
    EXPECT_EQ(get(s, "tailgate_attempts_total{" + kB + R"(,outcome="refused"})"), 1);
    EXPECT_EQ(get(s, "tailgate_attempts_total{" + kB + R"(,outcome="success"})"), 2);
}

TEST(MetricsEvents, CooldownsCountTransitionsIntoCooling) {
    auto cfg = load();
    Metrics m(cfg);
    EXPECT_TRUE(m.health_changed(0, Health::Healthy, Health::Cooling, 5000));
    EXPECT_FALSE(m.health_changed(0, Health::Cooling, Health::Cooling, 5000));  // re-published: not a new cooldown
    m.health_changed(0, Health::Cooling, Health::HalfOpen, 0);
    EXPECT_TRUE(m.health_changed(0, Health::HalfOpen, Health::Cooling, 9000));  // failed probe
    // The next generation hears of the same cooldown (a reload): counted once.
    EXPECT_FALSE(m.health_changed(0, Health::Healthy, Health::Cooling, 9000));
    m.health_changed(1, Health::HalfOpen, Health::Healthy, 0);
    EXPECT_FALSE(m.health_changed(99, Health::Healthy, Health::Cooling, 1));  // out of range: ignored
    auto s = parse(m.render({}));
    EXPECT_EQ(get(s, R"(tailgate_cooldowns_total{deployment="a"})"), 2);
    EXPECT_EQ(get(s, R"(tailgate_cooldowns_total{deployment="b\"q"})"), 0);
}

TEST(MetricsEvents, ObserverWithoutMetricsStillTraces) {
    auto inner = std::make_shared<Recorder>();
    metrics::RequestObserver o(nullptr, inner, plan({{0}}));
    o.on_attempt(ev(EventType::Started, 0, 0));
    auto ok = ev(EventType::Success, 0, 0);
    ok.prompt_tokens = 3;
    o.on_attempt(ok);
    EXPECT_EQ(inner->seen.size(), 2u);
    ASSERT_TRUE(o.trace().winner);
    EXPECT_EQ(o.trace().prompt_tokens, 3);
    EXPECT_EQ(o.trace().completion_tokens, -1);
}

TEST(MetricsEvents, StatusClasses) {
    using metrics::StatusClass;
    EXPECT_EQ(metrics::status_class(200), StatusClass::S2xx);
    EXPECT_EQ(metrics::status_class(404), StatusClass::S4xx);
    EXPECT_EQ(metrics::status_class(429), StatusClass::S4xx);
    EXPECT_EQ(metrics::status_class(499), StatusClass::Error);
    EXPECT_EQ(metrics::status_class(503), StatusClass::S5xx);
    EXPECT_EQ(metrics::status_class(0), StatusClass::Error);
}

// ---------------------------------------------------------------------------
// JSON logs

namespace {

std::vector<std::string> log_lines(const std::function<void(spdlog::logger&)>& body) {
    std::ostringstream os;
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(os);
    spdlog::logger logger("json-test", sink);
    logger.set_formatter(logfmt::make_formatter(true));
    body(logger);
    logger.flush();
    std::vector<std::string> out;
    std::istringstream in(os.str());
    std::string line;
    while (std::getline(in, line)) out.push_back(line);
    return out;
}

rapidjson::Document parse_json(const std::string& line) {
    rapidjson::Document d;
    d.Parse<rapidjson::kParseValidateEncodingFlag>(line.c_str(), line.size());
    EXPECT_FALSE(d.HasParseError()) << line;
    EXPECT_TRUE(d.IsObject()) << line;
    return d;
}

}  // namespace

TEST(JsonLog, MessagesWithQuotesNewlinesAndBadUtf8StayOneValidObject) {
    auto lines = log_lines([](spdlog::logger& l) {
        l.info("model \"x\" said {}", "a\\b\nline two\ttab");
        l.warn("bytes: {}", std::string("ok \xc3\xa9 bad \xff\xfe end \x01"));
        l.error("plain");
    });
    ASSERT_EQ(lines.size(), 3u);
    auto a = parse_json(lines[0]);
    EXPECT_STREQ(a["level"].GetString(), "info");
    EXPECT_STREQ(a["msg"].GetString(), "model \"x\" said a\\b\nline two\ttab");
    EXPECT_TRUE(a["ts"].IsString());
    auto b = parse_json(lines[1]);
    EXPECT_STREQ(b["level"].GetString(), "warning");
    EXPECT_EQ(std::string(b["msg"].GetString()), "bytes: ok \xc3\xa9 bad \xef\xbf\xbd\xef\xbf\xbd end \x01");
    auto c = parse_json(lines[2]);
    EXPECT_STREQ(c["msg"].GetString(), "plain");
}

TEST(JsonLog, StructuredRecordsSpliceTheirFields) {
    logfmt::Fields f;
    f.str("msg", "request")
        .str("request_id", "req_1")
        .integer("status", 200)
        .num("total_ms", 12.345)
        .boolean("stream", true)
        .null("winner")
        .raw("tokens", logfmt::Fields().integer("prompt", 3).integer("completion", 4).object());
    auto lines = log_lines([&](spdlog::logger& l) { l.info("{}", logfmt::structured(f)); });
    ASSERT_EQ(lines.size(), 1u);
    auto d = parse_json(lines[0]);
    EXPECT_STREQ(d["msg"].GetString(), "request");
    EXPECT_STREQ(d["request_id"].GetString(), "req_1");
    EXPECT_EQ(d["status"].GetInt(), 200);
    EXPECT_DOUBLE_EQ(d["total_ms"].GetDouble(), 12.3);
    EXPECT_TRUE(d["stream"].GetBool());
    EXPECT_TRUE(d["winner"].IsNull());
    EXPECT_EQ(d["tokens"]["completion"].GetInt(), 4);
}

TEST(JsonLog, FieldsEscapeKeysAndValues) {
    logfmt::Fields f;
    f.str("k\"ey", "v\"al\n").num("nan", std::nan(""));
    auto d = parse_json(f.object());
    EXPECT_STREQ(d["k\"ey"].GetString(), "v\"al\n");
    EXPECT_TRUE(d["nan"].IsNull());
}

TEST(JsonLog, CompactJson) {
    EXPECT_EQ(logfmt::compact_json("{ \"a\" : [1, 2,\n 3], \"b\": {\"c\": \"x y\"} }"),
              std::optional<std::string>(R"({"a":[1,2,3],"b":{"c":"x y"}})"));
    EXPECT_EQ(logfmt::compact_json("{\"a\":"), std::nullopt);
    EXPECT_EQ(logfmt::compact_json("{\"a\":\"\xff\"}"), std::nullopt);
}

TEST(JsonLog, TextFormatIsUnchanged) {
    std::ostringstream os;
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(os);
    spdlog::logger logger("text-test", sink);
    logger.set_formatter(logfmt::make_formatter(false));
    logger.info("hello \"world\"");
    EXPECT_NE(os.str().find(" info hello \"world\"\n"), std::string::npos) << os.str();
}

TEST(TextLog, ControlBytesFromClientDataCannotForgeLines) {
    std::ostringstream os;
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(os);
    spdlog::logger logger("text-escape-test", sink);
    logger.set_formatter(logfmt::make_formatter(false));
    logger.info("model={} uri={}", "x\n2026-01-01 00:00:00.000 error forged", "/v1/\x1b[2Jchat\x7f\xc2\x9b\xff");
    logger.info("utf-8 stays: caf\xc3\xa9 \xe6\xa8\xa1\xe5\x9e\x8b");
    const std::string out = os.str();
    EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 2) << out;
    EXPECT_NE(out.find("model=x\\x0a2026-01-01 00:00:00.000 error forged"), std::string::npos) << out;
    EXPECT_NE(out.find("uri=/v1/\\x1b[2Jchat\\x7f\\xc2\\x9b\\xff"), std::string::npos) << out;
    EXPECT_NE(out.find("utf-8 stays: caf\xc3\xa9 \xe6\xa8\xa1\xe5\x9e\x8b\n"), std::string::npos) << out;
}

// ---------------------------------------------------------------------------
// general_settings keys

TEST(MetricsConfig, SwitchesParseAndAuthWithoutKeyWarns) {
    const std::string base = "model_list:\n  - model_name: g\n    litellm_params: {model: openai/x}\n";
    auto d = config::load_string(base, "m.yaml");
    EXPECT_TRUE(d.general.metrics);
    EXPECT_FALSE(d.general.metrics_auth);
    auto c = config::load_string(base + "general_settings: {metrics: false, metrics_auth: true}\n", "m.yaml");
    EXPECT_FALSE(c.general.metrics);
    EXPECT_TRUE(c.general.metrics_auth);
    bool warned = false;
    for (const auto& w : c.warnings) warned |= w.find("general_settings.metrics_auth") != std::string::npos;
    EXPECT_TRUE(warned);
    auto k = config::load_string(base + "general_settings: {master_key: sk-1, metrics_auth: true}\n", "m.yaml");
    EXPECT_TRUE(k.warnings.empty());
    EXPECT_THROW(config::load_string(base + "general_settings: {metrics: maybe}\n", "m.yaml"), config::ConfigError);
}

// ---------------------------------------------------------------------------
// generations (a reload builds a new Metrics over the same MetricStore)

TEST(MetricsGenerations, AReloadKeepsEverySeriesAndShowsRemovedOnesWhileTheyRun) {
    auto store = std::make_shared<metrics::MetricStore>();
    auto cfg = load();
    auto before = std::make_unique<Metrics>(cfg, store);
    dispatch::AttemptEvent ok = ev(EventType::Success, 0, 0);
    ok.elapsed_ms = 20;
    before->attempt_ended(0, metrics::Outcome::Success, ok);  // a
    before->attempt_ended(2, metrics::Outcome::Success, ok);  // c (group backup)
    before->request_started();

    // The next config drops c (and its group): a's index moves from 0 to 1.
    auto next = cfg;
    next.deployments.erase(next.deployments.begin() + 2);
    std::swap(next.deployments[0], next.deployments[1]);
    next.router.fallbacks.clear();
    Metrics after(next, store);
    after.attempt_ended(1, metrics::Outcome::Success, ok);  // a, under its new index
    auto s = parse(after.render({}));
    EXPECT_EQ(get(s, "tailgate_attempts_total{" + kA + R"(,outcome="success"})"), 2);
    EXPECT_EQ(get(s, "tailgate_deployment_latency_seconds_count{" + kA + "}"), 2);
    EXPECT_EQ(get(s, "tailgate_in_flight_requests"), 1) << "the gauge counts the old generation's requests";
    // c's generation still runs (its last requests): its series are still there, without gauges.
    const std::string kC = R"(model_group="backup",deployment="c",provider="groq")";
    EXPECT_EQ(get(s, "tailgate_attempts_total{" + kC + R"(,outcome="success"})"), 1);
    EXPECT_EQ(s.count(R"(tailgate_deployment_in_flight{deployment="c"})"), 0u);
    EXPECT_EQ(get(s, R"(tailgate_requests_total{model_group="backup",status_class="2xx"})"), 0);

    before.reset();  // its last request ended
    s = parse(after.render({}));
    EXPECT_EQ(s.count("tailgate_attempts_total{" + kC + R"(,outcome="success"})"), 0u);
    EXPECT_EQ(s.count(R"(tailgate_requests_total{model_group="backup",status_class="2xx"})"), 0u);
    EXPECT_EQ(get(s, "tailgate_in_flight_requests"), 1);

    Metrics readded(cfg, store);  // c back with the same identity: it continues
    s = parse(readded.render({}));
    EXPECT_EQ(get(s, "tailgate_attempts_total{" + kC + R"(,outcome="success"})"), 1);
}

TEST(MetricsGenerations, RetiredSeriesAreKeptUpToTheLimit) {
    auto store = std::make_shared<metrics::MetricStore>();
    for (size_t i = 0; i < metrics::MetricStore::kMaxRetired + 5; ++i)
        store->deployment("deployment=\"d" + std::to_string(i) + "\"", "", false)->race_wins.inc();
    store->prune();
    size_t kept = 0;
    for (size_t i = 0; i < metrics::MetricStore::kMaxRetired + 5; ++i)
        kept += store->deployment("deployment=\"d" + std::to_string(i) + "\"", "", false)->race_wins.value();
    EXPECT_EQ(kept, metrics::MetricStore::kMaxRetired) << "the five longest unused were dropped";
}
