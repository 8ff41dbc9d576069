// The API endpoints (chat, completions, embeddings, responses, messages, and the
// pass-through ones of providers/operations.hpp): small steps from the request's
// body to a relayed response, each answering the request itself when it ends there.
#include "server/gateway_impl.hpp"

#include "providers/operations.hpp"
#include "server/all_results.hpp"
#include "server/client_channel.hpp"
#include "server/request_info.hpp"
#include "server/request_options.hpp"
#include "server/stream_usage.hpp"

#include <spdlog/spdlog.h>

#include <span>

namespace tailgate::server {

namespace {

// The spend log's call_type.
const char* call_type(Endpoint e) { return providers::operation(e).call_type.data(); }

}  // namespace

// Every API endpoint: read and check the body, admit, route, and hand the
// response to the relay.
void Gateway::Impl::api(Call& c) {
    ApiCall a(c, c.lv ? c.lv : snapshot());
    a.scope = std::make_unique<RequestScope>(a.lv->env, c.req, c.request_id, path_only(c.req.uri()), c.t0);
    a.active = std::make_unique<Drain::Request>(drain);
    a.scope->client_request_id = c.client_id;
    if (!a.active->admitted()) {
        a.scope->error = "draining";
        c.req.discard_body();  // unread bytes at close would reset the connection
        refuse(*a.lv, c.req, Rejection::Draining, {}, c.api);
        return;
    }
    if (!read_api_body(a) || !check_model_list(a) || !enforce_key(a) || !admit(a)) return;
    build_request_info(a);
    if (!a.model_list.empty() && !a.parsed->fastest_response) {
        if (auto* prom = a.lv->prom()) a.scope->sample.group = prom->group_index(a.model_list.front());
        all_results(a);
        return;
    }
    a.info.race_groups = std::move(a.model_list);
    route_and_relay(a);
}

void Gateway::Impl::fail_api(ApiCall& a, const ApiError& e) {
    a.scope->error = e.message;
    send_error(a.c.req, e, surfaces::surface_for(a.c.api));
}

bool Gateway::Impl::read_api_body(ApiCall& a) {
    frontend::Request& req = a.c.req;
    std::string body;
    if (auto e = req.read_body(body)) {
        req.set_keep_alive(false);  // whatever was left unread must not be taken for a request
        fail_api(a, *e);
        return false;
    }
    std::string_view json = body;
    if (json.substr(0, 3) == "\xEF\xBB\xBF") json.remove_prefix(3);  // tolerate a UTF-8 BOM
    // An API route with a '*' is Azure's: /openai/deployments/{group}/...
    const std::optional<std::string> group = percent_decoded_segment(a.c.arg);
    if (!group) {
        fail_api(a, ApiError::bad_request("Invalid deployment name in the path", "", "invalid_path"));
        return false;
    }
    auto parsed_or = parse_body(json, a.c.api, *group, req.header("Content-Type"));
    if (auto* e = std::get_if<ApiError>(&parsed_or)) {
        fail_api(a, *e);
        if (!json_log) spdlog::info("{} {} 400 {}", a.c.request_id, req.uri(), e->message);
        return false;
    }
    ParsedBody& parsed = std::get<ParsedBody>(parsed_or);
    // A stream's spend needs its usage, which the client may not have asked for
    // (chat and completions; the Responses API reports it in its own events).
    if (parsed.stream && (a.c.api == Endpoint::Chat || a.c.api == Endpoint::Completions)) {
        ParsedBody with_usage = parsed;
        if (inject_stream_usage(with_usage)) a.usage_body = std::make_shared<const ParsedBody>(std::move(with_usage));
    }
    a.parsed = std::make_shared<const ParsedBody>(std::move(parsed));
    if (a.c.api == Endpoint::Responses && !resolve_previous(a, json)) return false;
    a.scope->model = a.parsed->model;
    a.scope->sample.stream = a.parsed->stream;
    return true;
}

// LiteLLM's model lists: "a,b" races (fastest_response) or fans out to all.
bool Gateway::Impl::check_model_list(ApiCall& a) {
    const ParsedBody& parsed = *a.parsed;
    if (parsed.model.find(',') != std::string::npos) {
        auto list = split_model_list(parsed.model);
        if (auto* e = std::get_if<ApiError>(&list)) {
            fail_api(a, *e);
            return false;
        }
        a.model_list = std::move(std::get<std::vector<std::string>>(list));
        if (a.c.api == Endpoint::Responses && !parsed.fastest_response) {
            fail_api(a, ApiError::bad_request("a model list on /v1/responses needs fastest_response=true (one answer)",
                                              "model", "model_list_responses"));
            return false;
        }
        // Every group's answer in one JSON body makes no sense for audio or images: one answer only.
        if (providers::operation(a.c.api).pass_through() && !parsed.fastest_response) {
            fail_api(a, ApiError::bad_request("a model list on " + std::string(path_only(a.c.req.uri())) +
                                                  " needs fastest_response=true (one answer)",
                                              "model", "model_list_pass_through"));
            return false;
        }
    }
    if (!parsed.client_credential.empty() && !a.lv->general().allow_client_side_credentials) {
        fail_api(a, ApiError::bad_request("'" + parsed.client_credential +
                                              "' is not accepted: deployments and their credentials come from the "
                                              "gateway's config (general_settings.allow_client_side_credentials)",
                                          parsed.client_credential, "client_side_credentials_not_allowed"));
        a.scope->error = "client-side credential field";
        return false;
    }
    return true;
}

// The caller's key: models (each listed group, and per-request fallbacks, which
// must not reach past the key's list), then rpm/tpm/max_parallel_requests of
// the key and its team. Standing (blocked, expired, budget) was checked when
// the key was authenticated.
bool Gateway::Impl::enforce_key(ApiCall& a) {
    const keys::CallerPtr& caller = a.c.caller;
    if (!caller || caller->master) return true;
    const ParsedBody& parsed = *a.parsed;
    std::vector<std::string> models = a.model_list.empty() ? std::vector<std::string>{parsed.model} : a.model_list;
    if (parsed.fallbacks) models.insert(models.end(), parsed.fallbacks->begin(), parsed.fallbacks->end());
    auto refused = keys::check_models(*caller, models);
    if (!refused) refused = keys::admit(*caller, keys::now_ms(), a.lease);
    if (!refused) return true;
    if (refused->retry_after_s >= 0) refused->retry_after_s = a.lv->env.client_retry_after(refused->retry_after_s);
    fail_api(a, *refused);
    if (!json_log)
        spdlog::info("{} {} model={} {} {}", a.c.request_id, a.c.req.uri(), parsed.model, refused->status,
                     refused->code);
    return false;
}

bool Gateway::Impl::admit(ApiCall& a) {
    if (admission.unlimited()) return true;
    const ParsedBody& parsed = *a.parsed;
    auto groups = a.model_list.empty() ? std::span<const std::string>(&parsed.model, 1)
                                       : std::span<const std::string>(a.model_list);
    auto no = admission.admit(groups, parsed.stream, a.ticket);
    if (!no) return true;
    a.scope->error = rejection_name(no->reason);
    if (auto* prom = a.lv->prom()) a.scope->sample.group = prom->group_index(groups.front());
    refuse(*a.lv, a.c.req, no->reason, no->group, a.c.api);
    if (!json_log)
        spdlog::info("{} {} model={} {} refused: {}", a.c.request_id, a.c.req.uri(), parsed.model, a.c.req.status(),
                     a.scope->error);
    return false;
}

void Gateway::Impl::build_request_info(ApiCall& a) {
    a.timeouts = request_timeouts(*a.parsed, a.lv->config().router.max_request_timeout);
    a.info = request_info(*a.parsed, a.c.api, a.c.request_id, a.timeouts);
    if (const keys::CallerPtr& caller = a.c.caller; caller && !caller->master && caller->key) {
        a.info.caller_key_hash = caller->hash_prefix;
        a.info.caller_key_alias = caller->key->key_alias;
        a.info.caller_team = caller->key->team_id;
    } else {
        a.info.caller_key_hash = a.lv->caller_key_hash;  // this generation's master key (or none)
    }
    for (const auto& name : a.lv->config().router.strategy_request_headers)
        a.c.req.each_header(name, [&](const std::string&, const std::string& v) { a.info.headers.emplace_back(name, v); });
    for (const auto& name : a.lv->general().forward_client_headers)
        a.c.req.each_header(name, [&](const std::string& n, const std::string& v) { a.forwarded.emplace_back(n, v); });
    // Messages' beta features: what the client asked for goes to the deployments that speak Messages.
    if (a.c.api == Endpoint::Messages)
        a.c.req.each_header("anthropic-beta", [&](const std::string& n, const std::string& v) {
            a.native_forwarded.emplace_back(n, v);
        });
}

// A deployment whose provider cannot answer the operation at all (embeddings
// from anthropic/), or a surface's request that has no chat form (a Responses
// built-in tool, say) for a deployment that only speaks chat: refuse it before
// anything is sent, rather than send what the upstream would refuse or drop
// what the client asked for.
bool Gateway::Impl::translatable(ApiCall& a, const router::RoutedPlan& routed) {
    const ParsedBody& body = *a.parsed;
    const bool has_chat_form = body.as_chat || body.as_chat_error.empty();
    const surfaces::Surface& surface = surfaces::surface_for(a.c.api);
    for (const auto& at : routed.plan.attempts) {
        const config::Deployment& d = a.lv->config().deployments[at.deployment];
        const providers::Codec& codec = config::codec_of(d.upstream);
        if (!codec.serves(a.c.api)) {
            fail_api(a, ApiError::bad_request("deployment '" + d.id + "' of model group '" + d.model_name + "' (" +
                                                  std::string(d.upstream.provider) + "/) does not serve " +
                                                  std::string(path_only(a.c.req.uri())),
                                              "model", "unsupported_by_deployment"));
            return false;
        }
        if (has_chat_form || surfaces::native(surface, codec)) continue;
        fail_api(a, ApiError::bad_request("deployment '" + d.id + "' of model group '" + d.model_name +
                                              "' is reached through chat completions, and " + body.as_chat_error,
                                          "", "unsupported_by_deployment"));
        return false;
    }
    return true;
}

std::shared_ptr<UpstreamTransport> Gateway::Impl::transport_for(const ApiCall& a, const router::RoutedPlan& routed) {
    auto transport = std::make_shared<UpstreamTransport>(*client, a.lv->config(), a.parsed, routed.plan, routed.captures,
                                                         a.info.endpoint, a.timeouts);
    if (!a.forwarded.empty()) transport->forward(a.forwarded);
    if (a.usage_body) transport->ask_usage(a.usage_body);
    if (!a.native_forwarded.empty()) transport->forward_native(a.native_forwarded);
    return transport;
}

std::shared_ptr<dispatch::Observer> Gateway::Impl::with_spend(const ApiCall& a, const router::RequestInfo& info,
                                                              const dispatch::Plan& plan,
                                                              std::shared_ptr<dispatch::Observer> inner) {
    SpendContext ctx;
    ctx.keys = keys.get();
    ctx.caller = a.c.caller;
    ctx.request_id = a.c.request_id;
    ctx.model = a.parsed->model;
    ctx.call_type = call_type(a.c.api);
    if (info.user) ctx.user = *info.user;
    if (info.metadata_json.size() <= 8192) ctx.metadata_json = info.metadata_json;
    ctx.prompt_estimate = info.prompt_tokens_estimate;
    return std::make_shared<SpendObserver>(std::move(ctx), a.lv->gen->config, *a.lv->pricing, plan, std::move(inner));
}

std::shared_ptr<dispatch::Observer> Gateway::Impl::observer_for(const ApiCall& a, const router::RequestInfo& info,
                                                                const router::RoutedPlan* routed, const dispatch::Plan& plan,
                                                                std::shared_ptr<metrics::RequestObserver>& traced) {
    const LivePtr& lv = a.lv;
    std::shared_ptr<dispatch::Observer> observer = with_spend(a, info, plan, lv->router().observer_for(info, routed));
    metrics::Metrics* const prom = lv->prom();
    if (!prom && !json_log) return std::make_shared<PinnedObserver>(lv, std::move(observer));
    traced = std::make_shared<metrics::RequestObserver>(prom, std::move(observer), plan);
    if (metrics::StrategyStats* stats = lv->strat(); stats && plan.shadow_sample_rate > 0) {
        // A shadowed primary finishes after the client got its answer: record then.
        uint32_t group = prom->group_of(plan.attempts.front().deployment);
        bool stream = plan.stream;
        traced->on_shadow([stats, group, stream](double total_ms, double ttft_ms) {
            stats->shadow(group, stream ? ttft_ms : total_ms, std::chrono::steady_clock::now());
        });
    }
    return std::make_shared<PinnedObserver>(lv, traced);
}

void Gateway::Impl::route_and_relay(ApiCall& a) {
    router::RequestInfo& info = a.info;
    metrics::Metrics* const prom = a.lv->prom();
    auto routed_or = a.lv->router().route(info);
    if (auto* e = std::get_if<ApiError>(&routed_or)) {
        if (a.parsed->model_defaulted && e->status == 404)  // no `model`, and no group for the default one
            *e = ApiError::bad_request("Missing required parameter: 'model' (without it, " +
                                           std::string(path_only(a.c.req.uri())) + " uses the model group '" +
                                           a.parsed->model + "', which is not configured)",
                                       "model", "missing_required_parameter");
        if (e->retry_after_s >= 0) e->retry_after_s = a.lv->env.client_retry_after(e->retry_after_s);
        fail_api(a, *e);
        if (prom)
            a.scope->sample.group =
                prom->group_index(info.race_groups.empty() ? info.model_group : info.race_groups.front());
        if (!json_log)
            spdlog::info("{} {} model={} {} {}", a.c.request_id, a.c.req.uri(), info.model_group, e->status,
                         e->message);
        return;
    }
    auto& routed = std::get<router::RoutedPlan>(routed_or);
    if (!translatable(a, routed)) return;
    if (info.stream && a.timeouts.stream_timeout) routed.plan.first_content_timeout = *a.timeouts.stream_timeout;
    const dispatch::Plan& plan = routed.plan;
    auto transport = transport_for(a, routed);
    std::shared_ptr<metrics::RequestObserver> traced;  // metrics and the JSON record read its trace
    auto observer = observer_for(a, info, &routed, plan, traced);
    if (prom) {
        a.scope->sample.group = prom->group_of(plan.attempts.front().deployment);
        if (plan.stream) {
            prom->stream_started();
            a.scope->stream_counted = true;
        }
    }
    auto channel = std::make_shared<ClientChannel>();  // the relay is notified instead
    auto executor = std::make_shared<dispatch::Executor>(plan, *scheduler, transport, channel, observer);
    a.active->track(executor, channel);

    auto x = std::make_shared<ApiExchange>(a.lv->env);
    x->generation = a.lv;
    x->adopt(a.c.req, a.c.t0, std::move(a.scope), std::move(a.active), std::move(a.ticket));
    x->api = a.c.api;
    x->raw_stream = plan.stream && providers::operation(a.c.api).raw_stream();
    x->lease = std::move(a.lease);
    x->info = std::move(info);
    x->routed = std::move(routed);
    x->executor = executor;
    x->traced = std::move(traced);
    if (a.c.api == Endpoint::Responses) keep_response(a, *x);

    a.c.req.relay(std::make_shared<frontend::ExecutorSource>(channel, executor), x);
    executor->start();
    x->launched_at.store(Clock::now().time_since_epoch().count(), std::memory_order_release);  // attempt 0 is on its way
}

// model="a,b" without fastest_response: every group answers; the client gets
// the first successful completion as the top-level object (so plain SDK code
// keeps working) plus "results": one entry per listed group, in order (see
// AllResultsSource). Relayed like any other response.
void Gateway::Impl::all_results(ApiCall& a) {
    if (a.parsed->stream) {
        fail_api(a, ApiError::bad_request("stream=true with a model list needs fastest_response=true "
                                          "(a stream has one winner)",
                                          "stream", "model_list_stream"));
        return;
    }
    const std::vector<std::string>& groups = a.model_list;
    router::RequestInfo& info = a.info;  // routed once per group
    std::vector<AllResultsSource::Part> parts(groups.size());
    for (size_t i = 0; i < groups.size(); ++i) {
        AllResultsSource::Part& part = parts[i];
        part.group = groups[i];
        info.model_group = groups[i];
        auto routed = a.lv->router().route(info);
        if (auto* e = std::get_if<ApiError>(&routed)) {
            part.error = *e;
            continue;
        }
        const auto& rp = std::get<router::RoutedPlan>(routed);
        const dispatch::Plan& plan = rp.plan;
        for (const auto& at : plan.attempts) part.deployment_ids.push_back(a.lv->config().deployments[at.deployment].id);
        part.channel = std::make_shared<ClientChannel>();  // the relay is notified
        std::shared_ptr<dispatch::Observer> observer = with_spend(a, info, plan, a.lv->router().observer_for(info, &rp));
        if (auto* prom = a.lv->prom())
            observer = std::make_shared<metrics::RequestObserver>(prom, std::move(observer), plan);
        observer = std::make_shared<PinnedObserver>(a.lv, std::move(observer));
        part.executor = std::make_shared<dispatch::Executor>(plan, *scheduler, transport_for(a, rp), part.channel,
                                                             observer);
        a.active->track(part.executor, part.channel);
    }
    auto source = std::make_shared<AllResultsSource>(std::move(parts));
    std::vector<dispatch::ExecutorPtr> executors;
    for (size_t i = 0; i < groups.size(); ++i)
        if (auto e = source->executor(i)) executors.push_back(std::move(e));
    auto x = std::make_shared<AllResultsExchange>(a.lv->env);
    x->generation = a.lv;
    const Clock::time_point t0 = a.scope->t0;
    x->adopt(a.c.req, t0, std::move(a.scope), std::move(a.active), std::move(a.ticket));
    x->api = a.c.api;
    x->lease = std::move(a.lease);
    x->source = source;
    x->model = a.parsed->model;
    a.c.req.relay(source, x);
    for (auto& e : executors) e->start();
    // Every group refused at routing: no executor will notify, so wake the relay once.
    if (executors.empty()) source->notify_now();
}

}  // namespace tailgate::server
