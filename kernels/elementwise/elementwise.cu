/* kernels/elementwise/elementwise.cu — CUDA launchers of the element-wise arithmetic
 * (kernels/elementwise/elementwise.h): y = x + scale * r; backward dx (+)= dy,
 * dr (+)= scale * dy; y = a * b. One thread per element, grid-stride. dx may alias dy
 * (the gradient passes through), so each thread reads dy[i] before writing. */
#include "kernels/common/cuda_ctx.h"
#include "kernels/elementwise/elementwise.h"

static __global__ void scaled_add_kernel(size_t count, const float *x, const float *r,
                                         float scale, float *y) {
    WN_GRID_LOOP(i, count) y[i] = wn_scaled_add(x[i], r[i], scale);
}

static __global__ void scaled_add_backward_kernel(size_t count, const float *dy, float scale,
                                                  float *dx, float *dr, int accumulate) {
    WN_GRID_LOOP(i, count) {
        float g = dy[i];
        if (dr) dr[i] = accumulate ? dr[i] + wn_scaled_add_dr(g, scale) : wn_scaled_add_dr(g, scale);
        if (dx) dx[i] = accumulate ? dx[i] + g : g;
    }
}

static __global__ void mul_kernel(size_t count, const float *a, const float *b, float *y) {
    WN_GRID_LOOP(i, count) y[i] = a[i] * b[i];
}

int wn_cuda_scaled_add(wn_backend *be, size_t count, const float *x, const float *r,
                       float scale, float *y, const char *layer) {
    if (!count) return WN_OK;
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    scaled_add_kernel<<<wn_cuda_blocks(ctx, count), WN_CUDA_THREADS, 0, ctx->stream>>>(
        count, x, r, scale, y);
    return wn_cuda_op_done(be, "scaled_add kernel", layer);
}

int wn_cuda_scaled_add_backward(wn_backend *be, size_t count, const float *dy, float scale,
                                float *dx, float *dr, int accumulate, const char *layer) {
    if (!count || (!dx && !dr)) return WN_OK;
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    scaled_add_backward_kernel<<<wn_cuda_blocks(ctx, count), WN_CUDA_THREADS, 0,
                                 ctx->stream>>>(count, dy, scale, dx, dr, accumulate);
    return wn_cuda_op_done(be, "scaled_add_backward kernel", layer);
}

int wn_cuda_mul(wn_backend *be, size_t count, const float *a, const float *b, float *y,
                const char *layer) {
    if (!count) return WN_OK;
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    mul_kernel<<<wn_cuda_blocks(ctx, count), WN_CUDA_THREADS, 0, ctx->stream>>>(count, a, b, y);
    return wn_cuda_op_done(be, "mul kernel", layer);
}
