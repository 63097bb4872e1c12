/* kernels/common/cuda_bf16.h — typed loads and stores for the CUDA kernels that run on
 * float32 or bf16 tensors (one template per kernel instead of a bf16 copy of each):
 * wn_ld widens (exact for bf16), wn_st stores a float result, rounding a bf16 target
 * once to nearest even, and adding to it when accumulating — the rules of
 * kernels/common/bf16.h, so the CPU loops and the GPU kernels round the same way.
 * CUDA C++ only. */
#ifndef WN_CUDA_BF16_H
#define WN_CUDA_BF16_H

#include <stddef.h>

#include "kernels/common/bf16.h"

static __device__ __forceinline__ float wn_ld(const float *p, size_t i) { return p[i]; }
static __device__ __forceinline__ float wn_ld(const wn_bf16 *p, size_t i) {
    return wn_bf16_to_f32(p[i]);
}

/* p[i] = v, or p[i] += v when accumulating (the sum formed in float). */
static __device__ __forceinline__ void wn_st(float *p, size_t i, float v, int accumulate) {
    p[i] = accumulate ? p[i] + v : v;
}
static __device__ __forceinline__ void wn_st(wn_bf16 *p, size_t i, float v, int accumulate) {
    wn_bf16_store(p, i, v, accumulate);
}

#endif
