/* hostile-null-candidates: sets tg_route.candidates to NULL. */
#define HOSTILE_NAME "hostile-null-candidates"
#include "../hostile-common/hostile.h"

static int32_t hostile_route(const tg_request* request, tg_route* route) {
    (void)request;
    route->candidates = NULL;
    return TG_OK;
}
