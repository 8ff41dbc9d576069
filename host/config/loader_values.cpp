#include "config/loader.hpp"

#include "config/parse_util.hpp"

#include <cmath>

namespace tailgate::config::detail {

std::string join(const std::vector<std::string>& items, const char* sep) {
    std::string out;
    for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += sep;
        out += items[i];
    }
    return out;
}

// `canonical`: the main file's canonical path (empty for load_string), for include cycles.
Loader::Loader(std::string file, EnvLookup env, std::string base_dir, std::string canonical)
    : file_(file), env_(env), base_dir_(base_dir) {
    files_.push_back(std::move(file));
    dirs_.push_back(std::move(base_dir));
    canonical_.push_back(std::move(canonical));
}

void Loader::warn_in(int file, int line, const std::string& path, const std::string& msg) {
    warnings_.push_back(
        {file, line, warnings_.size(), files_[file] + ":" + std::to_string(line) + ": " + path + ": " + msg});
}

void Loader::sort(std::vector<Collected>& v) {
    std::stable_sort(v.begin(), v.end(), [](const Collected& a, const Collected& b) {
        return std::tie(a.file, a.line, a.seq) < std::tie(b.file, b.line, b.seq);
    });
}

// Throws every recorded error as one, a line each.
void Loader::throw_collected() {
    if (errors_.empty()) return;
    sort(errors_);
    std::string all;
    for (const auto& e : errors_) all += (all.empty() ? "" : "\n") + e.text;
    throw ConfigError(all);
}

Loader::Map Loader::open_map(const Val& v) {
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
std::optional<Val> Loader::get(Map& m, const std::string& key) {
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

Val Loader::require(Map& m, const std::string& key) {
    auto v = get(m, key);
    if (!v) fail(key_line_or(m, key), m.child(key), "missing");
    return *v;
}

int Loader::key_line_or(const Map& m, const std::string& key) const {
    for (const auto& e : m.entries) {
        if (e.key == key) return e.key_line;
    }
    return m.line;
}

void Loader::warn_unknown(const Map& m, const char* what) {
    for (const auto& e : m.entries) {
        if (!e.used) warn_in(e.file, e.key_line, m.child(e.key), litellm_note(m.child(e.key)).value_or(what));
    }
}

// LiteLLM keys Tailgate knows but does not (yet) implement: say so precisely
// instead of "unknown", so a migrating user knows what changes.
std::optional<std::string> Loader::litellm_note(const std::string& path) {
    static const std::pair<const char*, const char*> kNotes[] = {
        {"router_settings.enable_pre_call_checks", "LiteLLM's context-window pre-call check is not supported (context_window_fallbacks apply after the upstream refuses); ignored"},
        {"router_settings.cache_responses", "response caching is not supported; ignored"},
        {"general_settings.store_model_in_db", "models live in the config file only; ignored"},
        {"general_settings.alerting", "LiteLLM's alerting is not supported; use /metrics; ignored"},
    };
    for (const auto& [key, note] : kNotes)
        if (path == key) return std::string(note);
    return std::nullopt;
}

Loader::Entry* Loader::find(Map& m, const std::string& key) {
    for (auto& e : m.entries)
        if (e.key == key) return &e;
    return nullptr;
}

Loader::Map* Loader::section(const std::string& name) {
    auto it = sections_.find(name);
    return it == sections_.end() ? nullptr : &it->second;
}

// -- scalars ------------------------------------------------------------
Text Loader::text(const Val& v, const char* expected) {
    if (!v.node.IsScalar()) {
        fail(v, std::string("expected ") + expected + ", got " + kind_name(v.node));
    }
    return resolve(v, v.node.Scalar());
}

Text Loader::resolve(const Val& v, const std::string& raw) {
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
std::optional<std::string> Loader::lookup_env(const std::string& var) const {
    if (auto it = env_vars_.find(var); it != env_vars_.end()) return it->second;
    return process_env(var);
}

std::optional<std::string> Loader::process_env(const std::string& var) const {
    if (env_) return env_(var);
    if (const char* s = std::getenv(var.c_str())) return std::string(s);
    return std::nullopt;
}

std::string Loader::nonempty_str(const Val& v) {
    Text t = text(v);
    if (detail::trim(t.text).empty()) fail(v, "must not be empty");
    return t.text;
}

Secret Loader::secret(const Val& v) {
    if (!v.node.IsScalar()) fail(v, std::string("expected a string, got ") + kind_name(v.node));
    Text t = resolve(v, v.node.Scalar());
    // It goes into an HTTP header (a trailing newline from a secrets file is the usual cause).
    if (t.text.find_first_of("\r\n") != std::string::npos || t.text.find('\0') != std::string::npos)
        fail(v, "contains a line break or NUL, which cannot be sent in an HTTP header");
    return Secret(std::move(t.text));
}

int64_t Loader::integer(const Val& v, int64_t min, int64_t max) {
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

int Loader::int32(const Val& v, int min, int max) {
    return static_cast<int>(integer(v, min, max));
}

double Loader::number(const Val& v, double min) {
    const Text t = text(v, "a number");
    const auto n = detail::parse_double(t.text);
    if (!n) fail(v, "expected a number, got " + t.shown());
    if (*n < min) fail(v, "must be >= " + std::to_string(static_cast<int64_t>(min)) + ", got " + t.shown());
    return *n;
}

bool Loader::boolean(const Val& v) {
    const Text t = text(v, "true or false");
    const auto b = detail::parse_bool(t.text);
    if (!b) fail(v, "expected true or false, got " + t.shown());
    return *b;
}

Millis Loader::duration(const Val& v) {
    const Text t = text(v, "a duration");
    const auto d = parse_duration(t.text);
    if (!d) {
        fail(v, "expected a duration (seconds, or e.g. 500ms, 2s, 1.5m, 1h), got " + t.shown());
    }
    return *d;
}

// Timeouts: 0 would fail every request at once, so it is refused.
Millis Loader::timeout(const Val& v) {
    const Millis d = duration(v);
    if (d.count() == 0) fail(v, "must be greater than 0");
    return d;
}

// -- args flattening (tg_args contract) ----------------------------------
void Loader::flatten(const Val& v, const std::string& prefix, KeyValues& out) {
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

std::string Loader::to_json(const Val& v) {
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

void Loader::parse_limits(Map& m, GeneralSettings::Limits& l) {
    each_key(m, "max_concurrent_requests", [&](const Val& x) { l.max_concurrent_requests = int32(x, 0); });
    each_key(m, "max_open_streams", [&](const Val& x) { l.max_open_streams = int32(x, 0); });
}

}  // namespace tailgate::config::detail
