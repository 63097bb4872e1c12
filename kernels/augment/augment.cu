/* kernels/augment/augment.cu — the augmentation + preprocess (kernels/augment/augment.h):
 * uint8 NHWC in, float NHWC out; per image an optional horizontal flip and a
 * rotation (reflect fill, bilinear), optionally a zoom, a translation (each its own
 * resampling of the previous layer's float output, as Keras's layers are) and a
 * contrast change, then the backbone's preprocess_input (`mode`).
 *
 * The host turns each image's draws into its transforms with wn_augment_rotation,
 * wn_augment_zoom and wn_augment_translation (float32, the same calls the CPU
 * backend makes) and uploads them with the launch; the kernels run one thread per
 * output element through the shared element functions, whose round-to-nearest
 * intrinsics keep nvcc from fusing multiply-adds, so the GPU's pixels are the CPU's
 * bits. The contrast means are summed in double in the CPU's order (a row per
 * thread, then the rows per image and channel in order). Angle 0 takes the same
 * direct-copy path as the CPU (bit-identical to the general path either way).
 */
#include <stdlib.h>

#include "kernels/common/cuda_ctx.h"
#include "kernels/augment/augment.h"

typedef struct augment_param {
    wn_augment_xform t;
    int flip;
    int rotate; /* 0: angle was 0, copy (flipped) pixels */
} augment_param;

/* Flip + rotation; preprocessed when mode >= 0, the raw [0, 255] values when
 * mode < 0 (later layers follow). */
static __global__ void augment_kernel(int n, int h, int w, int c, const uint8_t *__restrict__ x,
                                      const augment_param *__restrict__ params, int mode,
                                      float *__restrict__ y) {
    size_t image = (size_t)h * w * c;
    WN_GRID_LOOP(i, (size_t)n * image) {
        size_t img = i / image, r = i % image;
        int ch = (int)(r % c);
        int col = (int)((r / c) % w);
        int row = (int)(r / ((size_t)c * w));
        const uint8_t *src = x + img * image;
        augment_param p = params[img];
        if (!p.rotate) {
            int sx = p.flip ? w - 1 - col : col;
            if (mode < 0) {
                y[i] = (float)src[((size_t)row * w + sx) * c + ch];
            } else {
                int sc = wn_preprocess_source(mode, c, ch);
                y[i] = wn_preprocess_value(mode, (float)src[((size_t)row * w + sx) * c + sc], ch);
            }
        } else if (mode < 0) {
            y[i] = wn_augment_value(src, h, w, c, p.flip, &p.t, row, col, ch);
        } else {
            y[i] = wn_augment_pixel(src, h, w, c, p.flip, &p.t, row, col, ch, mode);
        }
    }
}

/* A zoom or translation layer: dst = resampling of src (identity: a copy). */
static __global__ void resample_kernel(int n, int h, int w, int c, const float *__restrict__ src,
                                       const augment_param *__restrict__ params,
                                       float *__restrict__ dst) {
    size_t image = (size_t)h * w * c;
    WN_GRID_LOOP(i, (size_t)n * image) {
        size_t img = i / image, r = i % image;
        augment_param p = params[img];
        if (!p.rotate) {
            dst[i] = src[i];
            continue;
        }
        int ch = (int)(r % c);
        int col = (int)((r / c) % w);
        int row = (int)(r / ((size_t)c * w));
        dst[i] = wn_augment_resample(src + img * image, h, w, c, &p.t, row, col, ch);
    }
}

/* row_sums[(i*c + ch)*h + row]: one thread per image, channel and row. */
static __global__ void row_sum_kernel(int n, int h, int w, int c, const float *__restrict__ x,
                                      double *__restrict__ row_sums) {
    size_t image = (size_t)h * w * c;
    WN_GRID_LOOP(k, (size_t)n * c * h) {
        int row = (int)(k % h);
        size_t ic = k / h;
        int ch = (int)(ic % c);
        size_t img = ic / c;
        row_sums[k] = wn_augment_row_sum(x + img * image, w, c, row, ch);
    }
}

static __global__ void mean_kernel(int n, int h, int w, int c, const double *__restrict__ row_sums,
                                   float *__restrict__ means) {
    WN_GRID_LOOP(k, (size_t)n * c) means[k] = wn_augment_mean_of_rows(row_sums + k * h, h, w);
}

static __global__ void contrast_kernel(int n, int h, int w, int c, float *__restrict__ x,
                                       const float *__restrict__ means,
                                       const float *__restrict__ factors) {
    size_t image = (size_t)h * w * c;
    WN_GRID_LOOP(i, (size_t)n * image) {
        size_t img = i / image;
        int ch = (int)(i % c);
        x[i] = wn_augment_contrast(x[i], means[img * c + ch], factors[img]);
    }
}

/* preprocess_input per pixel, from src into y (src may be y). */
static __global__ void preprocess_kernel(size_t pixels, int c, const float *src, float *y,
                                         int mode) {
    WN_GRID_LOOP(p, pixels) {
        float px[4];
        int k = c < 4 ? c : 4;
        if (c > 4) {
            for (int ch = 0; ch < c; ch++) y[p * c + ch] = wn_preprocess_tf(src[p * c + ch]);
            continue;
        }
        for (int ch = 0; ch < k; ch++) px[ch] = src[p * c + ch];
        wn_preprocess_pixel(mode, px, k);
        for (int ch = 0; ch < k; ch++) y[p * c + ch] = px[ch];
    }
}

