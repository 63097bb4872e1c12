/* kernels/dense/dense_cpu.c — the CPU backend's Dense through BLAS: an OpenMP loop over the
 * element functions of kernels/dense/dense.h, the formulas the CUDA kernel runs too. */
#include <cblas.h>
#include <string.h>

#include "host/base/error.h"
#include "kernels/common/cpu_ctx.h"
#include "kernels/dense/dense.h"

int wn_cpu_dense_forward(wn_backend *be, int n, int in, int out, const float *x,
                         const float *w, const float *b, float *y, const char *layer) {
    (void)be;
    (void)layer;
    if (b)
        for (int r = 0; r < n; r++) memcpy(y + (size_t)r * out, b, (size_t)out * sizeof(float));
    /* y[n,out] (+)= x[n,in] . w[in,out] */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, out, in, 1.0f, x, in, w, out,
                b ? 1.0f : 0.0f, y, out);
    return WN_OK;
}

int wn_cpu_dense_backward(wn_backend *be, int n, int in, int out, const float *x,
                          const float *w, const float *dy, float *dx, float *dw, float *db,
                          const char *layer) {
    (void)be;
    (void)layer;
    /* dw[in,out] = x^T . dy */
    if (dw)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, in, out, n, 1.0f, x, in, dy, out,
                    0.0f, dw, out);
    if (db)
        for (int j = 0; j < out; j++) {
            double s = 0.0;
            for (int r = 0; r < n; r++) s += dy[(size_t)r * out + j];
            db[j] = (float)s;
        }
    /* dx[n,in] = dy . w^T */
    if (dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, in, out, 1.0f, dy, out, w, out,
                    0.0f, dx, in);
    return WN_OK;
}

