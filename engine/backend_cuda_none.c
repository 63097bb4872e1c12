/* engine/backend_cuda_none.c — engine/backend_cuda.h in a build without CUDA: every
 * call fails with a reason (or answers "no"), so callers need no #ifdef. CUDA builds
 * define these in engine/backend_cuda.cu instead. */
#include "engine/backend_cuda.h"

#include "engine/error.h"

#ifndef WN_HAVE_CUDA

static int no_cuda(void) {
    return wn_fail("this wastenet was built without CUDA (no CUDA toolkit with cuDNN and "
                   "cuBLAS was found at build time); use --backend cpu or rebuild with CUDA");
}

int wn_backend_is_cuda(const wn_backend *be) {
    (void)be;
    return 0;
}

int wn_cuda_set_deterministic(wn_backend *be, int on) {
    (void)be, (void)on;
    return no_cuda();
}

int wn_cuda_device_query(int device, wn_cuda_device_info *info) {
    (void)device, (void)info;
    return no_cuda();
}

int wn_cuda_memory_info(wn_backend *be, wn_cuda_memory *mem) {
    (void)be, (void)mem;
    return no_cuda();
}

int wn_cuda_reserve(wn_backend *be, size_t bytes) {
    (void)be, (void)bytes;
    return no_cuda();
}

void *wn_cuda_host_alloc(size_t bytes) {
    (void)bytes;
    no_cuda();
    return NULL;
}

void wn_cuda_host_free(void *p) { (void)p; }

int wn_cuda_upload(wn_backend *be, int slot, void *dst, const void *pinned_src, size_t bytes) {
    (void)be, (void)slot, (void)dst, (void)pinned_src, (void)bytes;
    return no_cuda();
}

int wn_cuda_upload_acquire(wn_backend *be, int slot) {
    (void)be, (void)slot;
    return no_cuda();
}

int wn_cuda_upload_release(wn_backend *be, int slot) {
    (void)be, (void)slot;
    return no_cuda();
}

int wn_cuda_upload_host_wait(wn_backend *be, int slot) {
    (void)be, (void)slot;
    return no_cuda();
}

int wn_cuda_timer_start(wn_backend *be) {
    (void)be;
    return no_cuda();
}

int wn_cuda_timer_stop(wn_backend *be, float *ms) {
    (void)be, (void)ms;
    return no_cuda();
}

#else
/* ISO C forbids an empty translation unit. */
typedef int wn_backend_cuda_none_unused;
#endif
