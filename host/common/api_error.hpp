// OpenAI-shaped errors: {"error": {"message", "type", "param", "code"}}.
#pragma once

#include <string>
#include <string_view>

namespace tailgate {

struct ApiError {
    int status = 500;
    std::string type = "api_error";  // invalid_request_error, authentication_error, ...
    std::string message;
    std::string code;                // "" → null
    std::string param;               // "" → null
    long retry_after_s = -1;         // adds Retry-After when >= 0

    static ApiError bad_request(std::string msg, std::string param = "", std::string code = "");
    static ApiError unauthorized(std::string msg);
    static ApiError not_found(std::string msg, std::string code = "");
    static ApiError method_not_allowed(std::string msg);
    static ApiError too_large(std::string msg);
    static ApiError bad_gateway(std::string msg, std::string code = "upstream_connection_error");
    static ApiError gateway_timeout(std::string msg);
    static ApiError internal(std::string msg);
    static ApiError unavailable(std::string msg, long retry_after_s = -1);

    // The JSON body.
    std::string body() const;
};

// Appends `s` JSON-escaped (without surrounding quotes).
void json_escape_into(std::string& out, std::string_view s);
std::string json_quote(std::string_view s);

}  // namespace tailgate
