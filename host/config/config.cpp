// Config loader: LiteLLM's config.yaml shape (model_list, router_settings,
// general_settings) plus Tailgate's router_settings.strategies / plugin_paths.
//
// Every error names "file:line: key.path". Secrets (api keys, the master key)
// are never echoed: values are only quoted in messages for non-secret keys,
// and never when they came from the environment.
#include "config/config.hpp"

#include "config/parse_util.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

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

std::string join(const std::vector<std::string>& items, const char* sep = ", ") {
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += sep;
        out += items[i];
    }
    return out;
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

// ---------------------------------------------------------------------------
// Loader
// ---------------------------------------------------------------------------

namespace {

using KeyValues = std::vector<std::pair<std::string, std::string>>;

int line_of(const YAML::Node& n) {
    const YAML::Mark m = n.Mark();
    return m.is_null() ? 0 : m.line + 1;
}

const char* kind_name(const YAML::Node& n) {
    switch (n.Type()) {
        case YAML::NodeType::Map: return "a map";
        case YAML::NodeType::Sequence: return "a list";
        case YAML::NodeType::Null: return "nothing";
        default: return "a scalar";
    }
}

// A value found in the document, with its key path and the line to report.
struct Val {
    YAML::Node node;
    std::string path;
    int line = 0;
};

// A resolved scalar: its text, and the variable it came from (if os.environ/).
struct Text {
    std::string text;
    std::string env_var;
    // How to quote the value in a message without leaking environment values.
    std::string shown() const {
        return env_var.empty() ? "'" + text + "'" : "the value of os.environ/" + env_var;
    }
};

class Loader {
public:
    Loader(std::string file, EnvLookup env, std::string base_dir)
        : file_(std::move(file)), env_(env), base_dir_(std::move(base_dir)) {}

    Config run(const std::string& yaml_text);

private:
    // -- reporting ----------------------------------------------------------
    [[noreturn]] void fail(int line, const std::string& path, const std::string& msg) const {
        throw ConfigError(file_ + ":" + std::to_string(line) + ": " + path + ": " + msg);
    }
    [[noreturn]] void fail(const Val& v, const std::string& msg) const { fail(v.line, v.path, msg); }
    void warn(int line, const std::string& path, const std::string& msg) {
        cfg_.warnings.push_back(file_ + ":" + std::to_string(line) + ": " + path + ": " + msg);
    }

    // -- maps ---------------------------------------------------------------
    struct Entry {
        std::string key;
        int key_line = 0;
        YAML::Node value;
        bool used = false;
    };
    struct Map {
        std::string path;
        int line = 0;
        std::vector<Entry> entries;
        std::string child(const std::string& key) const {
            return path.empty() ? key : path + "." + key;
        }
    };

    Map open_map(const Val& v) {
        if (!v.node.IsMap()) fail(v, std::string("expected a map, got ") + kind_name(v.node));
        Map m;
        m.path = v.path;
        m.line = v.line;
        std::vector<Val> merges;  // YAML merge keys ("<<: *defaults"), which yaml-cpp leaves as-is
        for (auto it = v.node.begin(); it != v.node.end(); ++it) {
            const YAML::Node k = it->first;  // a copy: `*it` is a temporary
            const YAML::Node value = it->second;
            const int kl = line_of(k);
            if (!k.IsScalar()) fail(kl, v.path, "keys must be strings");
            const std::string key = k.Scalar();
            if (key == "<<" && k.Tag() != "!") {
                const Val mv{value, m.child(key), line_of(value) ? line_of(value) : kl};
                if (value.IsMap()) {
                    merges.push_back(mv);
                } else if (value.IsSequence()) {
                    for (size_t i = 0; i < value.size(); ++i) {
                        merges.push_back(Val{value[i], mv.path + "[" + std::to_string(i) + "]",
                                             line_of(value[i]) ? line_of(value[i]) : mv.line});
                    }
                } else {
                    fail(mv, "a merge key needs a map or a list of maps");
                }
                continue;
            }
            for (const auto& e : m.entries) {
                if (e.key == key) {
                    fail(kl, m.child(key),
                         "duplicate key (first at line " + std::to_string(e.key_line) + ")");
                }
            }
            m.entries.push_back({key, kl, value, false});
        }
        // Explicit keys win over merged ones; earlier merge sources win over later ones.
        for (const Val& src : merges) {
            Map merged = open_map(src);
            for (auto& e : merged.entries) {
                const bool present = std::any_of(m.entries.begin(), m.entries.end(),
                                                 [&](const Entry& x) { return x.key == e.key; });
                if (!present) m.entries.push_back(std::move(e));
            }
        }
        return m;
    }

