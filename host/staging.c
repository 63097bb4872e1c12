/* host/staging.c — staging buffers from a caller's allocator (see host/staging.h). */
#include "host/staging.h"

#include <stdlib.h>
#include <string.h>

#include "host/base/error.h"

int wn_staging_alloc(wn_staging *s, size_t bytes, const wn_host_allocator *a) {
    memset(s, 0, sizeof *s);
    size_t rounded = (bytes + 63) / 64 * 64;
    if (rounded == 0) rounded = 64;
    if (a && a->alloc) {
        void *p = a->alloc(a->user, rounded);
        if (p) {
            s->ptr = p, s->bytes = bytes, s->pinned = a->pinned, s->from = *a;
            return WN_OK;
        }
        wn_clear_error(); /* fall back to ordinary memory */
    }
    s->ptr = aligned_alloc(64, rounded);
    if (!s->ptr) return wn_fail("out of memory for a staging buffer of %zu MB", bytes >> 20);
    s->bytes = bytes;
    return WN_OK;
}

void wn_staging_free(wn_staging *s) {
    if (!s || !s->ptr) return;
    if (s->from.alloc) s->from.free(s->from.user, s->ptr);
    else free(s->ptr);
    memset(s, 0, sizeof *s);
}
