/* kernels/elementwise/elementwise_cpu.c — the CPU backend's element-wise arithmetic:
 * OpenMP loops over the element functions of kernels/elementwise/elementwise.h, the
 * formulas the CUDA kernels run too. */
#include "host/base/error.h"
#include "kernels/common/cpu_ctx.h"
#include "kernels/elementwise/elementwise.h"
#include "kernels/common/cpu_simd.h"

WN_CPU_CLONES
int wn_cpu_scaled_add(wn_backend *be, size_t count, const float *x, const float *r,
                      float scale, float *y, const char *layer) {
    (void)be, (void)layer;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < count; i++) y[i] = wn_scaled_add(x[i], r[i], scale);
    return WN_OK;
}

WN_CPU_CLONES
int wn_cpu_scaled_add_backward(wn_backend *be, size_t count, const float *dy, float scale,
                               float *dx, float *dr, int accumulate, const char *layer) {
    (void)be, (void)layer;
    /* dr first: dx may alias dy (the gradient passes through unchanged). */
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < count; i++) {
        float g = dy[i];
        if (dr) dr[i] = accumulate ? dr[i] + wn_scaled_add_dr(g, scale) : wn_scaled_add_dr(g, scale);
        if (dx) dx[i] = accumulate ? dx[i] + g : g;
    }
    return WN_OK;
}

WN_CPU_CLONES
int wn_cpu_mul(wn_backend *be, size_t count, const float *a, const float *b, float *y,
               const char *layer) {
    (void)be, (void)layer;
#pragma omp parallel for schedule(static) if (count > 65536)
    for (size_t i = 0; i < count; i++) y[i] = a[i] * b[i];
    return WN_OK;
}