    // The value of `key`, or nullopt if absent or null (as in Python: None = unset).
    std::optional<Val> get(Map& m, const std::string& key) {
        for (auto& e : m.entries) {
            if (e.key != key) continue;
            e.used = true;
            if (e.value.IsNull()) return std::nullopt;
            // Scalars and flow collections start on the key's line; a block
            // map/sequence is marked at its first item.
            int line = line_of(e.value);
            if (line == 0) line = e.key_line;
            return Val{e.value, m.child(key), line};
        }
        return std::nullopt;
    }

    Val require(Map& m, const std::string& key) {
        auto v = get(m, key);
        if (!v) fail(key_line_or(m, key), m.child(key), "missing");
        return *v;
    }

    int key_line_or(const Map& m, const std::string& key) const {
        for (const auto& e : m.entries) {
            if (e.key == key) return e.key_line;
        }
        return m.line;
    }

    void warn_unknown(const Map& m, const char* what = "unknown key, ignored") {
        for (const auto& e : m.entries) {
            if (!e.used) warn(e.key_line, m.child(e.key), what);
        }
    }

    // -- scalars ------------------------------------------------------------
    Text text(const Val& v, const char* expected = "a string") {
        if (!v.node.IsScalar()) {
            fail(v, std::string("expected ") + expected + ", got " + kind_name(v.node));
        }
        return resolve(v, v.node.Scalar());
    }

    Text resolve(const Val& v, const std::string& raw) {
        static const std::string prefix = "os.environ/";
        if (raw.compare(0, prefix.size(), prefix) != 0) return {raw, {}};
        const std::string var = std::string(detail::trim(raw.substr(prefix.size())));
        if (var.empty()) fail(v, "os.environ/ needs a variable name");
        std::optional<std::string> value;
        if (env_) {
            value = env_(var);
        } else if (const char* s = std::getenv(var.c_str())) {
            value = std::string(s);
        }
        if (!value) fail(v, "environment variable " + var + " is not set");
        return {*value, var};
    }

    std::string str(const Val& v) { return text(v).text; }

    std::string nonempty_str(const Val& v) {
        Text t = text(v);
        if (detail::trim(t.text).empty()) fail(v, "must not be empty");
        return t.text;
    }

    Secret secret(const Val& v) {
        if (!v.node.IsScalar()) fail(v, std::string("expected a string, got ") + kind_name(v.node));
        Text t = resolve(v, v.node.Scalar());
        // It goes into an HTTP header (a trailing newline from a secrets file is the usual cause).
        if (t.text.find_first_of("\r\n") != std::string::npos || t.text.find('\0') != std::string::npos)
            fail(v, "contains a line break or NUL, which cannot be sent in an HTTP header");
        return Secret(std::move(t.text));
    }

    int64_t integer(const Val& v, int64_t min, int64_t max) {
        const Text t = text(v, "an integer");
        const auto n = detail::parse_int(t.text);
        if (!n) fail(v, "expected an integer, got " + t.shown());
        if (*n < min || *n > max) {
            std::string range = max == std::numeric_limits<int64_t>::max()
                                    ? ">= " + std::to_string(min)
                                    : "between " + std::to_string(min) + " and " + std::to_string(max);
            fail(v, "must be " + range + ", got " + t.shown());
        }
        return *n;
    }

    int int32(const Val& v, int min, int max = std::numeric_limits<int>::max()) {
        return static_cast<int>(integer(v, min, max));
    }

    double number(const Val& v, double min) {
        const Text t = text(v, "a number");
        const auto n = detail::parse_double(t.text);
        if (!n) fail(v, "expected a number, got " + t.shown());
        if (*n < min) fail(v, "must be >= " + std::to_string(static_cast<int64_t>(min)) + ", got " + t.shown());
        return *n;
    }

    bool boolean(const Val& v) {
        const Text t = text(v, "true or false");
        const auto b = detail::parse_bool(t.text);
        if (!b) fail(v, "expected true or false, got " + t.shown());
        return *b;
    }

    Millis duration(const Val& v) {
        const Text t = text(v, "a duration");
        const auto d = parse_duration(t.text);
        if (!d) {
            fail(v, "expected a duration (seconds, or e.g. 500ms, 2s, 1.5m, 1h), got " + t.shown());
        }
        return *d;
    }

