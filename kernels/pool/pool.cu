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
 *
 * bf16 (kernels/common/backend_bf16_ops.h), as pool_bf16_cpu.c: the forward loads bf16
 * (max picks a stored value, exact; the average sums in float in scan order and
 * rounds once); the backward widens x and dy into float32 scratch (exact) and runs
 * the float gather above, rounding each dx element once.
 */
#include "kernels/common/cuda_bf16.h"
#include "kernels/common/cuda_ctx.h"
#include "kernels/pool/pool.h"

/* The window by value: kernels read it from the constant parameter bank. */
static __global__ void pool_forward_kernel(wn_window win, int kind, const float *__restrict__ x,
                                           float *__restrict__ y) {
    size_t count = (size_t)win.n * win.oh * win.ow * win.c;
    WN_GRID_LOOP(i, count) {
        int n, oy, ox, c;
        wn_nhwc_coords(i, win.oh, win.ow, win.c, &n, &oy, &ox, &c);
        y[i] = kind == WN_POOL_MAX ? wn_pool_max_at(&win, x, n, oy, ox, c)
                                   : wn_pool_avg_at(&win, x, n, oy, ox, c);
    }
}

template <typename T>
static __global__ void pool_backward_kernel(wn_window win, int kind, const float *__restrict__ x,
                                            const float *__restrict__ dy, T *__restrict__ dx,
                                            int accumulate) {
    size_t count = (size_t)win.n * win.h * win.w * win.c;
    WN_GRID_LOOP(i, count) {
        int n, iy, ix, c;
        wn_nhwc_coords(i, win.h, win.w, win.c, &n, &iy, &ix, &c);
        float g = kind == WN_POOL_MAX ? wn_pool_max_dx_at(&win, x, dy, n, iy, ix, c)
                                      : wn_pool_avg_dx_at(&win, dy, n, iy, ix, c);
        wn_st(dx, i, g, accumulate);
    }
}

/* The bf16 forward: pool_bf16_cpu.c's loop, one thread per output element. */
static __global__ void pool_forward_bf16_kernel(wn_window win, int kind,
                                                const wn_bf16 *__restrict__ x,
                                                wn_bf16 *__restrict__ y) {
    size_t count = (size_t)win.n * win.oh * win.ow * win.c;
    WN_GRID_LOOP(i, count) {
        int n, oy, ox, c;
        wn_nhwc_coords(i, win.oh, win.ow, win.c, &n, &oy, &ox, &c);
        int y0, y1, x0, x1;
        wn_pool_span(oy, win.sh, win.pad_top, win.kh, win.h, &y0, &y1);
        wn_pool_span(ox, win.sw, win.pad_left, win.kw, win.w, &x0, &x1);
        float m = wn_ld(x, wn_nhwc_index(n, y0, x0, c, win.h, win.w, win.c)), s = 0.0f;
        for (int iy = y0; iy < y1; iy++)
            for (int ix = x0; ix < x1; ix++) {
                float v = wn_ld(x, wn_nhwc_index(n, iy, ix, c, win.h, win.w, win.c));
                if (v > m) m = v;
                s += v;
            }
        wn_st(y, i, kind == WN_POOL_MAX ? m : s / (float)wn_pool_avg_divisor(&win, oy, ox), 0);
    }
}

static __global__ void widen_kernel(size_t count, const wn_bf16 *__restrict__ x,
                                    float *__restrict__ y) {
    WN_GRID_LOOP(i, count) y[i] = wn_ld(x, i);
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

int wn_cuda_pool_forward_bf16(wn_backend *be, const wn_window *win, wn_pool_kind kind,
                              const wn_bf16 *x, wn_bf16 *y, const char *layer) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    size_t count = (size_t)win->n * win->oh * win->ow * win->c;
    if (!count) return WN_OK;
    pool_forward_bf16_kernel<<<wn_cuda_blocks(ctx, count), WN_CUDA_THREADS, 0, ctx->stream>>>(
        *win, (int)kind, x, y);
    return wn_cuda_op_done(be, "pool_forward_bf16 kernel", layer);
}

int wn_cuda_pool_backward_bf16(wn_backend *be, const wn_window *win, wn_pool_kind kind,
                               const wn_bf16 *x, const wn_bf16 *y, const wn_bf16 *dy,
                               wn_bf16 *dx, int accumulate, const char *layer) {
    (void)y;
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    size_t nx = (size_t)win->n * win->h * win->w * win->c;
    size_t ny = (size_t)win->n * win->oh * win->ow * win->c;
    if (!nx) return WN_OK;
    float *xf = NULL;
    if (kind == WN_POOL_MAX) {
        xf = (float *)wn_cuda_scratch(be, nx * sizeof(float), "bf16 pooling staging (x)", layer);
        if (!xf) return WN_ERR;
    }
    float *dyf = (float *)wn_cuda_scratch(be, (ny ? ny : 1) * sizeof(float),
                                          "bf16 pooling staging (dy)", layer);
    if (!dyf) {
        wn_cuda_scratch_free(be, xf);
        return WN_ERR;
    }
    if (xf) widen_kernel<<<wn_cuda_blocks(ctx, nx), WN_CUDA_THREADS, 0, ctx->stream>>>(nx, x, xf);
    if (ny) widen_kernel<<<wn_cuda_blocks(ctx, ny), WN_CUDA_THREADS, 0, ctx->stream>>>(ny, dy, dyf);
    pool_backward_kernel<<<wn_cuda_blocks(ctx, nx), WN_CUDA_THREADS, 0, ctx->stream>>>(
        *win, (int)kind, xf, dyf, dx, accumulate);
    /* stream order: freed after the kernels that read them */
    wn_cuda_scratch_free(be, xf);
    wn_cuda_scratch_free(be, dyf);
    return wn_cuda_op_done(be, "pool_backward_bf16 kernels", layer);
}
