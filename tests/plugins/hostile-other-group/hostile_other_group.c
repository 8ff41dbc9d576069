/* hostile-other-group: swaps the first candidate for the host's deployment of another model group. */
#define HOSTILE_NAME "hostile-other-group"
#include "../hostile-common/hostile.h"

static int32_t hostile_route(const tg_request* request, tg_route* route) {
    (void)request;
    for (uint32_t i = 0; i < hostile_host.deployment_count(hostile_host.host); ++i) {
        const tg_deployment* d = hostile_host.deployment_at(hostile_host.host, i);
        if (strcmp(d->model_group, request->model_group) != 0) {
            route->candidates[0].deployment = d;
            return TG_OK;
        }
    }
    return TG_OK;
}
