/* kernels/concat/concat_bf16_cpu.c — the CPU backend's bf16 channel concatenation: the
 * loops of concat_cpu.c on 2-byte elements (a copy needs no rounding; an accumulating
 * backward adds in float and rounds once, kernels/common/bf16.h). */
#include <string.h>

#include "host/base/error.h"
#include "kernels/common/bf16.h"
#include "kernels/concat/concat.h"
#include "kernels/common/cpu_simd.h"

WN_CPU_CLONES
int wn_cpu_concat_forward_bf16(wn_backend *be, size_t pixels, int n_in,
                               const wn_bf16 *const *x, const int *channels, wn_bf16 *y,
                               const char *layer) {
    (void)be, (void)layer;
    int total = 0;
    for (int i = 0; i < n_in; i++) total += channels[i];
#pragma omp parallel for schedule(static)
    for (size_t p = 0; p < pixels; p++) {
        wn_bf16 *out = y + p * total;
        for (int i = 0; i < n_in; i++) {
            memcpy(out, x[i] + p * channels[i], (size_t)channels[i] * sizeof(wn_bf16));
            out += channels[i];
        }
    }
    return WN_OK;
}

WN_CPU_CLONES
int wn_cpu_concat_backward_bf16(wn_backend *be, size_t pixels, int n_in, const wn_bf16 *dy,
                                const int *channels, wn_bf16 *const *dx, int accumulate,
                                const char *layer) {
    (void)be, (void)layer;
    int total = 0;
    for (int i = 0; i < n_in; i++) total += channels[i];
#pragma omp parallel for schedule(static)
    for (size_t p = 0; p < pixels; p++) {
        const wn_bf16 *g = dy + p * total;
        for (int i = 0; i < n_in; i++) {
            int ci = channels[i];
            if (dx[i]) {
                wn_bf16 *out = dx[i] + p * ci;
                if (accumulate)
                    for (int ch = 0; ch < ci; ch++) wn_bf16_store(out, (size_t)ch, wn_bf16_to_f32(g[ch]), 1);
                else
                    memcpy(out, g, (size_t)ci * sizeof(wn_bf16));
            }
            g += ci;
        }
    }
    return WN_OK;
}
