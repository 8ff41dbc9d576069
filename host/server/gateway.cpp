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

Gateway::Impl::Impl(std::shared_ptr<const config::Config> c, control::StorePtr store,
                    control::ResponseStorePtr responses, keys::KeyServicePtr k)
    : cfg(std::move(c)),
      keys(std::move(k)),
      response_store(responses ? std::move(responses)
                               : control::open_response_store("", cfg->general.response_retention)) {
    json_log = cfg->general.log_format == "json";
    log_level = cfg->general.log_level;
    if (!keys) {
        keys::Settings ks;
        ks.master_key = cfg->general.master_key.reveal();
        keys = std::make_shared<keys::KeyService>(store::open("sqlite://:memory:"), ks);
    }
    key_api = std::make_unique<keys::KeyApi>(*keys);
    control = std::make_unique<control::ControlPlane>(cfg->file, cfg, std::move(store));
    make_fleet();
    control->start([this](control::GenerationPtr g) { publish(std::move(g)); });
    admin_api = std::make_unique<control::AdminApi>(*control);
    upstream::Client::Options opts;
    opts.max_idle_per_origin = static_cast<size_t>(std::max(1, cfg->general.upstream_pool_size));
    client = std::make_unique<upstream::Client>(io, opts);
    scheduler = std::make_unique<dispatch::AsioScheduler>(io);
    start_fleet();
}

void Gateway::Impl::publish(control::GenerationPtr g) {
    const config::GeneralSettings& general = g->config->general;
    secrets.insert(general.master_key.reveal());
    for (const auto& d : g->config->deployments) {
        secrets.insert(d.upstream.api_key.reveal());
        if (!d.upstream.credentials) continue;
        for (auto& s : d.upstream.credentials->secrets()) secrets.insert(std::move(s));
        d.upstream.credentials->warm();  // e.g. the first access token, before the first request needs it
    }
    set_redacted_secrets({secrets.begin(), secrets.end()});
    auto l = std::make_shared<Live>();
    l->gen = g;
    l->env = ExchangeEnv{g->config, g->prom.get(), g->strat.get(), json_log};
    l->caller_key_hash = key_hash_prefix(general.master_key.reveal());
    // general_settings a reload applies live (control/general_reload.hpp).
    admission.set_limits(general);
    if (general.log_level != log_level) {
        spdlog::set_level(spdlog::level::from_str(general.log_level));
        log_level = general.log_level;
    }
    l->pricing = std::make_shared<const Pricing>(*g->config);
    live.store(std::move(l), std::memory_order_release);
}

std::optional<ApiError> Gateway::Impl::authenticate(Call& c, Access access) {
    const frontend::Request& req = c.req;
    const std::string presented = presented_key(req.header("Authorization"), req.has_header("x-litellm-api-key"),
                                                req.header("x-litellm-api-key"), req.header("api-key"),
                                                req.header("x-api-key"));
    // The master key is this generation's: a reload may rotate it (control/general_reload.cpp).
    const auto& master = c.lv->general().master_key;
    if (master.empty() || !keys->auth_enabled()) {
        c.caller = keys->master();
        return std::nullopt;
    }
    if (presented.empty()) return ApiError::unauthorized("Invalid or missing API key");
    if (constant_time_equal(presented, master.reveal())) {
        c.caller = keys->master();
        return std::nullopt;
    }
    keys::Auth auth = keys->authenticate(presented);
    if (auth.error) return std::move(auth.error);
    // The key service knows the master key the gateway started with; once rotated away it is no key.
    if (auth.caller->master) return ApiError::unauthorized("Invalid API key");
    if (!auth.caller->master && access != Access::Key) {
        ApiError e = ApiError::unauthorized("This endpoint needs the master key; virtual keys may only call the API");
        e.status = 403;
        e.type = "permission_error";
        e.code = "master_key_required";
        return e;
    }
    c.caller = std::move(auth.caller);
    return std::nullopt;
}

