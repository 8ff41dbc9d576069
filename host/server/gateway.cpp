#include "server/gateway.hpp"

#include "common/json_flatten.hpp"
#include "dispatch/asio_scheduler.hpp"
#include "server/client_channel.hpp"
#include "server/request_body.hpp"
#include "server/upstream_transport.hpp"
#include "upstream/client.hpp"

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/ThreadPool.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <thread>

namespace tailgate::server {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

std::string new_request_id() {
    thread_local std::mt19937_64 rng{std::random_device{}()};
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

// Compares without an early exit, so timing does not reveal the key prefix.
bool constant_time_equal(const std::string& presented, const std::string& key) {
    if (key.empty()) return false;
    unsigned diff = presented.size() == key.size() ? 0u : 1u;
    for (size_t i = 0; i < presented.size(); ++i)
        diff |= static_cast<unsigned char>(presented[i]) ^ static_cast<unsigned char>(key[i % key.size()]);
    return diff == 0;
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
    char buf[16384];
    size_t total = 0;
    while (in) {
        in.read(buf, sizeof buf);
        total += static_cast<size_t>(in.gcount());
        if (total > limit) {
            resp.setKeepAlive(false);
            return;
        }
    }
}

void send_error(Poco::Net::HTTPServerResponse& resp, const ApiError& e) {
    if (e.retry_after_s >= 0) resp.set("Retry-After", std::to_string(e.retry_after_s));
    send_json(resp, e.status, e.body());
}

struct Endpoint {
    enum Kind { Api, Models, ModelOne, Liveness, Readiness, Unknown };
    Endpoint(Kind k = Unknown, tg_endpoint a = TG_ENDPOINT_CHAT, std::string s = {})
        : kind(k), api(a), arg(std::move(s)) {}
    Kind kind;
    tg_endpoint api;
    std::string arg;  // model id for ModelOne
};

Endpoint classify_path(std::string path) {
    if (auto q = path.find('?'); q != std::string::npos) path.resize(q);
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    Endpoint e;
    if (path == "/health/liveliness" || path == "/health/liveness") return {Endpoint::Liveness};
    if (path == "/health/readiness" || path == "/health") return {Endpoint::Readiness};
    if (path.rfind("/v1/", 0) == 0) path.erase(0, 3);
    if (path == "/chat/completions") return {Endpoint::Api, TG_ENDPOINT_CHAT};
    if (path == "/completions") return {Endpoint::Api, TG_ENDPOINT_COMPLETIONS};
    if (path == "/embeddings") return {Endpoint::Api, TG_ENDPOINT_EMBEDDINGS};
    if (path == "/models") return {Endpoint::Models};
    if (path.rfind("/models/", 0) == 0) return {Endpoint::ModelOne, TG_ENDPOINT_CHAT, path.substr(8)};
    return e;
}

}  // namespace

struct Gateway::Impl {
    std::shared_ptr<const config::Config> cfg;
    plugin::Registry registry;
    std::unique_ptr<router::Router> router;
    boost::asio::io_context io;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{io.get_executor()};
    std::vector<std::thread> io_threads;
    std::unique_ptr<upstream::Client> client;
    std::unique_ptr<dispatch::AsioScheduler> scheduler;
    std::unique_ptr<Poco::ThreadPool> pool;
    std::unique_ptr<Poco::Net::HTTPServer> http;
    std::atomic<uint64_t> in_flight{0};

    Impl(std::shared_ptr<const config::Config> c, std::vector<std::string> dirs)
        : cfg(std::move(c)), registry(std::move(dirs)) {
        router = std::make_unique<router::Router>(cfg, registry);
        upstream::Client::Options opts;
        opts.max_idle_per_origin = static_cast<size_t>(std::max(1, cfg->general.upstream_pool_size));
        client = std::make_unique<upstream::Client>(io, opts);
        scheduler = std::make_unique<dispatch::AsioScheduler>(io);
    }

