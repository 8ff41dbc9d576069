#include "control/admin_api.hpp"
#include "common/api_error.hpp"
#include "common/json_body.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <chrono>

namespace tailgate::control {

namespace {

using rapidjson::Document;
using rapidjson::Value;

AdminReply reply(int status, std::string body) { return AdminReply{status, std::move(body)}; }
AdminReply fail(const ApiError& e) { return reply(e.status, e.body()); }

AdminReply refused(const Outcome& o) {
    if (o.status == 404) return fail(ApiError::not_found(o.error, "deployment_not_found"));
    if (o.status == 503) return fail(ApiError::unavailable(o.error, 1));  // shared state down: retry later
    if (o.status >= 500) return fail(ApiError::internal(o.error));
    return fail(ApiError::bad_request(o.error, "", "invalid_config"));
}

std::string b(bool v) { return v ? "true" : "false"; }
std::string ms(config::Millis m) { return std::to_string(m.count()); }

std::string to_json(const Value& v) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    v.Accept(w);
    return buf.GetString();
}

// RFC 7386-style merge of `patch` into `target` (objects merge, null removes).
void merge(Value& target, const Value& patch, Document::AllocatorType& a) {
    for (auto it = patch.MemberBegin(); it != patch.MemberEnd(); ++it) {
        auto cur = target.FindMember(it->name);
        if (it->value.IsNull()) {
            if (cur != target.MemberEnd()) target.RemoveMember(cur);
        } else if (it->value.IsObject() && cur != target.MemberEnd() && cur->value.IsObject()) {
            merge(cur->value, it->value, a);
        } else if (cur != target.MemberEnd()) {
            cur->value.CopyFrom(it->value, a);
        } else {
            target.AddMember(Value(it->name, a), Value(it->value, a), a);
        }
    }
}

const char* launch_name(Launch l) {
    return l == Launch::AfterDelay ? "after_delay" : l == Launch::OnFailure ? "on_failure" : "at_start";
}

std::string latency_json(const LatencySummary& s) {
    if (s.samples == 0) return "null";
    return "{\"samples\":" + std::to_string(s.samples) + ",\"p50_ms\":" + std::to_string(s.p50_ms) +
           ",\"p95_ms\":" + std::to_string(s.p95_ms) + ",\"p99_ms\":" + std::to_string(s.p99_ms) + "}";
}

std::string pairs_json(const std::vector<std::pair<std::string, std::string>>& kv) {
    std::string out = "{";
    for (size_t i = 0; i < kv.size(); ++i) out += (i ? "," : "") + json_quote(kv[i].first) + ":" + json_quote(kv[i].second);
    return out + "}";
}

std::string fallbacks_json(const std::vector<std::pair<std::string, std::vector<std::string>>>& f) {
    std::string out = "[";
    for (size_t i = 0; i < f.size(); ++i) {
        out += (i ? ",{" : "{") + json_quote(f[i].first) + ":[";
        for (size_t k = 0; k < f[i].second.size(); ++k) out += (k ? "," : "") + json_quote(f[i].second[k]);
        out += "]}";
    }
    return out + "]";
}

std::string strategies_json(const std::vector<config::StrategySpec>& specs) {
    std::string out = "[";
    for (size_t i = 0; i < specs.size(); ++i)
        out += (i ? "," : "") + std::string("{\"name\":") + json_quote(specs[i].name) + ",\"args\":" +
               pairs_json(specs[i].args) + "}";
    return out + "]";
}

std::string router_json(const config::RouterSettings& r) {
    std::string aliases = "{";
    bool first = true;
    for (const auto& [alias, a] : r.model_group_alias) {
        aliases += (first ? "" : ",") + json_quote(alias) + ":{\"model\":" + json_quote(a.group) +
                   ",\"hidden\":" + b(a.hidden) + "}";
        first = false;
    }
    aliases += "}";
    return "{\"routing_strategy\":" + json_quote(r.routing_strategy) +
           ",\"routing_strategy_args\":" + pairs_json(r.routing_strategy_args) +
           ",\"strategies\":" + strategies_json(r.strategies) + ",\"strategies_explicit\":" + b(r.strategies_explicit) +
           ",\"request_strategies\":" + strategies_json(r.request_strategies) +
           ",\"allow_request_strategy_override\":" + b(r.allow_request_strategy_override) +
           ",\"num_retries\":" + std::to_string(r.num_retries) + ",\"timeout_ms\":" + ms(r.timeout) +
           ",\"stream_timeout_ms\":" + (r.stream_timeout ? ms(*r.stream_timeout) : "null") +
           ",\"connect_timeout_ms\":" + ms(r.connect_timeout) + ",\"max_request_timeout_ms\":" +
           ms(r.max_request_timeout) + ",\"max_client_retry_after_ms\":" + ms(r.max_client_retry_after) +
           ",\"panic_routing\":" + b(r.panic_routing) + ",\"allowed_fails\":" + std::to_string(r.allowed_fails) +
           ",\"cooldown_time_ms\":" + ms(r.cooldown_time) + ",\"disable_cooldowns\":" + b(r.disable_cooldowns) +
           ",\"allowed_fails_policy\":" + pairs_json(r.allowed_fails_policy) + ",\"retry_after_ms\":" +
           ms(r.retry_after) + ",\"fallbacks\":" + fallbacks_json(r.fallbacks) +
           ",\"context_window_fallbacks\":" + fallbacks_json(r.context_window_fallbacks) +
           ",\"model_group_alias\":" + aliases + ",\"shadow_sample_rate\":" + std::to_string(r.shadow_sample_rate) +
           "}";
}

std::string source_of(const Effective& e, const config::Deployment& d, const std::string& file) {
    if (auto it = e.deployment_rev.find(d.id); it != e.deployment_rev.end())
        return "admin revision " + std::to_string(it->second);
    return file + ":" + std::to_string(d.line);
}

// A deployment as the admin API shows it: the model_list entry (no secret)
// plus its id, drain state and where it came from.
std::string deployment_json(const Effective& e, const config::Deployment& d, const std::string& file) {
    std::string out = entry_json(d, false);
    out.pop_back();
    return out + ",\"id\":" + json_quote(d.id) + ",\"drained\":" + b(e.drained.count(d.id) > 0) +
           ",\"source\":" + json_quote(source_of(e, d, file)) + "}";
}

const config::Deployment* find(const config::Config& c, const std::string& id) {
    for (const auto& d : c.deployments)
        if (d.id == id) return &d;
    return nullptr;
}

// The plan the chain builds for `info` right now, as JSON.
std::string plan_json(const router::Router& r, const router::RoutedPlan& rp) {
    std::string out = "{\"groups\":[";
    for (size_t i = 0; i < rp.groups.size(); ++i) out += (i ? "," : "") + json_quote(rp.groups[i]);
    out += "],\"attempts\":[";
    for (size_t i = 0; i < rp.plan.attempts.size(); ++i) {
        const auto& a = rp.plan.attempts[i];
        const auto& d = r.deployment(a.deployment);
        out += (i ? "," : "") + std::string("{\"deployment\":") + json_quote(d.id) +
               ",\"model_group\":" + json_quote(d.model_name) + ",\"launch\":\"" + launch_name(a.launch) +
               "\",\"delay_ms\":" + ms(a.delay) + ",\"context_window_only\":" + b(a.context_window_only) + "}";
    }
    out += "],\"first_content_timeout_ms\":" + ms(rp.plan.first_content_timeout) + ",\"panic\":" + b(rp.panic) +
           ",\"note\":" + json_quote(rp.note) + "}";
    return out;
}

// What each strategy instance shows of its live state (tg_plugin_state_json),
// as a JSON array; `budget_left` gets the first "budget_left" number shown.
std::string strategies_state_json(const router::Router& rt, std::optional<double>& budget_left) {
    std::string out = "[";
    for (size_t i = 0; i < rt.instances().size(); ++i) {
        const plugin::Instance& p = *rt.instances()[i];
        std::string state = p.state_json();
        Document doc;  // the plugin's text is not trusted: shown only when it is a JSON object
        doc.Parse(state.data(), state.size());
        if (doc.HasParseError() || !doc.IsObject()) state = "null";
        else if (auto b = doc.FindMember("budget_left"); b != doc.MemberEnd() && b->value.IsNumber() && !budget_left)
            budget_left = b->value.GetDouble();
        if (state != "null") state = to_json(doc);  // re-serialised: nothing but the parsed JSON goes out
        out += (i ? "," : "") + std::string("{\"name\":") + json_quote(p.name()) + ",\"state\":" + state + "}";
    }
    return out + "]";
}

std::string number_or_null(const std::optional<double>& v) {
    if (!v) return "null";
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.Double(*v);
    return buf.GetString();
}

// The delay of the first hedge in a plan (the delay in use), or -1.
int64_t hedge_delay(const router::RoutedPlan& rp) {
    for (const auto& a : rp.plan.attempts)
        if (a.launch == Launch::AfterDelay) return a.delay.count();
    return -1;
}

}  // namespace

