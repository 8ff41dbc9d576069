#include "server/gateway.hpp"

#include "common/fast_rng.hpp"
#include "common/redact.hpp"
#include "dispatch/asio_scheduler.hpp"
#include "metrics/json_log.hpp"
#include "metrics/metrics.hpp"
#include "metrics/strategy_stats.hpp"
#include "server/admission.hpp"
#include "server/all_results.hpp"
#include "server/client_channel.hpp"
#include "server/client_connection.hpp"
#include "server/client_relay.hpp"
#include "server/dashboard.hpp"
#include "server/drain.hpp"
#include "server/endpoints.hpp"
#include "server/exchange.hpp"
#include "server/request_body.hpp"
#include "server/request_info.hpp"
#include "server/request_options.hpp"
#include "server/upstream_transport.hpp"
#include "upstream/client.hpp"

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/IPAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/String.h>
#include <Poco/ThreadPool.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <random>
#include <thread>

#include <unistd.h>

namespace tailgate::server {

namespace {

using Clock = std::chrono::steady_clock;

// A blocked read or write on a client socket gives up after this long: Poco's
// socket timeout, and ClientRelay's write timeout (a client that stopped reading).
constexpr std::chrono::milliseconds kClientIoTimeout{60000};

std::string new_request_id() {
    auto& rng = FastRng::for_this_thread();
    static const char* hex = "0123456789abcdef";
    std::string id = "req_";
    uint64_t a = rng(), b = rng();
    for (int i = 0; i < 16; ++i) id += hex[(a >> (i * 4)) & 15];
    for (int i = 0; i < 8; ++i) id += hex[(b >> (i * 4)) & 15];
    return id;
}

// A client-supplied request id is echoed only when it is short and printable
// (it goes into our logs and response headers).
bool acceptable_request_id(const std::string& s) {
    if (s.empty() || s.size() > 128) return false;
    for (unsigned char c : s)
        if (c < 0x21 || c > 0x7e) return false;
    return true;
}

void send_json(Poco::Net::HTTPServerResponse& resp, int status, const std::string& body) {
    resp.setStatusAndReason(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(status));
    resp.setContentType("application/json");
    resp.setContentLength(static_cast<std::streamsize>(body.size()));
    resp.sendBuffer(body.data(), body.size());
}

// Before answering a request early (auth, method, path errors), consume its
// body so the connection stays usable for the client's next request; a body
// too big to bother with closes the connection instead.
void discard_body(Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp, size_t limit) {
    if (req.hasContentLength() && req.getContentLength64() == 0) return;
    if (!req.hasContentLength() && !req.getChunkedTransferEncoding()) return;
    if (req.hasContentLength() && req.getContentLength64() > static_cast<int64_t>(limit)) {
        resp.setKeepAlive(false);
        return;
    }
    std::istream& in = req.stream();
    char buf[4096];  // small: every touched stack page stays resident per pool thread
    size_t total = 0;
    while (in) {
        in.read(buf, sizeof buf);
        total += static_cast<size_t>(in.gcount());
        if (total > limit) {
            resp.setKeepAlive(false);
            return;
        }
    }
    if (in.bad()) resp.setKeepAlive(false);  // cut short (body timeout): the rest is unread
}

void send_error(Poco::Net::HTTPServerResponse& resp, const ApiError& e) {
    if (e.retry_after_s >= 0) resp.set("Retry-After", std::to_string(e.retry_after_s));
    send_json(resp, e.status, e.body());
}

bool is_loopback(const std::string& host) {
    if (host == "localhost" || host == "::1") return true;
    try {
        return Poco::Net::IPAddress(host).isLoopback();
    } catch (const Poco::Exception&) {
        return false;  // a name we did not resolve: assume it is reachable
    }
}

}  // namespace

// One request as an endpoint handler sees it.
struct Call {
    Poco::Net::HTTPServerRequest& req;
    Poco::Net::HTTPServerResponse& resp;
    const std::string& request_id;  // ours
    const std::string& client_id;   // the client's x-request-id when echoed, else ""
    Clock::time_point t0;
    Endpoint api = Endpoint::Chat;  // API routes: which one
    std::string arg;                // what the route's trailing '*' matched
};

using ForwardedHeaders = std::vector<std::pair<std::string, std::string>>;

struct Gateway::Impl {
    std::shared_ptr<const config::Config> cfg;
    plugin::Registry registry;
    // Declared before the router (whose health listener points into it), so destroyed after it.
    std::unique_ptr<metrics::Metrics> prom;  // null when general_settings.metrics is false
    std::unique_ptr<metrics::StrategyStats> strat;  // GET /stats/strategies; with prom
    std::unique_ptr<router::Router> router;
    // Before the io_context: a relay whose handler is still queued when the
    // io_context goes holds an admission ticket and a drain entry.
    Admission admission{cfg->general};
    Drain drain;
    bool json_log = false;
    ExchangeEnv env;  // what the exchanges' bookkeeping writes to (set once prom and strat exist)
    bool unauthenticated_beyond_loopback = false;  // no master key, listening on a non-loopback address
    boost::asio::io_context io;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{io.get_executor()};
    std::vector<std::thread> io_threads;
    std::unique_ptr<upstream::Client> client;
    std::unique_ptr<dispatch::AsioScheduler> scheduler;
    std::unique_ptr<Poco::ThreadPool> pool;
    std::unique_ptr<HttpFrontEnd> http;

