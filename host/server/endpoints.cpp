#include "server/endpoints.hpp"

#include <algorithm>

namespace tailgate::server {

namespace {

bool has_bearer_prefix(std::string_view v) {
    return v.size() > 7 && (v.substr(0, 7) == "Bearer " || v.substr(0, 7) == "bearer ");
}

}  // namespace

std::string_view path_only(std::string_view uri) { return uri.substr(0, std::min(uri.find('?'), uri.size())); }

std::string_view route_path(std::string_view uri) {
    std::string_view path = path_only(uri);
    while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
    return path;
}

bool path_matches(const EndpointRoute& route, std::string_view path, std::string& arg) {
    if (route.v1 && path.substr(0, 4) == "/v1/") path.remove_prefix(3);
    const std::string_view p = route.path;
    const size_t star = p.find('*');
    if (star == std::string_view::npos) return path == p;
    const std::string_view head = p.substr(0, star), tail = p.substr(star + 1);
    if (path.size() <= head.size() || path.substr(0, head.size()) != head) return false;
    std::string_view rest = path.substr(head.size());
    if (!tail.empty()) {
        // A '*' inside the path stands for one non-empty segment (Azure's deployment name).
        const size_t slash = rest.find('/');
        if (slash == 0 || slash == std::string_view::npos || rest.substr(slash) != tail) return false;
        rest = rest.substr(0, slash);
    }
    arg.assign(rest);
    return true;
}

RouteMatch find_route(std::span<const EndpointRoute> table, std::string_view method, std::string_view path,
                      bool metrics_on) {
    RouteMatch m;
    for (const auto& r : table) {
        if (r.metrics && !metrics_on) continue;
        std::string arg;
        if (!path_matches(r, path, arg)) continue;
        if (method != r.method) {
            if (m.allowed.find(r.method) == std::string::npos) m.allowed += (m.allowed.empty() ? "" : ", ") + std::string(r.method);
            continue;
        }
        m.route = &r;
        m.arg = std::move(arg);
        m.allowed.clear();
        break;
    }
    return m;
}

ApiError unmatched_route(const RouteMatch& m, std::string_view method, std::string_view uri) {
    if (m.allowed.empty()) return ApiError::not_found("Unknown path " + std::string(uri.substr(0, 200)), "unknown_url");
    return ApiError::method_not_allowed("Method " + std::string(method) + " is not allowed on this path; use " +
                                        m.allowed);
}

std::optional<std::string> percent_decoded_segment(std::string_view s) {
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= s.size()) return std::nullopt;
            const int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
            if (hi < 0 || lo < 0) return std::nullopt;
            c = static_cast<char>(hi * 16 + lo);
            i += 2;
        }
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == '/') return std::nullopt;
        out += c;
    }
    return out;
}

bool needs_key(Access access, bool metrics_auth) {
    return access == Access::Key || access == Access::Admin || access == Access::Dashboard ||
           (access == Access::Observability && metrics_auth);
}

std::string presented_key(std::string_view authorization, bool has_litellm_key, std::string_view litellm_key,
                          std::string_view api_key, std::string_view x_api_key) {
    if (has_bearer_prefix(authorization)) return std::string(authorization.substr(7));
    if (has_litellm_key) return std::string(has_bearer_prefix(litellm_key) ? litellm_key.substr(7) : litellm_key);
    return std::string(!api_key.empty() ? api_key : x_api_key);
}

bool constant_time_equal(std::string_view presented, std::string_view key) {
    if (key.empty()) return false;
    unsigned diff = presented.size() == key.size() ? 0u : 1u;
    for (size_t i = 0; i < presented.size(); ++i)
        diff |= static_cast<unsigned char>(presented[i]) ^ static_cast<unsigned char>(key[i % key.size()]);
    return diff == 0;
}

}  // namespace tailgate::server
