// What plugins report while one request is routed: tg_route.host_private
// points at one of these (router.cpp owns it; the host table fills it).
#pragma once

#include <cstdint>
#include <string>

namespace tailgate::router {

struct RouteScratch {
    std::string note;
    int64_t retry_after_ms = -1;  // smallest route_retry_after hint, -1 if none
};

}  // namespace tailgate::router
