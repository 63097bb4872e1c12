/* tests/host/test_staging.c — staging buffers are 64-byte aligned and writable, come
 * from the caller's allocator when one is given (and go back to it), and fall back to
 * ordinary memory when that allocator fails (pinning can run out where malloc does
 * not). The backend's own allocator (pinned memory on CUDA) is checked by the GPU
 * parity suite; here a counting allocator stands in for it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "host/base/error.h"
#include "host/staging.h"

static int live, fail_next;

static void *counting_alloc(void *user, size_t bytes) {
    (void)user;
    if (fail_next) {
        fail_next = 0;
        wn_fail("pinned memory exhausted (test)");
        return NULL;
    }
    void *p = aligned_alloc(64, bytes);
    if (p) live++;
    return p;
}

static void counting_free(void *user, void *p) {
    (void)user;
    live--;
    free(p);
}

int main(void) {
    const size_t sizes[] = {1, 63, 64, 1000, (size_t)64 * 320 * 320 * 3};
    const wn_host_allocator pinned = {counting_alloc, counting_free, NULL, 1};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
        for (int mode = 0; mode < 3; mode++) { /* ordinary, allocator, failing allocator */
            wn_staging s;
            fail_next = mode == 2;
            int rc = wn_staging_alloc(&s, sizes[k], mode ? &pinned : NULL);
            CHECK(rc == WN_OK, "alloc %zu: %s", sizes[k], wn_last_error());
            if (rc != WN_OK) continue;
            CHECK((uintptr_t)s.ptr % 64 == 0, "alloc %zu: not 64-byte aligned", sizes[k]);
            CHECK(s.bytes == sizes[k], "alloc %zu: bytes %zu", sizes[k], s.bytes);
            CHECK(s.pinned == (mode == 1), "alloc %zu mode %d: pinned %d", sizes[k], mode,
                  s.pinned);
            CHECK(live == (mode == 1), "alloc %zu mode %d: %d buffers from the allocator",
                  sizes[k], mode, live);
            memset(s.ptr, 0xA5, sizes[k]);
            CHECK(((uint8_t *)s.ptr)[sizes[k] - 1] == 0xA5, "alloc %zu: not writable", sizes[k]);
            wn_staging_free(&s);
            CHECK(s.ptr == NULL, "free must clear the buffer");
            CHECK(live == 0, "alloc %zu mode %d: freed through the wrong allocator", sizes[k],
                  mode);
        }
    return CHECK_DONE("test_staging");
}
