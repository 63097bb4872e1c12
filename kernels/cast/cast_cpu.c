/* kernels/cast/cast_cpu.c — the CPU backend's float32 <-> bf16 casts: OpenMP loops over
 * the element functions of kernels/common/bf16.h, the rounding the CUDA kernels use. */
#include "host/base/error.h"
#include "kernels/cast/cast.h"
#include "kernels/common/cpu_simd.h"

WN_CPU_CLONES
int wn_cpu_cast_to_bf16(wn_backend *be, size_t count, const float *x, wn_bf16 *y,
                        int accumulate) {
    (void)be;
#pragma omp parallel for schedule(static) if (count > 65536)
    for (size_t i = 0; i < count; i++) wn_bf16_store(y, i, x[i], accumulate);
    return WN_OK;
}

WN_CPU_CLONES
int wn_cpu_cast_to_f32(wn_backend *be, size_t count, const wn_bf16 *x, float *y,
                       int accumulate) {
    (void)be;
#pragma omp parallel for schedule(static) if (count > 65536)
    for (size_t i = 0; i < count; i++) {
        float v = wn_bf16_to_f32(x[i]);
        y[i] = accumulate ? y[i] + v : v;
    }
    return WN_OK;
}
