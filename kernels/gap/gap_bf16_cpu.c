/* kernels/gap/gap_bf16_cpu.c — the CPU backend's GlobalAveragePooling2D between the bf16
 * backbone and the float32 head: bf16 x -> float32 y (double sums, as gap_cpu.c), and
 * float32 dy -> bf16 dx. */
#include <omp.h>

#include "host/base/error.h"
#include "kernels/common/bf16.h"
#include "kernels/common/cpu_ctx.h"
#include "kernels/gap/gap.h"
#include "kernels/common/cpu_simd.h"

WN_CPU_CLONES
int wn_cpu_gap_forward_bf16(wn_backend *be, int n, int hw, int c, const wn_bf16 *x, float *y,
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
            const wn_bf16 *xi = x + (size_t)i * hw * c;
            for (int p = 0; p < hw; p++)
                for (int ch = 0; ch < c; ch++) acc[ch] += wn_bf16_to_f32(xi[(size_t)p * c + ch]);
            for (int ch = 0; ch < c; ch++) y[(size_t)i * c + ch] = (float)(acc[ch] / hw);
        }
    }
    return WN_OK;
}

WN_CPU_CLONES
int wn_cpu_gap_backward_bf16(wn_backend *be, int n, int hw, int c, const float *dy, wn_bf16 *dx,
                             int accumulate, const char *layer) {
    (void)be, (void)layer;
    float fhw = (float)hw;
#pragma omp parallel for collapse(2) schedule(static)
    for (int i = 0; i < n; i++)
        for (int p = 0; p < hw; p++) {
            const float *g = dy + (size_t)i * c;
            size_t base = ((size_t)i * hw + p) * c;
            for (int ch = 0; ch < c; ch++) wn_bf16_store(dx, base + ch, g[ch] / fhw, accumulate);
        }
    return WN_OK;
}
