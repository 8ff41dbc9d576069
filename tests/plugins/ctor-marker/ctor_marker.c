/* Test fixture: a shared object that leaves a mark the moment it is loaded,
 * before any handshake could refuse it: TAILGATE_TEST_CTOR_MARKER=loaded in its
 * process's environment (unit tests), and an empty file at the path named by
 * TAILGATE_TEST_CTOR_MARKER_FILE, if set (e2e tests, from outside the
 * gateway). Tests use it to prove a file was never opened. */
#include <stdio.h>
#include <stdlib.h>

__attribute__((constructor)) static void leave_mark(void) {
    setenv("TAILGATE_TEST_CTOR_MARKER", "loaded", 1);
    const char* file = getenv("TAILGATE_TEST_CTOR_MARKER_FILE");
    if (file != NULL) {
        FILE* f = fopen(file, "w");
        if (f != NULL) fclose(f);
    }
}
