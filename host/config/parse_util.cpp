#include "config/parse_util.hpp"

#include "common/api_error.hpp"

#include "config/config.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace tailgate::config {
namespace detail {

std::string to_lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
}

std::string_view trim(std::string_view s) {
    const char* ws = " \t\r\n";
    const auto b = s.find_first_not_of(ws);
    if (b == std::string_view::npos) return {};
    const auto e = s.find_last_not_of(ws);
    return s.substr(b, e - b + 1);
}

std::optional<int64_t> parse_int(std::string_view text) {
    text = trim(text);
    if (!text.empty() && text.front() == '+') text.remove_prefix(1);
    if (text.empty()) return std::nullopt;
    int64_t v = 0;
    const auto* end = text.data() + text.size();
    auto [p, ec] = std::from_chars(text.data(), end, v);
    if (ec != std::errc() || p != end) return std::nullopt;
    return v;
}

std::optional<double> parse_double(std::string_view text) {
    text = trim(text);
    if (!text.empty() && text.front() == '+') text.remove_prefix(1);
    if (text.empty()) return std::nullopt;
    double v = 0;
    const auto* end = text.data() + text.size();
    auto [p, ec] = std::from_chars(text.data(), end, v, std::chars_format::general);
    if (ec != std::errc() || p != end || !std::isfinite(v)) return std::nullopt;
    return v;
}

std::optional<bool> parse_bool(std::string_view text) {
    const std::string t = to_lower(trim(text));
    if (t == "true" || t == "yes" || t == "on") return true;
    if (t == "false" || t == "no" || t == "off") return false;
    return std::nullopt;
}

namespace {

bool valid_host_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_';
}

bool valid_ipv6_char(char c) {
    return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || (c >= '0' && c <= '9') ||
           c == ':' || c == '.';
}

}  // namespace

std::string redact_url(std::string_view text) {
    const auto scheme_end = text.find("://");
    const size_t auth_begin = scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
    auto auth_end = text.find_first_of("/?#", auth_begin);
    if (auth_end == std::string_view::npos) auth_end = text.size();
    const auto at = text.substr(auth_begin, auth_end - auth_begin).rfind('@');
    if (at == std::string_view::npos) return std::string(text);
    std::string out(text.substr(0, auth_begin));
    out += "***";
    out += text.substr(auth_begin + at);
    return out;
}

std::optional<Url> parse_url(std::string_view text, std::string& error) {
    text = trim(text);
    Url url;
    const auto scheme_end = text.find("://");
    if (scheme_end == std::string_view::npos) {
        error = "expected an http:// or https:// URL, got '" + redact_url(text) + "'";
        return std::nullopt;
    }
    const std::string scheme = to_lower(text.substr(0, scheme_end));
    if (scheme == "https") {
        url.tls = true;
    } else if (scheme == "http") {
        url.tls = false;
    } else {
        error = "unsupported scheme '" + scheme + "' in '" + redact_url(text) +
                "' (expected http or https)";
        return std::nullopt;
    }
    std::string_view rest = text.substr(scheme_end + 3);
    if (rest.find_first_of("?#") != std::string_view::npos) {
        error = "must not contain a query or fragment: '" + redact_url(text) + "'";
        return std::nullopt;
    }
    const auto slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    std::string_view path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);

    if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
        url.had_userinfo = true;
        authority.remove_prefix(at + 1);
    }
    std::string_view host;
    std::string_view port;
    bool ipv6 = false;
    if (!authority.empty() && authority.front() == '[') {
        const auto close = authority.find(']');
        if (close == std::string_view::npos) {
            error = "unterminated IPv6 address in '" + redact_url(text) + "'";
            return std::nullopt;
        }
        host = authority.substr(1, close - 1);
        ipv6 = true;
        std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') {
                error = "malformed host in '" + redact_url(text) + "'";
                return std::nullopt;
            }
            port = after.substr(1);
            if (port.empty()) {
                error = "empty port in '" + redact_url(text) + "'";
                return std::nullopt;
            }
        }
    } else {
        const auto colon = authority.find(':');
        host = authority.substr(0, colon);
        if (colon != std::string_view::npos) {
            port = authority.substr(colon + 1);
            if (port.empty()) {
                error = "empty port in '" + redact_url(text) + "'";
                return std::nullopt;
            }
        }
    }
    if (host.empty()) {
        error = "missing host in '" + redact_url(text) + "'";
        return std::nullopt;
    }
    for (char c : host) {
        if (ipv6 ? !valid_ipv6_char(c) : !valid_host_char(c)) {
            error = "invalid host in '" + redact_url(text) + "'";
            return std::nullopt;
        }
    }
    if (!port.empty()) {
        const auto p = parse_int(port);
        if (!p || *p < 1 || *p > 65535 || port.front() == '+' || port.front() == '-') {
            error = "invalid port '" + std::string(port) + "' in '" + redact_url(text) + "'";
            return std::nullopt;
        }
        url.port = std::to_string(*p);
    } else {
        url.port = url.tls ? "443" : "80";
    }
    for (char c : path) {
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            error = "whitespace in path of '" + redact_url(text) + "'";
            return std::nullopt;
        }
    }
    while (!path.empty() && path.back() == '/') path.remove_suffix(1);

    url.host = std::string(host);
    url.path = std::string(path);
    url.display = scheme + "://";
    url.display += ipv6 ? "[" + url.host + "]" : url.host;
    if (authority.size() > host.size() + (ipv6 ? 2 : 0)) {
        url.display += ":" + url.port;  // the port was written explicitly
    }
    url.display += url.path;
    return url;
}

