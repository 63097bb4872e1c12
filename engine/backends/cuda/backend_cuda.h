/* engine/backends/cuda/backend_cuda.h — the CUDA backend's constructor, and facts
 * about the GPU that the command line reports (name, compute capability, memory, peak rates). Everything a run needs from
 * the CUDA backend goes through the backend contract (kernels/common/backend_ops.h).
 *
 * Exists in every build: without CUDA, wn_backend_cuda and wn_cuda_device_query fail
 * with a reason and wn_cuda_available answers 0, so callers need no #ifdef.
 */
#ifndef WN_BACKEND_CUDA_H
#define WN_BACKEND_CUDA_H

#include <stddef.h>

#include "kernels/common/backend_ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when this build has CUDA support and a usable GPU is present. */
int wn_cuda_available(void);

/* The CUDA backend on device `device`, or NULL with a reason (no CUDA build, no
 * GPU, driver too old). */
wn_backend *wn_backend_cuda(int device, wn_precision precision);

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

#ifdef __cplusplus
}
#endif
#endif