    // Timeouts: 0 would fail every request at once, so it is refused.
    Millis timeout(const Val& v) {
        const Millis d = duration(v);
        if (d.count() == 0) fail(v, "must be greater than 0");
        return d;
    }

    // -- args flattening (tg_args contract) ----------------------------------
    void flatten(const Val& v, const std::string& prefix, KeyValues& out) {
        Map m = open_map(v);
        for (auto& e : m.entries) {
            e.used = true;
            const std::string key = prefix + e.key;
            const Val child{e.value, m.child(e.key), line_of(e.value) ? line_of(e.value) : e.key_line};
            if (e.value.IsMap()) {
                flatten(child, key + ".", out);
            } else if (e.value.IsSequence()) {
                out.emplace_back(key, to_json(child));
            } else if (e.value.IsNull()) {
                out.emplace_back(key, "");
            } else {
                out.emplace_back(key, resolve(child, e.value.Scalar()).text);
            }
        }
    }

    std::string to_json(const Val& v) {
        const YAML::Node& n = v.node;
        if (n.IsSequence()) {
            std::string out = "[";
            for (size_t i = 0; i < n.size(); ++i) {
                if (i) out += ",";
                out += to_json(Val{n[i], v.path + "[" + std::to_string(i) + "]", line_of(n[i])});
            }
            return out + "]";
        }
        if (n.IsMap()) {
            std::string out = "{";
            bool first = true;
            for (auto it = n.begin(); it != n.end(); ++it) {
                if (!it->first.IsScalar()) fail(line_of(it->first), v.path, "keys must be strings");
                if (!first) out += ",";
                first = false;
                const std::string k = it->first.Scalar();
                out += detail::json_quote(k) + ":" +
                       to_json(Val{it->second, v.path + "." + k, line_of(it->second)});
            }
            return out + "}";
        }
        if (n.IsNull()) return "null";
        const std::string& raw = n.Scalar();
        const bool plain = n.Tag() != "!";  // "!" marks a quoted scalar
        if (plain) {
            if (detail::is_json_number(raw)) return raw;
            const auto b = detail::parse_bool(raw);
            if (b && (raw == "true" || raw == "false" || raw == "True" || raw == "False" ||
                      raw == "TRUE" || raw == "FALSE")) {
                return *b ? "true" : "false";
            }
        }
        return detail::json_quote(resolve(v, raw).text);
    }

    // -- sections -----------------------------------------------------------
    void parse_model_list(Map& root);
    Deployment parse_deployment(Map& m, const Val& entry, std::optional<Val>& id_val);
    void resolve_upstream(Deployment& d, Map& params, const Val& model_val);
    void assign_ids(const std::vector<std::optional<Val>>& explicit_ids);
    void parse_router(Map& root);
    void parse_strategies(const Val& v, std::vector<StrategySpec>& out);
    void parse_request_strategies(const Val& v);
    std::vector<std::pair<std::string, std::vector<std::string>>> parse_fallbacks(const Val& v);
    void parse_general(Map& root);
    void parse_limits(Map& m, GeneralSettings::Limits& l) {
        if (auto x = get(m, "max_concurrent_requests")) l.max_concurrent_requests = int32(*x, 0);
        if (auto x = get(m, "max_open_streams")) l.max_open_streams = int32(*x, 0);
    }
    std::string resolve_dir(const std::string& p) const;

