/* kernels/conv/conv_1x1_cpu.c — the backward-filter of a 1x1, stride-1 convolution as
 * one OpenBLAS sgemm. In NHWC such a convolution is a dense layer applied at each of
 * the M = N*H*W pixels, so dW[C,K] = X^T[C,M] . dY[M,K], already in Keras's HWIO order
 * (no weight reorder). 1.1-1.9x faster than oneDNN 3.2's jit_1x1:avx2 backward-weights
 * on InceptionResNetV2's 1x1 shapes in a one-thread microbenchmark, but not shown
 * faster on the whole step yet (docs/PERF.md), so used only with WN_CONV_1X1_GEMM=1.
 */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/conv/conv_1x1_cpu.h"

int wn_cpu_conv_is_pointwise(const wn_conv_desc *d) {
    const wn_window *w = &d->win;
    return w->kh == 1 && w->kw == 1 && w->sh == 1 && w->sw == 1 && w->pad_top == 0 &&
           w->pad_bottom == 0 && w->pad_left == 0 && w->pad_right == 0 && w->oh == w->h &&
           w->ow == w->w && (d->groups <= 1);
}

/* db[k] = sum over the m rows of dy[r][k], in double, rows split over the threads
 * (each thread reads its rows once, contiguously). */
static void column_sums(const float *dy, long m, int k, float *db) {
    double *total = calloc((size_t)k, sizeof *total);
    if (!total) { /* no memory for the sums: one pass per column, still exact */
        for (int j = 0; j < k; j++) {
            double s = 0;
            for (long r = 0; r < m; r++) s += dy[(size_t)r * k + j];
            db[j] = (float)s;
        }
        return;
    }
#pragma omp parallel
    {
        double *part = calloc((size_t)k, sizeof *part);
#pragma omp for schedule(static)
        for (long r = 0; r < m; r++) {
            const float *row = dy + (size_t)r * k;
            if (part)
                for (int j = 0; j < k; j++) part[j] += row[j];
            else
#pragma omp critical(wn_conv_pointwise_db)
                for (int j = 0; j < k; j++) total[j] += row[j];
        }
        if (part) {
#pragma omp critical(wn_conv_pointwise_db)
            for (int j = 0; j < k; j++) total[j] += part[j];
            free(part);
        }
    }
    for (int j = 0; j < k; j++) db[j] = (float)total[j];
    free(total);
}

void wn_cpu_conv_pointwise_backward_filter(const wn_conv_desc *d, const float *x,
                                           const float *dy, float *dw, float *db) {
    const wn_window *w = &d->win;
    long m = (long)w->n * w->h * w->w;
    int c = w->c, k = d->k;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, c, k, (int)m, 1.0f, x, c, dy, k, 0.0f,
                dw, k);
    if (db) column_sums(dy, m, k, db);
}
