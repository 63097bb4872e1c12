/* kernels/gap/gap_cpu.c — the CPU backend's GlobalAveragePooling2D, float32 or bf16
 * input (one loop body, kernels/common/cpu_dtype.h), float32 output for the head:
 * per-image double sums over the element functions' order, as the CUDA kernel of
 * kernels/gap/gap.h; backward spreads the float32 dy / HW back into the input type. */
#include <omp.h>

#include "host/base/error.h"
#include "kernels/common/cpu_ctx.h"
#include "kernels/common/cpu_dtype.h"
#include "kernels/common/cpu_simd.h"
#include "kernels/gap/gap.h"

/* One image's channel means into y; acc is this thread's [c] of doubles. The OpenMP
 * loops sit in the entry points (not in an inlined helper) so that each is compiled
 * for its constant type and cloned per instruction set. */
WN_INLINE void gap_image(int i, int hw, int c, const void *x, float *y, double *acc, wn_dtype t) {
    for (int ch = 0; ch < c; ch++) acc[ch] = 0.0;
    size_t image = (size_t)i * hw * c;
    for (int p = 0; p < hw; p++)
        for (int ch = 0; ch < c; ch++) acc[ch] += wn_cpu_load(x, image + (size_t)p * c + ch, t);
    for (int ch = 0; ch < c; ch++) y[(size_t)i * c + ch] = (float)(acc[ch] / hw);
}

/* dy / HW spread over one pixel of image i */
WN_INLINE void gap_backward_pixel(int i, int p, int hw, int c, const float *dy, void *dx,
                                  int accumulate, wn_dtype t) {
    float fhw = (float)hw;
    const float *g = dy + (size_t)i * c;
    size_t base = ((size_t)i * hw + p) * c;
    if (accumulate)
        for (int ch = 0; ch < c; ch++) wn_cpu_store(dx, base + ch, g[ch] / fhw, t, 1);
    else
        for (int ch = 0; ch < c; ch++) wn_cpu_store(dx, base + ch, g[ch] / fhw, t, 0);
}

WN_CPU_CLONES
int wn_cpu_gap_forward(wn_backend *be, int n, int hw, int c, const float *x, float *y,
                       const char *layer) {
    double *partial = wn_cpu_partials_zeroed(be, c, layer ? layer : "gap_forward");
    if (!partial) return WN_ERR;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++)
        gap_image(i, hw, c, x, y, partial + (size_t)omp_get_thread_num() * c, WN_DTYPE_F32);
    return WN_OK;
}

WN_CPU_CLONES
int wn_cpu_gap_forward_bf16(wn_backend *be, int n, int hw, int c, const wn_bf16 *x, float *y,
                            const char *layer) {
    double *partial = wn_cpu_partials_zeroed(be, c, layer ? layer : "gap_forward");
    if (!partial) return WN_ERR;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++)
        gap_image(i, hw, c, x, y, partial + (size_t)omp_get_thread_num() * c, WN_DTYPE_BF16);
    return WN_OK;
}

WN_CPU_CLONES
int wn_cpu_gap_backward(wn_backend *be, int n, int hw, int c, const float *dy, float *dx,
                        int accumulate, const char *layer) {
    (void)be, (void)layer;
#pragma omp parallel for collapse(2) schedule(static)
    for (int i = 0; i < n; i++)
        for (int p = 0; p < hw; p++) gap_backward_pixel(i, p, hw, c, dy, dx, accumulate, WN_DTYPE_F32);
    return WN_OK;
}

WN_CPU_CLONES
int wn_cpu_gap_backward_bf16(wn_backend *be, int n, int hw, int c, const float *dy, wn_bf16 *dx,
                             int accumulate, const char *layer) {
    (void)be, (void)layer;
#pragma omp parallel for collapse(2) schedule(static)
    for (int i = 0; i < n; i++)
        for (int p = 0; p < hw; p++) gap_backward_pixel(i, p, hw, c, dy, dx, accumulate, WN_DTYPE_BF16);
    return WN_OK;
}
