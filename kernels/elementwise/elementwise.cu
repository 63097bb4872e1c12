/* kernels/elementwise/elementwise.cu — CUDA launchers of the element-wise arithmetic
 * (kernels/elementwise/elementwise.h): y = x + scale * r; backward dx (+)= dy,
 * dr (+)= scale * dy; y = a * b. One thread per element, grid-stride. dx may alias dy
 * (the gradient passes through), so each thread reads dy[i] before writing.
 * The scaled add is a template over the tensors' type (float, or wn_bf16 for the bf16
 * ops: float arithmetic, one rounding per stored element, kernels/common/cuda_bf16.h). */
#include "kernels/common/cuda_bf16.h"
#include "kernels/common/cuda_ctx.h"
#include "kernels/elementwise/elementwise.h"

template <typename T>
static __global__ void scaled_add_kernel(size_t count, const T *x, const T *r, float scale,
                                         T *y) {
    WN_GRID_LOOP(i, count) wn_st(y, i, wn_scaled_add(wn_ld(x, i), wn_ld(r, i), scale), 0);
}

template <typename T>
static __global__ void scaled_add_backward_kernel(size_t count, const T *dy, float scale, T *dx,
                                                  T *dr, int accumulate) {
    WN_GRID_LOOP(i, count) {
        float g = wn_ld(dy, i);
        if (dr) wn_st(dr, i, wn_scaled_add_dr(g, scale), accumulate);
        if (dx) wn_st(dx, i, g, accumulate);
    }
}

static __global__ void mul_kernel(size_t count, const float *a, const float *b, float *y) {
    WN_GRID_LOOP(i, count) y[i] = a[i] * b[i];
}

template <typename T>
static int scaled_add(wn_backend *be, size_t count, const T *x, const T *r, float scale, T *y,
                      const char *layer) {
    if (!count) return WN_OK;
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    scaled_add_kernel<<<wn_cuda_blocks(ctx, count), WN_CUDA_THREADS, 0, ctx->stream>>>(
        count, x, r, scale, y);
    return wn_cuda_op_done(be, "scaled_add kernel", layer);
}

template <typename T>
static int scaled_add_backward(wn_backend *be, size_t count, const T *dy, float scale, T *dx,
                               T *dr, int accumulate, const char *layer) {
    if (!count || (!dx && !dr)) return WN_OK;
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    scaled_add_backward_kernel<<<wn_cuda_blocks(ctx, count), WN_CUDA_THREADS, 0,
                                 ctx->stream>>>(count, dy, scale, dx, dr, accumulate);
    return wn_cuda_op_done(be, "scaled_add_backward kernel", layer);
}

int wn_cuda_scaled_add(wn_backend *be, size_t count, const float *x, const float *r,
                       float scale, float *y, const char *layer) {
    return scaled_add(be, count, x, r, scale, y, layer);
}

int wn_cuda_scaled_add_backward(wn_backend *be, size_t count, const float *dy, float scale,
                                float *dx, float *dr, int accumulate, const char *layer) {
    return scaled_add_backward(be, count, dy, scale, dx, dr, accumulate, layer);
}

int wn_cuda_scaled_add_bf16(wn_backend *be, size_t count, const wn_bf16 *x, const wn_bf16 *r,
                            float scale, wn_bf16 *y, const char *layer) {
    return scaled_add(be, count, x, r, scale, y, layer);
}

int wn_cuda_scaled_add_backward_bf16(wn_backend *be, size_t count, const wn_bf16 *dy,
                                     float scale, wn_bf16 *dx, wn_bf16 *dr, int accumulate,
                                     const char *layer) {
    return scaled_add_backward(be, count, dy, scale, dx, dr, accumulate, layer);
}

int wn_cuda_mul(wn_backend *be, size_t count, const float *a, const float *b, float *y,
                const char *layer) {
    if (!count) return WN_OK;
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    mul_kernel<<<wn_cuda_blocks(ctx, count), WN_CUDA_THREADS, 0, ctx->stream>>>(count, a, b, y);
    return wn_cuda_op_done(be, "mul kernel", layer);
}