/* Uploads n parameters; *dev is freed by the caller with wn_cuda_scratch_free. */
static int upload_params(wn_backend *be, const augment_param *host, int n, augment_param **dev) {
    size_t bytes = (size_t)n * sizeof *host;
    *dev = (augment_param *)wn_cuda_scratch(be, bytes, "augmentation parameters", "augment");
    if (!*dev) return WN_ERR;
    /* Through the reused pinned ring (the copy is staged there): the host array may
     * be freed at once. */
    if (wn_cuda_upload_small(be, *dev, host, bytes, "augment") != WN_OK) {
        wn_cuda_scratch_free(be, *dev);
        *dev = NULL;
        return WN_ERR;
    }
    return WN_OK;
}

/* Zoom, translation, contrast and the preprocess, y holding the rotated batch. */
static int float_layers(wn_backend *be, int n, int h, int w, int c, float *y,
                        const wn_augment_batch *a, int mode, augment_param *host) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    size_t count = (size_t)n * h * w * c;
    float *scratch = NULL, *cur = y, *other;
    if (a->zoom || a->shift) {
        scratch = (float *)wn_cuda_scratch(be, count * sizeof(float), "augmentation image", "augment");
        if (!scratch) return WN_ERR;
    }
    other = scratch;
    int rc = WN_OK;
    for (int layer = 0; layer < 2 && rc == WN_OK; layer++) {
        const float *v = layer == 0 ? a->zoom : a->shift;
        if (!v) continue;
        for (int i = 0; i < n; i++) {
            float p = v[2 * i], q = v[2 * i + 1];
            host[i].flip = 0;
            host[i].rotate = layer == 0 ? !(p == 1.0f && q == 1.0f) : !(p == 0.0f && q == 0.0f);
            host[i].t = layer == 0 ? wn_augment_zoom(p, q, h, w) : wn_augment_translation(p, q);
        }
        augment_param *dev;
        if ((rc = upload_params(be, host, n, &dev)) != WN_OK) break;
        resample_kernel<<<wn_cuda_blocks(ctx, count), WN_CUDA_THREADS, 0, ctx->stream>>>(n, h, w, c, cur,
                                                                                        dev, other);
        wn_cuda_scratch_free(be, dev);
        if ((rc = wn_cuda_op_done(be, "augment resample kernel", "augment")) != WN_OK) break;
        float *swap = cur;
        cur = other, other = swap;
    }
    if (rc == WN_OK && a->contrast) {
        size_t rows = (size_t)n * c * h;
        double *row_sums = (double *)wn_cuda_scratch(be, rows * sizeof(double), "contrast sums", "augment");
        float *means = (float *)wn_cuda_scratch(be, (size_t)n * c * sizeof(float), "contrast means", "augment");
        float *factors = (float *)wn_cuda_scratch(be, (size_t)n * sizeof(float), "contrast factors", "augment");
        if (!row_sums || !means || !factors ||
            wn_cuda_upload_small(be, factors, a->contrast, (size_t)n * sizeof(float), "augment") != WN_OK) {
            rc = WN_ERR;
        } else {
            row_sum_kernel<<<wn_cuda_blocks(ctx, rows), WN_CUDA_THREADS, 0, ctx->stream>>>(n, h, w, c, cur,
                                                                                          row_sums);
            mean_kernel<<<wn_cuda_blocks(ctx, (size_t)n * c), WN_CUDA_THREADS, 0, ctx->stream>>>(
                n, h, w, c, row_sums, means);
            contrast_kernel<<<wn_cuda_blocks(ctx, count), WN_CUDA_THREADS, 0, ctx->stream>>>(n, h, w, c, cur,
                                                                                            means, factors);
            rc = wn_cuda_op_done(be, "augment contrast kernels", "augment");
        }
        if (factors) wn_cuda_scratch_free(be, factors);
        if (means) wn_cuda_scratch_free(be, means);
        if (row_sums) wn_cuda_scratch_free(be, row_sums);
    }
    if (rc == WN_OK) {
        size_t pixels = (size_t)n * h * w;
        preprocess_kernel<<<wn_cuda_blocks(ctx, pixels), WN_CUDA_THREADS, 0, ctx->stream>>>(pixels, c, cur,
                                                                                           y, mode);
        rc = wn_cuda_op_done(be, "augment preprocess kernel", "augment");
    }
    if (scratch) wn_cuda_scratch_free(be, scratch);
    return rc;
}

int wn_cuda_augment_preprocess(wn_backend *be, int n, int h, int w, int c, const uint8_t *x,
                               const wn_augment_batch *aug, float *y, int mode) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    augment_param *host = (augment_param *)calloc((size_t)n, sizeof *host);
    if (!host) return wn_fail("augment_preprocess: out of host memory");
    const uint8_t *flip = aug ? aug->flip : NULL;
    const float *angle = aug ? aug->angle : NULL;
    int staged = wn_augment_has_float_layers(aug);
    for (int i = 0; i < n; i++) {
        float a = angle ? angle[i] : 0.0f;
        host[i].flip = flip ? flip[i] != 0 : 0;
        host[i].rotate = a != 0.0f;
        if (host[i].rotate) host[i].t = wn_augment_rotation(a, h, w);
    }
    augment_param *dev;
    if (upload_params(be, host, n, &dev) != WN_OK) {
        free(host);
        return WN_ERR;
    }
    size_t count = (size_t)n * h * w * c;
    augment_kernel<<<wn_cuda_blocks(ctx, count), WN_CUDA_THREADS, 0, ctx->stream>>>(
        n, h, w, c, x, dev, staged ? -1 : mode, y);
    wn_cuda_scratch_free(be, dev);
    int rc = wn_cuda_op_done(be, "augment_preprocess kernel", "augment");
    if (rc == WN_OK && staged) rc = float_layers(be, n, h, w, c, y, aug, mode, host);
    free(host);
    return rc;
}
