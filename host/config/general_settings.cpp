#include "config/loader.hpp"

#include "config/parse_util.hpp"

#include <cctype>
#include <cstring>

namespace tailgate::config::detail {

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
    parse_body_limit(m, g);
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
    each_key(m, "response_retention", [&](const Val& x) { g.response_retention = duration(x); });
    each_key(m, "allow_client_side_credentials", [&](const Val& x) { g.allow_client_side_credentials = boolean(x); });
    each_key(m, "forward_client_headers", [&](const Val& x) { parse_forward_headers(x, g); });
    warn_unknown(m);
}

// max_request_body_bytes, or LiteLLM's max_body_size: two spellings of one setting.
void Loader::parse_body_limit(Map& m, GeneralSettings& g) {
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
}

void Loader::parse_forward_headers(const Val& x, GeneralSettings& g) {
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
}

}  // namespace tailgate::config::detail
