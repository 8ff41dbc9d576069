#include "common/vocabulary.hpp"

namespace tailgate {

// These names are label values users query in Prometheus and read in logs:
// changing one breaks their dashboards.
const char* error_class_name(ErrorClass c) {
    switch (c) {
        case ErrorClass::None: return "other";
        case ErrorClass::Connect: return "connect";
        case ErrorClass::Timeout: return "timeout";
        case ErrorClass::RateLimit: return "rate_limit";
        case ErrorClass::Server: return "server";
        case ErrorClass::Auth: return "auth";
        case ErrorClass::NotFound: return "not_found";
        case ErrorClass::BadRequest: return "bad_request";
        case ErrorClass::Protocol: return "protocol";
        case ErrorClass::ContextWindow: return "context_window";
    }
    return "other";
}

const char* health_name(Health h) {
    switch (h) {
        case Health::Healthy: return "healthy";
        case Health::Cooling: return "cooling";
        case Health::HalfOpen: return "half_open";
    }
    return "healthy";
}

}  // namespace tailgate
