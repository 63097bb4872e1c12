/* kernels/adam/adam.cu — Keras's Adam over one flat buffer of every trainable parameter
 * (kernels/adam.h), one launch per step. The per-step scalars (alpha, 1 - beta1,
 * 1 - beta2, eps) are computed once on the host with wn_adam_coeffs_make, exactly as
 * the CPU backend does, and passed by value, so both backends use the same floats.
 * One thread per parameter. */
#include "kernels/common/cuda_ctx.h"
#include "kernels/adam/adam.h"

static __global__ void adam_kernel(size_t count, float *__restrict__ p, const float *__restrict__ g,
                                   float *__restrict__ m, float *__restrict__ v,
                                   wn_adam_coeffs k) {
    WN_GRID_LOOP(i, count) {
        float pi = p[i], mi = m[i], vi = v[i];
        wn_adam_step(&pi, g[i], &mi, &vi, k);
        p[i] = pi, m[i] = mi, v[i] = vi;
    }
}

int wn_cuda_adam_update(wn_backend *be, size_t count, float *p, const float *g, float *m,
                        float *v, float lr, float beta1, float beta2, float eps, float weight_decay,
                        long t) {
    if (!count) return WN_OK;
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    wn_adam_coeffs k = wn_adam_coeffs_make(lr, beta1, beta2, eps, weight_decay, t);
    adam_kernel<<<wn_cuda_blocks(ctx, count), WN_CUDA_THREADS, 0, ctx->stream>>>(count, p, g, m,
                                                                                v, k);
    return wn_cuda_op_done(be, "adam_update kernel", "adam");
}