AdminReply AdminApi::change(Change c, bool litellm_shape) {
    const std::string op = c.op;
    Outcome o = cp_.apply(std::move(c));
    if (!o.ok) return refused(o);
    const std::string rev = std::to_string(o.revision);
    if (op == "deployment.delete") {
        if (litellm_shape) return reply(200, "{\"message\":" + json_quote("Model: " + o.target + " deleted successfully") + "}");
        return reply(200, "{\"id\":" + json_quote(o.target) + ",\"deleted\":true,\"revision\":" + rev + "}");
    }
    if (op == "router_settings.patch") return router_settings({});
    const Effective e = cp_.effective();
    const config::Deployment* d = find(*e.config, o.target);
    if (!d) return reply(200, "{\"revision\":" + rev + "}");
    if (litellm_shape) {
        std::string entry = entry_json(*d, false);
        entry.pop_back();
        return reply(200, entry + ",\"model_id\":" + json_quote(d->id) + "}");
    }
    std::string out = deployment_json(e, *d, e.config->file);
    out.pop_back();
    return reply(op == "deployment.add" ? 201 : 200, out + ",\"revision\":" + rev + "}");
}

AdminReply AdminApi::reload(const AdminRequest& r) {
    Outcome o = cp_.reload("POST /admin/reload by key " + r.key_hash);
    if (!o.ok) return fail(ApiError::bad_request(o.error, "", "invalid_config"));
    auto list = [](const std::vector<std::string>& keys, const char* prefix) {
        std::string out = "[";
        for (size_t i = 0; i < keys.size(); ++i) out += (i ? "," : "") + json_quote(prefix + keys[i]);
        return out + "]";
    };
    return reply(200, "{\"status\":\"ok\",\"revision\":" + std::to_string(o.revision) + ",\"deployments\":" +
                          std::to_string(cp_.current()->config->deployments.size()) +
                          ",\"general_settings\":{\"applied\":" + list(o.general.live, "") +
                          ",\"requires_restart\":" + list(o.general.requires_restart, "") +
                          "},\"warnings\":" + list(o.general.requires_restart, "requires restart: ") + "}");
}

