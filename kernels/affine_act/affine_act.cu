/* kernels/affine_act/affine_act.cu — CUDA launchers of the per-channel affine + activation
 * (kernels/affine_act.h): inference BatchNormalization folded to scale/shift, bias
 * adds (scale NULL), bare activations (both NULL).
 *
 * Forward: one thread per element, grid-stride.
 * Backward without dshift: one thread per element. With dshift (dbeta), a
 * deterministic two-pass channel reduction: pass 1 gives each block a run of pixels
 * and a tile of 32 channels (threadIdx.x = channel, so a warp reads 32 consecutive
 * floats of NHWC), sums the post-activation gradient in double and writes one
 * partial per (block row, channel) while writing dx in the same pass; pass 2 adds
 * the partials of each channel in a fixed order. No atomics: the same inputs give
 * the same bits on every run, like the CPU's fixed-order partial sums.
 * The BatchNormalization gamma gradient (bn_gamma_backward) is the same two-pass
 * reduction over the term g * (x - mean) * inv_std (kernels/affine_act.h).
 *
 * Every kernel is a template over the activation tensors' type T (float, or wn_bf16 for
 * the bf16 ops of kernels/common/backend_bf16_ops.h): loads widen, arithmetic is
 * float32 with double sums, and each stored element is rounded once
 * (kernels/common/cuda_bf16.h). scale, shift and the channel sums stay float32.
 */
#include "kernels/common/cuda_bf16.h"
#include "kernels/common/cuda_ctx.h"
#include "kernels/affine_act/affine_act.h"

#define TILE_C 32 /* channels per block (threadIdx.x) */
#define TILE_P 8  /* pixel lanes per block (threadIdx.y) */

template <typename T>
static __global__ void affine_act_forward_kernel(size_t count, int c, const T *x,
                                                 const float *__restrict__ scale,
                                                 const float *__restrict__ shift, int act,
                                                 T *y) {
    /* x and y may be the same buffer (bias added in place): no __restrict__ on them */
    WN_GRID_LOOP(i, count) {
        int ch = (int)(i % (size_t)c);
        float v = wn_ld(x, i);
        wn_st(y, i,
              (scale || shift) ? wn_affine_act_forward(v, scale ? scale[ch] : 1.0f,
                                                       shift ? shift[ch] : 0.0f, act)
                               : wn_act_apply(v, act),
              0);
    }
}

template <typename T>
static int affine_act_forward(wn_backend *be, size_t count, int c, const T *x,
                              const float *scale, const float *shift, wn_activation act, T *y,
                              const char *layer) {
    if (!count) return WN_OK;
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    affine_act_forward_kernel<<<wn_cuda_blocks(ctx, count), WN_CUDA_THREADS, 0, ctx->stream>>>(
        count, c, x, scale, shift, (int)act, y);
    return wn_cuda_op_done(be, "affine_act_forward kernel", layer);
}

int wn_cuda_affine_act_forward(wn_backend *be, size_t count, int c, const float *x,
                               const float *scale, const float *shift, wn_activation act,
                               float *y, const char *layer) {
    return affine_act_forward(be, count, c, x, scale, shift, act, y, layer);
}

int wn_cuda_affine_act_forward_bf16(wn_backend *be, size_t count, int c, const wn_bf16 *x,
                                    const float *scale, const float *shift, wn_activation act,
                                    wn_bf16 *y, const char *layer) {
    return affine_act_forward(be, count, c, x, scale, shift, act, y, layer);
}

template <typename T>
static __global__ void affine_act_backward_kernel(size_t count, int c, const T *y,
                                                  const T *dy,
                                                  const float *__restrict__ scale, int act,
                                                  T *dx, int accumulate) {
    WN_GRID_LOOP(i, count) {
        int ch = (int)(i % (size_t)c);
        float v = wn_affine_act_dx(wn_act_grad(wn_ld(y, i), wn_ld(dy, i), act),
                                   scale ? scale[ch] : 1.0f);
        wn_st(dx, i, v, accumulate);
    }
}

/* Pass 1: block (bx, by) covers pixels [bx*run, (bx+1)*run) and channels
 * [by*TILE_C, +TILE_C). partial[bx * c + ch] = sum of g over its pixels. */
