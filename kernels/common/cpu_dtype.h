/* kernels/common/cpu_dtype.h — one CPU loop body for both storage types.
 *
 * A loop written with wn_cpu_load / wn_cpu_store and a wn_dtype that is a constant
 * where it is inlined compiles to the float32 loop or to the bf16 loop (load widens,
 * store rounds once with kernels/common/bf16.h's rule): the CPU backend's float32 and
 * bf16 entry points of an op share that body instead of repeating it. WN_INLINE
 * forces the inlining that makes the type, and any other constant flags of a row
 * function, disappear from the inner loop (so it vectorises).
 *
 * Keep OpenMP regions out of WN_INLINE helpers: GCC outlines a parallel region
 * before it inlines, so a region inside a helper is compiled once, with the type a
 * run-time value and without WN_CPU_CLONES' copies (it made the bf16 step slower, not
 * faster). The entry points hold the parallel loops and call inlined row functions.
 */
#ifndef WN_CPU_DTYPE_H
#define WN_CPU_DTYPE_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/common/bf16.h"

#define WN_INLINE static inline __attribute__((always_inline))

/* element i of a float32 or bf16 array, as a float (exact) */
WN_INLINE float wn_cpu_load(const void *p, size_t i, wn_dtype t) {
    return t == WN_DTYPE_BF16 ? wn_bf16_to_f32(((const wn_bf16 *)p)[i]) : ((const float *)p)[i];
}

/* p[i] = v, or p[i] = p[i] + v when accumulating (the sum in float, one rounding) */
WN_INLINE void wn_cpu_store(void *p, size_t i, float v, wn_dtype t, int accumulate) {
    if (t == WN_DTYPE_BF16) {
        wn_bf16_store((wn_bf16 *)p, i, v, accumulate);
    } else {
        float *f = p;
        f[i] = accumulate ? f[i] + v : v;
    }
}

/* keep ? v : +0.0f as a bit mask: the same value, but GCC vectorises a loop that adds
 * it into a double sum (with the ternary it gives up: "control flow in loop") */
WN_INLINE float wn_cpu_keep_or_zero(int keep, float v) {
    uint32_t u = wn_f32_bits(v) & (0u - (uint32_t)(keep != 0));
    return wn_bits_f32(u);
}

#endif
