#include "config/loader.hpp"

#include "config/parse_util.hpp"

namespace tailgate::config::detail {

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

}  // namespace tailgate::config::detail
