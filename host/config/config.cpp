// Config loader: LiteLLM's config.yaml shape (model_list, router_settings,
// general_settings, litellm_settings, include, environment_variables) plus
// Tailgate's router_settings.strategies / plugin_paths.
//
// Every error names "file:line: key.path". Secrets (api keys, the master key)
// are never echoed: values are only quoted in messages for non-secret keys,
// and never when they came from the environment.
#include "config/config.hpp"

#include "config/parse_util.hpp"
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

static std::vector<std::string> dropped_fields(const Deployment& d, bool drop_params) {
    std::vector<std::string> out = d.additional_drop_params;
    if (!drop_params) return out;
    // Only what a provider documents as refused: everything else an
    // OpenAI-compatible server accepts or ignores, and is forwarded.
    if (const providers::Provider* prov = providers::find_provider(d.upstream.provider))
        for (std::string_view f : prov->rejected_params)
            if (std::find(out.begin(), out.end(), f) == out.end()) out.emplace_back(f);
    return out;
}

namespace {

std::string join(const std::vector<std::string>& items, const char* sep = ", ") {
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += sep;
        out += items[i];
    }
    return out;
}

}  // namespace

const std::vector<std::string>& supported_providers() { return providers::provider_names(); }

providers::Target Upstream::target() const {
    return providers::Target{tls, host, port, base_path, api_version, api_key.reveal(), ssl_verify};
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

// A ConfigError that knows where it points, so collected errors can be sorted.
struct LocatedError : ConfigError {
    LocatedError(const std::string& msg, int file_index, int line_no)
        : ConfigError(msg), file(file_index), line(line_no) {}
    int file;
    int line;
};

// The top-level keys whose maps are merged across included files.
const char* const kSections[] = {"environment_variables", "litellm_settings", "router_settings", "general_settings"};

class Loader {
public:
    // `canonical`: the main file's canonical path (empty for load_string), for include cycles.
    Loader(std::string file, EnvLookup env, std::string base_dir, std::string canonical = {})
        : file_(file), env_(env), base_dir_(base_dir) {
        files_.push_back(std::move(file));
        dirs_.push_back(std::move(base_dir));
        canonical_.push_back(std::move(canonical));
    }

    Config run(const std::string& yaml_text);

private:
    // -- reporting ----------------------------------------------------------
    [[noreturn]] void fail(int line, const std::string& path, const std::string& msg) const {
        throw LocatedError(file_ + ":" + std::to_string(line) + ": " + path + ": " + msg, file_idx_, line);
    }
    [[noreturn]] void fail(const Val& v, const std::string& msg) const { fail(v.line, v.path, msg); }
    void warn(int line, const std::string& path, const std::string& msg) { warn_in(file_idx_, line, path, msg); }
    void warn_in(int file, int line, const std::string& path, const std::string& msg) {
        warnings_.push_back(
            {file, line, warnings_.size(), files_[file] + ":" + std::to_string(line) + ": " + path + ": " + msg});
    }

    // A recovery point: an error inside `f` is recorded and loading goes on, so
    // --check reports every broken entry and key at once.
    template <class F>
    void guard(F&& f) {
        try {
            f();
        } catch (const LocatedError& e) {
            errors_.push_back({e.file, e.line, errors_.size(), e.what()});
        } catch (const ConfigError& e) {
            errors_.push_back({file_idx_, 0, errors_.size(), e.what()});
        }
    }
    // Messages in file order, then line order (sections are read in a fixed order).
    struct Collected;
    static void sort(std::vector<Collected>& v) {
        std::stable_sort(v.begin(), v.end(), [](const Collected& a, const Collected& b) {
            return std::tie(a.file, a.line, a.seq) < std::tie(b.file, b.line, b.seq);
        });
    }
    // Throws every recorded error as one, a line each.
    void throw_collected() {
        if (errors_.empty()) return;
        sort(errors_);
        std::string all;
        for (const auto& e : errors_) all += (all.empty() ? "" : "\n") + e.text;
        throw ConfigError(all);
    }
    struct Collected {
        int file;
        int line;
        size_t seq;
        std::string text;
    };

    // Errors and warnings name the file being read (an include switches it).
    struct FileScope {
        Loader& l;
        std::string file;
        int idx;
        FileScope(Loader& loader, int to) : l(loader), file(loader.file_), idx(loader.file_idx_) {
            l.file_ = l.files_[to];
            l.file_idx_ = to;
        }
        ~FileScope() {
            l.file_ = file;
            l.file_idx_ = idx;
        }
        FileScope(const FileScope&) = delete;
        FileScope& operator=(const FileScope&) = delete;
    };

    // -- maps ---------------------------------------------------------------
    struct Entry {
        std::string key;
        int key_line = 0;
        YAML::Node value;
        bool used = false;
        int file = 0;  // index in files_: sections merge keys from included files
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
            m.entries.push_back({key, kl, value, false, file_idx_});
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
            if (!e.used) warn_in(e.file, e.key_line, m.child(e.key), litellm_note(m.child(e.key)).value_or(what));
        }
    }

    // LiteLLM keys Tailgate knows but does not (yet) implement: say so precisely
    // instead of "unknown", so a migrating user knows what changes.
    static std::optional<std::string> litellm_note(const std::string& path) {
        static const std::pair<const char*, const char*> kNotes[] = {
            {"router_settings.redis_host", "LiteLLM's Redis shared state is not supported yet: each replica routes on its own state; ignored"},
            {"router_settings.redis_port", "LiteLLM's Redis shared state is not supported yet; ignored"},
            {"router_settings.redis_password", "LiteLLM's Redis shared state is not supported yet; ignored"},
            {"router_settings.redis_url", "LiteLLM's Redis shared state is not supported yet; ignored"},
            {"router_settings.enable_pre_call_checks", "LiteLLM's context-window pre-call check is not supported (context_window_fallbacks apply after the upstream refuses); ignored"},
            {"router_settings.cache_responses", "response caching is not supported; ignored"},
            {"general_settings.database_url", "LiteLLM's database (virtual keys, spend) is not supported yet; only master_key authenticates; ignored"},
            {"general_settings.store_model_in_db", "models live in the config file only; ignored"},
            {"general_settings.alerting", "LiteLLM's alerting is not supported; use /metrics; ignored"},
            {"general_settings.proxy_batch_write_at", "no spend tracking yet; ignored"},
        };
        for (const auto& [key, note] : kNotes)
            if (path == key) return std::string(note);
        return std::nullopt;
    }

    Entry* find(Map& m, const std::string& key) {
        for (auto& e : m.entries)
            if (e.key == key) return &e;
        return nullptr;
    }

    // Parses one key of a section with `fn` (in the file that set it) as its own
    // recovery point. Absent and null keys are skipped.
    template <class F>
    void each_key(Map& m, const std::string& key, F&& fn) {
        Entry* e = find(m, key);
        if (!e) return;
        FileScope scope(*this, e->file);
        guard([&] {
            if (auto x = get(m, key)) fn(*x);
        });
    }

    Map* section(const std::string& name) {
        auto it = sections_.find(name);
        return it == sections_.end() ? nullptr : &it->second;
    }

    // A model group name is known, or belongs to an entry that already failed
    // (so its error is not repeated by every reference to the group).
    bool known_group(const std::string& g) const { return cfg_.has_group(g) || failed_groups_.count(g) > 0; }

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
        std::optional<std::string> value = lookup_env(var);
        if (!value) fail(v, "environment variable " + var + " is not set");
        return {*value, var};
    }

    // environment_variables (LiteLLM sets them before reading os.environ/), then
    // the real environment. The process environment itself is never changed.
    std::optional<std::string> lookup_env(const std::string& var) const {
        if (auto it = env_vars_.find(var); it != env_vars_.end()) return it->second;
        return process_env(var);
    }
    std::optional<std::string> process_env(const std::string& var) const {
        if (env_) return env_(var);
        if (const char* s = std::getenv(var.c_str())) return std::string(s);
        return std::nullopt;
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
    YAML::Node load_yaml(const std::string& text);
    void collect(Map& root);
    void include_file(const Val& item, const std::string& written);
    void parse_environment();
    void parse_litellm();
    void parse_callbacks(const Val& v);
    void parse_aliases(const Val& v);
    void parse_model_list();
    Deployment parse_deployment(Map& m, const Val& entry, std::optional<Val>& id_val);
    void resolve_upstream(Deployment& d, Map& params, const Val& model_val);
    void assign_ids(const std::vector<std::optional<Val>>& explicit_ids);
    void assign_id(size_t i, const std::vector<std::optional<Val>>& ids, std::map<std::string, size_t>& seen,
                   std::map<std::string, int>& dup_count);
    void parse_router();
    void parse_strategies(const Val& v, std::vector<StrategySpec>& out);
    void parse_request_strategies(const Val& v);
    std::vector<std::pair<std::string, std::vector<std::string>>> parse_fallbacks(const Val& v);
    void parse_general();
    void parse_limits(Map& m, GeneralSettings::Limits& l) {
        each_key(m, "max_concurrent_requests", [&](const Val& x) { l.max_concurrent_requests = int32(x, 0); });
        each_key(m, "max_open_streams", [&](const Val& x) { l.max_open_streams = int32(x, 0); });
    }
    std::string resolve_dir(const std::string& p) const;

    std::string file_;  // the file being read (display name)
    int file_idx_ = 0;
    EnvLookup env_;
    std::string base_dir_;
    Config cfg_;
    // Raw api_base text per deployment for id generation.
    std::vector<std::string> id_basis_;

    // Files read: the main one first, then includes in the order met.
    std::vector<std::string> files_;      // display names (relative to the including file's name)
    std::vector<std::string> dirs_;       // directories includes are resolved against
    std::vector<std::string> canonical_;  // for cycle detection ("" for load_string)
    std::vector<int> include_stack_;      // the chain of files being included
    std::map<std::string, std::string> included_at_;  // canonical path -> "file:line" that included it

    // model_list entries of every file, and the merged sections.
    struct Item {
        YAML::Node node;
        int file;
        size_t index;  // in its file's model_list
        int line;
    };
    std::vector<Item> model_items_;
    std::optional<std::pair<int, int>> model_list_at_;  // first model_list key: file, line
    bool model_list_bad_ = false;
    std::map<std::string, Map> sections_;
    std::vector<std::pair<int, size_t>> origins_;  // per deployment: file, index in its model_list

    std::map<std::string, std::string> env_vars_;  // environment_variables
    std::set<std::string> failed_groups_;
    std::vector<Collected> errors_;
    std::vector<Collected> warnings_;
};

