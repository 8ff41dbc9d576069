// Why a request was refused before routing: admission caps or shutdown.
// Shared by the server (which refuses) and the metrics (which count by reason).
#pragma once

#include <cstddef>
#include <cstdint>

namespace tailgate {

enum class Rejection : uint8_t {
    MaxConcurrentRequests,       // general_settings.max_concurrent_requests
    MaxOpenStreams,              // general_settings.max_open_streams
    GroupMaxConcurrentRequests,  // model_group_limits.<group>.max_concurrent_requests
    GroupMaxOpenStreams,         // model_group_limits.<group>.max_open_streams
    Draining,                    // the gateway is shutting down
};
inline constexpr size_t kRejectionReasons = 5;

// The metrics label value, e.g. "max_open_streams".
inline const char* rejection_name(Rejection r) {
    switch (r) {
        case Rejection::MaxConcurrentRequests: return "max_concurrent_requests";
        case Rejection::MaxOpenStreams: return "max_open_streams";
        case Rejection::GroupMaxConcurrentRequests: return "group_max_concurrent_requests";
        case Rejection::GroupMaxOpenStreams: return "group_max_open_streams";
        case Rejection::Draining: return "draining";
    }
    return "unknown";
}

}  // namespace tailgate