AdminReply AdminApi::config(const AdminRequest&) {
    const Effective e = cp_.effective();
    const config::Config& c = *e.config;
    std::string deps = "[";
    for (size_t i = 0; i < c.deployments.size(); ++i) deps += (i ? "," : "") + deployment_json(e, c.deployments[i], c.file);
    deps += "]";
    std::string sources = "{";
    bool first = true;
    for (const auto& key : patchable_router_keys()) {
        auto it = e.router_key_rev.find(key);
        sources += (first ? "" : ",") + json_quote(key) + ":" +
                   json_quote(it == e.router_key_rev.end() ? "file (or default)" : "admin revision " + std::to_string(it->second));
        first = false;
    }
    sources += "}";
    const auto& g = c.general;
    std::string general = "{\"master_key\":" + std::string(g.master_key.empty() ? "null" : "\"***\"") +
                          ",\"host\":" + json_quote(g.host) + ",\"port\":" + std::to_string(g.port) +
                          ",\"metrics\":" + b(g.metrics) + ",\"metrics_auth\":" + b(g.metrics_auth) +
                          ",\"max_body_bytes\":" + std::to_string(g.max_body_bytes) +
                          ",\"log_level\":" + json_quote(g.log_level) +
                          ",\"max_concurrent_requests\":" + std::to_string(g.limits.max_concurrent_requests) +
                          ",\"max_open_streams\":" + std::to_string(g.limits.max_open_streams) +
                          ",\"source\":\"file; a reload applies master_key rotation, metrics_auth, log_level, "
                          "admission caps, overload_retry_after, drain_timeout, allow_client_side_credentials and "
                          "forward_client_headers; the other keys need a restart\"}";
    return reply(200, "{\"revision\":" + std::to_string(cp_.revision()) + ",\"file\":" + json_quote(c.file) +
                          ",\"store\":" + json_quote(cp_.store_location()) + ",\"model_list\":" + deps +
                          ",\"router_settings\":" + router_json(c.router) + ",\"router_settings_sources\":" + sources +
                          ",\"general_settings\":" + general + "}");
}

