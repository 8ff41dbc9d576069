#include "server/request_options.hpp"

#include <algorithm>
#include <cmath>

namespace tailgate::server {

std::variant<std::vector<std::string>, ApiError> split_model_list(std::string_view model) {
    const size_t n = static_cast<size_t>(std::count(model.begin(), model.end(), ',')) + 1;
    if (n > kMaxAttempts)
        return ApiError::bad_request("At most " + std::to_string(kMaxAttempts) + " models can be listed", "model",
                                     "invalid_model_list");
    std::vector<std::string> out;
    out.reserve(n);
    for (size_t start = 0;;) {
        const size_t comma = std::min(model.find(',', start), model.size());
        std::string_view part = model.substr(start, comma - start);
        const size_t b = part.find_first_not_of(' ');
        part = b == std::string_view::npos ? std::string_view() : part.substr(b, part.find_last_not_of(' ') - b + 1);
        if (part.empty()) return ApiError::bad_request("Empty model name in model list", "model", "invalid_model_list");
        out.emplace_back(part);
        if (comma == model.size()) return out;
        start = comma + 1;
    }
}

RequestTimeouts request_timeouts(const ParsedBody& body, config::Millis max) {
    auto clamp = [max](double s) {
        const double ms = std::ceil(s * 1000.0);
        if (!(ms < static_cast<double>(max.count()))) return max;  // also NaN, should one slip through
        return config::Millis(std::max<int64_t>(1, static_cast<int64_t>(ms)));
    };
    RequestTimeouts t;
    if (body.timeout_s) t.timeout = clamp(*body.timeout_s);
    if (body.stream_timeout_s) t.stream_timeout = clamp(*body.stream_timeout_s);
    return t;
}

}  // namespace tailgate::server
