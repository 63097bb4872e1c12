/* kernels/dense/dense.cu — Dense forward/backward and bias sums through cuBLAS.
 *
 * Row-major on column-major: cuBLAS is column-major, and a row-major matrix
 * A[r, c] is, byte for byte, the column-major matrix A^T [c x r] with leading
 * dimension c. So every product is written for the transposes:
 *   y[N,out] = x[N,in] . w[in,out]      <=>  y^T [out x N]  = w^T [out x in] . x^T [in x N]
 *       gemm(N, N, m=out, n=N, k=in,  A=w (ld out), B=x (ld in),   C=y (ld out))
 *   dx[N,in] = dy[N,out] . w^T          <=>  dx^T [in x N]  = w [in x out] . dy^T [out x N]
 *       gemm(T, N, m=in, n=N, k=out,  A=w (ld out), B=dy (ld out), C=dx (ld in))
 *   dw[in,out] = x^T . dy               <=>  dw^T [out x in] = dy^T [out x N] . x [N x in]
 *       gemm(N, T, m=out, n=in, k=N,  A=dy (ld out), B=x (ld in),  C=dw (ld out))
 *   db[out] = sum over rows of dy       <=>  gemv(N, m=out, n=N, A=dy (ld out), x=ones)
 * No transposed copies are made. The handle's math mode (set at backend creation)
 * makes the GEMMs TF32 or strict float32.
 */
#include <limits.h>

#include "kernels/common/cuda_ctx.h"
#include "kernels/dense/dense.h"

int wn_cuda_dense_forward(wn_backend *be, int n, int in, int out, const float *x,
                          const float *w, const float *b, float *y, const char *layer) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    const float one = 1.0f, zero = 0.0f;
    CUBLAS_CHECK(cublasSgemm(ctx->cublas, CUBLAS_OP_N, CUBLAS_OP_N, out, n, in, &one, w, out, x,
                             in, &zero, y, out),
                 layer);
    if (b && wn_cuda_bias_add(be, (size_t)n, out, b, y, layer) != WN_OK) return WN_ERR;
    return wn_cuda_op_done(be, "dense_forward", layer);
}

int wn_cuda_dense_backward(wn_backend *be, int n, int in, int out, const float *x,
                           const float *w, const float *dy, float *dx, float *dw, float *db,
                           const char *layer) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    const float one = 1.0f, zero = 0.0f;
    if (dx)
        CUBLAS_CHECK(cublasSgemm(ctx->cublas, CUBLAS_OP_T, CUBLAS_OP_N, in, n, out, &one, w, out,
                                 dy, out, &zero, dx, in),
                     layer);
    if (dw)
        CUBLAS_CHECK(cublasSgemm(ctx->cublas, CUBLAS_OP_N, CUBLAS_OP_T, out, in, n, &one, dy, out,
                                 x, in, &zero, dw, out),
                     layer);
    if (db && wn_cuda_column_sums(be, (size_t)n, out, dy, db, layer) != WN_OK) return WN_ERR;
    return wn_cuda_op_done(be, "dense_backward", layer);
}
