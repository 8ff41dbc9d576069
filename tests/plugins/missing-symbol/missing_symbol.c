/* Test plugin: a correct ABI version and name, but no tg_plugin_route.
 * The host must refuse it before calling tg_plugin_create. */
#include <tailgate/plugin_abi.h>

#include <stdio.h>
#include <stdlib.h>

TG_EXPORT uint32_t tg_plugin_abi_version(void) { return TG_ABI_VERSION; }
TG_EXPORT const char* tg_plugin_name(void) { return "missing-symbol"; }
TG_EXPORT void* tg_plugin_create(const tg_host_api* host, const tg_args* args, char* err, size_t err_len) {
    (void)host;
    (void)args;
    (void)err;
    (void)err_len;
    fprintf(stderr, "missing-symbol: tg_plugin_create called although tg_plugin_route is missing\n");
    abort();
}
TG_EXPORT void tg_plugin_destroy(void* self) { (void)self; }
TG_EXPORT void tg_plugin_observe(void* self, const tg_event* ev) {
    (void)self;
    (void)ev;
}
