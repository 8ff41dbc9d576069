// Gateway::Impl and what its endpoint handlers share. Internal to
// host/server: gateway.cpp (construction, the endpoint table, the small
// endpoints, start/stop) and api_endpoint.cpp (the API endpoints' steps).
#pragma once

#include "server/gateway.hpp"

#include "control/admin_api.hpp"
#include "control/control_plane.hpp"
#include "control/response_store.hpp"
#include "dispatch/asio_scheduler.hpp"
#include "metrics/metrics.hpp"
#include "metrics/strategy_stats.hpp"
#include "server/admission.hpp"
#include "server/drain.hpp"
#include "server/endpoints.hpp"
#include "server/exchange.hpp"
#include "server/frontend/front_end.hpp"
#include "server/request_body.hpp"
#include "server/upstream_transport.hpp"
#include "upstream/client.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace tailgate::server {

using Clock = std::chrono::steady_clock;
using ForwardedHeaders = std::vector<std::pair<std::string, std::string>>;

inline void send_json(frontend::Request& req, int status, const std::string& body) {
    req.respond(status, "application/json", body);
}

// An error answer in the shape of the client's API surface (OpenAI's by default).
inline void send_error(frontend::Request& req, const ApiError& e, const surfaces::Surface& surface) {
    if (e.retry_after_s >= 0) req.set_header("Retry-After", std::to_string(e.retry_after_s));
    send_json(req, surface.error_status(e), surface.error_body(e));
}
inline void send_error(frontend::Request& req, const ApiError& e) {
    send_error(req, e, surfaces::surface_for(Endpoint::Chat));
}

// One request as an endpoint handler sees it.
struct Call {
    frontend::Request& req;
    const std::string& request_id;  // ours
    const std::string& client_id;   // the client's x-request-id when echoed, else ""
    Clock::time_point t0;
    Endpoint api = Endpoint::Chat;  // API routes: which one
    std::string arg;                     // what the route's trailing '*' matched
    control::AdminApi::Handler admin = nullptr;  // admin routes: the AdminApi function serving it
};

// One config generation as the server uses it: requests load it once and keep it.
struct Live {
    control::GenerationPtr gen;
    ExchangeEnv env;  // what the exchanges' bookkeeping writes to
    const router::Router& router() const { return *gen->router; }
    const config::Config& config() const { return *gen->config; }
    metrics::Metrics* prom() const { return gen->prom.get(); }
    metrics::StrategyStats* strat() const { return gen->strat.get(); }
};
using LivePtr = std::shared_ptr<const Live>;

// Pins a generation for as long as the executor reports to the observer chain
// it built (a shadowed attempt outlives the client's exchange).
class PinnedObserver final : public dispatch::Observer {
public:
    PinnedObserver(std::shared_ptr<const void> pin, std::shared_ptr<dispatch::Observer> inner)
        : pin_(std::move(pin)), inner_(std::move(inner)) {}
    void on_attempt(const dispatch::AttemptEvent& ev) override { inner_->on_attempt(ev); }

private:
    std::shared_ptr<const void> pin_;  // declared first: released after the observers it keeps valid
    std::shared_ptr<dispatch::Observer> inner_;
};

// One API request as its handler steps pass it on; a relayed response takes
// the bookkeeping (scope, drain entry, admission ticket) along.
struct ApiCall {
    ApiCall(Call& call, LivePtr l) : c(call), lv(std::move(l)) {}
    Call& c;
    LivePtr lv;  // the generation this request keeps to its end, whatever reloads meanwhile
    std::unique_ptr<RequestScope> scope;  // on the heap: the relayed exchange adopts it
    std::unique_ptr<Drain::Request> active;
    Admission::Ticket ticket;  // held until the response is done
    std::shared_ptr<const ParsedBody> parsed;
    std::vector<std::string> model_list;  // "a,b": the listed groups
    router::RequestInfo info;             // everything routing needs, built once for every path
    RequestTimeouts timeouts;
    ForwardedHeaders forwarded;
    ForwardedHeaders native_forwarded;  // only to deployments that speak the client's wire
};

struct Gateway::Impl {
    // The config read at start: general_settings (listener, limits, auth) come from it.
    std::shared_ptr<const config::Config> cfg;
    std::unique_ptr<control::ControlPlane> control;
    std::unique_ptr<control::AdminApi> admin_api;
    control::ResponseStorePtr response_store;  // the Responses API's stored responses
    // The running generation (hot reload swaps it): one atomic load per request.
    std::atomic<LivePtr> live;
    std::set<std::string> secrets;  // every key ever configured: old generations may still log
    // Before the io_context: a relay whose handler is still queued when the
    // io_context goes holds an admission ticket and a drain entry.
    Admission admission{cfg->general};
    Drain drain;
    bool json_log = false;
    bool unauthenticated_beyond_loopback = false;  // no master key, listening on a non-loopback address
    std::string caller_key_hash;  // of the master key (the only key today): the caller identity strategies see
    boost::asio::io_context io;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{io.get_executor()};
    std::vector<std::thread> io_threads;
    std::unique_ptr<upstream::Client> client;
    std::unique_ptr<dispatch::AsioScheduler> scheduler;
    std::unique_ptr<frontend::FrontEnd> http;

    Impl(std::shared_ptr<const config::Config> c, control::StorePtr store, control::ResponseStorePtr responses);

    void handle(frontend::Request& req);
    LivePtr snapshot() const { return live.load(std::memory_order_acquire); }
    // Makes `g` the generation new requests take (the control plane calls it).
    void publish(control::GenerationPtr g);
    void admin(Call& c);
    // Endpoint handlers (the table kRoutes below says which path, method and access each serves).
    void liveness(Call& c);
    void readiness(Call& c);
    void models(Call& c);
    void model_one(Call& c);
    void metrics_page(Call& c);
    void stats_page(Call& c);
    void ui_page(Call& c);
    void api(Call& c);
    // The Responses API's stored responses (responses_api.cpp).
    void response_get(Call& c);
    void response_delete(Call& c);
    bool resolve_previous(ApiCall& a, std::string_view body);
    void keep_response(ApiCall& a, ApiExchange& x);
    // The steps of api(); each answers the request itself and returns false when it ends there.
    bool read_api_body(ApiCall& a);
    bool check_model_list(ApiCall& a);
    bool admit(ApiCall& a);
    void build_request_info(ApiCall& a);
    void route_and_relay(ApiCall& a);
    bool translatable(ApiCall& a, const router::RoutedPlan& routed);
    void all_results(ApiCall& a);
    // The attempt observer of one plan: the router's, traced for metrics and the JSON log.
    std::shared_ptr<dispatch::Observer> observer_for(const LivePtr& lv, const router::RequestInfo& info,
                                                     const router::RoutedPlan* routed, const dispatch::Plan& plan,
                                                     std::shared_ptr<metrics::RequestObserver>& traced);
    std::shared_ptr<UpstreamTransport> transport_for(const ApiCall& a, const router::RoutedPlan& routed);
    // Answers an API request before it was routed, and says why in its record.
    void fail_api(ApiCall& a, const ApiError& e);
    bool authorized(const frontend::Request& req) const;
    // Refuses the request (429/503 + Retry-After) when draining or over a cap.
    void refuse(const Live& lv, frontend::Request& req, Rejection why, const std::string& group,
                Endpoint api = Endpoint::Chat);
    std::string models_json(const Live& lv) const;
    void send_metrics(frontend::Request& req) const;
};

}  // namespace tailgate::server