AdminReply AdminApi::list_deployments(const AdminRequest&) {
    const Effective e = cp_.effective();
    std::string out = "{\"object\":\"list\",\"revision\":" + std::to_string(cp_.revision()) + ",\"data\":[";
    for (size_t i = 0; i < e.config->deployments.size(); ++i)
        out += (i ? "," : "") + deployment_json(e, e.config->deployments[i], e.config->file);
    return reply(200, out + "]}");
}

AdminReply AdminApi::add_deployment(const AdminRequest& r) {
    Change c;
    c.op = "deployment.add";
    c.payload = r.body;
    c.key_hash = r.key_hash;
    return change(std::move(c), false);
}

AdminReply AdminApi::update(const std::string& id, const std::string& patch, const std::string& key_hash, bool litellm) {
    Document p;
    if (auto e = parse_json_object(patch, p)) return fail(*e);
    const Effective eff = cp_.effective();
    const config::Deployment* d = find(*eff.config, id);
    if (!d) return fail(ApiError::not_found("No deployment with id '" + id + "'", "deployment_not_found"));
    Document cur;
    cur.Parse(entry_json(*d, true).c_str());  // internal only: the merged entry goes to the log, never out
    merge(cur, p, cur.GetAllocator());
    auto info = cur.FindMember("model_info");
    if (info == cur.MemberEnd() || !info->value.IsObject()) {
        cur.RemoveMember("model_info");
        cur.AddMember("model_info", Value(rapidjson::kObjectType), cur.GetAllocator());
        info = cur.FindMember("model_info");
    }
    info->value.RemoveMember("id");
    info->value.AddMember("id", Value(id.c_str(), cur.GetAllocator()), cur.GetAllocator());
    Change c;
    c.op = "deployment.update";
    c.target = id;
    c.payload = to_json(cur);
    c.key_hash = key_hash;
    return change(std::move(c), litellm);
}

AdminReply AdminApi::patch_deployment(const AdminRequest& r) { return update(r.arg, r.body, r.key_hash, false); }

AdminReply AdminApi::delete_deployment(const AdminRequest& r) {
    Change c;
    c.op = "deployment.delete";
    c.target = r.arg;
    c.key_hash = r.key_hash;
    return change(std::move(c), false);
}

AdminReply AdminApi::deployment_action(const AdminRequest& r) {
    const auto slash = r.arg.rfind('/');
    const std::string action = slash == std::string::npos ? "" : r.arg.substr(slash + 1);
    if (action != "drain" && action != "undrain")
        return fail(ApiError::not_found("Unknown path /admin/deployments/" + r.arg.substr(0, 200) +
                                            " (POST .../{id}/drain or .../{id}/undrain)",
                                        "unknown_url"));
    Change c;
    c.op = "deployment." + action;
    c.target = r.arg.substr(0, slash);
    c.key_hash = r.key_hash;
    Outcome o = cp_.apply(std::move(c));
    if (!o.ok) return refused(o);
    return reply(200, "{\"id\":" + json_quote(o.target) + ",\"drained\":" + b(action == "drain") +
                          ",\"revision\":" + std::to_string(o.revision) + "}");
}

AdminReply AdminApi::router_settings(const AdminRequest&) {
    const Effective e = cp_.effective();
    std::string out = router_json(e.config->router);
    out.pop_back();
    return reply(200, out + ",\"revision\":" + std::to_string(cp_.revision()) + "}");
}

