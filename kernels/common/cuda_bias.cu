/* kernels/common/cuda_bias.cu — the bias helpers convolution and Dense share on the
 * CUDA backend (see kernels/common/cuda_ctx.h): adding a per-column bias to a row-major
 * [rows, cols] output, and the bias gradient, the sums over rows (a cuBLAS GEMV with a
 * vector of ones). */
#include <limits.h>

#include "kernels/common/cuda_bf16.h"
#include "kernels/common/cuda_ctx.h"

static __global__ void bias_add_kernel(size_t count, int cols, const float *bias, float *y) {
    WN_GRID_LOOP(i, count) y[i] = y[i] + bias[i % (size_t)cols];
}

int wn_cuda_bias_add(wn_backend *be, size_t rows, int cols, const float *bias, float *y,
                     const char *layer) {
    size_t count = rows * (size_t)cols;
    if (!count) return WN_OK;
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    bias_add_kernel<<<wn_cuda_blocks(ctx, count), WN_CUDA_THREADS, 0, ctx->stream>>>(count, cols,
                                                                                   bias, y);
    return wn_cuda_op_done(be, "bias_add kernel", layer);
}

int wn_cuda_column_sums(wn_backend *be, size_t rows, int cols, const float *x, float *sums,
                        const char *layer) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    if (rows > (size_t)INT_MAX)
        return wn_fail("layer '%s': %zu rows are too many for one bias sum", layer ? layer : "?",
                       rows);
    const float *ones = wn_cuda_ones(be, rows, layer);
    if (!ones) return WN_ERR;
    const float one = 1.0f, zero = 0.0f;
    CUBLAS_CHECK(cublasSgemv(ctx->cublas, CUBLAS_OP_N, cols, (int)rows, &one, x, cols, ones, 1,
                             &zero, sums, 1),
                 layer);
    return WN_OK;
}

/* ---- bf16 outputs (the bf16 convolutions): float bias, float sums ---- */

static __global__ void bias_add_bf16_kernel(size_t count, int cols, const float *bias,
                                            wn_bf16 *y) {
    WN_GRID_LOOP(i, count) wn_st(y, i, bias[i % (size_t)cols], 1);
}

static __global__ void fill_bf16_kernel(wn_bf16 *p, size_t count, wn_bf16 v) {
    WN_GRID_LOOP(i, count) p[i] = v;
}

int wn_cuda_bias_add_bf16(wn_backend *be, size_t rows, int cols, const float *bias,
                          uint16_t *y, const char *layer) {
    size_t count = rows * (size_t)cols;
    if (!count) return WN_OK;
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    bias_add_bf16_kernel<<<wn_cuda_blocks(ctx, count), WN_CUDA_THREADS, 0, ctx->stream>>>(
        count, cols, bias, y);
    return wn_cuda_op_done(be, "bias_add_bf16 kernel", layer);
}

/* A device vector of at least `count` bf16 ones, kept in the context (as wn_cuda_ones). */
static const wn_bf16 *ones_bf16(wn_backend *be, size_t count, const char *layer) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    if (count <= ctx->ones16_count) return ctx->ones16;
    wn_cuda_dev_free(ctx, ctx->ones16);
    ctx->ones16 = NULL, ctx->ones16_count = 0;
    size_t n = count < 4096 ? 4096 : count;
    wn_bf16 *p = (wn_bf16 *)wn_cuda_scratch(be, n * sizeof(wn_bf16), "bf16 ones vector", layer);
    if (!p) return NULL;
    fill_bf16_kernel<<<wn_cuda_blocks(ctx, n), WN_CUDA_THREADS, 0, ctx->stream>>>(
        p, n, wn_bf16_from_f32(1.0f));
    cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) {
        wn_cuda_dev_free(ctx, p);
        wn_cuda_fail_cuda(err, "fill_bf16_kernel<<<>>>", __FILE__, __LINE__, layer);
        return NULL;
    }
    ctx->ones16 = p, ctx->ones16_count = n;
    return p;
}

int wn_cuda_column_sums_bf16(wn_backend *be, size_t rows, int cols, const uint16_t *x,
                             float *sums, const char *layer) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    if (rows > (size_t)INT_MAX)
        return wn_fail("layer '%s': %zu rows are too many for one bias sum", layer ? layer : "?",
                       rows);
    const wn_bf16 *ones = ones_bf16(be, rows, layer);
    if (!ones) return WN_ERR;
    /* column-major: x is the cols x rows matrix A (lda = cols); sums = A * ones */
    const float one = 1.0f, zero = 0.0f;
    CUBLAS_CHECK(cublasGemmEx(ctx->cublas, CUBLAS_OP_N, CUBLAS_OP_N, cols, 1, (int)rows, &one, x,
                              CUDA_R_16BF, cols, ones, CUDA_R_16BF, (int)rows, &zero, sums,
                              CUDA_R_32F, cols, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                 layer);
    return WN_OK;
}
