/* tests/host/test_staging.c — staging buffers are 64-byte aligned and writable;
 * pinned exactly when wastenet is built with CUDA and a GPU is visible (on a GPU
 * machine this checks that cudaHostAlloc is really used; elsewhere, the fallback). */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "engine/error.h"
#include "host/staging.h"

int main(void) {
    const size_t sizes[] = {1, 63, 64, 1000, (size_t)64 * 320 * 320 * 3};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
        for (int want = 0; want <= 1; want++) {
            wn_staging s;
            int rc = wn_staging_alloc(&s, sizes[k], want);
            CHECK(rc == WN_OK, "alloc %zu: %s", sizes[k], wn_last_error());
            if (rc != WN_OK) continue;
            CHECK((uintptr_t)s.ptr % 64 == 0, "alloc %zu: not 64-byte aligned", sizes[k]);
            CHECK(s.bytes == sizes[k], "alloc %zu: bytes %zu", sizes[k], s.bytes);
            CHECK(s.pinned == (want && wn_staging_gpu_present()), "alloc %zu want %d: pinned %d",
                  sizes[k], want, s.pinned);
            memset(s.ptr, 0xA5, sizes[k]);
            CHECK(((uint8_t *)s.ptr)[sizes[k] - 1] == 0xA5, "alloc %zu: not writable", sizes[k]);
            wn_staging_free(&s);
            CHECK(s.ptr == NULL, "free must clear the buffer");
        }
#ifndef WN_HAVE_CUDA
    CHECK(!wn_staging_gpu_present(), "no CUDA build, yet a GPU is reported");
#endif
    printf("  built with CUDA: %s, GPU present: %d\n",
#ifdef WN_HAVE_CUDA
           "yes",
#else
           "no",
#endif
           wn_staging_gpu_present());
    return CHECK_DONE("test_staging");
}