AdminReply AdminApi::patch_router_settings(const AdminRequest& r) {
    Document p;
    if (auto e = parse_json_object(r.body, p)) return fail(*e);
    Change c;
    c.op = "router_settings.patch";
    c.payload = r.body;
    c.key_hash = r.key_hash;
    return change(std::move(c), false);
}

AdminReply AdminApi::routing_state(const AdminRequest&) {
    const GenerationPtr gen = cp_.current();
    const router::Router& rt = *gen->router;
    const int64_t now = rt.now_ms();
    std::string chain = "[";
    for (size_t i = 0; i < rt.chain_names().size(); ++i) chain += (i ? "," : "") + json_quote(rt.chain_names()[i]);
    chain += "]";
    std::optional<double> budget_left;
    const std::string strategies = strategies_state_json(rt, budget_left);
    std::string out = "{\"revision\":" + std::to_string(cp_.revision()) + ",\"chain\":" + chain +
                      ",\"budget_left\":" + number_or_null(budget_left) + ",\"strategies\":" + strategies +
                      ",\"groups\":[";
    bool first_group = true;
    for (const auto& group : gen->config->model_groups()) {
        // The order the chain gives now: a routing dry run (nothing is sent, nothing counted).
        router::RequestInfo info;
        info.request_id = "admin-routing-state";
        info.model_group = group;
        info.preview = true;
        auto routed = rt.route(info);
        std::vector<uint32_t> order;
        int64_t delay = -1;
        if (auto* rp = std::get_if<router::RoutedPlan>(&routed)) {
            for (const auto& a : rp->plan.attempts)
                if (std::find(order.begin(), order.end(), a.deployment) == order.end()) order.push_back(a.deployment);
            delay = hedge_delay(*rp);
        }
        for (uint32_t i = 0; i < rt.deployment_count(); ++i)
            if (rt.deployment(i).model_name == group && std::find(order.begin(), order.end(), i) == order.end())
                order.push_back(i);
        out += (first_group ? "{" : ",{") + std::string("\"model_group\":") + json_quote(group) +
               ",\"hedge_delay_ms\":" + (delay >= 0 ? std::to_string(delay) : "null") +
               ",\"budget_left\":" + (delay >= 0 ? number_or_null(budget_left) : "null") +
               ",\"routable\":" + b(std::holds_alternative<router::RoutedPlan>(routed)) + ",\"candidates\":[";
        first_group = false;
        for (size_t k = 0; k < order.size(); ++k) {
            const auto& d = rt.deployment(order[k]);
            const auto& st = rt.state(order[k]);
            const DeploymentStats s = st.snapshot();
            const int64_t carried = st.carried_cooldown_until_ms.load(std::memory_order_relaxed);
            int64_t left = s.health == Health::Cooling ? std::max<int64_t>(0, s.cooldown_until_ms - now) : 0;
            left = std::max(left, carried - now);
            out += (k ? ",{" : "{") + std::string("\"id\":") + json_quote(d.id) +
                   ",\"model\":" + json_quote(d.upstream.provider + "/" + d.upstream.model) +
                   ",\"api_base\":" + json_quote(d.api_base) + ",\"health\":\"" + health_name(s.health) +
                   "\",\"cooldown_remaining_ms\":" + std::to_string(left) +
                   ",\"drained\":" + b(st.drained.load(std::memory_order_relaxed)) +
                   ",\"in_flight\":" + std::to_string(s.in_flight) + ",\"attempts\":" + std::to_string(s.attempts) +
                   ",\"successes\":" + std::to_string(s.successes) + ",\"failures\":" + std::to_string(s.failures) +
                   ",\"latency_ttft\":" + latency_json(s.ttft) + ",\"latency_total\":" + latency_json(s.total) + "}";
        }
        out += "]}";
    }
    return reply(200, out + "]}");
}

