/* kernels/affine_act/bn_gamma_cpu.c — the CPU backend's BatchNormalization gamma gradient,
 * float32 and bf16 storage (one loop body, kernels/common/cpu_dtype.h).
 *
 * For BN layers with gamma (Keras scale=True, e.g. EfficientNet-Lite) in inference
 * mode, y = act(gamma * x_hat + beta) with x_hat = (x - mean) * inv_std, so
 * dL/dgamma[c] = sum over pixels of g * x_hat, g the activation-masked dy. The mask
 * and the term are the shared element functions of kernels/affine_act.h. Sums are
 * per-thread doubles, added in thread order (deterministic for a thread count).
 */
#include <omp.h>

#include "host/base/error.h"
#include "kernels/affine_act/affine_act.h"
#include "kernels/common/cpu_ctx.h"
#include "kernels/common/cpu_dtype.h"
#include "kernels/common/cpu_simd.h"

/* one pixel's terms; act and t are constants where inlined (the loop vectorises) */
WN_INLINE void gamma_row_as(int c, size_t base, const void *x, const void *y, const void *dy,
                            const float *mean, const float *inv_std, double *acc, int act,
                            wn_dtype t) {
    for (int ch = 0; ch < c; ch++) {
        float g = wn_cpu_keep_or_zero(wn_act_passes(wn_cpu_load(y, base + ch, t), act),
                                      wn_cpu_load(dy, base + ch, t));
        acc[ch] += wn_bn_gamma_term(g, wn_cpu_load(x, base + ch, t), mean[ch], inv_std[ch]);
    }
}

/* one pixel: the row instance for the activation */
WN_INLINE void gamma_row(int c, size_t base, const void *x, const void *y, const void *dy,
                         const float *mean, const float *inv_std, double *acc, int act,
                         wn_dtype t) {
    if (act == WN_ACT_RELU) gamma_row_as(c, base, x, y, dy, mean, inv_std, acc, WN_ACT_RELU, t);
    else if (act == WN_ACT_RELU6) gamma_row_as(c, base, x, y, dy, mean, inv_std, acc, WN_ACT_RELU6, t);
    else gamma_row_as(c, base, x, y, dy, mean, inv_std, acc, WN_ACT_NONE, t);
}

/* The OpenMP loops sit in the entry points (not in an inlined helper) so that each
 * is compiled for its constant type and cloned per instruction set. */
WN_CPU_CLONES
int wn_cpu_bn_gamma_backward(wn_backend *be, size_t count, int c, const float *x,
                             const float *y, const float *dy, const float *mean,
                             const float *inv_std, wn_activation act, float *dgamma,
                             const char *layer) {
    double *partial = wn_cpu_partials_zeroed(be, c, layer ? layer : "bn_gamma_backward");
    if (!partial) return WN_ERR;
#pragma omp parallel
    {
        double *acc = partial + (size_t)omp_get_thread_num() * c;
#pragma omp for schedule(static)
        for (size_t p = 0; p < count / (size_t)c; p++)
            gamma_row(c, p * c, x, y, dy, mean, inv_std, acc, (int)act, WN_DTYPE_F32);
    }
    wn_cpu_partials_sum(partial, c, dgamma);
    return WN_OK;
}

WN_CPU_CLONES
int wn_cpu_bn_gamma_backward_bf16(wn_backend *be, size_t count, int c, const wn_bf16 *x,
                                  const wn_bf16 *y, const wn_bf16 *dy, const float *mean,
                                  const float *inv_std, wn_activation act, float *dgamma,
                                  const char *layer) {
    double *partial = wn_cpu_partials_zeroed(be, c, layer ? layer : "bn_gamma_backward");
    if (!partial) return WN_ERR;
#pragma omp parallel
    {
        double *acc = partial + (size_t)omp_get_thread_num() * c;
#pragma omp for schedule(static)
        for (size_t p = 0; p < count / (size_t)c; p++)
            gamma_row(c, p * c, x, y, dy, mean, inv_std, acc, (int)act, WN_DTYPE_BF16);
    }
    wn_cpu_partials_sum(partial, c, dgamma);
    return WN_OK;
}
