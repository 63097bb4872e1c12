/* kernels/affine_act/affine_act_cpu.c — the CPU backend's per-channel affine + activation
 * (inference BatchNormalization folded to scale/shift, bare activations), float32 and
 * bf16 storage: one loop body per direction for both types (kernels/common/cpu_dtype.h),
 * over the element functions of kernels/affine_act/affine_act.h that the CUDA kernel
 * runs too; float32 arithmetic, per-thread double sums for the shift gradient.
 *
 * Each pixel's channel loop is a row function whose activation, type and flags are
 * constants after inlining (the switch in *_row picks the instance), so every
 * instance is a straight loop that WN_CPU_CLONES compiles 8 or 16 lanes wide.
 */
#include <omp.h>

#include "host/base/error.h"
#include "kernels/affine_act/affine_act.h"
#include "kernels/common/cpu_ctx.h"
#include "kernels/common/cpu_dtype.h"
#include "kernels/common/cpu_simd.h"

/* ---- forward: y = act(x * scale + shift), or act(x) for a bare activation */

WN_INLINE void forward_row_as(int c, size_t base, const void *x, const float *scale,
                              const float *shift, void *y, int act, wn_dtype t, int affine) {
    for (int ch = 0; ch < c; ch++) {
        float v = wn_cpu_load(x, base + ch, t);
        float r = affine ? wn_affine_act_forward(v, scale ? scale[ch] : 1.0f,
                                                 shift ? shift[ch] : 0.0f, act)
                         : wn_act_apply(v, act);
        wn_cpu_store(y, base + ch, r, t, 0);
    }
}

/* float32 keeps a bare activation as act(x) (x * 1 + 0 would turn -0 into +0); bf16
 * has always applied the affine form, and keeps it. Each pointer combination is its
 * own call with the null ones spelled as constants: the compiler then folds the row's
 * ternaries and vectorises every case (with a run-time null test left in the loop,
 * bf16's bare ReLU after IRv2's residual adds ran scalar: 23% of the AMX bf16 step). */
WN_INLINE void forward_row(int c, size_t base, const void *x, const float *scale,
                           const float *shift, void *y, int act, wn_dtype t) {
    int affine = t == WN_DTYPE_BF16 || scale || shift;
    switch (act) {
#define WN_FORWARD_CASE(A)                                                             \
    case A:                                                                            \
        if (!affine) forward_row_as(c, base, x, NULL, NULL, y, A, t, 0);               \
        else if (scale && shift) forward_row_as(c, base, x, scale, shift, y, A, t, 1); \
        else if (scale) forward_row_as(c, base, x, scale, NULL, y, A, t, 1);           \
        else if (shift) forward_row_as(c, base, x, NULL, shift, y, A, t, 1);           \
        else forward_row_as(c, base, x, NULL, NULL, y, A, t, 1);                       \
        break;
        WN_FORWARD_CASE(WN_ACT_RELU)
        WN_FORWARD_CASE(WN_ACT_RELU6)
    default:
        WN_FORWARD_CASE(WN_ACT_NONE)
#undef WN_FORWARD_CASE
    }
}

/* The entry points hold the OpenMP loops themselves: GCC outlines a parallel region
 * before it inlines, so a region inside an inlined helper would be compiled once,
 * neither specialised by the constant type nor cloned per instruction set. */
WN_CPU_CLONES
int wn_cpu_affine_act_forward(wn_backend *be, size_t count, int c, const float *x,
                              const float *scale, const float *shift, wn_activation act,
                              float *y, const char *layer) {
    (void)be, (void)layer;
#pragma omp parallel for schedule(static)
    for (size_t p = 0; p < count / (size_t)c; p++)
        forward_row(c, p * c, x, scale, shift, y, (int)act, WN_DTYPE_F32);
    return WN_OK;
}

WN_CPU_CLONES
int wn_cpu_affine_act_forward_bf16(wn_backend *be, size_t count, int c, const wn_bf16 *x,
                                   const float *scale, const float *shift, wn_activation act,
                                   wn_bf16 *y, const char *layer) {
    (void)be, (void)layer;
#pragma omp parallel for schedule(static)
    for (size_t p = 0; p < count / (size_t)c; p++)
        forward_row(c, p * c, x, scale, shift, y, (int)act, WN_DTYPE_BF16);
    return WN_OK;
}

