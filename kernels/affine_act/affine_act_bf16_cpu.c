/* kernels/affine_act/affine_act_bf16_cpu.c — the CPU backend's bf16 affine + activation
 * and BN gamma gradient: the loops of affine_act_cpu.c and bn_gamma_cpu.c over the same
 * element functions (kernels/affine_act/affine_act.h), loading and storing bf16
 * (kernels/common/bf16.h); float32 arithmetic, double per-thread sums. */
#include <omp.h>
#include <string.h>

#include "host/base/error.h"
#include "kernels/affine_act/affine_act.h"
#include "kernels/common/bf16.h"
#include "kernels/common/cpu_ctx.h"
#include "kernels/common/cpu_simd.h"

WN_CPU_CLONES
int wn_cpu_affine_act_forward_bf16(wn_backend *be, size_t count, int c, const wn_bf16 *x,
                                   const float *scale, const float *shift, wn_activation act,
                                   wn_bf16 *y, const char *layer) {
    (void)be, (void)layer;
    size_t pixels = count / (size_t)c;
    int a = (int)act;
#pragma omp parallel for schedule(static)
    for (size_t p = 0; p < pixels; p++) {
        const wn_bf16 *xp = x + p * c;
        wn_bf16 *yp = y + p * c;
        for (int ch = 0; ch < c; ch++)
            yp[ch] = wn_bf16_from_f32(wn_affine_act_forward(wn_bf16_to_f32(xp[ch]),
                                                            scale ? scale[ch] : 1.0f,
                                                            shift ? shift[ch] : 0.0f, a));
    }
    return WN_OK;
}

/* Per-thread double partial sums [threads][c], zeroed. */
static double *partials(wn_backend *be, int c, const char *who) {
    wn_cpu_ctx *ctx = be->ctx;
    size_t bytes = (size_t)omp_get_max_threads() * c * sizeof(double);
    if (wn_cpu_buffer_reserve(&ctx->partial, bytes, "reduction") != WN_OK) {
        wn_fail_context("%s: ", who);
        return NULL;
    }
    memset(ctx->partial.p, 0, bytes);
    return ctx->partial.p;
}

static void reduce(const double *partial, int c, float *out) {
    int threads = omp_get_max_threads();
    for (int ch = 0; ch < c; ch++) {
        double s = 0.0;
        for (int t = 0; t < threads; t++) s += partial[(size_t)t * c + ch];
        out[ch] = (float)s;
    }
}

WN_CPU_CLONES
int wn_cpu_affine_act_backward_bf16(wn_backend *be, size_t count, int c, const wn_bf16 *y,
                                    const wn_bf16 *dy, const float *scale, wn_activation act,
                                    wn_bf16 *dx, int accumulate, float *dshift,
                                    const char *layer) {
    const char *who = layer ? layer : "affine_act_backward";
    size_t pixels = count / (size_t)c;
    int a = (int)act;
    double *partial = NULL;
    if (dshift && !(partial = partials(be, c, who))) return WN_ERR;
#pragma omp parallel
    {
        double *acc = partial ? partial + (size_t)omp_get_thread_num() * c : NULL;
#pragma omp for schedule(static)
        for (size_t p = 0; p < pixels; p++) {
            const wn_bf16 *yp = y + p * c, *gp = dy + p * c;
            for (int ch = 0; ch < c; ch++) {
                float g = wn_act_grad(wn_bf16_to_f32(yp[ch]), wn_bf16_to_f32(gp[ch]), a);
                if (acc) acc[ch] += g;
                if (dx) wn_bf16_store(dx, p * c + ch, wn_affine_act_dx(g, scale ? scale[ch] : 1.0f),
                                      accumulate);
            }
        }
    }
    if (dshift) reduce(partial, c, dshift);
    return WN_OK;
}

WN_CPU_CLONES
int wn_cpu_bn_gamma_backward_bf16(wn_backend *be, size_t count, int c, const wn_bf16 *x,
                                  const wn_bf16 *y, const wn_bf16 *dy, const float *mean,
                                  const float *inv_std, wn_activation act, float *dgamma,
                                  const char *layer) {
    const char *who = layer ? layer : "bn_gamma_backward";
    size_t pixels = count / (size_t)c;
    int a = (int)act;
    double *partial = partials(be, c, who);
    if (!partial) return WN_ERR;
#pragma omp parallel
    {
        double *acc = partial + (size_t)omp_get_thread_num() * c;
#pragma omp for schedule(static)
        for (size_t p = 0; p < pixels; p++) {
            const wn_bf16 *xp = x + p * c, *yp = y + p * c, *gp = dy + p * c;
            for (int ch = 0; ch < c; ch++) {
                float g = wn_act_grad(wn_bf16_to_f32(yp[ch]), wn_bf16_to_f32(gp[ch]), a);
                acc[ch] += wn_bn_gamma_term(g, wn_bf16_to_f32(xp[ch]), mean[ch], inv_std[ch]);
            }
        }
    }
    reduce(partial, c, dgamma);
    return WN_OK;
}
