/* kernels/elementwise/elementwise_cpu.c — the CPU backend's element-wise arithmetic,
 * float32 and bf16 storage (one loop body each, kernels/common/cpu_dtype.h): OpenMP
 * loops over the element functions of kernels/elementwise/elementwise.h, the formulas
 * the CUDA kernels run too. */
#include "host/base/error.h"
#include "kernels/common/cpu_ctx.h"
#include "kernels/common/cpu_dtype.h"
#include "kernels/common/cpu_simd.h"
#include "kernels/elementwise/elementwise.h"

/* The OpenMP loops sit in the entry points (not in an inlined helper) so that each
 * is compiled for its constant type and cloned per instruction set. */
WN_INLINE void scaled_add_at(size_t i, const void *x, const void *r, float scale, void *y,
                             wn_dtype t) {
    wn_cpu_store(y, i, wn_scaled_add(wn_cpu_load(x, i, t), wn_cpu_load(r, i, t), scale), t, 0);
}

/* dr first: dx may alias dy (the gradient passes through unchanged). */
WN_INLINE void scaled_add_backward_at(size_t i, const void *dy, float scale, void *dx, void *dr,
                                      int accumulate, wn_dtype t) {
    float g = wn_cpu_load(dy, i, t);
    if (dr) wn_cpu_store(dr, i, wn_scaled_add_dr(g, scale), t, accumulate);
    if (dx) wn_cpu_store(dx, i, g, t, accumulate);
}

WN_CPU_CLONES
int wn_cpu_scaled_add(wn_backend *be, size_t count, const float *x, const float *r,
                      float scale, float *y, const char *layer) {
    (void)be, (void)layer;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < count; i++) scaled_add_at(i, x, r, scale, y, WN_DTYPE_F32);
    return WN_OK;
}

WN_CPU_CLONES
int wn_cpu_scaled_add_bf16(wn_backend *be, size_t count, const wn_bf16 *x, const wn_bf16 *r,
                           float scale, wn_bf16 *y, const char *layer) {
    (void)be, (void)layer;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < count; i++) scaled_add_at(i, x, r, scale, y, WN_DTYPE_BF16);
    return WN_OK;
}

WN_CPU_CLONES
int wn_cpu_scaled_add_backward(wn_backend *be, size_t count, const float *dy, float scale,
                               float *dx, float *dr, int accumulate, const char *layer) {
    (void)be, (void)layer;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < count; i++)
        scaled_add_backward_at(i, dy, scale, dx, dr, accumulate, WN_DTYPE_F32);
    return WN_OK;
}

WN_CPU_CLONES
int wn_cpu_scaled_add_backward_bf16(wn_backend *be, size_t count, const wn_bf16 *dy,
                                    float scale, wn_bf16 *dx, wn_bf16 *dr, int accumulate,
                                    const char *layer) {
    (void)be, (void)layer;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < count; i++)
        scaled_add_backward_at(i, dy, scale, dx, dr, accumulate, WN_DTYPE_BF16);
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