/* ---- backward: g = act'(y) dy; dshift += g; dx (=|+=) g * scale */

WN_INLINE void backward_row_as(int c, size_t base, const void *y, const void *dy,
                               const float *scale, double *acc, void *dx, int act, wn_dtype t,
                               int scaled, int accumulate) {
    if (acc)
        for (int ch = 0; ch < c; ch++)
            acc[ch] += wn_cpu_keep_or_zero(wn_act_passes(wn_cpu_load(y, base + ch, t), act),
                                           wn_cpu_load(dy, base + ch, t));
    if (dx)
        for (int ch = 0; ch < c; ch++) {
            float g = wn_act_grad(wn_cpu_load(y, base + ch, t), wn_cpu_load(dy, base + ch, t), act);
            wn_cpu_store(dx, base + ch, wn_affine_act_dx(g, scaled ? scale[ch] : 1.0f), t,
                         accumulate);
        }
}

WN_INLINE void backward_row(int c, size_t base, const void *y, const void *dy,
                            const float *scale, double *acc, void *dx, int accumulate, int act,
                            wn_dtype t) {
    switch (act) {
#define WN_BACKWARD_CASE(A)                                                                   \
    case A:                                                                                   \
        if (scale && accumulate) backward_row_as(c, base, y, dy, scale, acc, dx, A, t, 1, 1); \
        else if (scale) backward_row_as(c, base, y, dy, scale, acc, dx, A, t, 1, 0);          \
        else if (accumulate) backward_row_as(c, base, y, dy, NULL, acc, dx, A, t, 0, 1);      \
        else backward_row_as(c, base, y, dy, NULL, acc, dx, A, t, 0, 0);                      \
        break;
        WN_BACKWARD_CASE(WN_ACT_RELU)
        WN_BACKWARD_CASE(WN_ACT_RELU6)
    default:
        WN_BACKWARD_CASE(WN_ACT_NONE)
#undef WN_BACKWARD_CASE
    }
}

WN_CPU_CLONES
int wn_cpu_affine_act_backward(wn_backend *be, size_t count, int c, const float *y,
                               const float *dy, const float *scale, wn_activation act,
                               float *dx, int accumulate, float *dshift, const char *layer) {
    double *partial = NULL;
    if (dshift && !(partial = wn_cpu_partials_zeroed(be, c, layer ? layer : "affine_act_backward")))
        return WN_ERR;
#pragma omp parallel
    {
        double *acc = partial ? partial + (size_t)omp_get_thread_num() * c : NULL;
#pragma omp for schedule(static)
        for (size_t p = 0; p < count / (size_t)c; p++)
            backward_row(c, p * c, y, dy, scale, acc, dx, accumulate, (int)act, WN_DTYPE_F32);
    }
    if (dshift) wn_cpu_partials_sum(partial, c, dshift);
    return WN_OK;
}

WN_CPU_CLONES
int wn_cpu_affine_act_backward_bf16(wn_backend *be, size_t count, int c, const wn_bf16 *y,
                                    const wn_bf16 *dy, const float *scale, wn_activation act,
                                    wn_bf16 *dx, int accumulate, float *dshift,
                                    const char *layer) {
    double *partial = NULL;
    if (dshift && !(partial = wn_cpu_partials_zeroed(be, c, layer ? layer : "affine_act_backward")))
        return WN_ERR;
#pragma omp parallel
    {
        double *acc = partial ? partial + (size_t)omp_get_thread_num() * c : NULL;
#pragma omp for schedule(static)
        for (size_t p = 0; p < count / (size_t)c; p++)
            backward_row(c, p * c, y, dy, scale, acc, dx, accumulate, (int)act, WN_DTYPE_BF16);
    }
    if (dshift) wn_cpu_partials_sum(partial, c, dshift);
    return WN_OK;
}