    std::string file_;
    EnvLookup env_;
    std::string base_dir_;
    Config cfg_;
    // Raw api_base text per deployment for id generation.
    std::vector<std::string> id_basis_;
};

Config Loader::run(const std::string& yaml_text) {
    cfg_.file = file_;
    YAML::Node doc;
    try {
        doc = YAML::Load(yaml_text);
    } catch (const YAML::ParserException& e) {
        throw ConfigError(file_ + ":" + std::to_string(e.mark.is_null() ? 0 : e.mark.line + 1) +
                          ": invalid YAML: " + e.msg);
    } catch (const YAML::Exception& e) {
        throw ConfigError(file_ + ":" + std::to_string(e.mark.is_null() ? 0 : e.mark.line + 1) +
                          ": invalid YAML: " + e.msg);
    }
    if (!doc.IsDefined() || doc.IsNull()) fail(1, "model_list", "missing (the file is empty)");
    if (!doc.IsMap()) {
        fail(line_of(doc), "(top level)",
             std::string("expected a map with model_list, router_settings, general_settings; got ") +
                 kind_name(doc));
    }
    Map root = open_map(Val{doc, "", line_of(doc)});
    parse_model_list(root);
    parse_router(root);
    parse_general(root);
    for (auto& e : root.entries) {
        if (e.used) continue;
        e.used = true;
        if (e.key == "litellm_settings") {
            warn(e.key_line, e.key, "LiteLLM section ignored by Tailgate");
            if (e.value.IsMap()) {
                static const std::set<std::string> router_keys = {
                    "num_retries", "request_timeout", "timeout", "fallbacks",
                    "context_window_fallbacks", "allowed_fails", "cooldown_time", "retry_after"};
                for (auto it = e.value.begin(); it != e.value.end(); ++it) {
                    if (it->first.IsScalar() && router_keys.count(it->first.Scalar())) {
                        warn(line_of(it->first), "litellm_settings." + it->first.Scalar(),
                             "ignored; Tailgate reads this from router_settings");
                    }
                }
            }
        } else {
            warn(e.key_line, e.key, "unknown top-level key, ignored");
        }
    }
    return std::move(cfg_);
}

void Loader::parse_model_list(Map& root) {
    auto v = get(root, "model_list");
    if (!v) fail(key_line_or(root, "model_list"), "model_list", "missing");
    if (!v->node.IsSequence()) fail(*v, std::string("expected a list, got ") + kind_name(v->node));
    if (v->node.size() == 0) fail(*v, "must contain at least one deployment");

    std::vector<std::optional<Val>> explicit_ids;
    for (size_t i = 0; i < v->node.size(); ++i) {
        const YAML::Node n = v->node[i];
        const Val entry{n, "model_list[" + std::to_string(i) + "]", line_of(n) ? line_of(n) : v->line};
        if (!n.IsMap()) {
            fail(entry, std::string("expected a map with model_name and litellm_params, got ") +
                            kind_name(n));
        }
        Map m = open_map(entry);
        std::optional<Val> id_val;
        cfg_.deployments.push_back(parse_deployment(m, entry, id_val));
        explicit_ids.push_back(std::move(id_val));
        warn_unknown(m);
    }
    assign_ids(explicit_ids);
}

Deployment Loader::parse_deployment(Map& m, const Val& entry, std::optional<Val>& id_val) {
    Deployment d;
    d.line = entry.line;
    const Val name = require(m, "model_name");
    d.model_name = nonempty_str(name);
    if (d.model_name.find(',') != std::string::npos) {
        fail(name, "must not contain ',' (a comma-separated model list means several groups)");
    }
    if (std::count(d.model_name.begin(), d.model_name.end(), '*') > 1)
        fail(name, "at most one '*' (a wildcard group such as \"*\" or \"openai/*\")");
    const Val pv = require(m, "litellm_params");
    Map p = open_map(pv);
    const Val model_val = require(p, "model");
    resolve_upstream(d, p, model_val);

    if (auto x = get(p, "rpm")) d.rpm = integer(*x, 0, std::numeric_limits<int64_t>::max());
    if (auto x = get(p, "tpm")) d.tpm = integer(*x, 0, std::numeric_limits<int64_t>::max());
    if (auto x = get(p, "weight")) d.weight = number(*x, 0);
    if (auto x = get(p, "timeout")) d.timeout = timeout(*x);
    if (auto x = get(p, "stream_timeout")) d.stream_timeout = timeout(*x);
    auto num_retries = get(p, "num_retries");
    auto max_retries = get(p, "max_retries");
    if (num_retries) {
        d.num_retries = int32(*num_retries, 0, 100);
        if (max_retries) {
            int32(*max_retries, 0, 100);
            warn(max_retries->line, max_retries->path, "ignored, num_retries is also set");
        }
    } else if (max_retries) {
        d.num_retries = int32(*max_retries, 0, 100);
    }
    if (auto x = get(p, "ssl_verify")) {
        const Text t = text(*x, "true or false");
        const auto b = detail::parse_bool(t.text);
        if (!b) {
            fail(*x, "expected true or false, got " + t.shown() +
                         " (CA bundle paths are not supported here)");
        }
        d.upstream.ssl_verify = *b;
    }

    // model_info: the id, and (LiteLLM allows it there too) the costs.
    std::optional<Map> info;
    if (auto iv = get(m, "model_info")) info = open_map(*iv);
    for (const char* key : {"input_cost_per_token", "output_cost_per_token"}) {
        auto x = get(p, key);
        if (!x && info) x = get(*info, key);
        if (!x) continue;
        const double c = number(*x, 0);
        (std::string(key) == "input_cost_per_token" ? d.input_cost_per_token
                                                     : d.output_cost_per_token) = c;
    }
    if (info) {
        if (auto idv = get(*info, "id")) {
            d.id = nonempty_str(*idv);
            id_val = idv;
        }
        // Other model_info keys (mode, base_model, ...) are metadata: ignored silently.
    }
    warn_unknown(p);
    return d;
}

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
            std::optional<std::string> v;
            if (env_) {
                v = env_(var);
            } else if (const char* s = std::getenv(var)) {
                v = std::string(s);
            }
            if (v && !v->empty()) {
                u.api_key = Secret(*v);
                break;
            }
        }
    }
}

