/* kernels/affine_act/bn_gamma_cpu.c — the CPU backend's BatchNormalization gamma gradient.
 *
 * For BN layers with gamma (Keras scale=True, e.g. EfficientNet-Lite) in inference
 * mode, y = act(gamma * x_hat + beta) with x_hat = (x - mean) * inv_std, so
 * dL/dgamma[c] = sum over pixels of g * x_hat, g the activation-masked dy. The mask
 * and the term are the shared element functions of kernels/affine_act.h. Sums are
 * per-thread doubles, added in thread order (deterministic for a thread count).
 */
#include <omp.h>
#include <string.h>

#include "kernels/common/cpu_ctx.h"
#include "host/base/error.h"
#include "kernels/affine_act/affine_act.h"
#include "kernels/common/cpu_simd.h"

WN_CPU_CLONES
int wn_cpu_bn_gamma_backward(wn_backend *be, size_t count, int c, const float *x,
                             const float *y, const float *dy, const float *mean,
                             const float *inv_std, wn_activation act, float *dgamma,
                             const char *layer) {
    const char *who = layer ? layer : "bn_gamma_backward";
    wn_cpu_ctx *ctx = be->ctx;
    size_t pixels = count / (size_t)c;
    int a = (int)act, max_threads = omp_get_max_threads();
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
            const float *xp = x + p * c, *yp = y + p * c, *gp = dy + p * c;
            for (int ch = 0; ch < c; ch++) {
                float g = wn_act_grad(yp[ch], gp[ch], a);
                acc[ch] += wn_bn_gamma_term(g, xp[ch], mean[ch], inv_std[ch]);
            }
        }
    }
    for (int ch = 0; ch < c; ch++) {
        double s = 0.0;
        for (int t = 0; t < max_threads; t++) s += partial[(size_t)t * c + ch];
        dgamma[ch] = (float)s;
    }
    return WN_OK;
}
