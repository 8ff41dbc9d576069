#include "providers/codec.hpp"

#include <algorithm>
#include <cstdlib>
#include <optional>

namespace tailgate::providers {

bool is_retryable(ErrorClass c) {
    return c != ErrorClass::BadRequest && c != ErrorClass::ContextWindow && c != ErrorClass::None;
}

std::string excerpt(std::string_view body) {
    std::string s(body.substr(0, 200));
    for (char& c : s)
        if (static_cast<unsigned char>(c) < 0x20) c = ' ';
    return s;
}

int64_t retry_after_ms(const upstream::ResponseHead& head) {
    // Capped: an upstream's "1e300" or "inf" must neither overflow the conversion (UB) nor
    // the cooldown time points computed from it.
    static constexpr double kMaxMs = 3600.0 * 1000;
    auto parse = [](std::string_view text, double scale) -> std::optional<int64_t> {
        char* end = nullptr;
        std::string s(text);
        double v = std::strtod(s.c_str(), &end);
        if (end == s.c_str() || !(v >= 0)) return std::nullopt;
        return static_cast<int64_t>(std::min(v * scale, kMaxMs));
    };
    auto ms = head.header("retry-after-ms");
    if (!ms.empty()) {
        if (auto v = parse(ms, 1)) return *v;
    }
    auto sec = head.header("retry-after");
    if (!sec.empty()) {
        if (auto v = parse(sec, 1000)) return *v;
        // An HTTP-date is legal too; without a parser, treat it as "soon".
        return 1000;
    }
    return -1;
}

}  // namespace tailgate::providers
