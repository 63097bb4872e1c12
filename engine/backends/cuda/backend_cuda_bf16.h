/* engine/backends/cuda/backend_cuda_bf16.h — the CUDA backend's bf16 ops table
 * (backend_cuda_bf16.cu), set as wn_backend.bf16 by the constructor. */
#ifndef WN_BACKEND_CUDA_BF16_H
#define WN_BACKEND_CUDA_BF16_H

#include "kernels/common/backend_bf16_ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when a GPU of this compute capability runs cuDNN's bf16 convolutions (8.0 on). */
static inline int wn_cuda_bf16_supported(int cc_major) { return cc_major >= 8; }

/* The table for this (constructed) CUDA backend, or NULL where its GPU has no bf16. */
const wn_backend_bf16_ops *wn_backend_cuda_bf16_ops(wn_backend *be);

#ifdef __cplusplus
}
#endif
#endif
