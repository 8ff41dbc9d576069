/* Test plugin: exports all six entry points but claims ABI version 99.
 * The host must refuse it before calling tg_plugin_create. */
#include <tailgate/plugin_abi.h>

#include <stdio.h>
#include <stdlib.h>

TG_EXPORT uint32_t tg_plugin_abi_version(void) { return 99u; }
TG_EXPORT const char* tg_plugin_name(void) { return "bad-version"; }
TG_EXPORT void* tg_plugin_create(const tg_host_api* host, const tg_args* args, char* err, size_t err_len) {
    (void)host;
    (void)args;
    (void)err;
    (void)err_len;
    /* Reaching this is a host bug: make it loud. */
    fprintf(stderr, "bad-version: tg_plugin_create called despite ABI mismatch\n");
    abort();
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
