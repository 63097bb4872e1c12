/* kernels/gap/gap_cpu.c — the CPU backend's GlobalAveragePooling2D: an OpenMP loop over the
 * element functions of kernels/gap/gap.h, the formulas the CUDA kernel runs too. */
#include <omp.h>
#include <string.h>

#include "host/base/error.h"
#include "kernels/common/cpu_ctx.h"
#include "kernels/gap/gap.h"
#include "kernels/common/cpu_simd.h"

WN_CPU_CLONES
int wn_cpu_gap_forward(wn_backend *be, int n, int hw, int c, const float *x, float *y,
                       const char *layer) {
    const char *who = layer ? layer : "gap_forward";
    wn_cpu_ctx *ctx = be->ctx;
    int max_threads = omp_get_max_threads();
    if (wn_cpu_buffer_reserve(&ctx->partial, (size_t)max_threads * c * sizeof(double),
                              "reduction") != WN_OK)
        return wn_fail_context("%s: ", who);
    double *partial = ctx->partial.p;
#pragma omp parallel
    {
        double *acc = partial + (size_t)omp_get_thread_num() * c;
#pragma omp for schedule(static)
        for (int i = 0; i < n; i++) {
            for (int ch = 0; ch < c; ch++) acc[ch] = 0.0;
            const float *xi = x + (size_t)i * hw * c;
            for (int p = 0; p < hw; p++)
                for (int ch = 0; ch < c; ch++) acc[ch] += xi[(size_t)p * c + ch];
            for (int ch = 0; ch < c; ch++) y[(size_t)i * c + ch] = (float)(acc[ch] / hw);
        }
    }
    return WN_OK;
}

WN_CPU_CLONES
int wn_cpu_gap_backward(wn_backend *be, int n, int hw, int c, const float *dy, float *dx,
                        int accumulate, const char *layer) {
    (void)be;
    (void)layer;
    float fhw = (float)hw;
#pragma omp parallel for collapse(2) schedule(static)
    for (int i = 0; i < n; i++)
        for (int p = 0; p < hw; p++) {
            const float *g = dy + (size_t)i * c;
            float *out = dx + ((size_t)i * hw + p) * c;
            for (int ch = 0; ch < c; ch++) {
                float v = g[ch] / fhw;
                out[ch] = accumulate ? out[ch] + v : v;
            }
        }
    return WN_OK;
}