AdminReply AdminApi::routing_preview(const AdminRequest& r) {
    Document doc;
    if (auto e = parse_json_object(r.body, doc)) return fail(*e);
    router::RequestInfo info;
    info.request_id = "admin-preview";
    info.preview = true;  // plugins plan without reserving or counting anything
    info.model_group = string_member(doc, "model");
    if (info.model_group.empty()) return fail(ApiError::bad_request("'model' is required", "model", "missing_model"));
    if (auto s = doc.FindMember("stream"); s != doc.MemberEnd()) {
        if (!s->value.IsBool()) return fail(ApiError::bad_request("'stream' must be a boolean", "stream"));
        info.stream = s->value.GetBool();
    }
    if (auto n = doc.FindMember("num_retries"); n != doc.MemberEnd()) {
        if (!n->value.IsInt() || n->value.GetInt() < 0 || n->value.GetInt() > 100)
            return fail(ApiError::bad_request("'num_retries' must be an integer 0..100", "num_retries"));
        info.num_retries = n->value.GetInt();
    }
    const GenerationPtr gen = cp_.current();
    auto routed = gen->router->route(info);
    if (auto* e = std::get_if<ApiError>(&routed)) return fail(*e);
    return reply(200, "{\"model\":" + json_quote(info.model_group) + ",\"stream\":" + b(info.stream) +
                          ",\"revision\":" + std::to_string(cp_.revision()) +
                          ",\"plan\":" + plan_json(*gen->router, std::get<router::RoutedPlan>(routed)) + "}");
}

AdminReply AdminApi::model_new(const AdminRequest& r) {
    Change c;
    c.op = "deployment.add";
    c.payload = r.body;
    c.key_hash = r.key_hash;
    return change(std::move(c), true);
}

AdminReply AdminApi::model_update(const AdminRequest& r) {
    Document doc;
    if (auto e = parse_json_object(r.body, doc)) return fail(*e);
    std::string id;
    if (auto info = doc.FindMember("model_info"); info != doc.MemberEnd() && info->value.IsObject())
        id = string_member(info->value, "id");
    if (id.empty()) id = string_member(doc, "id");
    if (id.empty()) return fail(ApiError::bad_request("model_info.id is required", "model_info.id", "missing_id"));
    return update(id, r.body, r.key_hash, true);
}

AdminReply AdminApi::model_delete(const AdminRequest& r) {
    Document doc;
    if (auto e = parse_json_object(r.body, doc)) return fail(*e);
    Change c;
    c.op = "deployment.delete";
    c.target = string_member(doc, "id");
    c.key_hash = r.key_hash;
    if (c.target.empty()) return fail(ApiError::bad_request("'id' is required", "id", "missing_id"));
    return change(std::move(c), true);
}

AdminReply AdminApi::model_info(const AdminRequest&) {
    const Effective e = cp_.effective();
    std::string out = "{\"data\":[";
    for (size_t i = 0; i < e.config->deployments.size(); ++i) {
        const auto& d = e.config->deployments[i];
        std::string entry = entry_json(d, false);
        // LiteLLM's model_info carries the id plus whether the entry came from its DB (here: the admin API).
        const std::string tail = "}}";
        entry.resize(entry.size() - tail.size());
        entry += ",\"db_model\":" + b(e.deployment_rev.count(d.id) > 0) + "}}";
        out += (i ? "," : "") + entry;
    }
    return reply(200, out + "]}");
}

AdminReply AdminApi::status(const AdminRequest&) {
    const auto s = cp_.status();
    const Effective e = cp_.effective();
    std::string drained = "[", deployments = "[";
    for (const auto& id : e.drained) drained += (drained.size() > 1 ? "," : "") + json_quote(id);
    for (const auto& d : e.config->deployments)
        deployments += (deployments.size() > 1 ? ",{" : "{") + std::string("\"id\":") + json_quote(d.id) +
                       ",\"model_group\":" + json_quote(d.model_name) + ",\"drained\":" + b(e.drained.count(d.id) > 0) +
                       "}";
    return reply(200, "{\"revision\":" + std::to_string(cp_.revision()) + ",\"last_result\":" +
                          json_quote(s.last_result) + ",\"last_at_ms\":" + std::to_string(s.last_at_ms) +
                          ",\"reloads_ok\":" + std::to_string(s.reloads_ok) + ",\"reloads_failed\":" +
                          std::to_string(s.reloads_failed) + ",\"drained\":" + drained + "],\"deployments\":" +
                          deployments + "]}");
}

}  // namespace tailgate::control