template <typename T>
static __global__ void affine_act_backward_reduce_kernel(size_t pixels, size_t run, int c,
                                                         const T *y, const T *dy,
                                                         const float *__restrict__ scale,
                                                         int act, T *dx, int accumulate,
                                                         double *__restrict__ partial) {
    __shared__ double sum[TILE_P][TILE_C];
    int ch = blockIdx.y * TILE_C + threadIdx.x;
    size_t p0 = blockIdx.x * run, p1 = p0 + run < pixels ? p0 + run : pixels;
    double acc = 0.0;
    if (ch < c) {
        float s = scale ? scale[ch] : 1.0f;
        for (size_t p = p0 + threadIdx.y; p < p1; p += TILE_P) {
            size_t i = p * (size_t)c + ch;
            float g = wn_act_grad(wn_ld(y, i), wn_ld(dy, i), act);
            acc += (double)g;
            if (dx) wn_st(dx, i, wn_affine_act_dx(g, s), accumulate);
        }
    }
    sum[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && ch < c) {
        double t = 0.0;
        for (int k = 0; k < TILE_P; k++) t += sum[k][threadIdx.x];
        partial[blockIdx.x * (size_t)c + ch] = t;
    }
}

/* Pass 2: dshift[ch] = sum over rows of partial, in row order. */
static __global__ void sum_partials_kernel(int rows, int c, const double *__restrict__ partial,
                                           float *__restrict__ out) {
    WN_GRID_LOOP(ch, c) {
        double t = 0.0;
        for (int r = 0; r < rows; r++) t += partial[(size_t)r * c + ch];
        out[ch] = (float)t;
    }
}

/* Rows of pass 1 for a channel reduction over `pixels`: about 8 blocks per SM in
 * total, each with at least 64 pixels; *run = pixels per row. */
static size_t reduce_rows(const wn_cuda_ctx *ctx, size_t pixels, int c, size_t *run) {
    unsigned tiles = (unsigned)((c + TILE_C - 1) / TILE_C);
    size_t want = (size_t)ctx->sm_count * 8 / tiles + 1;
    size_t most = (pixels + 63) / 64;
    size_t rows = want < most ? want : most;
    if (rows < 1) rows = 1;
    *run = (pixels + rows - 1) / rows;
    if (*run < 1) *run = 1;
    return pixels ? (pixels + *run - 1) / *run : 1;
}

template <typename T>
static int affine_act_backward(wn_backend *be, size_t count, int c, const T *y, const T *dy,
                               const float *scale, wn_activation act, T *dx, int accumulate,
                               float *dshift, const char *layer) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    if (!dshift) {
        if (!dx || !count) return WN_OK;
        affine_act_backward_kernel<<<wn_cuda_blocks(ctx, count), WN_CUDA_THREADS, 0,
                                     ctx->stream>>>(count, c, y, dy, scale, (int)act, dx,
                                                    accumulate);
        return wn_cuda_op_done(be, "affine_act_backward kernel", layer);
    }
    size_t pixels = count / (size_t)c, run;
    unsigned tiles = (unsigned)((c + TILE_C - 1) / TILE_C);
    size_t rows = reduce_rows(ctx, pixels, c, &run);
    double *partial =
        (double *)wn_cuda_scratch(be, rows * (size_t)c * sizeof(double), "dbeta partial sums", layer);
    if (!partial) return WN_ERR;
    dim3 grid((unsigned)rows, tiles), block(TILE_C, TILE_P);
    affine_act_backward_reduce_kernel<<<grid, block, 0, ctx->stream>>>(
        pixels, run, c, y, dy, scale, (int)act, dx, accumulate, partial);
    sum_partials_kernel<<<wn_cuda_blocks(ctx, (size_t)c), WN_CUDA_THREADS, 0, ctx->stream>>>(
        (int)rows, c, partial, dshift);
    wn_cuda_scratch_free(be, partial);
    return wn_cuda_op_done(be, "affine_act_backward reduction", layer);
}

