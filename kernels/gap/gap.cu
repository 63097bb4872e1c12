/* kernels/gap/gap.cu — GlobalAveragePooling2D, x[N, HW, C] -> y[N, C], and its gradient.
 *
 * There is no formula to share beyond "mean over pixels", so no element-function
 * header: forward sums each (n, c) column in pixel order in double and divides once,
 * as the CPU backend does (engine/cpu_ops.c), one thread per (n, c) — consecutive
 * threads read consecutive channels. Backward: dx = dy / HW (float division, as on
 * the CPU), one thread per dx element.
 * x and dx are float or wn_bf16 (the bf16 ops: GAP is where the bf16 backbone meets the
 * float32 head, so y and dy are float32 either way; kernels/common/cuda_bf16.h).
 */
#include "kernels/common/cuda_bf16.h"
#include "kernels/common/cuda_ctx.h"
#include "kernels/gap/gap.h"

template <typename T>
static __global__ void gap_forward_kernel(int n, int hw, int c, const T *__restrict__ x,
                                          float *__restrict__ y) {
    WN_GRID_LOOP(i, (size_t)n * c) {
        size_t img = i / (size_t)c;
        int ch = (int)(i % (size_t)c);
        const T *xi = x + img * (size_t)hw * c + ch;
        double acc = 0.0;
        for (int p = 0; p < hw; p++) acc += wn_ld(xi, (size_t)p * c);
        y[i] = (float)(acc / hw);
    }
}

template <typename T>
static __global__ void gap_backward_kernel(int n, int hw, int c, const float *__restrict__ dy,
                                           T *__restrict__ dx, int accumulate) {
    float fhw = (float)hw;
    WN_GRID_LOOP(i, (size_t)n * hw * c) {
        size_t img = i / ((size_t)hw * c);
        int ch = (int)(i % (size_t)c);
        wn_st(dx, i, dy[img * c + ch] / fhw, accumulate);
    }
}

template <typename T>
static int gap_forward(wn_backend *be, int n, int hw, int c, const T *x, float *y,
                       const char *layer) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    gap_forward_kernel<<<wn_cuda_blocks(ctx, (size_t)n * c), WN_CUDA_THREADS, 0, ctx->stream>>>(
        n, hw, c, x, y);
    return wn_cuda_op_done(be, "gap_forward kernel", layer);
}

template <typename T>
static int gap_backward(wn_backend *be, int n, int hw, int c, const float *dy, T *dx,
                        int accumulate, const char *layer) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    size_t count = (size_t)n * hw * c;
    gap_backward_kernel<<<wn_cuda_blocks(ctx, count), WN_CUDA_THREADS, 0, ctx->stream>>>(
        n, hw, c, dy, dx, accumulate);
    return wn_cuda_op_done(be, "gap_backward kernel", layer);
}

int wn_cuda_gap_forward(wn_backend *be, int n, int hw, int c, const float *x, float *y,
                        const char *layer) {
    return gap_forward(be, n, hw, c, x, y, layer);
}

int wn_cuda_gap_backward(wn_backend *be, int n, int hw, int c, const float *dy, float *dx,
                         int accumulate, const char *layer) {
    return gap_backward(be, n, hw, c, dy, dx, accumulate, layer);
}

int wn_cuda_gap_forward_bf16(wn_backend *be, int n, int hw, int c, const wn_bf16 *x, float *y,
                             const char *layer) {
    return gap_forward(be, n, hw, c, x, y, layer);
}

int wn_cuda_gap_backward_bf16(wn_backend *be, int n, int hw, int c, const float *dy,
                              wn_bf16 *dx, int accumulate, const char *layer) {
    return gap_backward(be, n, hw, c, dy, dx, accumulate, layer);
}
