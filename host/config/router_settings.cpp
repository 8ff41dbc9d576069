#include "config/loader.hpp"

#include "config/parse_util.hpp"

namespace tailgate::config::detail {

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
        each_key(m, "strategy_request_headers", [&](const Val& x) { parse_strategy_headers(x); });
        each_key(m, "model_group_alias", [&](const Val& x) { parse_aliases(x); });
        each_key(m, "plugin_paths", [&](const Val& x) { parse_plugin_paths(x); });
        parse_redis_endpoint(m);
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
    build_chain(strategies, strategies_file, strategy_line);
    if (request_strategies) {
        FileScope scope(*this, request_strategies_file);
        guard([&] { parse_request_strategies(*request_strategies); });
    }
}

// Request headers strategies may read (tg_request.headers); never credentials.
void Loader::parse_strategy_headers(const Val& x) {
    if (!x.node.IsSequence()) fail(x, std::string("expected a list of header names, got ") + kind_name(x.node));
    static const char* const kSecret[] = {"authorization", "api-key", "x-api-key", "x-litellm-api-key",
                                          "cookie", "proxy-authorization"};
    for (size_t i = 0; i < x.node.size(); ++i) {
        const Val item{x.node[i], x.path + "[" + std::to_string(i) + "]",
                       line_of(x.node[i]) ? line_of(x.node[i]) : x.line};
        std::string name = to_lower(nonempty_str(item));
        for (const char* secret : kSecret)
            if (name == secret) fail(item, "'" + name + "' carries a credential: strategies never see it");
        cfg_.router.strategy_request_headers.push_back(std::move(name));
    }
}

void Loader::parse_plugin_paths(const Val& x) {
    RouterSettings& r = cfg_.router;
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
}

// The strategy chain: router_settings.strategies as written, or the one
// routing_strategy stands for.
void Loader::build_chain(const std::optional<Val>& strategies, int strategies_file, int strategy_line) {
    RouterSettings& r = cfg_.router;
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

}  // namespace tailgate::config::detail
