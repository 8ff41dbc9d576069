/* hostile-null-deployment: leaves a candidate whose deployment pointer is NULL. */
#define HOSTILE_NAME "hostile-null-deployment"
#include "../hostile-common/hostile.h"

static int32_t hostile_route(const tg_request* request, tg_route* route) {
    (void)request;
    route->candidates[0].deployment = NULL;
    return TG_OK;
}
