#include "config/loader.hpp"

#include "config/parse_util.hpp"

namespace tailgate::config::detail {

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

}  // namespace tailgate::config::detail
