/* Test plugin (pure C, no SDK wrapper): a valid handshake, but create()
 * always refuses, writing a message into the host's buffer and returning NULL. */
#include <tailgate/plugin_abi.h>

#include <stdio.h>

TG_EXPORT uint32_t tg_plugin_abi_version(void) { return TG_ABI_VERSION; }
TG_EXPORT const char* tg_plugin_name(void) { return "init-fails"; }
TG_EXPORT void* tg_plugin_create(const tg_host_api* host, const tg_args* args, char* err, size_t err_len) {
    (void)host;
    uint32_t n = args ? args->count : 0;
    if (err && err_len) snprintf(err, err_len, "init-fails always refuses (%u args given)", (unsigned)n);
    return NULL;
}
TG_EXPORT void tg_plugin_destroy(void* self) { (void)self; }
TG_EXPORT int32_t tg_plugin_route(void* self, const tg_request* req, tg_route* route) {
    (void)self;
    (void)req;
    (void)route;
    return TG_OK;
}
TG_EXPORT void tg_plugin_observe(void* self, const tg_event* ev) {
    (void)self;
    (void)ev;
}