void Loader::assign_ids(const std::vector<std::optional<Val>>& ids) {
    std::map<std::string, size_t> seen;  // id -> deployment index
    std::map<std::string, int> dup_count;
    for (size_t i = 0; i < cfg_.deployments.size(); ++i) {
        Deployment& d = cfg_.deployments[i];
        const std::string basis = d.model_name + '\n' + d.upstream.provider + "/" + d.upstream.model +
                                  '\n' + id_basis_[i];
        const int dup = dup_count[basis]++;
        const bool generated = !ids[i].has_value();
        if (generated) {
            d.id = detail::hex64(detail::fnv1a64(basis + '\n' + std::to_string(dup)));
        }
        const int line = generated ? d.line : ids[i]->line;
        const std::string path = "model_list[" + std::to_string(i) + "].model_info.id";
        auto [it, inserted] = seen.emplace(d.id, i);
        if (!inserted) {
            const Deployment& first = cfg_.deployments[it->second];
            const int first_line = ids[it->second] ? ids[it->second]->line : first.line;
            fail(line, path,
                 "duplicate id '" + d.id + "'" + (generated ? " (generated)" : "") +
                     " (first used at line " + std::to_string(first_line) + ", model_list[" +
                     std::to_string(it->second) + "])");
        }
    }
}

std::string Loader::resolve_dir(const std::string& p) const {
    namespace fs = std::filesystem;
    fs::path path(p);
    if (path.is_absolute() || base_dir_.empty()) return path.lexically_normal().string();
    return (fs::path(base_dir_) / path).lexically_normal().string();
}