void Gateway::Impl::refuse(const Live& lv, frontend::Request& req, Rejection why, const std::string& group,
                           Endpoint api) {
    if (auto* prom = lv.prom()) prom->rejected(why);
    send_error(req, rejection_error(why, group, lv.env.client_retry_after(lv.general().overload_retry_after_s)),
               surfaces::surface_for(api));
}

void Gateway::Impl::send_metrics(frontend::Request& req) const {
    const LivePtr lv = snapshot();
    std::string body = lv->prom()->render([&r = lv->router()](uint32_t d) {
        auto s = r.state(d).snapshot();
        return metrics::Metrics::DeploymentGauges{s.in_flight, s.health};
    });
    lv->router().append_plugin_metrics(body);
    body += control->render_metrics();
    body += keys->render_metrics(lv->general().metrics_key_alias, [&r = lv->router()](const std::string& id) {
        return r.index_of(id).has_value();
    });
    if (fleet_syncer) body += fleet_syncer->render_metrics();
    req.respond(200, metrics::Metrics::kContentType, body);
}

std::string Gateway::Impl::models_json(const Live& lv, const keys::Caller* caller) const {
    const config::Config* cfg = &lv.config();
    // A virtual key sees the models it may use.
    auto shown = [caller](const std::string& m) { return !caller || keys::check_models(*caller, {&m, 1}) == std::nullopt; };
    std::string out = "{\"object\":\"list\",\"data\":[";
    bool first = true;
    for (const auto& g : cfg->model_groups()) {
        if (config::is_wildcard(g) || !shown(g)) continue;  // wildcards are listed below: not a name a client can use as is
        if (!first) out += ',';
        first = false;
        out += "{\"id\":" + json_quote(g) + ",\"object\":\"model\",\"created\":0,\"owned_by\":\"tailgate\"}";
    }
    for (const auto& [alias, a] : cfg->router.model_group_alias) {
        if (a.hidden || !shown(alias)) continue;  // LiteLLM's hidden aliases route but are not listed
        if (!first) out += ',';
        first = false;
        out += "{\"id\":" + json_quote(alias) + ",\"object\":\"model\",\"created\":0,\"owned_by\":\"tailgate\"}";
    }
    // Tailgate's extension: the wildcard groups (LiteLLM's "*" / "openai/*") that
    // serve every matching name, most specific first.
    out += "],\"wildcard_model_groups\":[";
    first = true;
    for (const auto& p : lv.router().wildcard_groups()) {
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
using Admin = control::AdminApi;
constexpr EndpointRoute admin_route(const char* method, std::string_view path, Admin::Handler h, bool v1 = false) {
    return EndpointRoute{method, path, Access::Admin, &Impl::admin, v1, Endpoint::Chat, false, h};
}
constexpr EndpointRoute key_route(const char* method, std::string_view path, keys::KeyApi::Handler h) {
    return EndpointRoute{method, path, Access::Admin, &Impl::key_admin, false, Endpoint::Chat, false, nullptr, h};
}
using Keys = keys::KeyApi;
const EndpointRoute kRoutes[] = {
    {"GET", "/health/liveliness", Access::Open, &Impl::liveness},
    {"GET", "/health/liveness", Access::Open, &Impl::liveness},
    {"GET", "/health/readiness", Access::Open, &Impl::readiness},
    {"GET", "/health", Access::Open, &Impl::readiness},
    {"GET", "/metrics", Access::Observability, &Impl::metrics_page, false, Endpoint::Chat, true},
    {"GET", "/stats/strategies", Access::Dashboard, &Impl::stats_page, false, Endpoint::Chat, true},
    {"GET", "/ui", Access::Open, &Impl::ui_page, false, Endpoint::Chat, true},  // login form; data needs the key
    {"POST", "/chat/completions", Access::Key, &Impl::api, true, Endpoint::Chat},
    {"POST", "/completions", Access::Key, &Impl::api, true, Endpoint::Completions},
    {"POST", "/embeddings", Access::Key, &Impl::api, true, Endpoint::Embeddings},
    {"POST", "/responses", Access::Key, &Impl::api, true, Endpoint::Responses},
    {"GET", "/responses/*", Access::Key, &Impl::response_get, true},  // {id} and {id}/input_items
    {"DELETE", "/responses/*", Access::Key, &Impl::response_delete, true},
    {"POST", "/messages", Access::Key, &Impl::api, true, Endpoint::Messages},  // Anthropic's
    // OpenAI's pass-through endpoints: how each is sent and read is its row of providers/operations.hpp.
    {"POST", "/moderations", Access::Key, &Impl::api, true, Endpoint::Moderations},
    {"POST", "/images/generations", Access::Key, &Impl::api, true, Endpoint::ImageGenerations},
    {"POST", "/images/edits", Access::Key, &Impl::api, true, Endpoint::ImageEdits},
    {"POST", "/images/variations", Access::Key, &Impl::api, true, Endpoint::ImageVariations},
    {"POST", "/audio/speech", Access::Key, &Impl::api, true, Endpoint::AudioSpeech},
    {"POST", "/audio/transcriptions", Access::Key, &Impl::api, true, Endpoint::AudioTranscriptions},
    {"POST", "/audio/translations", Access::Key, &Impl::api, true, Endpoint::AudioTranslations},
    // Azure OpenAI's paths (the AzureOpenAI client): the model group is the deployment in the path.
    {"POST", "/openai/deployments/*/chat/completions", Access::Key, &Impl::api, false, Endpoint::Chat},
    {"POST", "/openai/deployments/*/completions", Access::Key, &Impl::api, false, Endpoint::Completions},
    {"POST", "/openai/deployments/*/embeddings", Access::Key, &Impl::api, false, Endpoint::Embeddings},
    {"POST", "/openai/deployments/*/images/generations", Access::Key, &Impl::api, false, Endpoint::ImageGenerations},
    {"POST", "/openai/deployments/*/images/edits", Access::Key, &Impl::api, false, Endpoint::ImageEdits},
    {"POST", "/openai/deployments/*/images/variations", Access::Key, &Impl::api, false, Endpoint::ImageVariations},
    {"POST", "/openai/deployments/*/audio/speech", Access::Key, &Impl::api, false, Endpoint::AudioSpeech},
    {"POST", "/openai/deployments/*/audio/transcriptions", Access::Key, &Impl::api, false,
     Endpoint::AudioTranscriptions},
    {"POST", "/openai/deployments/*/audio/translations", Access::Key, &Impl::api, false, Endpoint::AudioTranslations},
    {"POST", "/openai/responses", Access::Key, &Impl::api, false, Endpoint::Responses},  // the model from the body
    {"GET", "/models", Access::Key, &Impl::models, true},
    {"GET", "/models/*", Access::Key, &Impl::model_one, true},
    // The control plane (host/control/admin_api.hpp).
    admin_route("POST", "/admin/reload", &Admin::reload),
    admin_route("GET", "/admin/config", &Admin::config),
    admin_route("GET", "/admin/status", &Admin::status),
    admin_route("GET", "/admin/deployments", &Admin::list_deployments),
    admin_route("POST", "/admin/deployments", &Admin::add_deployment),
    admin_route("PATCH", "/admin/deployments/*", &Admin::patch_deployment),
    admin_route("DELETE", "/admin/deployments/*", &Admin::delete_deployment),
    admin_route("POST", "/admin/deployments/*", &Admin::deployment_action),
    admin_route("GET", "/admin/router/settings", &Admin::router_settings),
    admin_route("PATCH", "/admin/router/settings", &Admin::patch_router_settings),
    admin_route("GET", "/admin/routing/state", &Admin::routing_state),
    admin_route("POST", "/admin/routing/preview", &Admin::routing_preview),
    // LiteLLM's model management, same shapes.
    admin_route("POST", "/model/new", &Admin::model_new),
    admin_route("POST", "/model/update", &Admin::model_update),
    admin_route("POST", "/model/delete", &Admin::model_delete),
    admin_route("GET", "/model/info", &Admin::model_info, true),
    // LiteLLM's virtual keys, teams and spend, same shapes (host/keys/key_api.hpp).
    key_route("POST", "/key/generate", &Keys::key_generate),
    key_route("GET", "/key/info", &Keys::key_info),
    key_route("POST", "/key/update", &Keys::key_update),
    key_route("POST", "/key/delete", &Keys::key_delete),
    key_route("GET", "/key/list", &Keys::key_list),
    key_route("POST", "/key/regenerate", &Keys::key_regenerate),
    key_route("POST", "/key/block", &Keys::key_block),
    key_route("POST", "/key/unblock", &Keys::key_unblock),
    key_route("POST", "/key/*", &Keys::key_regenerate),  // /key/{key}/regenerate
    key_route("POST", "/team/new", &Keys::team_new),
    key_route("GET", "/team/info", &Keys::team_info),
    key_route("POST", "/team/update", &Keys::team_update),
    key_route("POST", "/team/delete", &Keys::team_delete),
    key_route("GET", "/team/list", &Keys::team_list),
    key_route("GET", "/spend/logs", &Keys::spend_logs),
    key_route("GET", "/global/spend/report", &Keys::global_spend_report),
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
    // The one generation this request uses, auth included.
    Call call{req, request_id, echo_client_id ? client_id : kNone, t0, Endpoint::Chat, {}, nullptr, snapshot(), nullptr, nullptr};
    const config::GeneralSettings& general = call.lv->general();
    const std::string& method = req.method();
    RouteMatch match = find_route(kRoutes, method, route_path(req.uri()), cfg->general.metrics);
    const EndpointRoute* route = match.route;
    if (!route) {
        req.discard_body();
        if (!match.allowed.empty()) req.set_header("Allow", match.allowed);
        send_error(req, unmatched_route(match, method, req.uri()));
        return;
    }
    if (route->access == Access::Admin && general.master_key.empty()) {
        req.discard_body();
        send_error(req, ApiError::unauthorized("The admin API needs general_settings.master_key to be set"));
        return;
    }
    call.arg = std::move(match.arg);
    call.api = route->api;
    call.admin = route->admin;
    call.keys = route->keys;
    if (!needs_key(route->access, general.metrics_auth)) {
        (this->*(route->handler))(call);
        return;
    }
    if (auto refused = authenticate(call, route->access)) {
        std::optional<RequestScope> scope;  // API calls are counted and logged, probes are not
        if (route->handler == &Impl::api) {
            scope.emplace(call.lv->env, req, request_id, path_only(req.uri()), t0);
            scope->client_request_id = call.client_id;
            scope->error = refused->code.empty() ? "unauthorized" : refused->code;
        }
        req.discard_body();
        send_error(req, *refused, surfaces::surface_for(route->api));
        if (scope && !json_log) spdlog::info("{} POST {} {} {}", request_id, req.uri(), refused->status, scope->error);
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
    // A database outage degrades, never stops, this replica: cached keys keep
    // working (new keys wait), so it stays in the load balancer's rotation.
    const bool db_up = keys->database_available();
    send_json(c.req, 200,
              std::string("{\"status\":") + (db_up ? "\"healthy\"" : "\"degraded\"") +
                  ",\"db\":" + (db_up ? "\"connected\"" : "\"unavailable\"") +
                  ",\"deployments\":" + std::to_string(snapshot()->router().deployment_count()) +
                  ",\"version\":\"" TAILGATE_VERSION "\"" +
                  (cfg->general.master_key.empty() ? std::string(",\"auth\":\"disabled\"") : "") +
                  (fleet_link ? std::string(",\"shared_state\":\"") + (fleet_link->active() ? "up" : "down") + "\""
                              : std::string()) +
                  (unauthenticated_beyond_loopback
                       ? ",\"warning\":\"no master_key: API open to every client that can reach this address\""
                       : "") +
                  "}");
}

void Gateway::Impl::models(Call& c) {
    send_json(c.req, 200, models_json(*snapshot(), c.caller && !c.caller->master ? c.caller.get() : nullptr));
}

void Gateway::Impl::model_one(Call& c) {
    const bool allowed = !c.caller || keys::check_models(*c.caller, {&c.arg, 1}) == std::nullopt;
    if (allowed && snapshot()->router().resolve_group(c.arg))
        send_json(c.req, 200,
                  "{\"id\":" + json_quote(c.arg) + ",\"object\":\"model\",\"created\":0,\"owned_by\":\"tailgate\"}");
    else
        send_error(c.req, ApiError::not_found("The model `" + c.arg + "` does not exist", "model_not_found"));
}

void Gateway::Impl::metrics_page(Call& c) { send_metrics(c.req); }

void Gateway::Impl::stats_page(Call& c) { send_json(c.req, 200, snapshot()->strat()->render(Clock::now())); }

// Every admin route: read the (bounded) body, call its AdminApi function, send its JSON.
void Gateway::Impl::admin(Call& c) {
    control::AdminRequest r;
    r.arg = c.arg;
    if (auto e = c.req.read_body(r.body)) {
        c.req.set_keep_alive(false);  // whatever was left unread must not be taken for a request
        send_error(c.req, *e);
        return;
    }
    r.key_hash = c.lv->caller_key_hash;
    const control::AdminReply out = ((*admin_api).*(c.admin))(r);
    send_json(c.req, out.status, out.body);
}

// Every key management route: read the (bounded) body, call its KeyApi function, send its JSON.
void Gateway::Impl::key_admin(Call& c) {
    keys::MgmtRequest r;
    r.arg = c.arg;
    const std::string& uri = c.req.uri();
    if (const size_t q = uri.find('?'); q != std::string::npos) r.query = uri.substr(q + 1);
    if (auto e = c.req.read_body(r.body)) {
        c.req.set_keep_alive(false);
        send_error(c.req, *e);
        return;
    }
    const keys::MgmtReply out = ((*key_api).*(c.keys))(r);
    if (out.status == 503) c.req.set_header("Retry-After", "5");
    send_json(c.req, out.status, out.body);
}

void Gateway::Impl::ui_page(Call& c) {
    c.req.set_header("Cache-Control", "no-store");
    c.req.respond(200, "text/html; charset=utf-8", dashboard_html());
}

Gateway::Gateway(std::shared_ptr<const config::Config> cfg, control::StorePtr store,
                 control::ResponseStorePtr responses, keys::KeyServicePtr keys)
    : impl_(std::make_unique<Impl>(std::move(cfg), std::move(store), std::move(responses), std::move(keys))) {}

Gateway::~Gateway() { stop(); }

control::GenerationPtr Gateway::generation() const { return impl_->snapshot()->gen; }

control::Outcome Gateway::reload(const std::string& who) { return impl_->control->reload(who); }

void Gateway::begin_drain() { impl_->drain.begin(); }
size_t Gateway::in_flight() const { return impl_->drain.active(); }
size_t Gateway::abort_in_flight() {
    return impl_->drain.abort_all(ApiError::unavailable(
        "The gateway is shutting down and this request outlived its drain period (drain_timeout)",
        impl_->snapshot()->general().overload_retry_after_s));
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
    g.stop_fleet();
    g.work.reset();
    g.io.stop();
    for (auto& t : g.io_threads)
        if (t.joinable()) t.join();
    g.io_threads.clear();
}

}  // namespace tailgate::server
