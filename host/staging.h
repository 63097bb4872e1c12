/* host/staging.h — the host buffers a batch is assembled in before it goes to the
 * device: pinned (page-locked, cudaHostAlloc) when wastenet is built with CUDA and a
 * GPU is present, so that cudaMemcpyAsync from them overlaps compute; otherwise
 * 64-byte aligned ordinary memory (cache lines, SIMD loads). */
#ifndef WN_STAGING_H
#define WN_STAGING_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wn_staging {
    void *ptr;    /* [bytes], 64-byte aligned */
    size_t bytes;
    int pinned;   /* 1: from cudaHostAlloc (free with wn_staging_free only) */
} wn_staging;

/* want_pinned 1: try pinned memory (falls back to aligned memory without CUDA, without
 * a GPU, or when pinning fails). */
int wn_staging_alloc(wn_staging *s, size_t bytes, int want_pinned);
void wn_staging_free(wn_staging *s);

/* 1 when built with CUDA and at least one GPU is visible. */
int wn_staging_gpu_present(void);

#ifdef __cplusplus
}
#endif
#endif
