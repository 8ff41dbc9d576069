/* hostile-duplicate: lists the first candidate twice (over the second). */
#define HOSTILE_NAME "hostile-duplicate"
#include "../hostile-common/hostile.h"

static int32_t hostile_route(const tg_request* request, tg_route* route) {
    (void)request;
    if (route->count > 1) route->candidates[1] = route->candidates[0];
    return TG_OK;
}
