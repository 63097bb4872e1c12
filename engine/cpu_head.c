/* engine/cpu_head.c — the CPU backend's ops around the backbone: Dense (BLAS),
 * the fused softmax + cross-entropy + accuracy, Adam, and the fused augmentation
 * + preprocess. The arithmetic of the last three is in kernels/ (shared with CUDA).
 */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "engine/cpu_internal.h"
#include "engine/error.h"
#include "kernels/adam.h"
#include "kernels/augment.h"
#include "kernels/softmax_xent.h"

/* ---------------------------------------------------------------- Dense */

int wn_cpu_dense_forward(wn_backend *be, int n, int in, int out, const float *x,
                         const float *w, const float *b, float *y, const char *layer) {
    (void)be;
    const char *who = layer ? layer : "dense_forward";
    if (n < 1 || in < 1 || out < 1) return wn_fail("%s: invalid shape %dx%d -> %d", who, n, in, out);
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
    const char *who = layer ? layer : "dense_backward";
    if (n < 1 || in < 1 || out < 1) return wn_fail("%s: invalid shape %dx%d -> %d", who, n, in, out);
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

/* ---------------------------------------------------------------- loss */

int wn_cpu_softmax_xent(wn_backend *be, int n, int k, const float *logits,
                        const int32_t *labels, float label_smoothing, float n_mean,
                        float *probs, float *dlogits, float *stats) {
    (void)be;
    if (n < 1 || k < 1) return wn_fail("softmax_xent: invalid shape %dx%d", n, k);
    if (!(n_mean > 0.0f)) return wn_fail("softmax_xent: batch size to average over is %g", (double)n_mean);
    for (int r = 0; r < n; r++)
        if (labels[r] < 0 || labels[r] >= k)
            return wn_fail("softmax_xent: label %d of sample %d is outside [0, %d)", (int)labels[r],
                           r, k);
    float inv_n = 1.0f / n_mean;
    double loss = 0.0;
    long correct = 0;
    for (int r = 0; r < n; r++) {
        int ok = 0;
        size_t o = (size_t)r * k;
        loss += wn_softmax_xent_row(logits + o, k, labels[r], label_smoothing, inv_n, probs ? probs + o : NULL,
                                    dlogits ? dlogits + o : NULL, &ok);
        correct += ok;
    }
    stats[0] += (float)loss;
    stats[1] += (float)correct;
    return WN_OK;
}

/* ---------------------------------------------------------------- Adam */

int wn_cpu_adam_update(wn_backend *be, size_t count, float *p, const float *g, float *m,
                       float *v, float lr, float beta1, float beta2, float eps, long t) {
    (void)be;
    if (t < 1) return wn_fail("adam_update: step %ld must be 1 or more", t);
    wn_adam_coeffs k = wn_adam_coeffs_make(lr, beta1, beta2, eps, t);
#pragma omp parallel for schedule(static) if (count > 16384)
    for (size_t i = 0; i < count; i++) wn_adam_step(&p[i], g[i], &m[i], &v[i], k);
    return WN_OK;
}

/* ---------------------------------------------------------------- augmentation */

int wn_cpu_augment_preprocess(wn_backend *be, int n, int h, int w, int c, const uint8_t *x,
                              const uint8_t *flip, const float *angle, float *y) {
    (void)be;
    if (n < 1 || h < 1 || w < 1 || c < 1)
        return wn_fail("augment_preprocess: invalid shape %dx%dx%dx%d", n, h, w, c);
    size_t image = (size_t)h * w * c;
#pragma omp parallel for collapse(2) schedule(static)
    for (int i = 0; i < n; i++)
        for (int row = 0; row < h; row++) {
            const uint8_t *img = x + (size_t)i * image;
            float *out = y + (size_t)i * image + (size_t)row * w * c;
            int f = flip ? flip[i] != 0 : 0;
            float a = angle ? angle[i] : 0.0f;
            if (a == 0.0f) {
                /* No rotation: bilinear at integer coordinates reads one pixel with
                 * weight 1 (bit-identical to the general path), so skip it. */
                const uint8_t *src = img + (size_t)row * w * c;
                for (int col = 0; col < w; col++) {
                    const uint8_t *px = src + (size_t)(f ? w - 1 - col : col) * c;
                    for (int ch = 0; ch < c; ch++) out[(size_t)col * c + ch] = wn_preprocess_tf((float)px[ch]);
                }
            } else {
                wn_augment_xform t = wn_augment_rotation(a, h, w);
                for (int col = 0; col < w; col++)
                    for (int ch = 0; ch < c; ch++)
                        out[(size_t)col * c + ch] = wn_augment_pixel(img, h, w, c, f, &t, row, col, ch);
            }
        }
    return WN_OK;
}
