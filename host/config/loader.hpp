// The config loader (config.hpp's load_file / load_string): reads LiteLLM's
// config.yaml shape into a Config, collecting every error as "file:line: key.path:
// message". Internal to host/config. The sections are parsed in separate files:
// loader.cpp (documents, includes, environment_variables), model_list.cpp,
// router_settings.cpp, litellm_settings.cpp, general_settings.cpp; the value
// readers shared by all of them are in loader_values.cpp, and the provider
// resolution sits in config.cpp next to the provider table.
#pragma once

#include "config/config.hpp"

namespace tailgate::providers {
struct Provider;
}  // namespace tailgate::providers

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace tailgate::config::detail {

using KeyValues = std::vector<std::pair<std::string, std::string>>;

inline int line_of(const YAML::Node& n) {
    const YAML::Mark m = n.Mark();
    return m.is_null() ? 0 : m.line + 1;
}

inline const char* kind_name(const YAML::Node& n) {
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
inline constexpr const char* kSections[] = {"environment_variables", "litellm_settings", "router_settings", "general_settings",
                                            "shared_state"};

class Loader {
public:
    Loader(std::string file, EnvLookup env, std::string base_dir, std::string canonical = {});

    Config run(const std::string& yaml_text);

private:
    // -- reporting ----------------------------------------------------------
    [[noreturn]] void fail(int line, const std::string& path, const std::string& msg) const {
        throw LocatedError(file_ + ":" + std::to_string(line) + ": " + path + ": " + msg, file_idx_, line);
    }
    [[noreturn]] void fail(const Val& v, const std::string& msg) const { fail(v.line, v.path, msg); }
    void warn(int line, const std::string& path, const std::string& msg) { warn_in(file_idx_, line, path, msg); }
    void warn_in(int file, int line, const std::string& path, const std::string& msg);

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
    static void sort(std::vector<Collected>& v);
    void throw_collected();
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

    Map open_map(const Val& v);

    std::optional<Val> get(Map& m, const std::string& key);

    Val require(Map& m, const std::string& key);

    int key_line_or(const Map& m, const std::string& key) const;

    void warn_unknown(const Map& m, const char* what = "unknown key, ignored");

    static std::optional<std::string> litellm_note(const std::string& path);

    Entry* find(Map& m, const std::string& key);

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

    Map* section(const std::string& name);

    // A model group name is known, or belongs to an entry that already failed
    // (so its error is not repeated by every reference to the group).
    bool known_group(const std::string& g) const { return cfg_.has_group(g) || failed_groups_.count(g) > 0; }

    Text text(const Val& v, const char* expected = "a string");

    Text resolve(const Val& v, const std::string& raw);

    std::optional<std::string> lookup_env(const std::string& var) const;
    std::optional<std::string> process_env(const std::string& var) const;

    std::string str(const Val& v) { return text(v).text; }

    std::string nonempty_str(const Val& v);

    Secret secret(const Val& v);

    int64_t integer(const Val& v, int64_t min, int64_t max);

    int int32(const Val& v, int min, int max = std::numeric_limits<int>::max());

    double number(const Val& v, double min);

    bool boolean(const Val& v);

    Millis duration(const Val& v);

    Millis timeout(const Val& v);

    void flatten(const Val& v, const std::string& prefix, KeyValues& out);

    std::string to_json(const Val& v);

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
    Secret api_key(Map& params, const providers::Provider& prov);
    void assign_ids(const std::vector<std::optional<Val>>& explicit_ids);
    void assign_id(size_t i, const std::vector<std::optional<Val>>& ids, std::map<std::string, size_t>& seen,
                   std::map<std::string, int>& dup_count);
    void parse_router();
    void parse_plugin_paths(const Val& x);
    void parse_strategy_headers(const Val& x);
    void build_chain(const std::optional<Val>& strategies, int strategies_file, int strategy_line);
    void parse_strategies(const Val& v, std::vector<StrategySpec>& out);
    void parse_request_strategies(const Val& v);
    std::vector<std::pair<std::string, std::vector<std::string>>> parse_fallbacks(const Val& v);
    void parse_general();
    void parse_shared_state();
    void parse_redis_endpoint(Map& router);
    void parse_redis_url(const Val& v);
    void parse_body_limit(Map& m, GeneralSettings& g);
    void parse_database(Map& m, GeneralSettings& g);
    void parse_forward_headers(const Val& x, GeneralSettings& g);
    void parse_limits(Map& m, GeneralSettings::Limits& l);
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

// Items joined for a message ("a, b, c").
std::string join(const std::vector<std::string>& items, const char* sep = ", ");

// The body fields dropped for a deployment (drop_params and additional_drop_params).
std::vector<std::string> dropped_fields(const Deployment& d, bool drop_params);

}  // namespace tailgate::config::detail