void Loader::parse_router(Map& root) {
    RouterSettings& r = cfg_.router;
    auto rv = get(root, "router_settings");
    int strategy_line = 0;
    std::optional<Val> strategies, request_strategies;
    if (rv) {
        Map m = open_map(*rv);
        if (auto x = get(m, "routing_strategy")) {
            const Text t = text(*x);
            strategy_line = x->line;
            const auto& known = supported_routing_strategies();
            if (std::find(known.begin(), known.end(), t.text) != known.end()) {
                r.routing_strategy = t.text;
            } else {
                fail(*x, "unknown routing strategy " + t.shown() + " (supported: " + join(known) + ")");
            }
        }
        if (auto x = get(m, "routing_strategy_args")) flatten(*x, "", r.routing_strategy_args);
        if (auto x = get(m, "num_retries")) r.num_retries = int32(*x, 0, 100);
        if (auto x = get(m, "timeout")) r.timeout = timeout(*x);
        if (auto x = get(m, "stream_timeout")) r.stream_timeout = timeout(*x);
        if (auto x = get(m, "connect_timeout")) r.connect_timeout = timeout(*x);
        if (auto x = get(m, "max_client_retry_after")) r.max_client_retry_after = duration(*x);
        if (auto x = get(m, "panic_routing")) r.panic_routing = boolean(*x);
        if (auto x = get(m, "max_request_timeout")) {
            r.max_request_timeout = timeout(*x);
            if (r.max_request_timeout > std::chrono::hours(24 * 365)) fail(*x, "must be at most 365 days");
        }
        if (auto x = get(m, "allowed_fails")) r.allowed_fails = int32(*x, 0);
        if (auto x = get(m, "cooldown_time")) r.cooldown_time = duration(*x);
        if (auto x = get(m, "disable_cooldowns")) r.disable_cooldowns = boolean(*x);
        if (auto x = get(m, "allowed_fails_policy")) flatten(*x, "", r.allowed_fails_policy);
        if (auto x = get(m, "retry_after")) r.retry_after = duration(*x);
        if (auto x = get(m, "fallbacks")) r.fallbacks = parse_fallbacks(*x);
        if (auto x = get(m, "context_window_fallbacks")) r.context_window_fallbacks = parse_fallbacks(*x);
        if (auto x = get(m, "allow_request_strategy_override")) {
            r.allow_request_strategy_override = boolean(*x);
        }
        if (auto x = get(m, "shadow_sample_rate")) {
            r.shadow_sample_rate = number(*x, 0);
            if (r.shadow_sample_rate > 1) fail(*x, "must be between 0 and 1");
        }
        if (auto x = get(m, "plugin_paths")) {
            if (x->node.IsScalar()) {
                r.plugin_paths.push_back(resolve_dir(nonempty_str(*x)));
            } else if (x->node.IsSequence()) {
                for (size_t i = 0; i < x->node.size(); ++i) {
                    const Val item{x->node[i], x->path + "[" + std::to_string(i) + "]",
                                   line_of(x->node[i]) ? line_of(x->node[i]) : x->line};
                    if (item.node.IsNull()) fail(item, "must not be empty");
                    r.plugin_paths.push_back(resolve_dir(nonempty_str(item)));
                }
            } else {
                fail(*x, std::string("expected a list of directories, got ") + kind_name(x->node));
            }
        }
        strategies = get(m, "strategies");
        request_strategies = get(m, "request_strategies");
        warn_unknown(m);
    }
    if (strategies) {
        parse_strategies(*strategies, r.strategies);
        r.strategies_explicit = true;
        const bool has_health = std::any_of(r.strategies.begin(), r.strategies.end(),
                                            [](const StrategySpec& s) { return s.name == "health"; });
        if (!has_health && !r.disable_cooldowns)
            warn(strategies->line, "router_settings.strategies",
                 "no 'health' in the chain: failing deployments are never cooled down (LiteLLM cools them under "
                 "every routing_strategy; add health first, or set disable_cooldowns: true to silence this)");
        if (!r.routing_strategy_args.empty()) {
            warn(strategy_line ? strategy_line : strategies->line, "router_settings.routing_strategy_args",
                 "not applied: router_settings.strategies is set (put args on the chain entry)");
        }
    } else {
        r.strategies_explicit = false;
        auto chain = default_chain(r.routing_strategy);
        if (r.disable_cooldowns) std::erase(chain, std::string("health"));
        for (const auto& name : chain) {
            StrategySpec s;
            s.name = name;
            s.line = strategy_line;
            if (name == "latency") s.args = r.routing_strategy_args;
            r.strategies.push_back(std::move(s));
        }
    }
    if (request_strategies) parse_request_strategies(*request_strategies);
}

// Same shape and name rules as `strategies`. A request names an entry by its
// name alone, so a name may appear once.
void Loader::parse_request_strategies(const Val& v) {
    RouterSettings& r = cfg_.router;
    parse_strategies(v, r.request_strategies);
    for (size_t i = 0; i < r.request_strategies.size(); ++i) {
        const StrategySpec& s = r.request_strategies[i];
        const std::string path = v.path + "[" + std::to_string(i) + "]";
        for (size_t j = 0; j < i; ++j)
            if (r.request_strategies[j].name == s.name) fail(s.line, path, "'" + s.name + "' is listed twice");
        const bool in_chain = std::any_of(r.strategies.begin(), r.strategies.end(),
                                          [&](const StrategySpec& c) { return c.name == s.name; });
        if (in_chain && !s.args.empty())
            warn(s.line, path, "args not applied: '" + s.name + "' is in the chain, whose instance is used");
    }
}

void Loader::parse_strategies(const Val& v, std::vector<StrategySpec>& out) {
    if (!v.node.IsSequence()) {
        fail(v, std::string("expected a list of strategies, got ") + kind_name(v.node));
    }
    if (v.node.size() == 0) fail(v, "must name at least one strategy");
    auto valid_name = [](const std::string& s) {
        if (s.empty()) return false;
        return std::all_of(s.begin(), s.end(), [](char c) {
            return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '-' || c == '_' || c == '.';
        });
    };
    for (size_t i = 0; i < v.node.size(); ++i) {
        const YAML::Node n = v.node[i];
        const Val item{n, v.path + "[" + std::to_string(i) + "]", line_of(n) ? line_of(n) : v.line};
        StrategySpec s;
        s.line = item.line;
        Val name_val = item;
        if (n.IsScalar()) {
            s.name = str(item);
        } else if (n.IsMap()) {
            Map m = open_map(item);
            name_val = require(m, "name");
            s.name = str(name_val);
            if (auto a = get(m, "args")) flatten(*a, "", s.args);
            for (const auto& e : m.entries) {
                if (!e.used) fail(e.key_line, m.child(e.key), "unknown key (expected name, args)");
            }
        } else {
            fail(item, std::string("expected a strategy name or {name, args}, got ") + kind_name(n));
        }
        if (!valid_name(s.name)) {
            fail(name_val, "invalid strategy name '" + s.name +
                               "' (letters, digits, '-', '_', '.'; plugin directories go in plugin_paths)");
        }
        out.push_back(std::move(s));
    }
}