    void handle(Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp);
    void handle_api(Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp, tg_endpoint ep,
                    const std::string& request_id, Clock::time_point t0);
    void handle_all_results(Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp, tg_endpoint ep,
                            const std::string& request_id, Clock::time_point t0,
                            const std::shared_ptr<const ParsedBody>& parsed, const std::vector<std::string>& groups);
    bool authorized(const Poco::Net::HTTPServerRequest& req) const;
    std::string models_json() const;
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
    std::string presented;
    const std::string& auth = req.get("Authorization", "");
    if (auth.size() > 7 && (auth.compare(0, 7, "Bearer ") == 0 || auth.compare(0, 7, "bearer ") == 0))
        presented = auth.substr(7);
    else
        presented = req.get("api-key", "");
    return constant_time_equal(presented, key.reveal());
}

std::string Gateway::Impl::models_json() const {
    std::string out = "{\"object\":\"list\",\"data\":[";
    bool first = true;
    for (const auto& g : cfg->model_groups()) {
        if (!first) out += ',';
        first = false;
        out += "{\"id\":" + json_quote(g) + ",\"object\":\"model\",\"created\":0,\"owned_by\":\"tailgate\"}";
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
            }
        }
    }
}

void Gateway::Impl::handle(Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp) {
    auto t0 = Clock::now();
    std::string request_id = req.get("x-request-id", "");
    if (!acceptable_request_id(request_id)) request_id = new_request_id();
    resp.set("x-request-id", request_id);

    Endpoint ep = classify_path(req.getURI());
    const std::string& method = req.getMethod();
    const size_t limit = cfg->general.max_body_bytes;
    auto need = [&](const char* m) {
        if (method == m) return true;
        discard_body(req, resp, limit);
        resp.set("Allow", m);
        send_error(resp, ApiError::method_not_allowed("Method " + method + " is not allowed on this path; use " + m));
        return false;
    };
    switch (ep.kind) {
        case Endpoint::Liveness:
            if (need("GET")) send_json(resp, 200, "{\"status\":\"alive\"}");
            return;
        case Endpoint::Readiness:
            if (need("GET"))
                send_json(resp, 200,
                          "{\"status\":\"healthy\",\"deployments\":" + std::to_string(router->deployment_count()) +
                              ",\"version\":\"" TAILGATE_VERSION "\"}");
            return;
        case Endpoint::Models:
        case Endpoint::ModelOne:
            if (!need("GET")) return;
            if (!authorized(req)) {
                discard_body(req, resp, limit);
                send_error(resp, ApiError::unauthorized("Invalid or missing API key"));
                return;
            }
            if (ep.kind == Endpoint::Models) {
                send_json(resp, 200, models_json());
            } else if (cfg->has_group(ep.arg)) {
                send_json(resp, 200,
                          "{\"id\":" + json_quote(ep.arg) + ",\"object\":\"model\",\"created\":0,\"owned_by\":\"tailgate\"}");
            } else {
                send_error(resp, ApiError::not_found("The model `" + ep.arg + "` does not exist", "model_not_found"));
            }
            return;
        case Endpoint::Api:
            if (!need("POST")) return;
            if (!authorized(req)) {
                discard_body(req, resp, limit);
                send_error(resp, ApiError::unauthorized("Invalid or missing API key"));
                spdlog::info("{} POST {} 401 unauthorized", request_id, req.getURI());
                return;
            }
            handle_api(req, resp, ep.api, request_id, t0);
            return;
        default:
            discard_body(req, resp, limit);
            send_error(resp, ApiError::not_found("Unknown path " + req.getURI().substr(0, 200), "unknown_url"));
            return;
    }
}

