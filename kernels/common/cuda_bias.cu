/* kernels/common/cuda_bias.cu — the bias helpers convolution and Dense share on the
 * CUDA backend (see kernels/common/cuda_ctx.h): adding a per-column bias to a row-major
 * [rows, cols] output, and the bias gradient, the sums over rows (a cuBLAS GEMV with a
 * vector of ones). */
#include <limits.h>

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
