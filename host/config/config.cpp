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

namespace {

struct ProviderInfo {
    const char* name;
    ProviderKind kind;
    const char* default_api_base;  // nullptr: api_base required
    const char* key_env[2];        // conventional env vars used when api_key is absent
};

const ProviderInfo kProviders[] = {
    {"openai", ProviderKind::OpenAICompatible, "https://api.openai.com/v1", {"OPENAI_API_KEY", nullptr}},
    {"groq", ProviderKind::OpenAICompatible, "https://api.groq.com/openai/v1", {"GROQ_API_KEY", nullptr}},
    {"together_ai", ProviderKind::OpenAICompatible, "https://api.together.xyz/v1",
     {"TOGETHERAI_API_KEY", "TOGETHER_API_KEY"}},
    {"deepseek", ProviderKind::OpenAICompatible, "https://api.deepseek.com/v1", {"DEEPSEEK_API_KEY", nullptr}},
    {"hosted_vllm", ProviderKind::OpenAICompatible, nullptr, {"HOSTED_VLLM_API_KEY", nullptr}},
    {"ollama", ProviderKind::OpenAICompatible, "http://localhost:11434/v1", {nullptr, nullptr}},
    {"azure", ProviderKind::Azure, nullptr, {"AZURE_API_KEY", nullptr}},
};

const ProviderInfo* find_provider(std::string_view name) {
    for (const auto& p : kProviders) {
        if (name == p.name) return &p;
    }
    return nullptr;
}

}  // namespace

const std::vector<std::string>& supported_providers() {
    static const std::vector<std::string> names = [] {
        std::vector<std::string> v;
        for (const auto& p : kProviders) v.emplace_back(p.name);
        return v;
    }();
    return names;
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
    const ProviderInfo* prov = nullptr;
    std::string upstream_model;
    const auto slash = model.find('/');
    if (slash == std::string::npos) {
        prov = find_provider("openai");  // LiteLLM: a bare model name means OpenAI
        upstream_model = model;
    } else {
        const std::string prefix = model.substr(0, slash);
        prov = find_provider(prefix);
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
    u.kind = prov->kind;
    u.provider = prov->name;
    u.model = upstream_model;

    std::string base;
    int base_line = model_val.line;
    std::string base_path = p.child("api_base");
    if (auto x = get(p, "api_base")) {
        base = str(*x);
        base_line = x->line;
        if (detail::trim(base).empty()) fail(*x, "must not be empty");
    } else if (prov->default_api_base) {
        base = prov->default_api_base;
    } else {
        fail(key_line_or(p, "api_base"), base_path,
             std::string("missing (required for provider '") + prov->name + "')");
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

    if (prov->kind == ProviderKind::Azure) {
        for (char c : upstream_model) {
            const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
            if (!ok) {
                fail(model_val, "invalid Azure deployment name '" + upstream_model +
                                    "' (letters, digits, '-', '_', '.')");
            }
        }
        std::string prefix = u.base_path;
        if (prefix.size() >= 7 && prefix.compare(prefix.size() - 7, 7, "/openai") == 0) {
            prefix.resize(prefix.size() - 7);
        }
        u.base_path = prefix + "/openai/deployments/" + upstream_model;
        u.api_version = "2024-02-01";
    } else if (u.provider == "ollama" && u.base_path.empty()) {
        // LiteLLM users write the bare Ollama origin; its OpenAI API lives under /v1.
        u.base_path = "/v1";
    }
    if (auto x = get(p, "api_version")) u.api_version = nonempty_str(*x);

    if (auto x = get(p, "api_key")) {
        u.api_key = secret(*x);
    } else {
        for (const char* var : prov->key_env) {
            if (!var) continue;
            const std::optional<std::string> v = lookup_env(var);
            if (v && !v->empty()) {
                u.api_key = Secret(*v);
                break;
            }
        }
    }
}

}  // namespace detail

}  // namespace tailgate::config