void Gateway::Impl::handle_api(Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp,
                               tg_endpoint ep, const std::string& request_id, Clock::time_point t0) {
    const size_t limit = cfg->general.max_body_bytes;
    if (req.hasContentLength() && req.getContentLength64() > static_cast<int64_t>(limit)) {
        send_error(resp, ApiError::too_large("Request body of " + std::to_string(req.getContentLength64()) +
                                             " bytes exceeds the limit of " + std::to_string(limit) + " bytes"));
        resp.setKeepAlive(false);
        return;
    }
    // Read the body (Content-Length or chunked), never more than limit + 1.
    std::string body;
    if (req.hasContentLength()) body.reserve(static_cast<size_t>(req.getContentLength64()));
    {
        std::istream& in = req.stream();
        char buf[16384];
        while (in) {
            in.read(buf, sizeof buf);
            body.append(buf, static_cast<size_t>(in.gcount()));
            if (body.size() > limit) {
                send_error(resp, ApiError::too_large("Request body exceeds the limit of " + std::to_string(limit) +
                                                     " bytes"));
                resp.setKeepAlive(false);
                return;
            }
        }
    }

    std::string_view json = body;
    if (json.substr(0, 3) == "\xEF\xBB\xBF") json.remove_prefix(3);  // tolerate a UTF-8 BOM
    auto parsed_or = parse_body(json, ep);
    if (auto* e = std::get_if<ApiError>(&parsed_or)) {
        send_error(resp, *e);
        spdlog::info("{} {} 400 {}", request_id, req.getURI(), e->message);
        return;
    }
    auto parsed = std::make_shared<const ParsedBody>(std::move(std::get<ParsedBody>(parsed_or)));
    body.clear();
    body.shrink_to_fit();

    // LiteLLM's model lists: "a,b" races (fastest_response) or fans out to all.
    std::vector<std::string> model_list;
    if (parsed->model.find(',') != std::string::npos) {
        size_t start = 0;
        while (start <= parsed->model.size()) {
            size_t comma = parsed->model.find(',', start);
            std::string part = parsed->model.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
            while (!part.empty() && part.front() == ' ') part.erase(0, 1);
            while (!part.empty() && part.back() == ' ') part.pop_back();
            if (part.empty()) {
                send_error(resp, ApiError::bad_request("Empty model name in list '" + parsed->model + "'", "model"));
                return;
            }
            model_list.push_back(part);
            if (comma == std::string::npos) break;
            start = comma + 1;
        }
        if (model_list.size() > TG_MAX_ATTEMPTS) {
            send_error(resp, ApiError::bad_request("At most " + std::to_string(TG_MAX_ATTEMPTS) +
                                                   " models can be listed", "model"));
            return;
        }
        if (!parsed->fastest_response) {
            handle_all_results(req, resp, ep, request_id, t0, parsed, model_list);
            return;
        }
    }

    router::RequestInfo info;
    info.request_id = request_id;
    info.model_group = parsed->model;
    info.endpoint = ep;
    info.stream = parsed->stream;
    info.overrides_json = parsed->overrides_json;
    if (parsed->overrides_json.size() > 2) info.overrides = flatten_json_object(parsed->overrides_json);
    info.metadata_json = parsed->metadata_json;
    info.num_retries = parsed->num_retries;
    info.race_groups = model_list;
    info.fallbacks = parsed->fallbacks;
    info.strategies = parsed->strategies;
    RequestTimeouts timeouts;
    auto to_ms = [](double s) { return config::Millis(static_cast<int64_t>(s * 1000.0)); };
    if (parsed->timeout_s) info.timeout = timeouts.timeout = to_ms(*parsed->timeout_s);
    if (parsed->stream_timeout_s) timeouts.stream_timeout = to_ms(*parsed->stream_timeout_s);

    auto routed_or = router->route(info);
    if (auto* e = std::get_if<ApiError>(&routed_or)) {
        send_error(resp, *e);
        spdlog::info("{} {} model={} {} {}", request_id, req.getURI(), info.model_group, e->status, e->message);
        return;
    }
    auto& routed = std::get<router::RoutedPlan>(routed_or);
    if (info.stream && timeouts.stream_timeout) routed.plan.first_content_timeout = *timeouts.stream_timeout;
    const dispatch::Plan& plan = routed.plan;

    auto channel = std::make_shared<ClientChannel>();
    auto transport = std::make_shared<UpstreamTransport>(*client, *cfg, parsed, plan, ep, timeouts);
    auto observer = router->observer_for(info, plan);
    auto executor = std::make_shared<dispatch::Executor>(plan, *scheduler, transport, channel, observer);
    in_flight.fetch_add(1, std::memory_order_relaxed);
    struct InFlight {
        std::atomic<uint64_t>& n;
        ~InFlight() { n.fetch_sub(1, std::memory_order_relaxed); }
    } guard{in_flight};

    auto& impl = static_cast<Poco::Net::HTTPServerRequestImpl&>(req);
    Poco::Net::StreamSocket& sock = impl.socket();
    try {
        sock.setNoDelay(true);  // SSE events are small: never let Nagle hold them
    } catch (...) {
    }
    const int client_fd = static_cast<int>(sock.impl()->sockfd());

    executor->start();

    ClientChannel::Batch batch;
    std::ostream* out = nullptr;
    int status = 0;
    double ttft_ms = -1;
    std::string deployment_id = "-";
    std::string outcome;
    for (;;) {
        auto w = channel->wait(client_fd, std::chrono::milliseconds(1000), batch);
        if (w == ClientChannel::Wait::TimedOut) continue;
        if (w == ClientChannel::Wait::ClientGone) {
            executor->cancel();
            outcome = "client disconnected";
            if (status == 0) status = 499;
            break;
        }
        if (!batch.committed) {
            // Failed before anything was committed: an ordinary error response.
            const ApiError& e = batch.error ? *batch.error : ApiError::internal("request ended without a response");
            uint32_t n = executor->launched();
            resp.set("x-tailgate-attempts", std::to_string(n));
            // Tell the OpenAI SDK not to add its own retries on top of the ones we made.
            if (n > 1) resp.set("x-should-retry", "false");
            send_error(resp, e);
            status = e.status;
            outcome = e.message;
            break;
        }
        if (batch.attempt) {
            const auto& d = cfg->deployments[plan.attempts[*batch.attempt].deployment];
            deployment_id = d.id;
            resp.set("x-tailgate-deployment", d.id);
            resp.set("x-litellm-model-id", d.id);  // what LiteLLM clients already read
            resp.set("x-tailgate-model-group", d.model_name);
            resp.set("x-tailgate-attempts", std::to_string(executor->launched()));
            uint32_t group = plan.attempts[*batch.attempt].group;
            if (group > 0 && info.race_groups.empty()) resp.set("x-tailgate-fallback", routed.groups[group]);
            status = batch.head.status;
            ttft_ms = ms_since(t0);
            if (!plan.stream) {
                std::string_view ct = batch.head.header("content-type");
                resp.setStatus(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(status));
                resp.setContentType(ct.empty() ? std::string("application/json") : std::string(ct));
                resp.setContentLength(static_cast<std::streamsize>(batch.bytes.size()));
                resp.sendBuffer(batch.bytes.data(), batch.bytes.size());
                outcome = "ok";
                break;
            }
            resp.setStatus(Poco::Net::HTTPResponse::HTTP_OK);
            resp.setContentType("text/event-stream");
            resp.set("Cache-Control", "no-cache");
            resp.setChunkedTransferEncoding(true);
            out = &resp.send();
        }
        if (out && !batch.bytes.empty()) out->write(batch.bytes.data(), static_cast<std::streamsize>(batch.bytes.size()));
        if (out && batch.finished && batch.error) {
            // After the commit point a failure must reach the client as an SSE
            // error event (the OpenAI SDK raises APIError), never a short stream.
            std::string ev = "data: " + batch.error->body() + "\n\n";
            out->write(ev.data(), static_cast<std::streamsize>(ev.size()));
            outcome = "stream error: " + batch.error->message;
        }
        if (out) out->flush();
        if (out && !*out) {
            executor->cancel();
            outcome = "client disconnected (write failed)";
            break;
        }
        if (batch.finished) {
            if (outcome.empty()) outcome = "ok";
            break;
        }
    }
    double total_ms = ms_since(t0);
    std::string meta = info.metadata_json == "{}" ? std::string() : " metadata=" + info.metadata_json.substr(0, 256);
    spdlog::info("{} {} model={} deployment={} status={} attempts={} ttft_ms={:.1f} total_ms={:.1f} stream={}{}{}{} {}",
                 request_id, req.getURI(), info.model_group, deployment_id, status, executor->launched(), ttft_ms,
                 total_ms, plan.stream, routed.note.empty() ? "" : " note=", routed.note, meta, outcome);
}

