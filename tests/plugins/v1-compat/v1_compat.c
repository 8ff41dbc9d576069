/* v1-compat: a plugin compiled against plugin_abi_v1.h, an exact copy of the ABI
 * header as it was before the host gained request fields, per-request context,
 * route error text, plugin metrics and state handover. The compatibility test
 * loads it into today's host and checks it still routes and observes: the ABI
 * must only ever grow at the end of its structs.
 *
 * route(): moves the last candidate to the front, plans it AT_START then the
 *          (old) first one ON_FAILURE, and notes "v1-compat: last first".
 * observe(): logs "v1-compat observed <type> <deployment id>" (INFO).
 * Do not rebuild this against the current header: that would defeat its purpose. */
#include "plugin_abi_v1.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct v1_self {
    tg_host_api host; /* copied: the table is BORROWED at create time */
} v1_self;

TG_EXPORT uint32_t tg_plugin_abi_version(void) { return TG_ABI_VERSION; }
TG_EXPORT const char* tg_plugin_name(void) { return "v1-compat"; }

TG_EXPORT void* tg_plugin_create(const tg_host_api* host, const tg_args* args, char* err, size_t err_len) {
    (void)args;
    v1_self* self = (v1_self*)calloc(1, sizeof *self);
    if (self == NULL) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    /* A host table bigger than ours (a newer host) is fine: copy what we know. */
    if (host == NULL || host->struct_size < sizeof(tg_host_api)) {
        snprintf(err, err_len, "host table too small");
        free(self);
        return NULL;
    }
    self->host = *host;
    self->host.struct_size = sizeof(tg_host_api);
    return self;
}

TG_EXPORT void tg_plugin_destroy(void* instance) { free(instance); }

TG_EXPORT int32_t tg_plugin_route(void* instance, const tg_request* request, tg_route* route) {
    v1_self* self = (v1_self*)instance;
    if (!TG_HAS_MEMBER(request, tg_request, override_count) || !TG_HAS_MEMBER(route, tg_route, host_private))
        return TG_ERR_INTERNAL;
    if (route->count == 0) return TG_ERR_NO_CANDIDATE;
    uint32_t last = route->count - 1;
    tg_candidate moved = route->candidates[last];
    for (uint32_t k = last; k > 0; --k) route->candidates[k] = route->candidates[k - 1];
    route->candidates[0] = moved;
    route->attempt_count = 0;
    route->attempts[route->attempt_count++] = (tg_attempt){0, TG_LAUNCH_AT_START, 0, 0};
    if (route->count > 1) route->attempts[route->attempt_count++] = (tg_attempt){1, TG_LAUNCH_ON_FAILURE, 0, 0};
    self->host.route_note(route, "v1-compat: last first");
    return TG_OK;
}

TG_EXPORT void tg_plugin_observe(void* instance, const tg_event* event) {
    v1_self* self = (v1_self*)instance;
    char line[256];
    snprintf(line, sizeof line, "v1-compat observed %u %s", (unsigned)event->type,
             event->deployment && event->deployment->id ? event->deployment->id : "?");
    self->host.log(self->host.host, TG_LOG_INFO, line);
}
