#include "common/api_error.hpp"

#include "common/utf8.hpp"

#include <cstdio>

namespace tailgate {

namespace {
ApiError make(int status, const char* type, std::string msg, std::string code = "", std::string param = "") {
    ApiError e;
    e.status = status;
    e.type = type;
    e.message = std::move(msg);
    e.code = std::move(code);
    e.param = std::move(param);
    return e;
}
}  // namespace

ApiError ApiError::bad_request(std::string msg, std::string param, std::string code) {
    return make(400, "invalid_request_error", std::move(msg), std::move(code), std::move(param));
}
ApiError ApiError::unauthorized(std::string msg) {
    return make(401, "authentication_error", std::move(msg), "invalid_api_key");
}
ApiError ApiError::not_found(std::string msg, std::string code) {
    return make(404, "invalid_request_error", std::move(msg), std::move(code));
}
ApiError ApiError::method_not_allowed(std::string msg) {
    return make(405, "invalid_request_error", std::move(msg), "method_not_allowed");
}
ApiError ApiError::too_large(std::string msg) {
    return make(413, "invalid_request_error", std::move(msg), "request_too_large");
}
ApiError ApiError::bad_gateway(std::string msg, std::string code) {
    return make(502, "api_error", std::move(msg), std::move(code));
}
ApiError ApiError::gateway_timeout(std::string msg) {
    return make(504, "timeout", std::move(msg), "upstream_timeout");
}
ApiError ApiError::internal(std::string msg) {
    return make(500, "api_error", std::move(msg), "internal_error");
}
ApiError ApiError::unavailable(std::string msg, long retry_after_s) {
    ApiError e = make(503, "api_error", std::move(msg), "service_unavailable");
    e.retry_after_s = retry_after_s;
    return e;
}

// One escaper for every JSON the gateway writes (error bodies, the JSON log,
// the stats page): control characters and DEL as \u00XX, invalid UTF-8 as
// U+FFFD, so the output is always valid JSON.
void json_escape_into(std::string& out, std::string_view s) {
    out.reserve(out.size() + s.size());
    for (size_t i = 0; i < s.size();) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (c >= 0x80) {
            size_t n = utf8_sequence_length(s, i);
            if (n == 0) {
                out += "\\ufffd";
                ++i;
            } else {
                out.append(s.substr(i, n));
                i += n;
            }
            continue;
        }
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20 || c == 0x7f) {
                    char u[8];
                    std::snprintf(u, sizeof u, "\\u%04x", c);
                    out += u;
                } else {
                    out += static_cast<char>(c);
                }
        }
        ++i;
    }
}

std::string json_quote(std::string_view s) {
    std::string out;
    out.reserve(s.size() + 2);
    out += '"';
    json_escape_into(out, s);
    out += '"';
    return out;
}

std::string ApiError::body() const {
    std::string out = "{\"error\":{\"message\":";
    out += json_quote(message);
    out += ",\"type\":";
    out += json_quote(type);
    out += ",\"param\":";
    out += param.empty() ? "null" : json_quote(param);
    out += ",\"code\":";
    out += code.empty() ? "null" : json_quote(code);
    out += "}}";
    return out;
}

}  // namespace tailgate