// model="a,b" without fastest_response: every group answers; the client gets
// the first successful completion as the top-level object (so plain SDK code
// keeps working) plus "results": one entry per listed group, in order, each
// {"model_group", "status", "deployment", "response"} or {..., "error"}.
void Gateway::Impl::handle_all_results(Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& resp,
                                       tg_endpoint ep, const std::string& request_id, Clock::time_point t0,
                                       const std::shared_ptr<const ParsedBody>& parsed,
                                       const std::vector<std::string>& groups) {
    if (parsed->stream) {
        send_error(resp, ApiError::bad_request("stream=true with a model list needs fastest_response=true "
                                               "(a stream has one winner)",
                                               "stream", "model_list_stream"));
        return;
    }
    struct One {
        std::string group;
        std::shared_ptr<ClientChannel> channel;
        dispatch::ExecutorPtr executor;
        dispatch::Plan plan;
        std::optional<ApiError> error;
        int status = 0;
        std::string body;
        std::string deployment;
    };
    std::vector<One> all(groups.size());
    RequestTimeouts timeouts;
    if (parsed->timeout_s) timeouts.timeout = config::Millis(static_cast<int64_t>(*parsed->timeout_s * 1000.0));
    for (size_t i = 0; i < groups.size(); ++i) {
        One& o = all[i];
        o.group = groups[i];
        router::RequestInfo info;
        info.request_id = request_id;
        info.model_group = groups[i];
        info.endpoint = ep;
        info.overrides_json = parsed->overrides_json;
        info.metadata_json = parsed->metadata_json;
        info.num_retries = parsed->num_retries;
        info.timeout = timeouts.timeout;
        auto routed = router->route(info);
        if (auto* e = std::get_if<ApiError>(&routed)) {
            o.error = *e;
            continue;
        }
        o.plan = std::get<router::RoutedPlan>(routed).plan;
        o.channel = std::make_shared<ClientChannel>();
        auto transport = std::make_shared<UpstreamTransport>(*client, *cfg, parsed, o.plan, ep, timeouts);
        o.executor = std::make_shared<dispatch::Executor>(o.plan, *scheduler, transport, o.channel,
                                                          router->observer_for(info, o.plan));
    }
    for (auto& o : all)
        if (o.executor) o.executor->start();

    const int client_fd = static_cast<int>(static_cast<Poco::Net::HTTPServerRequestImpl&>(req).socket().impl()->sockfd());
    for (auto& o : all) {
        if (!o.executor) continue;
        ClientChannel::Batch batch;
        for (;;) {
            auto w = o.channel->wait(client_fd, std::chrono::milliseconds(1000), batch);
            if (w == ClientChannel::Wait::TimedOut) continue;
            if (w == ClientChannel::Wait::ClientGone) {
                for (auto& x : all)
                    if (x.executor) x.executor->cancel();
                spdlog::info("{} {} model={} client disconnected", request_id, req.getURI(), parsed->model);
                return;
            }
            if (batch.attempt) {
                o.status = batch.head.status;
                o.deployment = cfg->deployments[o.plan.attempts[*batch.attempt].deployment].id;
            }
            o.body += batch.bytes;
            if (!batch.committed && batch.error) o.error = batch.error;
            if (batch.finished || batch.attempt) break;
        }
    }

    const One* first_ok = nullptr;
    const ApiError* worst = nullptr;
    std::string results = "[";
    for (size_t i = 0; i < all.size(); ++i) {
        const One& o = all[i];
        if (i) results += ',';
        results += "{\"model_group\":" + json_quote(o.group);
        if (o.error) {
            results += ",\"status\":" + std::to_string(o.error->status) + ",\"error\":";
            std::string eb = o.error->body();
            results.append(eb, 9, eb.size() - 10);  // the inner {"message",...} object
            if (!worst) worst = &*o.error;
        } else {
            results += ",\"status\":" + std::to_string(o.status) + ",\"deployment\":" + json_quote(o.deployment) +
                       ",\"response\":" + (o.body.empty() ? std::string("null") : o.body);
            if (!first_ok) first_ok = &o;
        }
        results += '}';
    }
    results += ']';
    if (!first_ok) {
        resp.set("x-tailgate-attempts", std::to_string(all.size()));
        send_error(resp, worst ? *worst : ApiError::internal("no result"));
        return;
    }
    std::string body = first_ok->body;
    size_t close = body.find_last_of('}');
    if (close == std::string::npos) {
        send_error(resp, ApiError::bad_gateway("upstream returned a non-JSON body", "upstream_protocol_error"));
        return;
    }
    body.insert(close, ",\"results\":" + results);
    resp.set("x-tailgate-deployment", first_ok->deployment);
    resp.set("x-tailgate-model-group", first_ok->group);
    resp.set("x-tailgate-attempts", std::to_string(all.size()));
    send_json(resp, 200, body);
    spdlog::info("{} {} model={} all-results groups={} total_ms={:.1f}", request_id, req.getURI(), parsed->model,
                 all.size(), ms_since(t0));
}

