// The HTTP side of the relayed responses (front end) for API requests, and each
// request's bookkeeping (metrics, strategy stats, the JSON request record, the
// text log line): what a handler hands over once the executor runs.
#pragma once

#include "common/api_error.hpp"
#include "config/config.hpp"
#include "dispatch/executor.hpp"
#include "keys/policy.hpp"
#include "metrics/json_log.hpp"
#include "metrics/metrics.hpp"
#include "metrics/strategy_stats.hpp"
#include "router/router.hpp"
#include "server/admission.hpp"
#include "server/all_results.hpp"
#include "server/drain.hpp"
#include "server/frontend/front_end.hpp"
#include "surfaces/surface.hpp"

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace tailgate::server {

// What the bookkeeping writes to, owned by the gateway and alive while it serves.
struct ExchangeEnv {
    std::shared_ptr<const config::Config> cfg;
    metrics::Metrics* prom = nullptr;          // null when general_settings.metrics is false
    metrics::StrategyStats* strat = nullptr;   // with prom
    bool json_log = false;
    // Retry-After as clients may see it: at most router_settings.max_client_retry_after
    // (the OpenAI SDK sleeps whatever it is told before retrying).
    long client_retry_after(long seconds) const {
        const long cap = static_cast<long>((cfg->router.max_client_retry_after.count() + 999) / 1000);
        return seconds < cap ? seconds : cap;
    }
};

// One API request's bookkeeping, done when it ends however it ends: the
// request metrics, and in JSON log mode the structured request record.
struct RequestScope {
    const ExchangeEnv& g;
    const frontend::Request* req;  // null once the response was handed out (relayed)
    std::string request_id;
    std::string client_request_id;  // the client's x-request-id, when echoed
    std::string path;
    std::chrono::steady_clock::time_point t0;
    metrics::RequestSample sample;
    bool stream_counted = false;
    int status = 0;           // 0: what the response says
    std::string model;        // as requested (log only, never a label)
    std::string error;        // why it ended early
    logfmt::Fields detail;    // relay fields for the JSON record
    std::optional<metrics::StrategyStats::Request> strat;  // set once the request had a plan
    bool recorded = false;

    RequestScope(const ExchangeEnv& gw, const frontend::Request& r, const std::string& id, std::string_view p,
                 std::chrono::steady_clock::time_point start)
        : g(gw), req(&r), request_id(id), path(p), t0(start) {
        if (g.prom) {
            g.prom->request_started();
            sample.group = g.prom->other_group();
        }
    }
    RequestScope(const RequestScope&) = delete;
    RequestScope& operator=(const RequestScope&) = delete;
    ~RequestScope() { record(); }
    // Once, when the request is over.
    void record();
};


// The HTTP side of every relayed response: status line, headers,
// chunk framing, and the request's bookkeeping (scope, drain entry, admission).
struct RelayedExchange : frontend::Exchange {
    explicit RelayedExchange(const ExchangeEnv& gw) : g(gw) {}

    bool keep_alive() const override { return keep_alive_; }
    void client_gone(const char* why) override {
        outcome = why;
        scope->sample.client_gone = true;
        if (status == 0) status = 499;
    }

    // Takes over what the handler set up for the request (headers set before it
    // ran: x-request-id, Date, Server) and its bookkeeping.
    void adopt(const frontend::Request& req, std::chrono::steady_clock::time_point start,
               std::unique_ptr<RequestScope> request_scope, std::unique_ptr<Drain::Request> drain_entry,
               Admission::Ticket admission_ticket);
    // Status line and headers; length < 0: chunked (HTTP/1.1) or until close (HTTP/1.0).
    void head(std::string& out, int code, std::string_view content_type, int64_t length);
    static void chunk(std::string& out, std::string_view bytes, bool chunked);
    // An error answer before anything was committed; `final`: retrying cannot
    // help (the deployment was known to be down), tell the SDK so.
    void error_response(std::string& out, const ApiError& e, uint32_t attempts, bool final = false);
    void header(std::string_view name, std::string_view value) {
        headers += name;
        headers += ": ";
        headers += value;
        headers += "\r\n";
    }
    // The admission slot and the drain's count go now, not when the last reference does.
    void release() {
        ticket = Admission::Ticket();
        lease.release();
        active.reset();
    }

    // Keeps alive the config generation `g` belongs to (declared before the
    // scope, which refers to it, so released after it).
    std::shared_ptr<const void> generation;
    const ExchangeEnv& g;
    Endpoint api = Endpoint::Chat;  // the client's API surface: the shape of its errors
    std::string uri;
    std::string version;  // the request's, used for the response
    bool keep_alive_ = true;
    // Header lines ("Name: value\r\n"), rendered as they are set.
    std::string headers;
    std::chrono::steady_clock::time_point t0;
    std::unique_ptr<RequestScope> scope;
    std::unique_ptr<Drain::Request> active;
    Admission::Ticket ticket;  // held until the response is done
    keys::Lease lease;         // the virtual key's parallel slot, as long

    // What happened, for the log and metrics (written on the relay's strand, read in finish()).
    bool chunked = false;
    int status = 0;
    std::string outcome;
};

// One API request once its executor runs: turns the executor's output into the
// HTTP response ClientRelay writes, then does the request's bookkeeping.
struct ApiExchange final : RelayedExchange {
    using RelayedExchange::RelayedExchange;

    bool render(ClientChannel::Batch& batch, std::string& out) override;
    void finish() override;
    void litellm_headers(std::optional<uint32_t> winner);
    // finish()'s parts: the strategy stats entry, the JSON record's fields, the text log line.
    metrics::StrategyStats::Request strategy_request(const std::vector<dispatch::AttemptRecord>& records) const;
    std::string attempts_json(const std::vector<dispatch::AttemptRecord>& records) const;
    void json_detail(const std::vector<dispatch::AttemptRecord>& records);
    void log_line() const;

    std::atomic<std::chrono::steady_clock::rep> launched_at{0};  // attempt 0 handed to its connection; 0: not yet
    router::RequestInfo info;
    router::RoutedPlan routed;
    dispatch::ExecutorPtr executor;
    std::shared_ptr<metrics::RequestObserver> traced;
    // A surface that watches its client's bytes (Responses: numbering, the stored answer).
    std::unique_ptr<surfaces::ClientTap> tap;
    std::function<void()> on_finish;  // once the response is over (e.g. keep it)

    double ttft_ms = -1;
    std::optional<std::chrono::steady_clock::time_point> first_written;  // first response byte handed to the relay
    bool stream_error = false;
    // A pass-through stream (audio): the upstream's bytes and content type as
    // they come, no SSE; a failure after the commit cuts the response short.
    bool raw_stream = false;
    std::string deployment_id = "-";
};

// model="a,b" without fastest_response: one JSON answer built from every group's.
struct AllResultsExchange final : RelayedExchange {
    using RelayedExchange::RelayedExchange;

    bool render(ClientChannel::Batch& batch, std::string& out) override;
    void finish() override;

    std::shared_ptr<AllResultsSource> source;
    std::string model;  // as requested, for the log
};


}  // namespace tailgate::server
