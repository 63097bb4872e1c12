/* host/staging.c — pinned or aligned staging buffers (see host/staging.h). */
#include "host/staging.h"

#include <stdlib.h>
#include <string.h>

#include "engine/error.h"

#ifdef WN_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

int wn_staging_gpu_present(void) {
#ifdef WN_HAVE_CUDA
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError(); /* no driver / no device: clear the sticky-free error */
        return 0;
    }
    return n > 0;
#else
    return 0;
#endif
}

int wn_staging_alloc(wn_staging *s, size_t bytes, int want_pinned) {
    memset(s, 0, sizeof *s);
    size_t rounded = (bytes + 63) / 64 * 64;
    if (rounded == 0) rounded = 64;
#ifdef WN_HAVE_CUDA
    if (want_pinned && wn_staging_gpu_present()) {
        void *p = NULL;
        /* Portable: usable from any device context the training loop selects. */
        if (cudaHostAlloc(&p, rounded, cudaHostAllocPortable) == cudaSuccess) {
            s->ptr = p, s->bytes = bytes, s->pinned = 1;
            return WN_OK;
        }
        (void)cudaGetLastError(); /* fall back to ordinary memory */
    }
#else
    (void)want_pinned;
#endif
    s->ptr = aligned_alloc(64, rounded);
    if (!s->ptr) return wn_fail("out of memory for a staging buffer of %zu MB", bytes >> 20);
    s->bytes = bytes;
    return WN_OK;
}

void wn_staging_free(wn_staging *s) {
    if (!s || !s->ptr) return;
#ifdef WN_HAVE_CUDA
    if (s->pinned) {
        cudaFreeHost(s->ptr);
        memset(s, 0, sizeof *s);
        return;
    }
#endif
    free(s->ptr);
    memset(s, 0, sizeof *s);
}
