/* kernels/common/cpu_buffer.c — reusable host buffers of the CPU ops (see cpu_ctx.h). */
#include <stdlib.h>

#include "host/base/error.h"
#include "kernels/common/cpu_ctx.h"

int wn_cpu_buffer_reserve(wn_cpu_buffer *buf, size_t bytes, const char *what) {
    if (buf->bytes >= bytes) return WN_OK;
    size_t rounded = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, rounded);
    if (!p)
        return wn_fail("out of memory allocating %zu MiB for the %s buffer; use a smaller "
                       "--batch", rounded >> 20, what);
    free(buf->p);
    buf->p = p, buf->bytes = rounded;
    return WN_OK;
}

void wn_cpu_buffer_release(wn_cpu_buffer *buf) {
    free(buf->p);
    buf->p = NULL, buf->bytes = 0;
}