Gateway::Gateway(std::shared_ptr<const config::Config> cfg, std::vector<std::string> plugin_dirs)
    : impl_(std::make_unique<Impl>(std::move(cfg), std::move(plugin_dirs))) {}

Gateway::~Gateway() { stop(); }

const router::Router& Gateway::router() const { return *impl_->router; }

int Gateway::start(const std::string& host, int port) {
    auto& g = *impl_;
    int nio = std::max(1, g.cfg->general.io_threads);
    for (int i = 0; i < nio; ++i) g.io_threads.emplace_back([&g] { g.io.run(); });

    Poco::Net::ServerSocket sock;
    sock.bind(Poco::Net::SocketAddress(host, static_cast<Poco::UInt16>(port)), true);
    sock.listen(1024);
    int bound = sock.address().port();

    auto* params = new Poco::Net::HTTPServerParams;
    params->setMaxThreads(g.cfg->general.max_threads);
    params->setMaxQueued(4096);
    params->setKeepAlive(true);
    params->setKeepAliveTimeout(Poco::Timespan(g.cfg->general.keep_alive_timeout.count() * 1000));
    params->setMaxKeepAliveRequests(0);
    params->setTimeout(Poco::Timespan(60, 0));
    params->setServerName("tailgate");
    params->setSoftwareVersion("tailgate/" TAILGATE_VERSION);
    // Small stacks: a pool thread only parses, routes and copies bytes.
    g.pool = std::make_unique<Poco::ThreadPool>(2, g.cfg->general.max_threads, 60, 256 * 1024);
    g.http = std::make_unique<Poco::Net::HTTPServer>(new Factory(g), *g.pool, sock, params);
    g.http->start();
    return bound;
}

