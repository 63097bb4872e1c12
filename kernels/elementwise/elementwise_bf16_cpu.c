/* kernels/elementwise/elementwise_bf16_cpu.c — the CPU backend's bf16 scaled add and its
 * backward: the loops of elementwise_cpu.c over the same element functions
 * (kernels/elementwise/elementwise.h), loading and storing bf16. */
#include "host/base/error.h"
#include "kernels/common/bf16.h"
#include "kernels/elementwise/elementwise.h"
#include "kernels/common/cpu_simd.h"

WN_CPU_CLONES
int wn_cpu_scaled_add_bf16(wn_backend *be, size_t count, const wn_bf16 *x, const wn_bf16 *r,
                           float scale, wn_bf16 *y, const char *layer) {
    (void)be, (void)layer;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < count; i++)
        y[i] = wn_bf16_from_f32(wn_scaled_add(wn_bf16_to_f32(x[i]), wn_bf16_to_f32(r[i]), scale));
    return WN_OK;
}

WN_CPU_CLONES
int wn_cpu_scaled_add_backward_bf16(wn_backend *be, size_t count, const wn_bf16 *dy,
                                    float scale, wn_bf16 *dx, wn_bf16 *dr, int accumulate,
                                    const char *layer) {
    (void)be, (void)layer;
    /* dr first: dx may alias dy. */
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < count; i++) {
        float g = wn_bf16_to_f32(dy[i]);
        if (dr) wn_bf16_store(dr, i, wn_scaled_add_dr(g, scale), accumulate);
        if (dx) wn_bf16_store(dx, i, g, accumulate);
    }
    return WN_OK;
}