std::vector<std::pair<std::string, std::vector<std::string>>> Loader::parse_fallbacks(const Val& v) {
    std::vector<std::pair<std::string, std::vector<std::string>>> out;
    if (!v.node.IsSequence()) {
        fail(v, std::string("expected a list of {group: [fallback groups]}, got ") + kind_name(v.node));
    }
    const std::string known = join(cfg_.model_groups());
    auto check_group = [&](const Val& g) {
        const Text t = text(g);
        if (!cfg_.has_group(t.text)) {
            fail(g, "unknown model group " + t.shown() + " (known: " + known + ")");
        }
        return t.text;
    };
    for (size_t i = 0; i < v.node.size(); ++i) {
        const YAML::Node n = v.node[i];
        const Val item{n, v.path + "[" + std::to_string(i) + "]", line_of(n) ? line_of(n) : v.line};
        if (!n.IsMap() || n.size() != 1) {
            fail(item, "expected a map with exactly one key: {group: [fallback groups]}");
        }
        Map m = open_map(item);
        Entry& e = m.entries.front();
        e.used = true;
        const Val key_val{YAML::Node(e.key), m.child(e.key), e.key_line};
        const std::string group = check_group(key_val);
        const Val list{e.value, m.child(e.key), line_of(e.value) ? line_of(e.value) : e.key_line};
        std::vector<std::string> targets;
        if (e.value.IsNull()) {
            fail(list, "expected a list of fallback groups, got nothing");
        } else if (e.value.IsScalar()) {
            targets.push_back(check_group(list));
        } else if (e.value.IsSequence()) {
            for (size_t j = 0; j < e.value.size(); ++j) {
                const YAML::Node t = e.value[j];
                targets.push_back(check_group(
                    Val{t, list.path + "[" + std::to_string(j) + "]", line_of(t) ? line_of(t) : list.line}));
            }
        } else {
            fail(list, std::string("expected a list of fallback groups, got ") + kind_name(e.value));
        }
        out.emplace_back(group, std::move(targets));
    }
    return out;
}

