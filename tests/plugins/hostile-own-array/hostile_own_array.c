/* hostile-own-array: points tg_route.candidates at an array of its own (same entries, reversed). */
#define HOSTILE_NAME "hostile-own-array"
#include "../hostile-common/hostile.h"

static int32_t hostile_route(const tg_request* request, tg_route* route) {
    (void)request;
    static tg_candidate mine[64];
    uint32_t n = route->count < 64 ? route->count : 64;
    for (uint32_t k = 0; k < n; ++k) mine[k] = route->candidates[n - 1 - k];
    route->candidates = mine;
    route->count = n;
    return TG_OK;
}
