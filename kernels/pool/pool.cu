/* kernels/pool/pool.cu — CUDA launchers of max and average pooling with TensorFlow's
 * geometry (kernels/pool.h), NHWC.
 *
 * Forward: one thread per output element (n, oy, ox, c); consecutive threads take
 * consecutive channels, so a warp's reads of each window cell are coalesced.
 * Backward: a gather, one thread per *input* element summing the outputs whose
 * windows cover it (wn_pool_max_dx_at / wn_pool_avg_dx_at), so no atomics and the
 * sum order is the CPU's. Max pooling re-finds each covering window's first maximum
 * from x instead of storing argmax indices: a 3x3 window costs 9 reads per covering
 * output, cheap next to the convolutions, and keeps the activation memory the same
 * as the CPU backend's.
 */
#include "kernels/common/cuda_ctx.h"
#include "kernels/pool/pool.h"

/* The window by value: kernels read it from the constant parameter bank. */
static __global__ void pool_forward_kernel(wn_window win, int kind, const float *__restrict__ x,
                                           float *__restrict__ y) {
    size_t count = (size_t)win.n * win.oh * win.ow * win.c;
    WN_GRID_LOOP(i, count) {
        size_t t = i;
        int c = (int)(t % win.c);
        t /= win.c;
        int ox = (int)(t % win.ow);
        t /= win.ow;
        int oy = (int)(t % win.oh);
        int n = (int)(t / win.oh);
        y[i] = kind == WN_POOL_MAX ? wn_pool_max_at(&win, x, n, oy, ox, c)
                                   : wn_pool_avg_at(&win, x, n, oy, ox, c);
    }
}

static __global__ void pool_backward_kernel(wn_window win, int kind, const float *__restrict__ x,
                                            const float *__restrict__ dy, float *__restrict__ dx,
                                            int accumulate) {
    size_t count = (size_t)win.n * win.h * win.w * win.c;
    WN_GRID_LOOP(i, count) {
        size_t t = i;
        int c = (int)(t % win.c);
        t /= win.c;
        int ix = (int)(t % win.w);
        t /= win.w;
        int iy = (int)(t % win.h);
        int n = (int)(t / win.h);
        float g = kind == WN_POOL_MAX ? wn_pool_max_dx_at(&win, x, dy, n, iy, ix, c)
                                      : wn_pool_avg_dx_at(&win, dy, n, iy, ix, c);
        dx[i] = accumulate ? dx[i] + g : g;
    }
}

int wn_cuda_pool_forward(wn_backend *be, const wn_window *win, wn_pool_kind kind,
                         const float *x, float *y, const char *layer) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    size_t count = (size_t)win->n * win->oh * win->ow * win->c;
    pool_forward_kernel<<<wn_cuda_blocks(ctx, count), WN_CUDA_THREADS, 0, ctx->stream>>>(
        *win, (int)kind, x, y);
    return wn_cuda_op_done(be, "pool_forward kernel", layer);
}

int wn_cuda_pool_backward(wn_backend *be, const wn_window *win, wn_pool_kind kind,
                          const float *x, const float *y, const float *dy, float *dx,
                          int accumulate, const char *layer) {
    (void)y; /* the first maximum is found again from x, as on the CPU */
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    size_t count = (size_t)win->n * win->h * win->w * win->c;
    pool_backward_kernel<<<wn_cuda_blocks(ctx, count), WN_CUDA_THREADS, 0, ctx->stream>>>(
        *win, (int)kind, x, dy, dx, accumulate);
    return wn_cuda_op_done(be, "pool_backward kernel", layer);
}
