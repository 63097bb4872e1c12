/* kernels/gap/gap.cu — GlobalAveragePooling2D, x[N, HW, C] -> y[N, C], and its gradient.
 *
 * There is no formula to share beyond "mean over pixels", so no element-function
 * header: forward sums each (n, c) column in pixel order in double and divides once,
 * as the CPU backend does (engine/cpu_ops.c), one thread per (n, c) — consecutive
 * threads read consecutive channels. Backward: dx = dy / HW (float division, as on
 * the CPU), one thread per dx element.
 */
#include "kernels/common/cuda_ctx.h"
#include "kernels/gap/gap.h"

static __global__ void gap_forward_kernel(int n, int hw, int c, const float *__restrict__ x,
                                          float *__restrict__ y) {
    WN_GRID_LOOP(i, (size_t)n * c) {
        size_t img = i / (size_t)c;
        int ch = (int)(i % (size_t)c);
        const float *xi = x + img * (size_t)hw * c + ch;
        double acc = 0.0;
        for (int p = 0; p < hw; p++) acc += xi[(size_t)p * c];
        y[i] = (float)(acc / hw);
    }
}

static __global__ void gap_backward_kernel(int n, int hw, int c, const float *__restrict__ dy,
                                           float *__restrict__ dx, int accumulate) {
    float fhw = (float)hw;
    WN_GRID_LOOP(i, (size_t)n * hw * c) {
        size_t img = i / ((size_t)hw * c);
        int ch = (int)(i % (size_t)c);
        float v = dy[img * c + ch] / fhw;
        dx[i] = accumulate ? dx[i] + v : v;
    }
}

int wn_cuda_gap_forward(wn_backend *be, int n, int hw, int c, const float *x, float *y,
                        const char *layer) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    gap_forward_kernel<<<wn_cuda_blocks(ctx, (size_t)n * c), WN_CUDA_THREADS, 0, ctx->stream>>>(
        n, hw, c, x, y);
    return wn_cuda_op_done(be, "gap_forward kernel", layer);
}

int wn_cuda_gap_backward(wn_backend *be, int n, int hw, int c, const float *dy, float *dx,
                         int accumulate, const char *layer) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    size_t count = (size_t)n * hw * c;
    gap_backward_kernel<<<wn_cuda_blocks(ctx, count), WN_CUDA_THREADS, 0, ctx->stream>>>(
        n, hw, c, dy, dx, accumulate);
    return wn_cuda_op_done(be, "gap_backward kernel", layer);
}
