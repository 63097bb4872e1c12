/* kernels/dropout/dropout_cpu.c — the CPU backend's inverted dropout with a counter-based RNG: an OpenMP loop over the
 * element functions of kernels/dropout/dropout.h, the formulas the CUDA kernel runs too. */

#include "host/base/error.h"
#include "kernels/common/cpu_ctx.h"
#include "kernels/dropout/dropout.h"

int wn_cpu_dropout_forward(wn_backend *be, size_t count, float rate, uint64_t seed,
                           uint64_t offset, const float *x, float *y, const char *layer) {
    (void)be;
    (void)layer;
    float scale = wn_dropout_scale(rate);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < count; i++) y[i] = wn_dropout_apply(x[i], seed, offset + i, rate, scale);
    return WN_OK;
}

int wn_cpu_dropout_backward(wn_backend *be, size_t count, float rate, uint64_t seed,
                            uint64_t offset, const float *dy, float *dx, int accumulate,
                            const char *layer) {
    (void)be;
    (void)layer;
    float scale = wn_dropout_scale(rate);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < count; i++) {
        float v = wn_dropout_apply(dy[i], seed, offset + i, rate, scale);
        dx[i] = accumulate ? dx[i] + v : v;
    }
    return WN_OK;
}
