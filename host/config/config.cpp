// Config loader: LiteLLM's config.yaml shape (model_list, router_settings,
// general_settings, litellm_settings, include, environment_variables) plus
// Tailgate's router_settings.strategies / plugin_paths.
//
// Every error names "file:line: key.path". Secrets (api keys, the master key)
// are never echoed: values are only quoted in messages for non-secret keys,
// and never when they came from the environment.
#include "config/config.hpp"

#include "config/loader.hpp"
#include "config/parse_util.hpp"
#include "providers/codec.hpp"
#include "providers/registry.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <tuple>

namespace tailgate::config {

using detail::to_lower;

// ---------------------------------------------------------------------------
// Public helpers
// ---------------------------------------------------------------------------

std::vector<std::string> Config::model_groups() const {
    std::vector<std::string> groups;
    std::set<std::string> seen;
    for (const auto& d : deployments) {
        if (seen.insert(d.model_name).second) groups.push_back(d.model_name);
    }
    return groups;
}

bool Config::has_group(const std::string& g) const {
    return std::any_of(deployments.begin(), deployments.end(),
                       [&](const Deployment& d) { return d.model_name == g; });
}

bool is_wildcard(std::string_view model_name) { return model_name.find('*') != std::string_view::npos; }

std::optional<std::string> match_wildcard(std::string_view pattern, std::string_view name) {
    const size_t star = pattern.find('*');
    if (star == std::string_view::npos) return std::nullopt;
    const std::string_view head = pattern.substr(0, star), tail = pattern.substr(star + 1);
    if (name.size() < head.size() + tail.size() + 1) return std::nullopt;  // '*' stands for something
    if (name.substr(0, head.size()) != head || name.substr(name.size() - tail.size()) != tail) return std::nullopt;
    return std::string(name.substr(head.size(), name.size() - head.size() - tail.size()));
}

std::string upstream_model(const Deployment& d, std::string_view capture) {
    const std::string& m = d.upstream.model;
    const size_t star = m.find('*');
    if (star == std::string::npos) return m;
    return m.substr(0, star) + std::string(capture) + m.substr(star + 1);
}

const std::vector<std::string>& supported_providers() { return providers::provider_names(); }

providers::Target Upstream::target() const {
    return providers::Target{tls, host, port, base_path, api_version, api_key.reveal(), ssl_verify, credentials.get()};
}

const providers::Codec& codec_of(const Upstream& u) {
    if (u.codec) return *u.codec;
    return providers::find_provider(u.kind == ProviderKind::Azure ? "azure" : "openai")->codec();
}

const std::vector<std::string>& supported_routing_strategies() {
    static const std::vector<std::string> names = {"simple-shuffle",        "least-busy",
                                                   "usage-based-routing",   "usage-based-routing-v2",
                                                   "latency-based-routing", "cost-based-routing"};
    return names;
}

std::vector<std::string> default_chain(const std::string& routing_strategy) {
    // health first everywhere: LiteLLM cools failing deployments whatever the strategy.
    if (routing_strategy == "simple-shuffle") return {"health", "simple-shuffle"};
    if (routing_strategy == "least-busy") return {"health", "least-busy"};
    // v1 and v2 differ in LiteLLM only in where counters live (v2: Redis, pre-call
    // checks); both skip deployments at rpm/tpm and pick the lowest TPM.
    if (routing_strategy == "usage-based-routing" || routing_strategy == "usage-based-routing-v2")
        return {"health", "usage"};
    if (routing_strategy == "latency-based-routing") return {"health", "latency"};
    if (routing_strategy == "cost-based-routing") return {"health", "cost"};
    return {};
}

// The provider part of a deployment (Loader::resolve_upstream): next to the
// provider table it reads.
namespace detail {

void Loader::resolve_upstream(Deployment& d, Map& p, const Val& model_val) {
    const std::string model = nonempty_str(model_val);
    const providers::Provider* prov = nullptr;
    std::string upstream_model;
    const auto slash = model.find('/');
    if (slash == std::string::npos) {
        prov = providers::find_provider("openai");  // LiteLLM: a bare model name means OpenAI
        upstream_model = model;
    } else {
        const std::string prefix = model.substr(0, slash);
        prov = providers::find_provider(prefix);
        if (!prov) {
            fail(model_val, "unknown provider '" + prefix + "' in '" + model +
                                "' (supported: " + join(supported_providers()) + ")");
        }
        upstream_model = model.substr(slash + 1);
        if (detail::trim(upstream_model).empty()) {
            fail(model_val, "missing the model name after '" + prefix + "/'");
        }
    }
    Upstream& u = d.upstream;
    u.codec = &prov->codec();
    u.kind = u.codec->name() == "azure" ? ProviderKind::Azure : ProviderKind::OpenAICompatible;
    u.provider = prov->name;
    u.model = upstream_model;

    // The codec's own settings (AWS keys, a service account): litellm_params,
    // os.environ/ resolved like api_key, else the environment.
    providers::DeploymentParams params{
        upstream_model,
        {},
        [&](const std::string& key) -> std::optional<std::string> {
            if (auto x = get(p, key)) return secret(*x).reveal();
            return std::nullopt;
        },
        [&](const std::string& var) { return lookup_env(var); }};
    std::string base;
    int base_line = model_val.line;
    std::string base_path = p.child("api_base");
    if (auto x = get(p, "api_base")) {
        base = str(*x);
        base_line = x->line;
        if (detail::trim(base).empty()) fail(*x, "must not be empty");
    } else if (prov->default_api_base) {
        base = prov->default_api_base;
    } else if (base = u.codec->default_base(params); base.empty()) {
        fail(key_line_or(p, "api_base"), base_path,
             "missing (required for provider '" + std::string(prov->name) + "')");
    }
    std::string err;
    const auto url = detail::parse_url(base, err);
    if (!url) fail(base_line, base_path, err);
    if (url->had_userinfo) {
        warn(base_line, base_path, "credentials in the URL are ignored; use api_key");
    }
    u.tls = url->tls;
    u.host = url->host;
    u.port = url->port;
    u.base_path = url->path;
    d.api_base = url->display;
    id_basis_.push_back(url->display);

    // A bare origin (LiteLLM users write Ollama's) gets the provider's API path.
    if (u.base_path.empty() && prov->bare_origin_path) u.base_path = prov->bare_origin_path;
    if (auto x = get(p, "api_version")) u.api_version = nonempty_str(*x);
    if (std::string e = u.codec->resolve(u.base_path, u.api_version, upstream_model); !e.empty()) fail(model_val, e);

    u.api_key = api_key(p, *prov);
    std::string error;
    params.api_key = u.api_key.reveal();
    u.credentials = u.codec->credentials(params, error);
    if (!error.empty()) fail(model_val, error);
}

// litellm_params.api_key, else the provider's first variable that is set.
Secret Loader::api_key(Map& p, const providers::Provider& prov) {
    if (auto x = get(p, "api_key")) return secret(*x);
    for (const char* var : prov.key_env) {
        if (!var) continue;
        const std::optional<std::string> v = lookup_env(var);
        if (v && !v->empty()) return Secret(*v);
    }
    return {};
}

}  // namespace detail

}  // namespace tailgate::config