    Impl(std::shared_ptr<const config::Config> c, std::vector<std::string> dirs)
        : cfg(std::move(c)), registry(std::move(dirs)) {
        router = std::make_unique<router::Router>(cfg, registry);
        std::vector<std::string> secrets{cfg->general.master_key.reveal()};
        for (const auto& d : cfg->deployments) secrets.push_back(d.upstream.api_key.reveal());
        set_redacted_secrets(std::move(secrets));
        json_log = cfg->general.log_format == "json";
        if (cfg->general.metrics) {
            prom = std::make_unique<metrics::Metrics>(*cfg);
            std::vector<std::string> dep_ids;
            std::vector<uint32_t> dep_groups;
            for (uint32_t d = 0; d < cfg->deployments.size(); ++d) {
                dep_ids.push_back(cfg->deployments[d].id);
                dep_groups.push_back(prom->group_of(d));
            }
            strat = std::make_unique<metrics::StrategyStats>(cfg->model_groups(), std::move(dep_ids),
                                                             std::move(dep_groups));
            router->set_health_listener([m = prom.get(), st = strat.get()](uint32_t d, Health from, Health to) {
                m->health_changed(d, from, to);
                if (to == Health::Cooling && from != Health::Cooling) st->cooldown(d, Clock::now());
            });
        }
        env = ExchangeEnv{cfg, prom.get(), strat.get(), json_log};
        upstream::Client::Options opts;
        opts.max_idle_per_origin = static_cast<size_t>(std::max(1, cfg->general.upstream_pool_size));
        client = std::make_unique<upstream::Client>(io, opts);
        scheduler = std::make_unique<dispatch::AsioScheduler>(io);
    }

