/* kernels/common/bf16.h — bfloat16 storage: the element type, its conversions and
 * the load/store element functions every bf16 op (CPU loop or CUDA kernel) goes
 * through, so both backends round the same way.
 *
 * bfloat16 is the top half of an IEEE float32: 1 sign, 8 exponent, 7 mantissa bits
 * (unit roundoff 2^-8 ~ 3.9e-3). float -> bf16 rounds to nearest, ties to even (what
 * oneDNN, cuDNN's __float2bfloat16_rn and TensorFlow do); NaN stays a quiet NaN (a
 * rounding carry could otherwise turn a NaN payload into infinity); bf16 -> float is
 * exact (append 16 zero bits).
 *
 * Arithmetic never happens in bf16: an op loads bf16, computes in float32 (products
 * of two bf16 values are exact in float32, sums accumulate in float32 or double) and
 * rounds once when it stores.
 */
#ifndef WN_BF16_H
#define WN_BF16_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels/common/hd.h"

/* A bfloat16 value in memory (the bits; never used for arithmetic). */
typedef uint16_t wn_bf16;

/* The storage type of an activation tensor (an executor value, its gradient). */
typedef enum { WN_DTYPE_F32 = 0, WN_DTYPE_BF16 = 1 } wn_dtype;

WN_HD static inline size_t wn_dtype_size(wn_dtype t) { return t == WN_DTYPE_BF16 ? 2 : 4; }

WN_HD static inline uint32_t wn_f32_bits(float f) {
#ifdef __CUDA_ARCH__
    return __float_as_uint(f);
#else
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
#endif
}

WN_HD static inline float wn_bits_f32(uint32_t u) {
#ifdef __CUDA_ARCH__
    return __uint_as_float(u);
#else
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
#endif
}

/* float -> bf16, round to nearest even; NaN -> quiet NaN of the same sign. */
WN_HD static inline wn_bf16 wn_bf16_from_f32(float f) {
    /* both results, then a select: a loop over this vectorises (no branch) */
    uint32_t u = wn_f32_bits(f);
    uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    uint32_t quiet_nan = (u >> 16) | 0x0040u;
    return (wn_bf16)((u & 0x7fffffffu) > 0x7f800000u ? quiet_nan : rounded);
}

/* bf16 -> float, exact. */
WN_HD static inline float wn_bf16_to_f32(wn_bf16 h) { return wn_bits_f32((uint32_t)h << 16); }

/* float rounded to the nearest bf16 value, as a float (for references and tests). */
WN_HD static inline float wn_bf16_round(float f) { return wn_bf16_to_f32(wn_bf16_from_f32(f)); }

/* y[i] = bf16(v), or y[i] = bf16(y[i] + v) when accumulating: the one store rule of a
 * bf16 gradient that several readers add to (the sum is formed in float). */
WN_HD static inline void wn_bf16_store(wn_bf16 *y, size_t i, float v, int accumulate) {
    y[i] = wn_bf16_from_f32(accumulate ? wn_bf16_to_f32(y[i]) + v : v);
}

#endif