void Gateway::stop() {
    auto& g = *impl_;
    if (g.http) {
        g.http->stopAll(true);
        g.http.reset();
    }
    if (g.pool) g.pool->joinAll();
    g.work.reset();
    g.io.stop();
    for (auto& t : g.io_threads)
        if (t.joinable()) t.join();
    g.io_threads.clear();
}

std::vector<std::string> plugin_search_path(const config::Config& cfg) {
    std::vector<std::string> dirs = cfg.router.plugin_paths;
    if (const char* env = std::getenv("TAILGATE_PLUGIN_PATH")) {
        std::string s(env);
        size_t start = 0;
        while (start <= s.size()) {
            size_t colon = s.find(':', start);
            std::string part = s.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
            if (!part.empty()) dirs.push_back(part);
            if (colon == std::string::npos) break;
            start = colon + 1;
        }
    }
    // Next to the binary first (build tree: build/bin/../lib/tailgate/plugins).
    std::error_code ec;
    auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec) dirs.push_back((exe.parent_path().parent_path() / "lib" / "tailgate" / "plugins").string());
    dirs.push_back(TAILGATE_DEFAULT_PLUGIN_DIR);
    dirs.push_back(TAILGATE_INSTALLED_PLUGIN_DIR);
    std::vector<std::string> unique;
    for (auto& d : dirs) {
        auto norm = std::filesystem::path(d).lexically_normal().string();
        if (std::find(unique.begin(), unique.end(), norm) == unique.end()) unique.push_back(norm);
    }
    return unique;
}

}  // namespace tailgate::server
