/* kernels/dropout/dropout.cu — CUDA launchers of inverted dropout with the counter-based
 * RNG of kernels/dropout.h: element i keeps its value iff uniform(seed, offset + i)
 * >= rate, computed with integer arithmetic only, so the mask is bit-identical to
 * the CPU backend's for the same (seed, offset). One thread per element. */
#include "kernels/common/cuda_ctx.h"
#include "kernels/dropout/dropout.h"

static __global__ void dropout_kernel(size_t count, float rate, float scale, uint64_t seed,
                                      uint64_t offset, const float *in, float *out,
                                      int accumulate) {
    WN_GRID_LOOP(i, count) {
        float v = wn_dropout_apply(in[i], seed, offset + i, rate, scale);
        out[i] = accumulate ? out[i] + v : v;
    }
}

int wn_cuda_dropout_forward(wn_backend *be, size_t count, float rate, uint64_t seed,
                            uint64_t offset, const float *x, float *y, const char *layer) {
    if (!count) return WN_OK;
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    dropout_kernel<<<wn_cuda_blocks(ctx, count), WN_CUDA_THREADS, 0, ctx->stream>>>(
        count, rate, wn_dropout_scale(rate), seed, offset, x, y, 0);
    return wn_cuda_op_done(be, "dropout_forward kernel", layer);
}

int wn_cuda_dropout_backward(wn_backend *be, size_t count, float rate, uint64_t seed,
                             uint64_t offset, const float *dy, float *dx, int accumulate,
                             const char *layer) {
    if (!count) return WN_OK;
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    dropout_kernel<<<wn_cuda_blocks(ctx, count), WN_CUDA_THREADS, 0, ctx->stream>>>(
        count, rate, wn_dropout_scale(rate), seed, offset, dy, dx, accumulate);
    return wn_cuda_op_done(be, "dropout_backward kernel", layer);
}