void Loader::parse_general(Map& root) {
    GeneralSettings& g = cfg_.general;
    auto gv = get(root, "general_settings");
    if (!gv) return;
    Map m = open_map(*gv);
    if (auto x = get(m, "master_key")) {
        g.master_key = secret(*x);
        // An empty key (often os.environ/VAR with VAR set but empty) must not
        // silently turn auth off: running without auth means leaving the key out.
        if (detail::trim(g.master_key.reveal()).empty())
            fail(*x, "is empty (an empty environment variable?); remove general_settings.master_key to run without "
                     "authentication");
    }
    if (auto x = get(m, "host")) g.host = nonempty_str(*x);
    if (auto x = get(m, "port")) g.port = int32(*x, 0, 65535);
    if (auto x = get(m, "max_threads")) g.max_threads = int32(*x, 1, 100000);
    if (auto x = get(m, "io_threads")) g.io_threads = int32(*x, 1, 1024);
    auto bytes = get(m, "max_request_body_bytes");
    auto size = get(m, "max_body_size");
    if (bytes && size) {
        fail(size->line, size->path, "conflicts with max_request_body_bytes (line " +
                                         std::to_string(bytes->line) + "); set only one");
    }
    if (bytes) g.max_body_bytes = static_cast<size_t>(integer(*bytes, 1, std::numeric_limits<int64_t>::max()));
    if (size) {
        const Text t = text(*size, "a size");
        const auto n = parse_size(t.text);
        if (!n || *n == 0) {
            fail(*size, "expected a size (bytes, or e.g. 512KiB, 10MiB, 1MB), got " + t.shown());
        }
        g.max_body_bytes = static_cast<size_t>(*n);
    }
    if (auto x = get(m, "keep_alive_timeout")) g.keep_alive_timeout = timeout(*x);
    if (auto x = get(m, "upstream_pool_size")) g.upstream_pool_size = int32(*x, 0, 100000);
    if (auto x = get(m, "log_level")) {
        const Text t = text(*x);
        std::string lvl = to_lower(detail::trim(t.text));
        if (lvl == "warning") lvl = "warn";
        if (lvl != "debug" && lvl != "info" && lvl != "warn" && lvl != "error") {
            fail(*x, "expected one of debug, info, warn, error, got " + t.shown());
        }
        g.log_level = lvl;
    }
    if (auto x = get(m, "log_format")) {
        const Text t = text(*x);
        const std::string f = to_lower(detail::trim(t.text));
        if (f != "text" && f != "json") fail(*x, "expected text or json, got " + t.shown());
        g.log_format = f;
    }
    if (auto x = get(m, "metrics")) g.metrics = boolean(*x);
    if (auto x = get(m, "metrics_auth")) {
        g.metrics_auth = boolean(*x);
        if (g.metrics_auth && g.master_key.empty())
            warn(x->line, x->path, "has no effect without general_settings.master_key: /metrics stays open");
    }
    if (auto x = get(m, "client_header_timeout")) g.client_header_timeout = timeout(*x);
    if (auto x = get(m, "client_body_timeout")) g.client_body_timeout = timeout(*x);
    if (auto x = get(m, "max_header_bytes")) {
        const Text t = text(*x, "a size");
        const auto n = parse_size(t.text);
        if (!n || *n < 1024 || *n > (1u << 30))
            fail(*x, "expected a size between 1KiB and 1GiB (bytes, or e.g. 64KiB), got " + t.shown());
        g.max_header_bytes = static_cast<size_t>(*n);
    }
    parse_limits(m, g.limits);
    if (auto x = get(m, "model_group_limits")) {
        Map groups = open_map(*x);
        for (auto& e : groups.entries) {
            e.used = true;
            const Val gv{e.value, groups.child(e.key), line_of(e.value) ? line_of(e.value) : e.key_line};
            if (!cfg_.has_group(e.key))
                fail(e.key_line, gv.path, "unknown model group (known: " + join(cfg_.model_groups()) + ")");
            Map lm = open_map(gv);
            GeneralSettings::Limits l;
            parse_limits(lm, l);
            warn_unknown(lm);
            g.group_limits.emplace_back(e.key, l);
        }
    }
    if (auto x = get(m, "overload_retry_after")) g.overload_retry_after_s = int32(*x, 0, 3600);
    if (auto x = get(m, "drain_timeout")) g.drain_timeout = duration(*x);
    if (auto x = get(m, "allow_client_side_credentials")) g.allow_client_side_credentials = boolean(*x);
    if (auto x = get(m, "forward_client_headers")) {
        if (!x->node.IsSequence()) fail(*x, std::string("expected a list of header names, got ") + kind_name(x->node));
        // Never forwarded: they describe this hop (the upstream connection is ours)
        // or carry the client's credentials for the gateway.
        static const char* const kRefused[] = {
            "connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade", "proxy-connection",
            "proxy-authorization", "proxy-authenticate", "host", "content-length", "content-type", "accept",
            "expect", "authorization", "api-key", "x-api-key", "x-litellm-api-key", "cookie", "set-cookie"};
        for (size_t i = 0; i < x->node.size(); ++i) {
            const Val item{x->node[i], x->path + "[" + std::to_string(i) + "]",
                           line_of(x->node[i]) ? line_of(x->node[i]) : x->line};
            std::string name = to_lower(nonempty_str(item));
            const bool token = std::all_of(name.begin(), name.end(), [](unsigned char c) {
                return std::isalnum(c) || std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
            });
            if (!token) fail(item, "not a header name");
            for (const char* r : kRefused)
                if (name == r) fail(item, "'" + name + "' is never forwarded (hop-by-hop or a credential)");
            g.forward_client_headers.push_back(std::move(name));
        }
    }
    warn_unknown(m);
}

}  // namespace

Config load_string(const std::string& yaml_text, const std::string& display_name, EnvLookup env) {
    namespace fs = std::filesystem;
    const std::string dir = fs::path(display_name).parent_path().string();
    return Loader(display_name, env, dir).run(yaml_text);
}

Config load_file(const std::string& path, EnvLookup env) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::is_directory(path, ec)) throw ConfigError(path + ": cannot open file");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw ConfigError(path + ": cannot open file");
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) throw ConfigError(path + ": cannot open file");
    const fs::path abs = fs::absolute(fs::path(path), ec);
    const std::string dir = ec ? fs::path(path).parent_path().string() : abs.parent_path().string();
    return Loader(path, env, dir).run(ss.str());
}

}  // namespace tailgate::config