    void handle(Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp);
    // Endpoint handlers (the table kRoutes below says which path, method and access each serves).
    void liveness(Call& c);
    void readiness(Call& c);
    void models(Call& c);
    void model_one(Call& c);
    void metrics_page(Call& c);
    void stats_page(Call& c);
    void ui_page(Call& c);
    void api(Call& c);
    // client_id: the client's x-request-id when echoed ("" otherwise), for the logs.
    std::optional<ApiError> read_body(Poco::Net::HTTPServerRequest& req, std::string& body) const;
    void handle_api(Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp, Endpoint ep,
                    const std::string& request_id, const std::string& client_id, Clock::time_point t0);
    void handle_all_results(Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp,
                            router::RequestInfo info, const std::shared_ptr<const ParsedBody>& parsed,
                            const std::vector<std::string>& groups, const RequestTimeouts& timeouts,
                            const ForwardedHeaders& forwarded, std::unique_ptr<RequestScope> scope,
                            std::unique_ptr<Drain::Request> active, Admission::Ticket ticket);
    // Hands the connection to ClientRelay, which writes what `source` produces.
    void relay(Poco::Net::HTTPServerRequest& req, std::shared_ptr<ResponseSource> source,
               std::shared_ptr<ClientRelay::Exchange> exchange);
    bool authorized(const Poco::Net::HTTPServerRequest& req) const;
    // Refuses the request (429/503 + Retry-After) when draining or over a cap.
    void refuse(Poco::Net::HTTPServerResponse& resp, Rejection why, const std::string& group);
    std::string models_json() const;
    void send_metrics(Poco::Net::HTTPServerResponse& resp) const;
};


namespace {

class Handler final : public Poco::Net::HTTPRequestHandler {
public:
    explicit Handler(Gateway::Impl& g) : g_(g) {}
    void handleRequest(Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp) override;

private:
    Gateway::Impl& g_;
};

class Factory final : public Poco::Net::HTTPRequestHandlerFactory {
public:
    explicit Factory(Gateway::Impl& g) : g_(g) {}
    Poco::Net::HTTPRequestHandler* createRequestHandler(const Poco::Net::HTTPServerRequest&) override {
        return new Handler(g_);
    }

private:
    Gateway::Impl& g_;
};

}  // namespace

bool Gateway::Impl::authorized(const Poco::Net::HTTPServerRequest& req) const {
    const auto& key = cfg->general.master_key;
    if (key.empty()) return true;
    const auto& empty = Poco::Net::HTTPMessage::EMPTY;
    const std::string presented =
        presented_key(req.get("Authorization", empty), req.has("x-litellm-api-key"),
                      req.get("x-litellm-api-key", empty), req.get("api-key", empty));
    return constant_time_equal(presented, key.reveal());
}

void Gateway::Impl::refuse(Poco::Net::HTTPServerResponse& resp, Rejection why, const std::string& group) {
    if (prom) prom->rejected(why);
    send_error(resp, rejection_error(why, group, env.client_retry_after(cfg->general.overload_retry_after_s)));
}

void Gateway::Impl::send_metrics(Poco::Net::HTTPServerResponse& resp) const {
    std::string body = prom->render([this](uint32_t d) {
        auto s = router->state(d).snapshot();
        return metrics::Metrics::DeploymentGauges{s.in_flight, s.health};
    });
    resp.setStatus(Poco::Net::HTTPResponse::HTTP_OK);
    resp.setContentType(metrics::Metrics::kContentType);
    resp.setContentLength(static_cast<std::streamsize>(body.size()));
    resp.sendBuffer(body.data(), body.size());
}

std::string Gateway::Impl::models_json() const {
    std::string out = "{\"object\":\"list\",\"data\":[";
    bool first = true;
    for (const auto& g : cfg->model_groups()) {
        if (config::is_wildcard(g)) continue;  // listed below: not a model a client can name as is
        if (!first) out += ',';
        first = false;
        out += "{\"id\":" + json_quote(g) + ",\"object\":\"model\",\"created\":0,\"owned_by\":\"tailgate\"}";
    }
    for (const auto& [alias, a] : cfg->router.model_group_alias) {
        if (a.hidden) continue;  // LiteLLM's hidden aliases route but are not listed
        if (!first) out += ',';
        first = false;
        out += "{\"id\":" + json_quote(alias) + ",\"object\":\"model\",\"created\":0,\"owned_by\":\"tailgate\"}";
    }
    // Tailgate's extension: the wildcard groups (LiteLLM's "*" / "openai/*") that
    // serve every matching name, most specific first.
    out += "],\"wildcard_model_groups\":[";
    first = true;
    for (const auto& p : router->wildcard_groups()) {
        if (!first) out += ',';
        first = false;
        out += json_quote(p);
    }
    out += "]}";
    return out;
}

void Handler::handleRequest(Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp) {
    try {
        g_.handle(req, resp);
    } catch (const std::exception& e) {
        spdlog::error("internal error handling {} {}: {}", req.getMethod(), req.getURI(), e.what());
        if (!resp.sent()) {
            try {
                send_error(resp, ApiError::internal("internal gateway error"));
            } catch (...) {
                // The client is gone as well: nobody to tell.
            }
        }
    }
}

namespace {

// The endpoint table (server/endpoints.hpp): adding an endpoint is a handler plus a row here.
using Impl = Gateway::Impl;
const EndpointRoute kRoutes[] = {
    {"GET", "/health/liveliness", Access::Open, &Impl::liveness},
    {"GET", "/health/liveness", Access::Open, &Impl::liveness},
    {"GET", "/health/readiness", Access::Open, &Impl::readiness},
    {"GET", "/health", Access::Open, &Impl::readiness},
    {"GET", "/metrics", Access::Observability, &Impl::metrics_page, false, Endpoint::Chat, true},
    {"GET", "/stats/strategies", Access::Observability, &Impl::stats_page, false, Endpoint::Chat, true},
    {"GET", "/ui", Access::Observability, &Impl::ui_page, false, Endpoint::Chat, true},
    {"POST", "/chat/completions", Access::Key, &Impl::api, true, Endpoint::Chat},
    {"POST", "/completions", Access::Key, &Impl::api, true, Endpoint::Completions},
    {"POST", "/embeddings", Access::Key, &Impl::api, true, Endpoint::Embeddings},
    {"GET", "/models", Access::Key, &Impl::models, true},
    {"GET", "/models/*", Access::Key, &Impl::model_one, true},
};

}  // namespace

std::span<const EndpointRoute> endpoint_routes() { return kRoutes; }

void Gateway::Impl::handle(Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp) {
    auto t0 = Clock::now();
    // Always our own id inside (plugins treat it as unique: probe reservations,
    // hedge counting); the client's, when acceptable, is only echoed and logged.
    const std::string request_id = new_request_id();
    const std::string& client_id = req.get("x-request-id", Poco::Net::HTTPMessage::EMPTY);
    const bool echo_client_id = acceptable_request_id(client_id);
    resp.set("x-request-id", echo_client_id ? client_id : request_id);
    // Draining: every answer closes its connection, so clients reconnect elsewhere.
    if (drain.draining()) resp.setKeepAlive(false);

    Call call{req, resp, request_id, echo_client_id ? client_id : Poco::Net::HTTPMessage::EMPTY, t0,
              Endpoint::Chat, {}};
    const std::string& method = req.getMethod();
    const size_t limit = cfg->general.max_body_bytes;
    RouteMatch match = find_route(kRoutes, method, route_path(req.getURI()), prom != nullptr);
    const EndpointRoute* route = match.route;
    if (!route) {
        discard_body(req, resp, limit);
        if (!match.allowed.empty()) resp.set("Allow", match.allowed);
        send_error(resp, unmatched_route(match, method, req.getURI()));
        return;
    }
    call.arg = std::move(match.arg);
    call.api = route->api;
    if (needs_key(route->access, cfg->general.metrics_auth) && !authorized(req)) {
        std::optional<RequestScope> scope;  // API calls are counted and logged, probes are not
        if (route->handler == &Impl::api) {
            scope.emplace(env, resp, request_id, path_only(req.getURI()), t0);
            scope->client_request_id = call.client_id;
            scope->error = "unauthorized";
        }
        discard_body(req, resp, limit);
        send_error(resp, ApiError::unauthorized("Invalid or missing API key"));
        if (scope && !json_log) spdlog::info("{} POST {} 401 unauthorized", request_id, req.getURI());
        return;
    }
    (this->*(route->handler))(call);
}

void Gateway::Impl::liveness(Call& c) { send_json(c.resp, 200, "{\"status\":\"alive\"}"); }

void Gateway::Impl::readiness(Call& c) {
    if (drain.draining()) {
        send_json(c.resp, 503, "{\"status\":\"draining\",\"version\":\"" TAILGATE_VERSION "\"}");
        return;
    }
    send_json(c.resp, 200,
              "{\"status\":\"healthy\",\"deployments\":" + std::to_string(router->deployment_count()) +
                  ",\"version\":\"" TAILGATE_VERSION "\"" +
                  (cfg->general.master_key.empty() ? std::string(",\"auth\":\"disabled\"") : "") +
                  (unauthenticated_beyond_loopback
                       ? ",\"warning\":\"no master_key: API open to every client that can reach this address\""
                       : "") +
                  "}");
}

void Gateway::Impl::models(Call& c) { send_json(c.resp, 200, models_json()); }

void Gateway::Impl::model_one(Call& c) {
    if (router->resolve_group(c.arg))
        send_json(c.resp, 200,
                  "{\"id\":" + json_quote(c.arg) + ",\"object\":\"model\",\"created\":0,\"owned_by\":\"tailgate\"}");
    else
        send_error(c.resp, ApiError::not_found("The model `" + c.arg + "` does not exist", "model_not_found"));
}

void Gateway::Impl::metrics_page(Call& c) { send_metrics(c.resp); }

void Gateway::Impl::stats_page(Call& c) { send_json(c.resp, 200, strat->render(Clock::now())); }

void Gateway::Impl::ui_page(Call& c) {
    const std::string_view page = dashboard_html();
    c.resp.setStatus(Poco::Net::HTTPResponse::HTTP_OK);
    c.resp.setContentType("text/html; charset=utf-8");
    c.resp.set("Cache-Control", "no-store");
    c.resp.setContentLength(static_cast<std::streamsize>(page.size()));
    c.resp.sendBuffer(page.data(), page.size());
}

void Gateway::Impl::api(Call& c) { handle_api(c.req, c.resp, c.api, c.request_id, c.client_id, c.t0); }

// Reads the body (Content-Length or chunked) straight into `body`, never more
// than the limit + 1 (no stack buffer: a pool thread's touched stack stays
// resident). The error to answer (and close) when it cannot.
std::optional<ApiError> Gateway::Impl::read_body(Poco::Net::HTTPServerRequest& req, std::string& body) const {
    const size_t limit = cfg->general.max_body_bytes;
    auto too_large = [limit] {
        return ApiError::too_large("Request body exceeds the limit of " + std::to_string(limit) + " bytes");
    };
    if (req.hasContentLength() && req.getContentLength64() > static_cast<int64_t>(limit))
        return ApiError::too_large("Request body of " + std::to_string(req.getContentLength64()) +
                                   " bytes exceeds the limit of " + std::to_string(limit) + " bytes");
    std::istream& in = req.stream();
    size_t step = req.hasContentLength() ? std::min(static_cast<size_t>(req.getContentLength64()), limit) + 1 : 16384;
    while (in) {
        const size_t old = body.size();
        body.resize(old + step);
        in.read(body.data() + old, static_cast<std::streamsize>(step));
        body.resize(old + static_cast<size_t>(in.gcount()));
        step = 16384;
        if (body.size() > limit) return too_large();
    }
    if (auto e = body_framing_error(req)) return e;
    if (body_timed_out(req)) return request_timeout_error("Request body", cfg->general.client_body_timeout);
    return std::nullopt;
}

void Gateway::Impl::handle_api(Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp,
                               Endpoint ep, const std::string& request_id, const std::string& client_id,
                               Clock::time_point t0) {
    // On the heap: a response written by ClientRelay takes them along.
    auto scope_owner = std::make_unique<RequestScope>(env, resp, request_id, path_only(req.getURI()), t0);
    RequestScope& scope = *scope_owner;
    scope.client_request_id = client_id;
    const size_t limit = cfg->general.max_body_bytes;
    auto active_owner = std::make_unique<Drain::Request>(drain);
    Drain::Request& active = *active_owner;
    if (!active.admitted()) {
        scope.error = "draining";
        discard_body(req, resp, limit);  // unread bytes at close would reset the connection
        refuse(resp, Rejection::Draining, {});
        return;
    }
    std::string body;
    if (auto e = read_body(req, body)) {
        scope.error = e->message;
        resp.setKeepAlive(false);  // whatever was left unread must not be taken for a request
        send_error(resp, *e);
        return;
    }

    std::string_view json = body;
    if (json.substr(0, 3) == "\xEF\xBB\xBF") json.remove_prefix(3);  // tolerate a UTF-8 BOM
    auto parsed_or = parse_body(json, ep);
    if (auto* e = std::get_if<ApiError>(&parsed_or)) {
        send_error(resp, *e);
        scope.error = e->message;
        if (!json_log) spdlog::info("{} {} 400 {}", request_id, req.getURI(), e->message);
        return;
    }
    auto parsed = std::make_shared<const ParsedBody>(std::move(std::get<ParsedBody>(parsed_or)));
    scope.model = parsed->model;
    scope.sample.stream = parsed->stream;
    body.clear();
    body.shrink_to_fit();

    // LiteLLM's model lists: "a,b" races (fastest_response) or fans out to all.
    std::vector<std::string> model_list;
    if (parsed->model.find(',') != std::string::npos) {
        auto list = split_model_list(parsed->model);
        if (auto* e = std::get_if<ApiError>(&list)) {
            scope.error = e->message;
            send_error(resp, *e);
            return;
        }
        model_list = std::move(std::get<std::vector<std::string>>(list));
    }
    if (!parsed->client_credential.empty() && !cfg->general.allow_client_side_credentials) {
        scope.error = "client-side credential field";
        send_error(resp, ApiError::bad_request("'" + parsed->client_credential +
                                                   "' is not accepted: deployments and their credentials come from "
                                                   "the gateway's config (general_settings.allow_client_side_credentials)",
                                               parsed->client_credential, "client_side_credentials_not_allowed"));
        return;
    }
    Admission::Ticket ticket;  // held until the response is done
    if (!admission.unlimited()) {
        auto groups = model_list.empty() ? std::span<const std::string>(&parsed->model, 1)
                                         : std::span<const std::string>(model_list);
        if (auto no = admission.admit(groups, parsed->stream, ticket)) {
            scope.error = rejection_name(no->reason);
            if (prom) scope.sample.group = prom->group_index(groups.front());
            refuse(resp, no->reason, no->group);
            if (!json_log)
                spdlog::info("{} {} model={} {} refused: {}", request_id, req.getURI(), parsed->model,
                             static_cast<int>(resp.getStatus()), scope.error);
            return;
        }
    }
    // Everything routing needs from the request, built once for every path.
    const RequestTimeouts timeouts = request_timeouts(*parsed, cfg->router.max_request_timeout);
    router::RequestInfo info = request_info(*parsed, ep, request_id, timeouts);
    ForwardedHeaders forwarded;
    for (const auto& name : cfg->general.forward_client_headers)
        for (auto it = req.find(name); it != req.end() && Poco::icompare(it->first, name) == 0; ++it)
            forwarded.emplace_back(it->first, it->second);

    if (!model_list.empty() && !parsed->fastest_response) {
        if (prom) scope.sample.group = prom->group_index(model_list.front());
        handle_all_results(req, resp, std::move(info), parsed, model_list, timeouts, forwarded,
                           std::move(scope_owner), std::move(active_owner), std::move(ticket));
        return;
    }
    info.race_groups = std::move(model_list);

    auto routed_or = router->route(info);
    if (auto* e = std::get_if<ApiError>(&routed_or)) {
        if (e->retry_after_s >= 0) e->retry_after_s = env.client_retry_after(e->retry_after_s);
        send_error(resp, *e);
        scope.error = e->message;
        if (prom)
            scope.sample.group =
                prom->group_index(info.race_groups.empty() ? info.model_group : info.race_groups.front());
        if (!json_log)
            spdlog::info("{} {} model={} {} {}", request_id, req.getURI(), info.model_group, e->status, e->message);
        return;
    }
    auto& routed = std::get<router::RoutedPlan>(routed_or);
    if (info.stream && timeouts.stream_timeout) routed.plan.first_content_timeout = *timeouts.stream_timeout;
    const dispatch::Plan& plan = routed.plan;

    auto transport = std::make_shared<UpstreamTransport>(*client, *cfg, parsed, plan, routed.captures, ep, timeouts);
    if (!forwarded.empty()) transport->forward(forwarded);
    std::shared_ptr<dispatch::Observer> observer = router->observer_for(info);
    std::shared_ptr<metrics::RequestObserver> traced;  // metrics and the JSON record read its trace
    if (prom || json_log) {
        traced = std::make_shared<metrics::RequestObserver>(prom.get(), std::move(observer), plan);
        observer = traced;
    }
    if (traced && strat && plan.shadow_sample_rate > 0) {
        // A shadowed primary finishes after the client got its answer: record then.
        metrics::StrategyStats* stats = strat.get();
        uint32_t group = prom->group_of(plan.attempts.front().deployment);
        bool stream = plan.stream;
        traced->on_shadow([stats, group, stream](double total_ms, double ttft_ms) {
            stats->shadow(group, stream ? ttft_ms : total_ms, std::chrono::steady_clock::now());
        });
    }
    if (prom) {
        scope.sample.group = prom->group_of(plan.attempts.front().deployment);
        if (plan.stream) {
            prom->stream_started();
            scope.stream_counted = true;
        }
    }
    auto channel = std::make_shared<ClientChannel>();  // ClientRelay is notified instead
    auto executor = std::make_shared<dispatch::Executor>(plan, *scheduler, transport, channel, observer);
    active.track(executor, channel);

    auto x = std::make_shared<ApiExchange>(env);
    x->adopt(req, resp, t0, std::move(scope_owner), std::move(active_owner), std::move(ticket));
    x->info = std::move(info);
    x->routed = std::move(routed);
    x->executor = executor;
    x->traced = std::move(traced);

    relay(req, std::make_shared<ExecutorSource>(channel, executor), x);
    executor->start();
    x->launched_at.store(Clock::now().time_since_epoch().count(), std::memory_order_release);  // attempt 0 is on its way
}

void Gateway::Impl::relay(Poco::Net::HTTPServerRequest& req, std::shared_ptr<ResponseSource> source,
                          std::shared_ptr<ClientRelay::Exchange> exchange) {
    auto client_conn = detach_client(req);
    if (!client_conn) throw std::logic_error("API request on a connection not served by HttpFrontEnd");
    ClientRelay::Options relay_opts;
    relay_opts.write_timeout = kClientIoTimeout;
    ClientRelay::start(io, std::move(*client_conn), http->resumer(), std::move(source), std::move(exchange),
                       relay_opts);
}

// model="a,b" without fastest_response: every group answers; the client gets
// the first successful completion as the top-level object (so plain SDK code
// keeps working) plus "results": one entry per listed group, in order (see
// AllResultsSource). Written by ClientRelay like any other response.
void Gateway::Impl::handle_all_results(Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp,
                                       router::RequestInfo info, const std::shared_ptr<const ParsedBody>& parsed,
                                       const std::vector<std::string>& groups, const RequestTimeouts& timeouts,
                                       const ForwardedHeaders& forwarded, std::unique_ptr<RequestScope> scope,
                                       std::unique_ptr<Drain::Request> active, Admission::Ticket ticket) {
    if (parsed->stream) {
        const ApiError e = ApiError::bad_request("stream=true with a model list needs fastest_response=true "
                                                 "(a stream has one winner)",
                                                 "stream", "model_list_stream");
        scope->error = e.message;
        send_error(resp, e);
        return;
    }
    std::vector<AllResultsSource::Part> parts(groups.size());
    for (size_t i = 0; i < groups.size(); ++i) {
        AllResultsSource::Part& part = parts[i];
        part.group = groups[i];
        info.model_group = groups[i];
        auto routed = router->route(info);
        if (auto* e = std::get_if<ApiError>(&routed)) {
            part.error = *e;
            continue;
        }
        const auto& rp = std::get<router::RoutedPlan>(routed);
        const dispatch::Plan& plan = rp.plan;
        for (const auto& a : plan.attempts) part.deployment_ids.push_back(cfg->deployments[a.deployment].id);
        part.channel = std::make_shared<ClientChannel>();  // the relay is notified
        auto transport =
            std::make_shared<UpstreamTransport>(*client, *cfg, parsed, plan, rp.captures, info.endpoint, timeouts);
        if (!forwarded.empty()) transport->forward(forwarded);
        std::shared_ptr<dispatch::Observer> observer = router->observer_for(info);
        if (prom) observer = std::make_shared<metrics::RequestObserver>(prom.get(), std::move(observer), plan);
        part.executor = std::make_shared<dispatch::Executor>(plan, *scheduler, transport, part.channel, observer);
        active->track(part.executor, part.channel);
    }
    auto source = std::make_shared<AllResultsSource>(std::move(parts));
    std::vector<dispatch::ExecutorPtr> executors;
    for (size_t i = 0; i < groups.size(); ++i)
        if (auto e = source->executor(i)) executors.push_back(std::move(e));
    auto x = std::make_shared<AllResultsExchange>(env);
    const Clock::time_point t0 = scope->t0;
    x->adopt(req, resp, t0, std::move(scope), std::move(active), std::move(ticket));
    x->source = source;
    x->model = parsed->model;
    relay(req, source, x);
    for (auto& e : executors) e->start();
    // Every group refused at routing: no executor will notify, so wake the relay once.
    if (executors.empty()) source->notify_now();
}

Gateway::Gateway(std::shared_ptr<const config::Config> cfg, std::vector<std::string> plugin_dirs)
    : impl_(std::make_unique<Impl>(std::move(cfg), std::move(plugin_dirs))) {}

Gateway::~Gateway() { stop(); }

const router::Router& Gateway::router() const { return *impl_->router; }

void Gateway::begin_drain() { impl_->drain.begin(); }
size_t Gateway::in_flight() const { return impl_->drain.active(); }
size_t Gateway::abort_in_flight() {
    return impl_->drain.abort_all(ApiError::unavailable(
        "The gateway is shutting down and this request outlived its drain period (drain_timeout)",
        impl_->cfg->general.overload_retry_after_s));
}

int Gateway::start(const std::string& host, int port) {
    auto& g = *impl_;
    int nio = std::max(1, g.cfg->general.io_threads);
    for (int i = 0; i < nio; ++i) g.io_threads.emplace_back([&g] { g.io.run(); });

    auto* params = new Poco::Net::HTTPServerParams;
    params->setMaxThreads(g.cfg->general.max_threads);
    params->setMaxQueued(4096);
    params->setKeepAlive(true);
    params->setKeepAliveTimeout(Poco::Timespan(g.cfg->general.keep_alive_timeout.count() * 1000));
    params->setMaxKeepAliveRequests(0);
    params->setTimeout(Poco::Timespan(std::chrono::microseconds(kClientIoTimeout).count()));
    params->setServerName("tailgate");
    params->setSoftwareVersion("tailgate/" TAILGATE_VERSION);
    // Small stacks: a pool thread only parses, routes and copies bytes.
    // Two dispatchers share it (new connections, and connections resumed after a
    // relayed response), each up to max_threads.
    g.pool = std::make_unique<Poco::ThreadPool>(2, 2 * g.cfg->general.max_threads, 60, 256 * 1024);
    ClientLimits limits;
    limits.header_timeout = g.cfg->general.client_header_timeout;
    limits.body_timeout = g.cfg->general.client_body_timeout;
    limits.max_header_bytes = g.cfg->general.max_header_bytes;
    limits.max_body_bytes = g.cfg->general.max_body_bytes;
    // The parker reaches the front end's resumer through this holder, weakly:
    // the resumer owns the connection factory, which owns the parker.
    auto resumer = std::make_shared<std::weak_ptr<ConnectionResumer>>();
    IdleParker parker = [&io = g.io, resumer](DetachedClient c, std::chrono::milliseconds timeout) {
        if (auto r = resumer->lock()) park_idle_client(io, std::move(c), std::move(r), timeout);
        else ::close(c.fd);  // the front end is gone: nothing would resume it
    };
    g.http = std::make_unique<HttpFrontEnd>(Poco::Net::HTTPRequestHandlerFactory::Ptr(new Factory(g)), params, limits,
                                            *g.pool, host, port, std::move(parker));
    *resumer = g.http->resumer();
    g.http->start();
    if (g.cfg->general.master_key.empty() && !is_loopback(host)) {
        g.unauthenticated_beyond_loopback = true;
        spdlog::warn("authentication is OFF (no general_settings.master_key) and the gateway listens on {}: every "
                     "client that can reach it may use the configured providers",
                     host);
    }
    return g.http->port();
}

void Gateway::stop() {
    auto& g = *impl_;
    if (g.http) {
        g.http->stop();
        g.http.reset();
    }
    if (g.pool) g.pool->joinAll();
    g.work.reset();
    g.io.stop();
    for (auto& t : g.io_threads)
        if (t.joinable()) t.join();
    g.io_threads.clear();
}

}  // namespace tailgate::server