YAML::Node Loader::load_yaml(const std::string& text) {
    try {
        return YAML::Load(text);
    } catch (const YAML::Exception& e) {
        const int line = e.mark.is_null() ? 0 : e.mark.line + 1;
        throw LocatedError(file_ + ":" + std::to_string(line) + ": invalid YAML: " + e.msg, file_idx_, line);
    }
}

Config Loader::run(const std::string& yaml_text) {
    cfg_.file = file_;
    YAML::Node doc = load_yaml(yaml_text);
    if (!doc.IsDefined() || doc.IsNull()) fail(1, "model_list", "missing (the file is empty)");
    if (!doc.IsMap()) {
        fail(line_of(doc), "(top level)",
             std::string("expected a map with model_list, router_settings, general_settings; got ") +
                 kind_name(doc));
    }
    Map root = open_map(Val{doc, "", line_of(doc)});
    include_stack_.push_back(0);
    collect(root);
    // Nothing else can be checked without deployments: stop here.
    if (model_items_.empty() && !model_list_bad_) {
        guard([&] {
            if (!model_list_at_) fail(key_line_or(root, "model_list"), "model_list", "missing");
            FileScope scope(*this, model_list_at_->first);
            fail(model_list_at_->second, "model_list", "must contain at least one deployment");
        });
    }
    if (model_items_.empty()) throw_collected();

    parse_environment();
    parse_model_list();
    // LiteLLM's precedence: router_settings wins over litellm_settings, so it is read second.
    parse_litellm();
    parse_router();
    parse_general();
    throw_collected();
    sort(warnings_);
    for (auto& w : warnings_) cfg_.warnings.push_back(std::move(w.text));
    for (auto& d : cfg_.deployments) d.dropped_fields = dropped_fields(d, d.drop_params.value_or(cfg_.router.drop_params));
    return std::move(cfg_);
}

