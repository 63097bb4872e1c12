/* engine/backend_cuda.h — what the CUDA backend offers beyond engine/backend.h:
 * device facts, memory accounting, a planned arena, double-buffered batch uploads
 * from pinned memory, and event timers for benchmarks.
 *
 * Every function exists in every build: in a build without CUDA (or given a
 * backend that is not CUDA) they return WN_ERR / 0 with a reason, so callers need
 * no #ifdef.
 */
#ifndef WN_BACKEND_CUDA_H
#define WN_BACKEND_CUDA_H

#include <stddef.h>

#include "engine/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when `be` is a CUDA backend. */
int wn_backend_is_cuda(const wn_backend *be);

/* Deterministic convolutions: from now on only cuDNN algorithms that report
 * CUDNN_DETERMINISTIC are chosen (no atomics in backward data/filter), so the same
 * inputs give the same bits run to run. Default off (it may cost speed); on in the
 * parity tests; also WN_CUDA_DETERMINISTIC=1. */
int wn_cuda_set_deterministic(wn_backend *be, int on);

typedef struct wn_cuda_device_info {
    char name[128];          /* e.g. "NVIDIA H100 80GB HBM3" */
    int cc_major, cc_minor;  /* compute capability */
    int sm_count;
    size_t total_bytes;      /* device memory */
    double clock_ghz;        /* boost clock the driver reports (0 if unknown) */
    /* Datasheet-style peak rates from SM count x clock x per-SM throughput of the
     * architecture (dense, no sparsity), TFLOP/s; 0 when the architecture is not in
     * the table. An estimate for "fraction of peak", not a measurement. */
    double peak_fp32_tflops, peak_tf32_tflops, peak_bf16_tflops;
} wn_cuda_device_info;

/* Facts about GPU `device`; WN_ERR with a reason when there is none. */
int wn_cuda_device_query(int device, wn_cuda_device_info *info);

typedef struct wn_cuda_memory {
    size_t in_use;        /* bytes in live blocks of the backend's arena */
    size_t peak;          /* the most in use at any time since creation */
    size_t reserved;      /* bytes the arena holds from the driver */
    size_t largest_free;  /* largest block the arena can hand out without the driver */
    size_t device_free;   /* cudaMemGetInfo: free on the device now */
    size_t device_total;
} wn_cuda_memory;

int wn_cuda_memory_info(wn_backend *be, wn_cuda_memory *mem);

/* Takes `bytes` from the driver in one piece up front (a planned arena); later
 * allocations that fit come out of it. An out-of-memory failure says how much the
 * device has free, so the caller can name the largest batch that would fit. */
int wn_cuda_reserve(wn_backend *be, size_t bytes);

/* Pinned (page-locked) host memory for staging batches; NULL with a reason. */
void *wn_cuda_host_alloc(size_t bytes);
void wn_cuda_host_free(void *p);

/* Double-buffered uploads. A batch goes up on the copy stream while the compute
 * stream runs the previous step:
 *   wn_cuda_upload(be, slot, dev, pinned, bytes)  copy stream: waits until compute
 *        released `slot` (its previous contents were read), then copies;
 *   wn_cuda_upload_acquire(be, slot)   compute stream waits for that copy;
 *   ... ops that read dev ...
 *   wn_cuda_upload_release(be, slot)   marks the slot's device buffer free again;
 *   wn_cuda_upload_host_wait(be, slot) the host waits before refilling `pinned`.
 * slot is 0 or 1. */
int wn_cuda_upload(wn_backend *be, int slot, void *dst, const void *pinned_src, size_t bytes);
int wn_cuda_upload_acquire(wn_backend *be, int slot);
int wn_cuda_upload_release(wn_backend *be, int slot);
int wn_cuda_upload_host_wait(wn_backend *be, int slot);

/* CUDA-event timing of the compute stream: start, then stop returns the
 * milliseconds between them (waits for the stop event). */
int wn_cuda_timer_start(wn_backend *be);
int wn_cuda_timer_stop(wn_backend *be, float *ms);

#ifdef __cplusplus
}
#endif
#endif
