/* hostile-plan-overflow: claims more attempts than TG_MAX_ATTEMPTS after scribbling over the whole plan buffer. */
#define HOSTILE_NAME "hostile-plan-overflow"
#include "../hostile-common/hostile.h"

static int32_t hostile_route(const tg_request* request, tg_route* route) {
    (void)request;
    for (uint32_t i = 0; i < TG_MAX_ATTEMPTS; ++i) route->attempts[i] = (tg_attempt){0, 7, 0, 0};
    route->attempt_count = 1000;
    return TG_OK;
}
