/* kernels/adam/adam_cpu.c — the CPU backend's Keras Adam over one flat buffer: an OpenMP loop over the
 * element functions of kernels/adam/adam.h, the formulas the CUDA kernel runs too. */
#include <math.h>

#include "host/base/error.h"
#include "kernels/common/cpu_ctx.h"
#include "kernels/adam/adam.h"
#include "kernels/common/cpu_simd.h"

WN_CPU_CLONES
int wn_cpu_adam_update(wn_backend *be, size_t count, float *p, const float *g, float *m,
                       float *v, float lr, float beta1, float beta2, float eps, float weight_decay,
                       long t) {
    (void)be;
    wn_adam_coeffs k = wn_adam_coeffs_make(lr, beta1, beta2, eps, weight_decay, t);
#pragma omp parallel for schedule(static) if (count > 16384)
    for (size_t i = 0; i < count; i++) {
        /* through locals: the four arrays cannot alias, and the loop goes wide */
        float pi = p[i], mi = m[i], vi = v[i];
        wn_adam_step(&pi, g[i], &mi, &vi, k);
        p[i] = pi, m[i] = mi, v[i] = vi;
    }
    return WN_OK;
}

