// Shared state through Redis: LiteLLM's router_settings.redis_* keys (the
// endpoint) and Tailgate's top-level `shared_state:` section (its knobs).
#include "config/loader.hpp"

#include "config/parse_util.hpp"

#include <cctype>
#include <fstream>

namespace tailgate::config::detail {

namespace {

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// %XX escapes of a URL's user-info (a password may hold '@' or ':').
std::optional<std::string> percent_decode(std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out += s[i];
            continue;
        }
        if (i + 2 >= s.size()) return std::nullopt;
        const int hi = hex_digit(s[i + 1]), lo = hex_digit(s[i + 2]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
    }
    return out;
}

}  // namespace

// redis://[user[:password]@]host[:port][/db], or rediss:// for TLS (certificate
// verified). The URL often carries the password: messages never quote it.
void Loader::parse_redis_url(const Val& v) {
    SharedStateSettings& s = cfg_.shared;
    const Text t = text(v, "a redis:// URL");
    std::string_view url = detail::trim(t.text);
    const std::string shown = t.env_var.empty() ? "the URL" : "the value of os.environ/" + t.env_var;
    if (url.rfind("unix://", 0) == 0) fail(v, "unix:// sockets are not supported; use redis://host:port");
    if (url.rfind("rediss://", 0) == 0) {
        s.tls = true;
        url.remove_prefix(9);
    } else if (url.rfind("redis://", 0) == 0) {
        s.tls = false;
        url.remove_prefix(8);
    } else {
        fail(v, "expected a redis://[user:password@]host[:port][/db] (or rediss:// for TLS) URL in " + shown);
    }
    if (url.find('?') != std::string_view::npos || url.find('#') != std::string_view::npos)
        fail(v, "URL options (?...) are not supported in " + shown + "; use the shared_state section");
    std::string_view path;
    if (const size_t slash = url.find('/'); slash != std::string_view::npos) {
        path = url.substr(slash + 1);
        url = url.substr(0, slash);
    }
    if (const size_t at = url.rfind('@'); at != std::string_view::npos) {
        std::string_view info = url.substr(0, at);
        url = url.substr(at + 1);
        const size_t colon = info.find(':');
        auto user = percent_decode(info.substr(0, colon));
        auto pass = colon == std::string_view::npos ? std::optional<std::string>("")
                                                    : percent_decode(info.substr(colon + 1));
        if (!user || !pass) fail(v, "a malformed %-escape in the user or password of " + shown);
        s.username = *user;
        if (!pass->empty()) s.password = Secret(std::move(*pass));
    }
    std::string_view port;
    if (!url.empty() && url.front() == '[') {  // [IPv6]:port
        const size_t close = url.find(']');
        if (close == std::string_view::npos) fail(v, "an unclosed '[' in the host of " + shown);
        s.host = std::string(url.substr(1, close - 1));
        if (close + 1 < url.size()) {
            if (url[close + 1] != ':') fail(v, "expected ':port' after ']' in " + shown);
            port = url.substr(close + 2);
        }
    } else {
        const size_t colon = url.rfind(':');
        s.host = std::string(url.substr(0, colon));
        if (colon != std::string_view::npos) port = url.substr(colon + 1);
    }
    if (s.host.empty()) fail(v, "no host in " + shown);
    if (!port.empty()) {
        const auto p = detail::parse_int(port);
        if (!p || *p < 1 || *p > 65535) fail(v, "the port of " + shown + " is not a port number");
        s.port = static_cast<int>(*p);
    }
    if (!path.empty()) {
        const auto db = detail::parse_int(path);
        if (!db || *db < 0 || *db > 1000000) fail(v, "the database of " + shown + " (after '/') is not a number");
        s.db = static_cast<int>(*db);
    }
}

// LiteLLM's spelling: redis_host + redis_port + redis_password, or redis_url.
void Loader::parse_redis_endpoint(Map& m) {
    SharedStateSettings& s = cfg_.shared;
    bool has_url = false, has_host = false;
    int line = 0;
    each_key(m, "redis_url", [&](const Val& x) {
        parse_redis_url(x);
        has_url = true;
        line = x.line;
    });
    each_key(m, "redis_host", [&](const Val& x) {
        if (has_url) fail(x, "set either redis_url or redis_host/redis_port, not both");
        const std::string h(detail::trim(nonempty_str(x)));
        if (h.rfind("rediss://", 0) == 0 || h.rfind("redis://", 0) == 0)
            fail(x, "is a host name or address; put a URL in router_settings.redis_url");
        s.host = h;
        has_host = true;
        line = x.line;
    });
    each_key(m, "redis_port", [&](const Val& x) {
        if (has_url) fail(x, "set either redis_url or redis_host/redis_port, not both");
        if (!has_host) fail(x, "needs router_settings.redis_host");
        s.port = int32(x, 1, 65535);
    });
    each_key(m, "redis_password", [&](const Val& x) {
        if (!has_url && !has_host) fail(x, "needs router_settings.redis_host or redis_url");
        if (!s.password.empty()) fail(x, "redis_url already has a password; set it in one place");
        s.password = secret(x);
    });
    if (has_url || has_host) {
        s.enabled = true;
        s.where = file_ + ":" + std::to_string(line);
    }
}

