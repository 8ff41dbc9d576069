// The front end's own answers (before or while a request is read): OpenAI's
// error shape, as every other answer. Front-end internal.
#pragma once

#include "common/api_error.hpp"

#include <chrono>
#include <cstdio>
#include <string>

namespace tailgate::server::frontend {

inline ApiError client_error(int status, std::string message, std::string code) {
    ApiError e;
    e.status = status;
    e.type = "invalid_request_error";
    e.message = std::move(message);
    e.code = std::move(code);
    return e;
}

inline std::string seconds_text(std::chrono::milliseconds d) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g s", static_cast<double>(d.count()) / 1000.0);
    return buf;
}

inline ApiError request_timeout_error(const std::string& what, std::chrono::milliseconds limit) {
    return client_error(408, what + " not received within " + seconds_text(limit), "request_timeout");
}

}  // namespace tailgate::server::frontend
