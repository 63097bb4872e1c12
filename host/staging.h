/* host/staging.h — the host buffers a batch is assembled in before it goes to the
 * backend. Their memory comes from a caller's allocator: the backend's host_alloc
 * (pinned, page-locked memory on CUDA, so that copies from it overlap compute) when a
 * training run passes one, otherwise 64-byte aligned ordinary memory (cache lines,
 * SIMD loads). host/ knows no backend: the allocator is two callbacks. */
#ifndef WN_STAGING_H
#define WN_STAGING_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wn_host_allocator {
    void *(*alloc)(void *user, size_t bytes); /* NULL (with a reason) on failure */
    void (*free)(void *user, void *p);
    void *user;
    int pinned; /* 1: its memory is page-locked (asynchronous device copies) */
} wn_host_allocator;

typedef struct wn_staging {
    void *ptr;    /* [bytes], 64-byte aligned */
    size_t bytes;
    int pinned;   /* 1: from a pinned allocator */
    wn_host_allocator from; /* who frees it (alloc == NULL: free()) */
} wn_staging;

/* `a` NULL: aligned ordinary memory. Otherwise a's memory, falling back to ordinary
 * memory when a's allocation fails (pinning can run out where malloc does not). */
int wn_staging_alloc(wn_staging *s, size_t bytes, const wn_host_allocator *a);
void wn_staging_free(wn_staging *s);

#ifdef __cplusplus
}
#endif
#endif
