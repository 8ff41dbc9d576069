#include "control/overlay.hpp"
#include "common/api_error.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <functional>

namespace tailgate::control {

namespace {

using config::ConfigError;
using config::RouterSettings;

std::string millis(config::Millis m) { return json_quote(std::to_string(m.count()) + "ms"); }

// The parsed JSON object, compacted to one line (so it can sit in a YAML flow item).
std::string compact_object(const std::string& json, const std::string& where) {
    rapidjson::Document doc;
    doc.Parse(json.data(), json.size());
    if (doc.HasParseError() || !doc.IsObject()) throw ConfigError(where + ":1: (body): expected a JSON object");
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    doc.Accept(w);
    return buf.GetString();
}

// What a router_settings key sets, copied from a parsed patch onto the effective settings.
using Copy = std::function<void(RouterSettings&, const RouterSettings&)>;
const std::vector<std::pair<std::string, Copy>>& router_copies() {
    static const std::vector<std::pair<std::string, Copy>> table = [] {
        std::vector<std::pair<std::string, Copy>> t;
        auto chain = [](RouterSettings& d, const RouterSettings& s) {
            d.routing_strategy = s.routing_strategy;
            d.routing_strategy_args = s.routing_strategy_args;
            d.strategies = s.strategies;
            d.strategies_explicit = s.strategies_explicit;
        };
        t.emplace_back("routing_strategy", chain);
        t.emplace_back("routing_strategy_args", chain);
        t.emplace_back("strategies", chain);
#define COPY_KEY(key) t.emplace_back(#key, [](RouterSettings& d, const RouterSettings& s) { d.key = s.key; })
        COPY_KEY(num_retries);
        COPY_KEY(timeout);
        COPY_KEY(stream_timeout);
        COPY_KEY(connect_timeout);
        COPY_KEY(max_request_timeout);
        COPY_KEY(max_client_retry_after);
        COPY_KEY(panic_routing);
        COPY_KEY(allowed_fails);
        COPY_KEY(cooldown_time);
        COPY_KEY(disable_cooldowns);
        COPY_KEY(allowed_fails_policy);
        COPY_KEY(retry_after);
        COPY_KEY(fallbacks);
        COPY_KEY(context_window_fallbacks);
        COPY_KEY(allow_request_strategy_override);
        COPY_KEY(request_strategies);
        COPY_KEY(model_group_alias);
        COPY_KEY(shadow_sample_rate);
#undef COPY_KEY
        return t;
    }();
    return table;
}

// A router_settings patch validated like the file: the patch as the section of
// a document whose model_list names the effective groups (fallbacks and
// aliases are checked against them).
RouterSettings parse_router_patch(const config::Config& base, const std::string& patch, const std::string& where,
                                  std::vector<std::string>& keys) {
    rapidjson::Document doc;
    doc.Parse(patch.data(), patch.size());
    if (doc.HasParseError() || !doc.IsObject()) throw ConfigError(where + ":1: router_settings: expected a JSON object");
    const auto& known = patchable_router_keys();
    for (auto it = doc.MemberBegin(); it != doc.MemberEnd(); ++it) {
        std::string k(it->name.GetString(), it->name.GetStringLength());
        if (std::find(known.begin(), known.end(), k) == known.end())
            throw ConfigError(where + ":1: router_settings." + k + ": not a setting the admin API may change");
        keys.push_back(std::move(k));
    }
    std::string yaml = "model_list:\n";
    for (const auto& g : base.model_groups())
        yaml += "  - {\"model_name\": " + json_quote(g) +
                ", \"litellm_params\": {\"model\": \"openai/placeholder\", \"api_base\": \"http://127.0.0.1:9\"}}\n";
    yaml += "router_settings: " + compact_object(patch, where) + "\n";
    return config::load_string(yaml, where).router;
}

std::vector<config::Deployment>::iterator find_id(std::vector<config::Deployment>& deps, const std::string& id) {
    return std::find_if(deps.begin(), deps.end(), [&](const auto& d) { return d.id == id; });
}

}  // namespace

const std::vector<std::string>& patchable_router_keys() {
    static const std::vector<std::string> keys = [] {
        std::vector<std::string> k;
        for (const auto& [name, copy] : router_copies()) k.push_back(name);
        return k;
    }();
    return keys;
}

config::Deployment parse_entry(const std::string& json, const std::string& where, bool drop_params) {
    std::string yaml = "model_list:\n  - " + compact_object(json, where) + "\n";
    // The file's litellm_settings.drop_params, so the provider's refused
    // parameters are dropped as for a deployment of the file.
    if (drop_params) yaml += "litellm_settings: {drop_params: true}\n";
    config::Config one = config::load_string(yaml, where);
    if (one.deployments.size() != 1) throw ConfigError(where + ":1: model_list: expected exactly one deployment");
    return std::move(one.deployments.front());
}

std::string entry_json(const config::Deployment& d, bool secrets) {
    const auto& u = d.upstream;
    std::string p = "\"model\":" + json_quote(u.provider + "/" + u.model);
    if (!d.api_base.empty()) p += ",\"api_base\":" + json_quote(d.api_base);
    if (!u.api_key.empty()) p += ",\"api_key\":" + json_quote(secrets ? u.api_key.reveal() : config::Secret::redacted());
    if (!u.api_version.empty()) p += ",\"api_version\":" + json_quote(u.api_version);
    if (d.rpm > 0) p += ",\"rpm\":" + std::to_string(d.rpm);
    if (d.tpm > 0) p += ",\"tpm\":" + std::to_string(d.tpm);
    if (d.weight > 0) p += ",\"weight\":" + std::to_string(d.weight);
    if (d.timeout) p += ",\"timeout\":" + millis(*d.timeout);
    if (d.stream_timeout) p += ",\"stream_timeout\":" + millis(*d.stream_timeout);
    if (d.num_retries) p += ",\"num_retries\":" + std::to_string(*d.num_retries);
    if (d.drop_params) p += std::string(",\"drop_params\":") + (*d.drop_params ? "true" : "false");
    if (!u.ssl_verify) p += ",\"ssl_verify\":false";
    if (!d.additional_drop_params.empty()) {
        p += ",\"additional_drop_params\":[";
        for (size_t i = 0; i < d.additional_drop_params.size(); ++i)
            p += (i ? "," : "") + json_quote(d.additional_drop_params[i]);
        p += "]";
    }
    std::string info = "\"id\":" + json_quote(d.id);
    if (d.input_cost_per_token >= 0) info += ",\"input_cost_per_token\":" + std::to_string(d.input_cost_per_token);
    if (d.output_cost_per_token >= 0) info += ",\"output_cost_per_token\":" + std::to_string(d.output_cost_per_token);
    return "{\"model_name\":" + json_quote(d.model_name) + ",\"litellm_params\":{" + p + "},\"model_info\":{" + info +
           "}}";
}

Effective apply_change(const Effective& base, const Change& c) {
    Effective out = base;
    auto cfg = std::make_shared<config::Config>(*base.config);
    auto& deps = cfg->deployments;
    const std::string where = "revision " + std::to_string(c.revision) + " (" + c.op + ")";
    auto missing = [&] {
        return ConfigError(where + ":1: model_info.id: no deployment with id '" + c.target + "'");
    };
    if (c.op == "deployment.add" || c.op == "deployment.update") {
        config::Deployment d = parse_entry(c.payload, where, cfg->router.drop_params);
        auto it = find_id(deps, d.id);
        if (c.op == "deployment.add") {
            if (it != deps.end()) throw ConfigError(where + ":1: model_info.id: a deployment with id '" + d.id + "' exists");
            deps.push_back(std::move(d));
        } else {
            if (d.id != c.target) throw ConfigError(where + ":1: model_info.id: the id of a deployment cannot change");
            if (it == deps.end()) throw missing();
            *it = std::move(d);
        }
        out.deployment_rev[c.target.empty() ? deps.back().id : c.target] = c.revision;
    } else if (c.op == "deployment.delete") {
        auto it = find_id(deps, c.target);
        if (it == deps.end()) throw missing();
        deps.erase(it);
        out.deployment_rev.erase(c.target);
        out.drained.erase(c.target);
    } else if (c.op == "deployment.drain" || c.op == "deployment.undrain") {
        if (find_id(deps, c.target) == deps.end()) throw missing();
        if (c.op == "deployment.drain") out.drained.insert(c.target);
        else out.drained.erase(c.target);
    } else if (c.op == "router_settings.patch") {
        std::vector<std::string> keys;
        const RouterSettings parsed = parse_router_patch(*cfg, c.payload, where, keys);
        for (const auto& k : keys) {
            for (const auto& [name, copy] : router_copies())
                if (name == k) copy(cfg->router, parsed);
            out.router_key_rev[k] = c.revision;
        }
    } else if (c.op != "file.reload") {
        throw ConfigError(where + ":1: op: unknown change '" + c.op + "'");
    }
    if (deps.empty()) throw ConfigError(where + ":1: model_list: the last deployment cannot be removed");
    out.config = std::move(cfg);
    return out;
}

Effective apply_changes(const config::Config& file, const std::vector<Change>& changes) {
    Effective e;
    e.config = std::make_shared<const config::Config>(file);
    for (const auto& c : changes) e = apply_change(e, c);
    return e;
}

}  // namespace tailgate::control
