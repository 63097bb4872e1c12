/* kernels/concat/concat.cu — channel concatenation of n_in NHWC tensors with the same
 * pixels, and its gradient (slices of dy back to each input).
 *
 * Pure data movement, so no element-function header: one launch per input, one
 * thread per element of that input; y[p, off + c] = x_i[p, c]. Backward copies (or
 * adds, when accumulating) the slice back; inputs whose dx is NULL are skipped.
 * A template over the element type: float, or wn_bf16 for the bf16 ops (a copy needs no
 * rounding; an accumulating backward adds in float and rounds once).
 */
#include "kernels/common/cuda_bf16.h"
#include "kernels/common/cuda_ctx.h"
#include "kernels/concat/concat.h"

template <typename T>
static __global__ void concat_slice_kernel(size_t pixels, int ci, int total, int offset,
                                           const T *__restrict__ src, T *__restrict__ dst,
                                           int to_concat, int accumulate) {
    WN_GRID_LOOP(i, pixels * ci) {
        size_t p = i / (size_t)ci;
        int ch = (int)(i % (size_t)ci);
        size_t wide = p * total + offset + ch;
        if (to_concat) dst[wide] = src[i];
        else if (accumulate) wn_st(dst, i, wn_ld(src, wide), 1);
        else dst[i] = src[wide];
    }
}

static int total_channels(int n_in, const int *channels) {
    int total = 0;
    for (int i = 0; i < n_in; i++) total += channels[i];
    return total;
}

template <typename T>
static int concat_forward(wn_backend *be, size_t pixels, int n_in, const T *const *x,
                          const int *channels, T *y, const char *layer) {
    int total = total_channels(n_in, channels);
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    for (int i = 0, off = 0; i < n_in; off += channels[i], i++) {
        size_t count = pixels * channels[i];
        if (!count) continue;
        concat_slice_kernel<<<wn_cuda_blocks(ctx, count), WN_CUDA_THREADS, 0, ctx->stream>>>(
            pixels, channels[i], total, off, x[i], y, 1, 0);
    }
    return wn_cuda_op_done(be, "concat_forward kernel", layer);
}

template <typename T>
static int concat_backward(wn_backend *be, size_t pixels, int n_in, const T *dy,
                           const int *channels, T *const *dx, int accumulate,
                           const char *layer) {
    int total = total_channels(n_in, channels);
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    for (int i = 0, off = 0; i < n_in; off += channels[i], i++) {
        size_t count = pixels * channels[i];
        if (!count || !dx[i]) continue;
        concat_slice_kernel<<<wn_cuda_blocks(ctx, count), WN_CUDA_THREADS, 0, ctx->stream>>>(
            pixels, channels[i], total, off, dy, dx[i], 0, accumulate);
    }
    return wn_cuda_op_done(be, "concat_backward kernel", layer);
}

int wn_cuda_concat_forward(wn_backend *be, size_t pixels, int n_in, const float *const *x,
                           const int *channels, float *y, const char *layer) {
    return concat_forward(be, pixels, n_in, x, channels, y, layer);
}

int wn_cuda_concat_backward(wn_backend *be, size_t pixels, int n_in, const float *dy,
                            const int *channels, float *const *dx, int accumulate,
                            const char *layer) {
    return concat_backward(be, pixels, n_in, dy, channels, dx, accumulate, layer);
}

int wn_cuda_concat_forward_bf16(wn_backend *be, size_t pixels, int n_in,
                                const wn_bf16 *const *x, const int *channels, wn_bf16 *y,
                                const char *layer) {
    return concat_forward(be, pixels, n_in, x, channels, y, layer);
}

int wn_cuda_concat_backward_bf16(wn_backend *be, size_t pixels, int n_in, const wn_bf16 *dy,
                                 const int *channels, wn_bf16 *const *dx, int accumulate,
                                 const char *layer) {
    return concat_backward(be, pixels, n_in, dy, channels, dx, accumulate, layer);
}