uint64_t fnv1a64(std::string_view data, uint64_t seed) {
    uint64_t h = seed;
    for (unsigned char c : data) {
        h ^= c;
        h *= 0x100000001b3ull;
    }
    return h;
}

std::string hex64(uint64_t v) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
    return buf;
}

std::string json_quote(std::string_view s) { return ::tailgate::json_quote(s); }

bool is_json_number(std::string_view s) {
    size_t i = 0;
    const size_t n = s.size();
    auto digit = [&](size_t k) { return k < n && s[k] >= '0' && s[k] <= '9'; };
    if (i < n && s[i] == '-') ++i;
    if (!digit(i)) return false;
    if (s[i] == '0') {
        ++i;
    } else {
        while (digit(i)) ++i;
    }
    if (i < n && s[i] == '.') {
        ++i;
        if (!digit(i)) return false;
        while (digit(i)) ++i;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        ++i;
        if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
        if (!digit(i)) return false;
        while (digit(i)) ++i;
    }
    return i == n;
}

}  // namespace detail

namespace {

// Splits "1.5m" into the number and the unit, both trimmed.
bool split_number_unit(std::string_view text, double& number, std::string& unit) {
    text = detail::trim(text);
    size_t i = 0;
    while (i < text.size() &&
           ((text[i] >= '0' && text[i] <= '9') || text[i] == '.' || text[i] == '+' ||
            text[i] == '-' || ((text[i] == 'e' || text[i] == 'E') && i + 1 < text.size() &&
                               ((text[i + 1] >= '0' && text[i + 1] <= '9') ||
                                text[i + 1] == '-' || text[i + 1] == '+')))) {
        ++i;
    }
    const auto num = detail::parse_double(text.substr(0, i));
    if (!num) return false;
    number = *num;
    unit = detail::to_lower(detail::trim(text.substr(i)));
    return true;
}

}  // namespace

std::optional<Millis> parse_duration(const std::string& text) {
    double number = 0;
    std::string unit;
    if (!split_number_unit(text, number, unit) || number < 0) return std::nullopt;
    double factor = 0;
    if (unit.empty() || unit == "s" || unit == "sec" || unit == "secs" || unit == "seconds") {
        factor = 1000;
    } else if (unit == "ms") {
        factor = 1;
    } else if (unit == "m" || unit == "min" || unit == "mins" || unit == "minutes") {
        factor = 60'000;
    } else if (unit == "h" || unit == "hour" || unit == "hours") {
        factor = 3'600'000;
    } else if (unit == "d" || unit == "day" || unit == "days") {
        factor = 86'400'000;
    } else {
        return std::nullopt;
    }
    const double ms = std::round(number * factor);
    if (ms > 1e15) return std::nullopt;  // > 30,000 years: a typo, not a timeout
    return Millis(static_cast<int64_t>(ms));
}

std::optional<uint64_t> parse_size(const std::string& text) {
    double number = 0;
    std::string unit;
    if (!split_number_unit(text, number, unit) || number < 0) return std::nullopt;
    double factor = 0;
    if (unit.empty() || unit == "b") {
        factor = 1;
    } else if (unit == "kb") {
        factor = 1e3;
    } else if (unit == "mb") {
        factor = 1e6;
    } else if (unit == "gb") {
        factor = 1e9;
    } else if (unit == "k" || unit == "kib") {
        factor = 1024.0;
    } else if (unit == "m" || unit == "mib") {
        factor = 1024.0 * 1024;
    } else if (unit == "g" || unit == "gib") {
        factor = 1024.0 * 1024 * 1024;
    } else {
        return std::nullopt;
    }
    const double bytes = number * factor;
    if (bytes != std::floor(bytes) || bytes > 9.0e18) return std::nullopt;
    return static_cast<uint64_t>(bytes);
}

}  // namespace tailgate::config