// Sorts the top-level keys of one file: model_list entries are appended,
// section keys merged (a key set in two files is an error), includes followed.
void Loader::collect(Map& root) {
    std::vector<Entry*> includes;
    for (auto& e : root.entries) {
        e.used = true;
        const Val v{e.value, e.key, line_of(e.value) ? line_of(e.value) : e.key_line};
        if (e.key == "model_list") {
            if (e.value.IsNull()) continue;  // as if absent
            if (!model_list_at_) model_list_at_ = {file_idx_, v.line};
            guard([&] {
                if (!e.value.IsSequence()) {
                    model_list_bad_ = true;
                    fail(v, std::string("expected a list, got ") + kind_name(e.value));
                }
                for (size_t i = 0; i < e.value.size(); ++i) {
                    const YAML::Node n = e.value[i];
                    model_items_.push_back({n, file_idx_, i, line_of(n) ? line_of(n) : v.line});
                }
            });
        } else if (e.key == "include") {
            includes.push_back(&e);
        } else if (std::find_if(std::begin(kSections), std::end(kSections),
                                [&](const char* s) { return e.key == s; }) != std::end(kSections)) {
            if (e.value.IsNull()) continue;
            guard([&] {
                Map m = open_map(v);
                auto [it, fresh] = sections_.try_emplace(e.key);
                Map& merged = it->second;
                if (fresh) {
                    merged.path = m.path;
                    merged.line = m.line;
                }
                for (auto& x : m.entries) {
                    if (Entry* first = find(merged, x.key)) {
                        // Reported, and the first value kept, so later keys still get checked.
                        guard([&] {
                            fail(x.key_line, merged.child(x.key),
                                 "also set at " + files_[first->file] + ":" + std::to_string(first->key_line) +
                                     " (set each key in one file)");
                        });
                        continue;
                    }
                    merged.entries.push_back(std::move(x));
                }
            });
        } else {
            warn(e.key_line, e.key, "unknown top-level key, ignored");
        }
    }
    for (Entry* e : includes) {
        if (e->value.IsNull()) continue;
        const Val v{e->value, "include", line_of(e->value) ? line_of(e->value) : e->key_line};
        if (!e->value.IsSequence()) {
            guard([&] { fail(v, std::string("expected a list of file paths, got ") + kind_name(e->value)); });
            continue;
        }
        for (size_t i = 0; i < e->value.size(); ++i) {
            const YAML::Node n = e->value[i];
            const Val item{n, "include[" + std::to_string(i) + "]", line_of(n) ? line_of(n) : v.line};
            guard([&] {
                if (!n.IsScalar()) fail(item, std::string("expected a file path, got ") + kind_name(n));
                const std::string written(detail::trim(n.Scalar()));
                if (written.empty()) fail(item, "must not be empty");
                include_file(item, written);
            });
        }
    }
}

