#include "server/gateway_impl.hpp"

#include "common/fast_rng.hpp"
#include "common/redact.hpp"
#include "server/dashboard.hpp"
#include "server/endpoints.hpp"

#include <spdlog/spdlog.h>

#include <optional>

namespace tailgate::server {

namespace {

// A blocked read or write on a client socket gives up after this long: a pool
// thread's read or write, and a relay's write (a client that stopped reading).
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

}  // namespace

Gateway::Impl::Impl(std::shared_ptr<const config::Config> c, std::vector<std::string> dirs)
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

bool Gateway::Impl::authorized(const frontend::Request& req) const {
    const auto& key = cfg->general.master_key;
    if (key.empty()) return true;
    const std::string presented = presented_key(req.header("Authorization"), req.has_header("x-litellm-api-key"),
                                                req.header("x-litellm-api-key"), req.header("api-key"));
    return constant_time_equal(presented, key.reveal());
}

void Gateway::Impl::refuse(frontend::Request& req, Rejection why, const std::string& group) {
    if (prom) prom->rejected(why);
    send_error(req, rejection_error(why, group, env.client_retry_after(cfg->general.overload_retry_after_s)));
}

void Gateway::Impl::send_metrics(frontend::Request& req) const {
    std::string body = prom->render([this](uint32_t d) {
        auto s = router->state(d).snapshot();
        return metrics::Metrics::DeploymentGauges{s.in_flight, s.health};
    });
    req.respond(200, metrics::Metrics::kContentType, body);
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

void Gateway::Impl::handle(frontend::Request& req) {
    auto t0 = Clock::now();
    // Always our own id inside (plugins treat it as unique: probe reservations,
    // hedge counting); the client's, when acceptable, is only echoed and logged.
    const std::string request_id = new_request_id();
    const std::string& client_id = req.header("x-request-id");
    const bool echo_client_id = acceptable_request_id(client_id);
    req.set_header("x-request-id", echo_client_id ? client_id : request_id);
    // Draining: every answer closes its connection, so clients reconnect elsewhere.
    if (drain.draining()) req.set_keep_alive(false);

    static const std::string kNone;
    Call call{req, request_id, echo_client_id ? client_id : kNone, t0, Endpoint::Chat, {}};
    const std::string& method = req.method();
    RouteMatch match = find_route(kRoutes, method, route_path(req.uri()), prom != nullptr);
    const EndpointRoute* route = match.route;
    if (!route) {
        req.discard_body();
        if (!match.allowed.empty()) req.set_header("Allow", match.allowed);
        send_error(req, unmatched_route(match, method, req.uri()));
        return;
    }
    call.arg = std::move(match.arg);
    call.api = route->api;
    if (needs_key(route->access, cfg->general.metrics_auth) && !authorized(req)) {
        std::optional<RequestScope> scope;  // API calls are counted and logged, probes are not
        if (route->handler == &Impl::api) {
            scope.emplace(env, req, request_id, path_only(req.uri()), t0);
            scope->client_request_id = call.client_id;
            scope->error = "unauthorized";
        }
        req.discard_body();
        send_error(req, ApiError::unauthorized("Invalid or missing API key"));
        if (scope && !json_log) spdlog::info("{} POST {} 401 unauthorized", request_id, req.uri());
        return;
    }
    (this->*(route->handler))(call);
}

void Gateway::Impl::liveness(Call& c) { send_json(c.req, 200, "{\"status\":\"alive\"}"); }

void Gateway::Impl::readiness(Call& c) {
    if (drain.draining()) {
        send_json(c.req, 503, "{\"status\":\"draining\",\"version\":\"" TAILGATE_VERSION "\"}");
        return;
    }
    send_json(c.req, 200,
              "{\"status\":\"healthy\",\"deployments\":" + std::to_string(router->deployment_count()) +
                  ",\"version\":\"" TAILGATE_VERSION "\"" +
                  (cfg->general.master_key.empty() ? std::string(",\"auth\":\"disabled\"") : "") +
                  (unauthenticated_beyond_loopback
                       ? ",\"warning\":\"no master_key: API open to every client that can reach this address\""
                       : "") +
                  "}");
}

void Gateway::Impl::models(Call& c) { send_json(c.req, 200, models_json()); }

void Gateway::Impl::model_one(Call& c) {
    if (router->resolve_group(c.arg))
        send_json(c.req, 200,
                  "{\"id\":" + json_quote(c.arg) + ",\"object\":\"model\",\"created\":0,\"owned_by\":\"tailgate\"}");
    else
        send_error(c.req, ApiError::not_found("The model `" + c.arg + "` does not exist", "model_not_found"));
}

void Gateway::Impl::metrics_page(Call& c) { send_metrics(c.req); }

void Gateway::Impl::stats_page(Call& c) { send_json(c.req, 200, strat->render(Clock::now())); }

void Gateway::Impl::ui_page(Call& c) {
    c.req.set_header("Cache-Control", "no-store");
    c.req.respond(200, "text/html; charset=utf-8", dashboard_html());
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

    frontend::Options fe;
    fe.max_threads = g.cfg->general.max_threads;
    fe.keep_alive_timeout = g.cfg->general.keep_alive_timeout;
    fe.io_timeout = kClientIoTimeout;
    fe.software_version = "tailgate/" TAILGATE_VERSION;
    fe.limits.header_timeout = g.cfg->general.client_header_timeout;
    fe.limits.body_timeout = g.cfg->general.client_body_timeout;
    fe.limits.max_header_bytes = g.cfg->general.max_header_bytes;
    fe.limits.max_body_bytes = g.cfg->general.max_body_bytes;
    g.http = std::make_unique<frontend::FrontEnd>([&g](frontend::Request& req) { g.handle(req); }, fe, g.io, host,
                                                  port);
    g.http->start();
    if (g.cfg->general.master_key.empty() && !frontend::is_loopback_host(host)) {
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
        g.http->stop();  // and waits for the pool threads
        g.http.reset();
    }
    g.work.reset();
    g.io.stop();
    for (auto& t : g.io_threads)
        if (t.joinable()) t.join();
    g.io_threads.clear();
}

}  // namespace tailgate::server
