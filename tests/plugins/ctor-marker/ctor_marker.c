/* Test fixture: a shared object whose constructor leaves a mark in the
 * environment (TAILGATE_TEST_CTOR_MARKER=loaded) the moment it is loaded, before
 * any handshake could refuse it. Tests use it to prove a file was never opened. */
#include <stdlib.h>

__attribute__((constructor)) static void leave_mark(void) { setenv("TAILGATE_TEST_CTOR_MARKER", "loaded", 1); }
