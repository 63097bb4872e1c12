/* kernels/concat/concat_cpu.c — the CPU backend's channel concatenation: an OpenMP loop over the
 * element functions of kernels/concat/concat.h, the formulas the CUDA kernel runs too. */
#include <string.h>

#include "host/base/error.h"
#include "kernels/common/cpu_ctx.h"
#include "kernels/concat/concat.h"
#include "kernels/common/cpu_simd.h"

int wn_cpu_concat_forward(wn_backend *be, size_t pixels, int n_in, const float *const *x,
                          const int *channels, float *y, const char *layer) {
    (void)be;
    (void)layer;
    int total = 0;
    for (int i = 0; i < n_in; i++) total += channels[i];
#pragma omp parallel for schedule(static)
    for (size_t p = 0; p < pixels; p++) {
        float *out = y + p * total;
        for (int i = 0; i < n_in; i++) {
            memcpy(out, x[i] + p * channels[i], (size_t)channels[i] * sizeof(float));
            out += channels[i];
        }
    }
    return WN_OK;
}

WN_CPU_CLONES
int wn_cpu_concat_backward(wn_backend *be, size_t pixels, int n_in, const float *dy,
                           const int *channels, float *const *dx, int accumulate,
                           const char *layer) {
    (void)be;
    (void)layer;
    int total = 0;
    for (int i = 0; i < n_in; i++) total += channels[i];
#pragma omp parallel for schedule(static)
    for (size_t p = 0; p < pixels; p++) {
        const float *g = dy + p * total;
        for (int i = 0; i < n_in; i++) {
            int ci = channels[i];
            if (dx[i]) {
                float *out = dx[i] + p * ci;
                if (accumulate)
                    for (int ch = 0; ch < ci; ch++) out[ch] += g[ch];
                else
                    memcpy(out, g, (size_t)ci * sizeof(float));
            }
            g += ci;
        }
    }
    return WN_OK;
}

