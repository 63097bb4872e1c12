/* kernels/affine_act/affine_act_cpu.c — the CPU backend's per-channel affine + activation (inference BatchNormalization, bare activations): an OpenMP loop over the
 * element functions of kernels/affine_act/affine_act.h, the formulas the CUDA kernel runs too. */
#include <omp.h>
#include <string.h>

#include "host/base/error.h"
#include "kernels/common/cpu_ctx.h"
#include "kernels/affine_act/affine_act.h"
#include "kernels/common/cpu_simd.h"

WN_CPU_CLONES
int wn_cpu_affine_act_forward(wn_backend *be, size_t count, int c, const float *x,
                              const float *scale, const float *shift, wn_activation act,
                              float *y, const char *layer) {
    (void)be;
    (void)layer;
    size_t pixels = count / (size_t)c;
    int a = (int)act;
#pragma omp parallel for schedule(static)
    for (size_t p = 0; p < pixels; p++) {
        const float *xp = x + p * c;
        float *yp = y + p * c;
        if (scale || shift) {
            for (int ch = 0; ch < c; ch++)
                yp[ch] = wn_affine_act_forward(xp[ch], scale ? scale[ch] : 1.0f,
                                               shift ? shift[ch] : 0.0f, a);
        } else {
            for (int ch = 0; ch < c; ch++) yp[ch] = wn_act_apply(xp[ch], a);
        }
    }
    return WN_OK;
}

WN_CPU_CLONES
int wn_cpu_affine_act_backward(wn_backend *be, size_t count, int c, const float *y,
                               const float *dy, const float *scale, wn_activation act,
                               float *dx, int accumulate, float *dshift, const char *layer) {
    const char *who = layer ? layer : "affine_act_backward";
    wn_cpu_ctx *ctx = be->ctx;
    size_t pixels = count / (size_t)c;
    int a = (int)act, max_threads = omp_get_max_threads();
    double *partial = NULL;
    if (dshift) {
        if (wn_cpu_buffer_reserve(&ctx->partial, (size_t)max_threads * c * sizeof(double),
                                  "reduction") != WN_OK)
            return wn_fail_context("%s: ", who);
        partial = ctx->partial.p;
        memset(partial, 0, (size_t)max_threads * c * sizeof(double));
    }
#pragma omp parallel
    {
        double *acc = partial ? partial + (size_t)omp_get_thread_num() * c : NULL;
#pragma omp for schedule(static)
        for (size_t p = 0; p < pixels; p++) {
            const float *yp = y + p * c, *gp = dy + p * c;
            float *dxp = dx ? dx + p * c : NULL;
            for (int ch = 0; ch < c; ch++) {
                float g = wn_act_grad(yp[ch], gp[ch], a);
                if (acc) acc[ch] += g;
                if (dxp) {
                    float v = wn_affine_act_dx(g, scale ? scale[ch] : 1.0f);
                    dxp[ch] = accumulate ? dxp[ch] + v : v;
                }
            }
        }
    }
    if (dshift) {
        for (int ch = 0; ch < c; ch++) {
            double s = 0.0;
            for (int t = 0; t < max_threads; t++) s += partial[(size_t)t * c + ch];
            dshift[ch] = (float)s;
        }
    }
    return WN_OK;
}