int wn_cuda_affine_act_backward(wn_backend *be, size_t count, int c, const float *y,
                                const float *dy, const float *scale, wn_activation act,
                                float *dx, int accumulate, float *dshift, const char *layer) {
    return affine_act_backward(be, count, c, y, dy, scale, act, dx, accumulate, dshift, layer);
}

int wn_cuda_affine_act_backward_bf16(wn_backend *be, size_t count, int c, const wn_bf16 *y,
                                     const wn_bf16 *dy, const float *scale, wn_activation act,
                                     wn_bf16 *dx, int accumulate, float *dshift,
                                     const char *layer) {
    return affine_act_backward(be, count, c, y, dy, scale, act, dx, accumulate, dshift, layer);
}

/* Pass 1 of dgamma: as affine_act_backward_reduce_kernel, summing g * x_hat. */
template <typename T>
static __global__ void bn_gamma_reduce_kernel(size_t pixels, size_t run, int c,
                                              const T *__restrict__ x,
                                              const T *__restrict__ y,
                                              const T *__restrict__ dy,
                                              const float *__restrict__ mean,
                                              const float *__restrict__ inv_std, int act,
                                              double *__restrict__ partial) {
    __shared__ double sum[TILE_P][TILE_C];
    int ch = blockIdx.y * TILE_C + threadIdx.x;
    size_t p0 = blockIdx.x * run, p1 = p0 + run < pixels ? p0 + run : pixels;
    double acc = 0.0;
    if (ch < c) {
        float m = mean[ch], s = inv_std[ch];
        for (size_t p = p0 + threadIdx.y; p < p1; p += TILE_P) {
            size_t i = p * (size_t)c + ch;
            acc += (double)wn_bn_gamma_term(wn_act_grad(wn_ld(y, i), wn_ld(dy, i), act),
                                            wn_ld(x, i), m, s);
        }
    }
    sum[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && ch < c) {
        double t = 0.0;
        for (int k = 0; k < TILE_P; k++) t += sum[k][threadIdx.x];
        partial[blockIdx.x * (size_t)c + ch] = t;
    }
}

template <typename T>
static int bn_gamma_backward(wn_backend *be, size_t count, int c, const T *x, const T *y,
                             const T *dy, const float *mean, const float *inv_std,
                             wn_activation act, float *dgamma, const char *layer) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    size_t pixels = count / (size_t)c, run;
    unsigned tiles = (unsigned)((c + TILE_C - 1) / TILE_C);
    size_t rows = reduce_rows(ctx, pixels, c, &run);
    double *partial = (double *)wn_cuda_scratch(be, rows * (size_t)c * sizeof(double),
                                                "dgamma partial sums", layer);
    if (!partial) return WN_ERR;
    dim3 grid((unsigned)rows, tiles), block(TILE_C, TILE_P);
    /* pixels == 0: one row of zero partials, so dgamma is overwritten with 0 */
    bn_gamma_reduce_kernel<<<grid, block, 0, ctx->stream>>>(pixels, run, c, x, y, dy, mean,
                                                            inv_std, (int)act, partial);
    sum_partials_kernel<<<wn_cuda_blocks(ctx, (size_t)c), WN_CUDA_THREADS, 0, ctx->stream>>>(
        (int)rows, c, partial, dgamma);
    wn_cuda_scratch_free(be, partial);
    return wn_cuda_op_done(be, "bn_gamma_backward reduction", layer);
}

int wn_cuda_bn_gamma_backward(wn_backend *be, size_t count, int c, const float *x,
                              const float *y, const float *dy, const float *mean,
                              const float *inv_std, wn_activation act, float *dgamma,
                              const char *layer) {
    return bn_gamma_backward(be, count, c, x, y, dy, mean, inv_std, act, dgamma, layer);
}

int wn_cuda_bn_gamma_backward_bf16(wn_backend *be, size_t count, int c, const wn_bf16 *x,
                                   const wn_bf16 *y, const wn_bf16 *dy, const float *mean,
                                   const float *inv_std, wn_activation act, float *dgamma,
                                   const char *layer) {
    return bn_gamma_backward(be, count, c, x, y, dy, mean, inv_std, act, dgamma, layer);
}