// LiteLLM's include: another YAML file, relative to the including file.
void Loader::include_file(const Val& item, const std::string& written) {
    namespace fs = std::filesystem;
    const fs::path rel(written);
    const fs::path shown = rel.is_absolute() || fs::path(file_).parent_path().empty()
                               ? rel.lexically_normal()
                               : (fs::path(file_).parent_path() / rel).lexically_normal();
    const fs::path real = rel.is_absolute() || dirs_[file_idx_].empty() ? rel : fs::path(dirs_[file_idx_]) / rel;
    std::error_code ec;
    if (!fs::is_regular_file(real, ec)) {
        fail(item, "cannot open '" + written + "' (looked for " + real.lexically_normal().string() + ")");
    }
    const std::string canonical = fs::weakly_canonical(real, ec).string();
    for (size_t k = 0; k < include_stack_.size(); ++k) {
        if (canonical_[include_stack_[k]] != canonical) continue;
        std::string chain;
        for (size_t j = k; j < include_stack_.size(); ++j) chain += files_[include_stack_[j]] + " -> ";
        fail(item, "include cycle: " + chain + shown.string());
    }
    const std::string here = file_ + ":" + std::to_string(item.line);
    if (auto it = included_at_.find(canonical); it != included_at_.end())
        fail(item, "'" + written + "' is already included (at " + it->second + ")");
    included_at_.emplace(canonical, here);

    std::ifstream in(real, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    if (!in) fail(item, "cannot read '" + written + "'");

    files_.push_back(shown.string());
    dirs_.push_back(fs::absolute(real, ec).parent_path().string());
    canonical_.push_back(canonical);
    const int idx = static_cast<int>(files_.size()) - 1;
    FileScope scope(*this, idx);
    YAML::Node doc = load_yaml(ss.str());
    if (!doc.IsDefined() || doc.IsNull()) fail(1, "(top level)", "the file is empty (included at " + here + ")");
    if (!doc.IsMap()) {
        fail(line_of(doc), "(top level)",
             std::string("expected a map with model_list, router_settings, general_settings; got ") + kind_name(doc));
    }
    Map root = open_map(Val{doc, "", line_of(doc)});
    include_stack_.push_back(idx);
    collect(root);
    include_stack_.pop_back();
}

// environment_variables: what os.environ/VAR resolves to before the real environment.
void Loader::parse_environment() {
    Map* m = section("environment_variables");
    if (!m) return;
    for (auto& e : m->entries) {
        e.used = true;
        FileScope scope(*this, e.file);
        guard([&] {
            const Val v{e.value, m->child(e.key), line_of(e.value) ? line_of(e.value) : e.key_line};
            if (e.key.empty() || e.key.find('=') != std::string::npos || e.key.find('\0') != std::string::npos)
                fail(e.key_line, v.path, "not an environment variable name");
            if (!e.value.IsScalar())
                fail(v, std::string("expected a string (use \"\" for an empty value), got ") + kind_name(e.value));
            // os.environ/X here reads the real environment, not this map (no order dependence).
            static const std::string prefix = "os.environ/";
            std::string value = e.value.Scalar();
            if (value.compare(0, prefix.size(), prefix) == 0) {
                const std::string var(detail::trim(value.substr(prefix.size())));
                auto real = var.empty() ? std::nullopt : process_env(var);
                if (!real) fail(v, var.empty() ? "os.environ/ needs a variable name" : "environment variable " + var + " is not set");
                value = *real;
            }
            env_vars_[e.key] = std::move(value);
        });
    }
}

// litellm_settings: the keys that carry routing meaning are honoured (router_settings
// wins, being read afterwards); every other key is named in its own warning.
void Loader::parse_litellm() {
    Map* mp = section("litellm_settings");
    if (!mp) return;
    Map& m = *mp;
    RouterSettings& r = cfg_.router;
    each_key(m, "num_retries", [&](const Val& x) { r.num_retries = int32(x, 0, 100); });
    each_key(m, "request_timeout", [&](const Val& x) { r.timeout = timeout(x); });
    each_key(m, "fallbacks", [&](const Val& x) { r.fallbacks = parse_fallbacks(x); });
    each_key(m, "context_window_fallbacks", [&](const Val& x) { r.context_window_fallbacks = parse_fallbacks(x); });
    each_key(m, "drop_params", [&](const Val& x) { r.drop_params = boolean(x); });
    for (const char* key : {"success_callback", "failure_callback", "callbacks"})
        each_key(m, key, [&](const Val& x) { parse_callbacks(x); });
    each_key(m, "json_logs", [&](const Val& x) {
        if (boolean(x)) cfg_.general.log_format = "json";  // general_settings.log_format, read later, wins
    });
    each_key(m, "set_verbose", [&](const Val& x) {
        if (boolean(x)) warn(x.line, x.path, "not supported by Tailgate, ignored (use general_settings.log_level: debug)");
    });
    // Router keys LiteLLM also reads here: point at where Tailgate reads them.
    static const std::set<std::string> router_keys = {"timeout", "allowed_fails", "cooldown_time", "retry_after",
                                                      "stream_timeout", "routing_strategy", "model_group_alias"};
    for (const auto& e : m.entries) {
        if (e.used) continue;
        std::string msg = "not supported by Tailgate, ignored";
        if (router_keys.count(e.key)) msg += " (set router_settings." + e.key + " instead)";
        warn_in(e.file, e.key_line, m.child(e.key), msg);
    }
    // Say so when router_settings overrides a value set here.
    Map* router = section("router_settings");
    if (!router) return;
    const std::pair<const char*, const char*> shared[] = {{"num_retries", "num_retries"},
                                                          {"request_timeout", "timeout"},
                                                          {"fallbacks", "fallbacks"},
                                                          {"context_window_fallbacks", "context_window_fallbacks"}};
    for (const auto& [lk, rk] : shared) {
        const Entry* l = find(m, lk);
        const Entry* rr = find(*router, rk);
        if (l && rr && !l->value.IsNull() && !rr->value.IsNull())
            warn_in(l->file, l->key_line, m.child(lk),
                    std::string("overridden by router_settings.") + rk + " (" + files_[rr->file] + ":" +
                        std::to_string(rr->key_line) + ")");
    }
}

// success_callback / failure_callback / callbacks: Prometheus is built in; others are named.
void Loader::parse_callbacks(const Val& v) {
    auto one = [&](const Val& item) {
        if (!item.node.IsScalar()) {
            warn(item.line, item.path, std::string("not supported by Tailgate, ignored (got ") + kind_name(item.node) + ")");
            return;
        }
        const std::string name(detail::trim(item.node.Scalar()));
        if (to_lower(name) == "prometheus") return;  // /metrics is Tailgate's own Prometheus endpoint
        warn(item.line, item.path, "callback '" + name + "' is not supported by Tailgate, ignored");
    };
    if (v.node.IsSequence()) {
        for (size_t i = 0; i < v.node.size(); ++i) {
            const YAML::Node n = v.node[i];
            one(Val{n, v.path + "[" + std::to_string(i) + "]", line_of(n) ? line_of(n) : v.line});
        }
    } else {
        one(v);
    }
}

// router_settings.model_group_alias: {alias: group} or {alias: {model: group, hidden: bool}}.
void Loader::parse_aliases(const Val& v) {
    Map m = open_map(v);
    for (auto& e : m.entries) {
        e.used = true;
        guard([&] {
            const Val item{e.value, m.child(e.key), line_of(e.value) ? line_of(e.value) : e.key_line};
            if (detail::trim(e.key).empty()) fail(e.key_line, item.path, "an alias must not be empty");
            if (is_wildcard(e.key)) fail(e.key_line, item.path, "an alias must not contain '*'");
            if (cfg_.has_group(e.key))
                fail(e.key_line, item.path, "shadows the model group '" + e.key + "' (an alias must be a new name)");
            GroupAlias a;
            Val target = item;
            if (e.value.IsMap()) {
                Map t = open_map(item);
                target = require(t, "model");
                if (auto h = get(t, "hidden")) a.hidden = boolean(*h);
                for (const auto& k : t.entries)
                    if (!k.used) fail(k.key_line, t.child(k.key), "unknown key (expected model, hidden)");
            } else if (e.value.IsNull() || !e.value.IsScalar()) {
                fail(item, std::string("expected a model group or {model: group, hidden: true}, got ") +
                               kind_name(e.value));
            }
            const Text t = text(target);
            a.group = t.text;
            if (is_wildcard(a.group)) fail(target, "names the wildcard group " + t.shown() + "; an alias needs a model group");
            if (!known_group(a.group))
                fail(target, "unknown model group " + t.shown() + " (known: " + join(cfg_.model_groups()) + ")");
            cfg_.router.model_group_alias[e.key] = std::move(a);
        });
    }
}

void Loader::parse_model_list() {
    std::vector<std::optional<Val>> explicit_ids;
    for (const Item& it : model_items_) {
        FileScope scope(*this, it.file);
        bool ok = false;
        guard([&] {
            const Val entry{it.node, "model_list[" + std::to_string(it.index) + "]", it.line};
            if (!it.node.IsMap()) {
                fail(entry, std::string("expected a map with model_name and litellm_params, got ") +
                                kind_name(it.node));
            }
            Map m = open_map(entry);
            std::optional<Val> id_val;
            Deployment d = parse_deployment(m, entry, id_val);
            warn_unknown(m);
            cfg_.deployments.push_back(std::move(d));
            explicit_ids.push_back(std::move(id_val));
            origins_.emplace_back(it.file, it.index);
            ok = true;
        });
        if (ok) continue;
        id_basis_.resize(cfg_.deployments.size());
        const YAML::Node n = it.node;
        if (n.IsMap()) {
            const YAML::Node name = n["model_name"];
            if (name && name.IsScalar()) failed_groups_.insert(name.Scalar());
        }
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
    if (auto x = get(p, "drop_params")) d.drop_params = boolean(*x);
    if (auto x = get(p, "additional_drop_params")) {
        if (!x->node.IsSequence())
            fail(*x, std::string("expected a list of request field names, got ") + kind_name(x->node));
        for (size_t i = 0; i < x->node.size(); ++i) {
            const Val item{x->node[i], x->path + "[" + std::to_string(i) + "]",
                           line_of(x->node[i]) ? line_of(x->node[i]) : x->line};
            if (item.node.IsNull()) fail(item, "must not be empty");
            d.additional_drop_params.push_back(std::string(detail::trim(nonempty_str(item))));
        }
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

void Loader::assign_ids(const std::vector<std::optional<Val>>& ids) {
    std::map<std::string, size_t> seen;  // id -> deployment index
    std::map<std::string, int> dup_count;
    for (size_t i = 0; i < cfg_.deployments.size(); ++i) {
        FileScope scope(*this, origins_[i].first);
        guard([&] { assign_id(i, ids, seen, dup_count); });
    }
}

void Loader::assign_id(size_t i, const std::vector<std::optional<Val>>& ids, std::map<std::string, size_t>& seen,
                       std::map<std::string, int>& dup_count) {
    {
        Deployment& d = cfg_.deployments[i];
        const std::string basis = d.model_name + '\n' + d.upstream.provider + "/" + d.upstream.model +
                                  '\n' + id_basis_[i];
        const int dup = dup_count[basis]++;
        const bool generated = !ids[i].has_value();
        if (generated) {
            d.id = detail::hex64(detail::fnv1a64(basis + '\n' + std::to_string(dup)));
        }
        const int line = generated ? d.line : ids[i]->line;
        const std::string path = "model_list[" + std::to_string(origins_[i].second) + "].model_info.id";
        auto [it, inserted] = seen.emplace(d.id, i);
        if (!inserted) {
            const Deployment& first = cfg_.deployments[it->second];
            const int first_line = ids[it->second] ? ids[it->second]->line : first.line;
            const int first_file = origins_[it->second].first;
            const std::string where =
                first_file == file_idx_ ? "line " + std::to_string(first_line)
                                        : files_[first_file] + ":" + std::to_string(first_line);
            fail(line, path,
                 "duplicate id '" + d.id + "'" + (generated ? " (generated)" : "") + " (first used at " + where +
                     ", model_list[" + std::to_string(origins_[it->second].second) + "])");
        }
    }
}

std::string Loader::resolve_dir(const std::string& p) const {
    namespace fs = std::filesystem;
    fs::path path(p);
    if (path.is_absolute() || base_dir_.empty()) return path.lexically_normal().string();
    return (fs::path(base_dir_) / path).lexically_normal().string();
}

void Loader::parse_router() {
    RouterSettings& r = cfg_.router;
    int strategy_line = 0;
    std::optional<Val> strategies, request_strategies;
    int strategies_file = 0, request_strategies_file = 0;
    if (Map* mp = section("router_settings")) {
        Map& m = *mp;
        each_key(m, "routing_strategy", [&](const Val& x) {
            const Text t = text(x);
            strategy_line = x.line;
            const auto& known = supported_routing_strategies();
            if (std::find(known.begin(), known.end(), t.text) != known.end()) {
                r.routing_strategy = t.text;
            } else {
                fail(x, "unknown routing strategy " + t.shown() + " (supported: " + join(known) + ")");
            }
        });
        each_key(m, "routing_strategy_args", [&](const Val& x) { flatten(x, "", r.routing_strategy_args); });
        each_key(m, "num_retries", [&](const Val& x) { r.num_retries = int32(x, 0, 100); });
        each_key(m, "timeout", [&](const Val& x) { r.timeout = timeout(x); });
        each_key(m, "stream_timeout", [&](const Val& x) { r.stream_timeout = timeout(x); });
        each_key(m, "connect_timeout", [&](const Val& x) { r.connect_timeout = timeout(x); });
        each_key(m, "max_client_retry_after", [&](const Val& x) { r.max_client_retry_after = duration(x); });
        each_key(m, "panic_routing", [&](const Val& x) { r.panic_routing = boolean(x); });
        each_key(m, "max_request_timeout", [&](const Val& x) {
            r.max_request_timeout = timeout(x);
            if (r.max_request_timeout > std::chrono::hours(24 * 365)) fail(x, "must be at most 365 days");
        });
        each_key(m, "allowed_fails", [&](const Val& x) { r.allowed_fails = int32(x, 0); });
        each_key(m, "cooldown_time", [&](const Val& x) { r.cooldown_time = duration(x); });
        each_key(m, "disable_cooldowns", [&](const Val& x) { r.disable_cooldowns = boolean(x); });
        each_key(m, "allowed_fails_policy", [&](const Val& x) { flatten(x, "", r.allowed_fails_policy); });
        each_key(m, "retry_after", [&](const Val& x) { r.retry_after = duration(x); });
        each_key(m, "fallbacks", [&](const Val& x) { r.fallbacks = parse_fallbacks(x); });
        each_key(m, "context_window_fallbacks", [&](const Val& x) { r.context_window_fallbacks = parse_fallbacks(x); });
        each_key(m, "allow_request_strategy_override",
                 [&](const Val& x) { r.allow_request_strategy_override = boolean(x); });
        each_key(m, "shadow_sample_rate", [&](const Val& x) {
            r.shadow_sample_rate = number(x, 0);
            if (r.shadow_sample_rate > 1) fail(x, "must be between 0 and 1");
        });
        each_key(m, "model_group_alias", [&](const Val& x) { parse_aliases(x); });
        each_key(m, "plugin_paths", [&](const Val& x) {
            if (x.node.IsScalar()) {
                r.plugin_paths.push_back(resolve_dir(nonempty_str(x)));
            } else if (x.node.IsSequence()) {
                for (size_t i = 0; i < x.node.size(); ++i) {
                    const Val item{x.node[i], x.path + "[" + std::to_string(i) + "]",
                                   line_of(x.node[i]) ? line_of(x.node[i]) : x.line};
                    if (item.node.IsNull()) fail(item, "must not be empty");
                    r.plugin_paths.push_back(resolve_dir(nonempty_str(item)));
                }
            } else {
                fail(x, std::string("expected a list of directories, got ") + kind_name(x.node));
            }
        });
        each_key(m, "strategies", [&](const Val& x) {
            strategies = x;
            strategies_file = file_idx_;
        });
        each_key(m, "request_strategies", [&](const Val& x) {
            request_strategies = x;
            request_strategies_file = file_idx_;
        });
        warn_unknown(m);
    }
    if (strategies) {
        FileScope scope(*this, strategies_file);
        guard([&] { parse_strategies(*strategies, r.strategies); });
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
    if (request_strategies) {
        FileScope scope(*this, request_strategies_file);
        guard([&] { parse_request_strategies(*request_strategies); });
    }
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
        if (!known_group(t.text)) {
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

void Loader::parse_general() {
    GeneralSettings& g = cfg_.general;
    Map* mp = section("general_settings");
    if (!mp) return;
    Map& m = *mp;
    each_key(m, "master_key", [&](const Val& x) {
        g.master_key = secret(x);
        // An empty key (often os.environ/VAR with VAR set but empty) must not
        // silently turn auth off: running without auth means leaving the key out.
        if (detail::trim(g.master_key.reveal()).empty())
            fail(x, "is empty (an empty environment variable?); remove general_settings.master_key to run without "
                    "authentication");
    });
    each_key(m, "host", [&](const Val& x) { g.host = nonempty_str(x); });
    each_key(m, "port", [&](const Val& x) { g.port = int32(x, 0, 65535); });
    each_key(m, "max_threads", [&](const Val& x) { g.max_threads = int32(x, 1, 100000); });
    each_key(m, "io_threads", [&](const Val& x) { g.io_threads = int32(x, 1, 1024); });
    // Two spellings of one setting: checked together.
    const Entry* size_entry = find(m, "max_body_size");
    const Entry* bytes_entry = find(m, "max_request_body_bytes");
    if (size_entry || bytes_entry) {
        FileScope scope(*this, (size_entry ? size_entry : bytes_entry)->file);
        guard([&] {
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
        });
    }
    each_key(m, "keep_alive_timeout", [&](const Val& x) { g.keep_alive_timeout = timeout(x); });
    each_key(m, "upstream_pool_size", [&](const Val& x) { g.upstream_pool_size = int32(x, 0, 100000); });
    each_key(m, "log_level", [&](const Val& x) {
        const Text t = text(x);
        std::string lvl = to_lower(detail::trim(t.text));
        if (lvl == "warning") lvl = "warn";
        if (lvl != "debug" && lvl != "info" && lvl != "warn" && lvl != "error") {
            fail(x, "expected one of debug, info, warn, error, got " + t.shown());
        }
        g.log_level = lvl;
    });
    each_key(m, "log_format", [&](const Val& x) {
        const Text t = text(x);
        const std::string f = to_lower(detail::trim(t.text));
        if (f != "text" && f != "json") fail(x, "expected text or json, got " + t.shown());
        g.log_format = f;
    });
    each_key(m, "metrics", [&](const Val& x) { g.metrics = boolean(x); });
    each_key(m, "metrics_auth", [&](const Val& x) {
        g.metrics_auth = boolean(x);
        if (g.metrics_auth && g.master_key.empty())
            warn(x.line, x.path, "has no effect without general_settings.master_key: /metrics stays open");
    });
    each_key(m, "client_header_timeout", [&](const Val& x) { g.client_header_timeout = timeout(x); });
    each_key(m, "client_body_timeout", [&](const Val& x) { g.client_body_timeout = timeout(x); });
    each_key(m, "max_header_bytes", [&](const Val& x) {
        const Text t = text(x, "a size");
        const auto n = parse_size(t.text);
        if (!n || *n < 1024 || *n > (1u << 30))
            fail(x, "expected a size between 1KiB and 1GiB (bytes, or e.g. 64KiB), got " + t.shown());
        g.max_header_bytes = static_cast<size_t>(*n);
    });
    parse_limits(m, g.limits);
    each_key(m, "model_group_limits", [&](const Val& x) {
        Map groups = open_map(x);
        for (auto& e : groups.entries) {
            e.used = true;
            guard([&] {
                const Val gv{e.value, groups.child(e.key), line_of(e.value) ? line_of(e.value) : e.key_line};
                if (!known_group(e.key))
                    fail(e.key_line, gv.path, "unknown model group (known: " + join(cfg_.model_groups()) + ")");
                Map lm = open_map(gv);
                GeneralSettings::Limits l;
                parse_limits(lm, l);
                warn_unknown(lm);
                g.group_limits.emplace_back(e.key, l);
            });
        }
    });
    each_key(m, "overload_retry_after", [&](const Val& x) { g.overload_retry_after_s = int32(x, 0, 3600); });
    each_key(m, "drain_timeout", [&](const Val& x) { g.drain_timeout = duration(x); });
    each_key(m, "allow_client_side_credentials", [&](const Val& x) { g.allow_client_side_credentials = boolean(x); });
    each_key(m, "forward_client_headers", [&](const Val& x) {
        if (!x.node.IsSequence()) fail(x, std::string("expected a list of header names, got ") + kind_name(x.node));
        // Never forwarded: they describe this hop (the upstream connection is ours)
        // or carry the client's credentials for the gateway.
        static const char* const kRefused[] = {
            "connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade", "proxy-connection",
            "proxy-authorization", "proxy-authenticate", "host", "content-length", "content-type", "accept",
            "expect", "authorization", "api-key", "x-api-key", "x-litellm-api-key", "cookie", "set-cookie"};
        for (size_t i = 0; i < x.node.size(); ++i) {
            const Val item{x.node[i], x.path + "[" + std::to_string(i) + "]",
                           line_of(x.node[i]) ? line_of(x.node[i]) : x.line};
            std::string name = to_lower(nonempty_str(item));
            const bool token = std::all_of(name.begin(), name.end(), [](unsigned char c) {
                return std::isalnum(c) || std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
            });
            if (!token) fail(item, "not a header name");
            for (const char* r : kRefused)
                if (name == r) fail(item, "'" + name + "' is never forwarded (hop-by-hop or a credential)");
            g.forward_client_headers.push_back(std::move(name));
        }
    });
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
    std::error_code cec;
    const std::string canonical = fs::weakly_canonical(fs::path(path), cec).string();
    return Loader(path, env, dir, cec ? std::string() : canonical).run(ss.str());
}

}  // namespace tailgate::config
