/* hostile-foreign-deployment: puts a tg_deployment of its own (a copy of the first) in the list. */
#define HOSTILE_NAME "hostile-foreign-deployment"
#include "../hostile-common/hostile.h"

static int32_t hostile_route(const tg_request* request, tg_route* route) {
    (void)request;
    static tg_deployment copy;
    copy = *route->candidates[0].deployment;
    route->candidates[0].deployment = &copy;
    return TG_OK;
}