void Loader::parse_shared_state() {
    Map* mp = section("shared_state");
    if (!mp) return;
    Map& m = *mp;
    SharedStateSettings& s = cfg_.shared;
    each_key(m, "enabled", [&](const Val& x) {
        // `false` keeps the redis_* keys (e.g. shared with LiteLLM) but runs alone.
        if (!boolean(x)) s.enabled = false;
        else if (!s.enabled) fail(x, "needs router_settings.redis_host or router_settings.redis_url");
    });
    each_key(m, "key_prefix", [&](const Val& x) {
        const std::string p = nonempty_str(x);
        if (p.size() > 64) fail(x, "at most 64 characters");
        for (unsigned char c : p)
            if (c <= 0x20 || c >= 0x7f) fail(x, "printable characters only, no spaces");
        s.key_prefix = p;
    });
    auto bounded = [&](const Val& x, Millis lo, Millis hi, Millis& out) {
        const Millis d = duration(x);
        if (d < lo || d > hi)
            fail(x, "expected a duration from " + std::to_string(lo.count()) + "ms to " + std::to_string(hi.count()) +
                        "ms");
        out = d;
    };
    each_key(m, "sync_interval", [&](const Val& x) { bounded(x, Millis(10), Millis(1000), s.sync_interval); });
    each_key(m, "connect_timeout", [&](const Val& x) { bounded(x, Millis(50), Millis(60000), s.connect_timeout); });
    each_key(m, "command_timeout", [&](const Val& x) { bounded(x, Millis(50), Millis(60000), s.command_timeout); });
    each_key(m, "probe_lease_time", [&](const Val& x) { bounded(x, Millis(100), Millis(600000), s.probe_lease); });
    // TLS knobs: meaningful only with rediss://.
    int tls_line = 0;
    std::string tls_path;
    auto tls_key = [&](const Val& x) {
        if (tls_line == 0) tls_line = x.line, tls_path = x.path;
    };
    each_key(m, "tls_ca_file", [&](const Val& x) {
        const std::string f = resolve_dir(nonempty_str(x));
        std::ifstream in(f, std::ios::binary);
        if (!in) fail(x, "cannot read the CA bundle '" + f + "'");
        s.tls_ca_file = f;
        tls_key(x);
    });
    each_key(m, "tls_server_name", [&](const Val& x) {
        const std::string n(detail::trim(nonempty_str(x)));
        if (n.size() > 253) fail(x, "at most 253 characters");
        for (unsigned char c : n)
            if (c <= 0x20 || c >= 0x7f || c == '/' || c == '@') fail(x, "expected a host name or an IP address");
        s.tls_server_name = n;
        tls_key(x);
    });
    each_key(m, "tls_verify", [&](const Val& x) {
        s.tls_verify = boolean(x);
        if (!s.tls_verify && s.tls)
            warn(x.line, x.path,
                 "is false: the Redis server's certificate is NOT verified; anyone on the path can read and "
                 "change the fleet's shared state (and see the Redis password). Use tls_ca_file instead");
        tls_key(x);
    });
    if (tls_line != 0 && s.enabled && !s.tls)
        guard([&] {
            fail(tls_line, tls_path, "needs a rediss:// router_settings.redis_url (TLS is off with redis:// or redis_host)");
        });
    each_key(m, "replica_id", [&](const Val& x) {
        const std::string id = nonempty_str(x);
        if (id.size() > 128) fail(x, "at most 128 characters");
        for (unsigned char c : id)
            if (c <= 0x20 || c >= 0x7f) fail(x, "printable characters only, no spaces");
        s.replica_id = id;
    });
    if (!s.enabled && !m.entries.empty() && !find(m, "enabled"))
        warn(m.line, "shared_state",
             "has no effect without router_settings.redis_host or redis_url: this process shares nothing");
    warn_unknown(m);
}

}  // namespace tailgate::config::detail
