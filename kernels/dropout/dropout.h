/* kernels/dropout/dropout.h — the counter-based random numbers of inverted dropout.
 *
 * Element i of a dropout call draws u = uniform(seed, offset + i) in [0, 1) and keeps
 * its value (times 1/(1 - rate)) iff u >= rate, like TensorFlow's dropout
 * (KERAS_SEMANTICS §9). The draw is a pure function of (seed, index): splitmix64's
 * finaliser applied to the index-th state of a splitmix64 stream seeded by the
 * mixed seed. Integer arithmetic only, then an exact conversion of the top 24 bits
 * to float, so the CPU and every GPU produce bit-identical masks.
 */
#ifndef WN_KERNELS_DROPOUT_H
#define WN_KERNELS_DROPOUT_H

#include <stdint.h>

#include "kernels/common/backend_ops.h"
#include "kernels/common/hd.h"

/* splitmix64's output function (Steele, Lea, Flood 2014): a bijective 64-bit mix. */
WN_HD static inline uint64_t wn_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* uniform(seed, index) in [0, 1): a multiple of 2^-24, exact in float. */
WN_HD static inline float wn_dropout_uniform(uint64_t seed, uint64_t index) {
    uint64_t z = wn_mix64(wn_mix64(seed) + (index + 1) * 0x9E3779B97F4A7C15ull);
    return (float)(uint32_t)(z >> 40) * (1.0f / 16777216.0f);
}

/* 1 when element `index` survives dropout at `rate`. */
WN_HD static inline int wn_dropout_keep(uint64_t seed, uint64_t index, float rate) {
    return wn_dropout_uniform(seed, index) >= rate;
}

/* The survivors' factor 1/(1 - rate), as TensorFlow computes it in float. */
WN_HD static inline float wn_dropout_scale(float rate) { return 1.0f / (1.0f - rate); }

/* y (forward) or dx (backward) for one element: v * scale when kept, else 0. */
WN_HD static inline float wn_dropout_apply(float v, uint64_t seed, uint64_t index, float rate,
                                           float scale) {
    return wn_dropout_keep(seed, index, rate) ? v * scale : 0.0f;
}


#ifdef __cplusplus
extern "C" {
#endif
/* ---- entry points: dropout_cpu.c (CPU backend), dropout.cu (CUDA backend) ---- */
int wn_cpu_dropout_forward(wn_backend *be, size_t count, float rate, uint64_t seed,
                           uint64_t offset, const float *x, float *y, const char *layer);
int wn_cpu_dropout_backward(wn_backend *be, size_t count, float rate, uint64_t seed,
                            uint64_t offset, const float *dy, float *dx, int accumulate,
                            const char *layer);
int wn_cuda_dropout_forward(wn_backend *be, size_t count, float rate, uint64_t seed,
                            uint64_t offset, const float *x, float *y, const char *layer);
int wn_cuda_dropout_backward(wn_backend *be, size_t count, float rate, uint64_t seed,
                             uint64_t offset, const float *dy, float *dx, int accumulate,
                             const char *layer);
#ifdef __cplusplus
}
#endif

#endif
