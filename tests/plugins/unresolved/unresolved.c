/* Test plugin: a complete handshake, but the library needs a symbol nobody
 * defines, so dlopen(RTLD_NOW) fails and the host reports dlerror()'s text. */
#include <tailgate/plugin_abi.h>

extern int tg_test_symbol_nobody_defines(void);

TG_EXPORT uint32_t tg_plugin_abi_version(void) { return TG_ABI_VERSION; }
TG_EXPORT const char* tg_plugin_name(void) { return "unresolved"; }
TG_EXPORT void* tg_plugin_create(const tg_host_api* host, const tg_args* args, char* err, size_t err_len) {
    (void)host;
    (void)args;
    (void)err;
    (void)err_len;
    return (void*)(long)tg_test_symbol_nobody_defines();
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
