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
#include <string.h>

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

WN_INLINE int gamma_backward(wn_backend *be, size_t count, int c, const void *x, const void *y,
                             const void *dy, const float *mean, const float *inv_std,
                             wn_activation act, float *dgamma, const char *layer, wn_dtype t) {
    const char *who = layer ? layer : "bn_gamma_backward";
    wn_cpu_ctx *ctx = be->ctx;
    size_t pixels = count / (size_t)c;
    int max_threads = omp_get_max_threads();
    if (wn_cpu_buffer_reserve(&ctx->partial, (size_t)max_threads * c * sizeof(double),
                              "reduction") != WN_OK)
        return wn_fail_context("%s: ", who);
    double *partial = ctx->partial.p;
    memset(partial, 0, (size_t)max_threads * c * sizeof(double));
#pragma omp parallel
    {
        double *acc = partial + (size_t)omp_get_thread_num() * c;
#pragma omp for schedule(static)
        for (size_t p = 0; p < pixels; p++) {
            if (act == WN_ACT_RELU)
                gamma_row_as(c, p * c, x, y, dy, mean, inv_std, acc, WN_ACT_RELU, t);
            else if (act == WN_ACT_RELU6)
                gamma_row_as(c, p * c, x, y, dy, mean, inv_std, acc, WN_ACT_RELU6, t);
            else
                gamma_row_as(c, p * c, x, y, dy, mean, inv_std, acc, WN_ACT_NONE, t);
        }
    }
    for (int ch = 0; ch < c; ch++) {
        double s = 0.0;
        for (int th = 0; th < max_threads; th++) s += partial[(size_t)th * c + ch];
        dgamma[ch] = (float)s;
    }
    return WN_OK;
}

WN_CPU_CLONES
int wn_cpu_bn_gamma_backward(wn_backend *be, size_t count, int c, const float *x,
                             const float *y, const float *dy, const float *mean,
                             const float *inv_std, wn_activation act, float *dgamma,
                             const char *layer) {
    return gamma_backward(be, count, c, x, y, dy, mean, inv_std, act, dgamma, layer,
                          WN_DTYPE_F32);
}

WN_CPU_CLONES
int wn_cpu_bn_gamma_backward_bf16(wn_backend *be, size_t count, int c, const wn_bf16 *x,
                                  const wn_bf16 *y, const wn_bf16 *dy, const float *mean,
                                  const float *inv_std, wn_activation act, float *dgamma,
                                  const char *layer) {
    return gamma_backward(be, count, c, x, y, dy, mean, inv_std, act, dgamma, layer,
                          WN_DTYPE_BF16);
}
