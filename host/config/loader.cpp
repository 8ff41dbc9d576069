#include "config/loader.hpp"

#include "config/parse_util.hpp"
#include "providers/registry.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace tailgate::config::detail {

std::vector<std::string> dropped_fields(const Deployment& d, bool drop_params) {
    std::vector<std::string> out = d.additional_drop_params;
    if (!drop_params) return out;
    // Only what a provider documents as refused: everything else an
    // OpenAI-compatible server accepts or ignores, and is forwarded.
    if (const providers::Provider* prov = providers::find_provider(d.upstream.provider))
        for (std::string_view f : prov->rejected_params)
            if (std::find(out.begin(), out.end(), f) == out.end()) out.emplace_back(f);
    return out;
}

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
    parse_shared_state();
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

std::string Loader::resolve_dir(const std::string& p) const {
    namespace fs = std::filesystem;
    fs::path path(p);
    if (path.is_absolute() || base_dir_.empty()) return path.lexically_normal().string();
    return (fs::path(base_dir_) / path).lexically_normal().string();
}

}  // namespace tailgate::config::detail

namespace tailgate::config {

Config load_string(const std::string& yaml_text, const std::string& display_name, EnvLookup env) {
    namespace fs = std::filesystem;
    const std::string dir = fs::path(display_name).parent_path().string();
    return detail::Loader(display_name, env, dir).run(yaml_text);
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
    return detail::Loader(path, env, dir, cec ? std::string() : canonical).run(ss.str());
}

}  // namespace tailgate::config
