/* Shared boilerplate of the hostile-* test plugins: each one is a valid plugin
 * at load time whose route() breaks one rule of tg_route (plugin_abi.h). The
 * host must refuse the output with a clear log line, undo it, and never crash.
 * A plugin includes this, names itself with HOSTILE_NAME and defines
 * hostile_route(). */
#ifndef TAILGATE_TEST_HOSTILE_H
#define TAILGATE_TEST_HOSTILE_H

#include <tailgate/plugin_abi.h>

#include <stdlib.h>
#include <string.h>

static tg_host_api hostile_host; /* copied at create: BORROWED otherwise */

static int32_t hostile_route(const tg_request* request, tg_route* route);

TG_EXPORT uint32_t tg_plugin_abi_version(void) { return TG_ABI_VERSION; }
TG_EXPORT const char* tg_plugin_name(void) { return HOSTILE_NAME; }
TG_EXPORT void* tg_plugin_create(const tg_host_api* host, const tg_args* args, char* err, size_t err_len) {
    (void)args, (void)err, (void)err_len;
    memset(&hostile_host, 0, sizeof hostile_host);
    memcpy(&hostile_host, host, host->struct_size < sizeof hostile_host ? host->struct_size : sizeof hostile_host);
    return malloc(1);
}
TG_EXPORT void tg_plugin_destroy(void* instance) { free(instance); }
TG_EXPORT int32_t tg_plugin_route(void* instance, const tg_request* request, tg_route* route) {
    (void)instance;
    return hostile_route(request, route);
}
TG_EXPORT void tg_plugin_observe(void* instance, const tg_event* event) { (void)instance, (void)event; }

#endif
