/* kernels/conv/conv_gemm_cpu.c — the float32 backward-filter of an ungrouped Conv2D
 * on the CPU as matrix products (im2col + oneDNN's sgemm): the CPU backend's default
 * (conv_cpu.c, filter_by_gemm).
 *
 * Why: oneDNN 3.2 has no brgemm backward-weights; its jit_1x1 / jit kernels ran
 * InceptionResNetV2's backward-weights at 88 / 68 GFLOP/s on a 2-core Zen 3 where its
 * sgemm ran the same products at 73-147, and took 20-40% longer than this form with
 * AVX-512 on a Zen 5 (docs/PERF.md, "Backward-filter as GEMM", "Zen 5").
 *
 * In NHWC the output pixels are the rows of dy [M, K] (M = N*OH*OW), and the input
 * patch each pixel sees, laid out (i, j, c) for a kh x kw window, is a row of the
 * im2col matrix X [M, kh*kw*C]. Then dW = X^T . dy is [kh*kw*C, K]: exactly Keras's
 * HWIO order, so no weight reorder. A 1x1, stride-1, unpadded convolution's X is the
 * input itself; otherwise X is built ROWS_BYTES at a time (a few MiB that stay in the
 * caches while the product reads them) and the products are summed into dW with
 * beta = 1. db = the column sums of dy, per-thread doubles added in thread order
 * (kernels/common/partials_cpu.c), so a result depends on the thread count but never
 * on scheduling.
 */
#include <omp.h>
#include <string.h>

#include "host/base/error.h"
#include "kernels/common/cpu_ctx.h"
#include "kernels/common/dnnl_compat.h"
#include "kernels/conv/conv_gemm_cpu.h"

/* Bytes of im2col rows built per product: large enough that each product is long
 * (hundreds of rows), small enough to stay in L2/L3 while sgemm reads it. */
#define ROWS_BYTES ((size_t)8 << 20)

static int is_pointwise(const wn_window *w) {
    return w->kh == 1 && w->kw == 1 && w->sh == 1 && w->sw == 1 && w->pad_top == 0 &&
           w->pad_left == 0 && w->oh == w->h && w->ow == w->w;
}

/* Rows [r0, r1) of X: row r is output pixel r's input patch, zeros where the window
 * hangs over the padding. */
static void im2col_rows(const wn_window *w, const float *x, long r0, long r1, float *cols) {
    const size_t c = (size_t)w->c, row_len = (size_t)w->kh * w->kw * c;
#pragma omp parallel for schedule(static)
    for (long r = r0; r < r1; r++) {
        long n = r / ((long)w->oh * w->ow), p = r % ((long)w->oh * w->ow);
        int oy = (int)(p / w->ow), ox = (int)(p % w->ow);
        float *dst = cols + (size_t)(r - r0) * row_len;
        for (int i = 0; i < w->kh; i++) {
            int iy = oy * w->sh - w->pad_top + i;
            for (int j = 0; j < w->kw; j++, dst += c) {
                int ix = ox * w->sw - w->pad_left + j;
                if (iy < 0 || iy >= w->h || ix < 0 || ix >= w->w)
                    memset(dst, 0, c * sizeof *dst);
                else
                    memcpy(dst, x + (((size_t)n * w->h + iy) * w->w + ix) * c, c * sizeof *dst);
            }
        }
    }
}

/* db[k] = the column sums of dy [m, k]. */
static int bias_sums(wn_backend *be, const float *dy, long m, int k, float *db, const char *who) {
    double *partial = wn_cpu_partials_zeroed(be, k, who);
    if (!partial) return WN_ERR;
#pragma omp parallel
    {
        double *mine = partial + (size_t)omp_get_thread_num() * k;
#pragma omp for schedule(static)
        for (long r = 0; r < m; r++) {
            const float *row = dy + (size_t)r * k;
            for (int j = 0; j < k; j++) mine[j] += row[j];
        }
    }
    wn_cpu_partials_sum(partial, k, db);
    return WN_OK;
}

/* dw (beta 0: =, beta 1: +=) cols^T . dy over m rows. dnnl_sgemm is row-major and runs
 * on oneDNN's OpenMP team, the convolutions' threads (no second thread pool). */
static int gemm_into(const float *cols, const float *dy, long m, long row_len, int k, float beta,
                     float *dw, const char *who) {
    dnnl_status_t s = dnnl_sgemm('T', 'N', row_len, k, m, 1.0f, cols, row_len, dy, k, beta, dw, k);
    if (s != dnnl_success)
        return wn_fail("%s: oneDNN sgemm for the weight gradient failed (status %d)", who, (int)s);
    return WN_OK;
}

int wn_cpu_conv_onednn_filter_broken(const wn_conv_desc *d) {
    const wn_window *w = &d->win;
    return w->kh == 1 && w->kw == 1 && (w->sh > 1 || w->sw > 1) && w->c < 16;
}

int wn_cpu_conv_gemm_backward_filter(wn_backend *be, const wn_conv_desc *d, const float *x,
                                     const float *dy, float *dw, float *db, const char *who) {
    const wn_window *w = &d->win;
    const long m = (long)w->n * w->oh * w->ow;
    const long row_len = (long)w->kh * w->kw * w->c;
    const int k = d->k;
    if (d->groups > 1) return wn_fail("%s: the GEMM weight gradient has no grouped form", who);
    if (db && bias_sums(be, dy, m, k, db, who) != WN_OK) return WN_ERR;
    if (m == 0) {
        memset(dw, 0, (size_t)row_len * k * sizeof *dw);
        return WN_OK;
    }
    if (is_pointwise(w)) return gemm_into(x, dy, m, row_len, k, 0.0f, dw, who);

    wn_cpu_ctx *ctx = be->ctx;
    long rows = (long)(ROWS_BYTES / ((size_t)row_len * sizeof(float)));
    if (rows < 1) rows = 1;
    if (rows > m) rows = m;
    if (wn_cpu_buffer_reserve(&ctx->cols, (size_t)rows * row_len * sizeof(float),
                              "im2col rows of the weight gradient") != WN_OK)
        return wn_fail_context("%s: ", who);
    for (long r0 = 0; r0 < m; r0 += rows) {
        long r1 = r0 + rows < m ? r0 + rows : m;
        im2col_rows(w, x, r0, r1, ctx->cols.p);
        if (gemm_into(ctx->cols.p, dy + (size_t)r0 * k, r1 - r0, row_len, k, r0 ? 1.0f : 0.0f,
                      dw, who) != WN_OK)
            return WN_ERR;
    }
    return WN_OK;
}
