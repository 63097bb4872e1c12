/* kernels/residual.cu — CUDA launchers of InceptionResNetV2's residual scale layer
 * (kernels/residual.h): y = x + scale * r; backward dx (+)= dy, dr (+)= scale * dy.
 * One thread per element, grid-stride. dx may alias dy (the gradient passes through),
 * so each thread reads dy[i] before writing. */
#include "engine/cuda_internal.h"
#include "kernels/residual.h"

static __global__ void residual_forward_kernel(size_t count, const float *x, const float *r,
                                               float scale, float *y) {
    WN_GRID_LOOP(i, count) y[i] = wn_residual_forward(x[i], r[i], scale);
}

static __global__ void residual_backward_kernel(size_t count, const float *dy, float scale,
                                                float *dx, float *dr, int accumulate) {
    WN_GRID_LOOP(i, count) {
        float g = dy[i];
        if (dr) dr[i] = accumulate ? dr[i] + wn_residual_dr(g, scale) : wn_residual_dr(g, scale);
        if (dx) dx[i] = accumulate ? dx[i] + g : g;
    }
}

int wn_cuda_residual_forward(wn_backend *be, size_t count, const float *x, const float *r,
                             float scale, float *y, const char *layer) {
    if (!count) return WN_OK;
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    residual_forward_kernel<<<wn_cuda_blocks(ctx, count), WN_CUDA_THREADS, 0, ctx->stream>>>(
        count, x, r, scale, y);
    return wn_cuda_op_done(be, "residual_forward kernel", layer);
}

int wn_cuda_residual_backward(wn_backend *be, size_t count, const float *dy, float scale,
                              float *dx, float *dr, int accumulate, const char *layer) {
    if (!count || (!dx && !dr)) return WN_OK;
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    residual_backward_kernel<<<wn_cuda_blocks(ctx, count), WN_CUDA_THREADS, 0, ctx->stream>>>(
        count, dy, scale, dx, dr, accumulate);
    return wn_cuda_op_done(be, "residual_backward kernel", layer);
}
