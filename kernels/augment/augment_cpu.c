/* kernels/augment/augment_cpu.c — the CPU backend's augmentation + preprocess: OpenMP loops
 * over the element functions of kernels/augment/augment.h, the formulas the CUDA kernels
 * run too. Flip and rotation alone are fused with the preprocess in one pass; with a
 * zoom, translation or contrast the layers run one after the other on float images
 * (y and one scratch image), as Keras's layers do. */
#include <stdlib.h>
#include <string.h>

#include "host/base/error.h"
#include "kernels/common/cpu_ctx.h"
#include "kernels/augment/augment.h"

/* Flip + rotation of image i's row `row` into out (w*c floats): preprocessed when
 * mode >= 0, the raw [0, 255] values when mode < 0. */
static void flip_rotate_row(const uint8_t *img, int h, int w, int c, int f, float a, int row,
                            float *out, int mode) {
    if (a == 0.0f) {
        /* No rotation: bilinear at integer coordinates reads one pixel with weight 1
         * (bit-identical to the general path), so skip it. */
        const uint8_t *src = img + (size_t)row * w * c;
        for (int col = 0; col < w; col++) {
            const uint8_t *px = src + (size_t)(f ? w - 1 - col : col) * c;
            for (int ch = 0; ch < c; ch++)
                out[(size_t)col * c + ch] =
                    mode < 0 ? (float)px[ch]
                             : wn_preprocess_value(mode, (float)px[wn_preprocess_source(mode, c, ch)], ch);
        }
        return;
    }
    wn_augment_xform t = wn_augment_rotation(a, h, w);
    for (int col = 0; col < w; col++)
        for (int ch = 0; ch < c; ch++)
            out[(size_t)col * c + ch] = mode < 0 ? wn_augment_value(img, h, w, c, f, &t, row, col, ch)
                                                 : wn_augment_pixel(img, h, w, c, f, &t, row, col, ch, mode);
}

/* One geometric layer (zoom or translation) from src into dst, image by image;
 * identity transforms are copied (bilinear at integer coordinates is exact). */
static void resample_layer(int n, int h, int w, int c, const float *src, float *dst,
                           const wn_augment_xform *t, const unsigned char *identity) {
    size_t image = (size_t)h * w * c;
#pragma omp parallel for collapse(2) schedule(static)
    for (int i = 0; i < n; i++)
        for (int row = 0; row < h; row++) {
            const float *img = src + (size_t)i * image;
            float *out = dst + (size_t)i * image + (size_t)row * w * c;
            if (identity[i]) {
                memcpy(out, img + (size_t)row * w * c, (size_t)w * c * sizeof *out);
                continue;
            }
            for (int col = 0; col < w; col++)
                for (int ch = 0; ch < c; ch++)
                    out[(size_t)col * c + ch] = wn_augment_resample(img, h, w, c, &t[i], row, col, ch);
        }
}

/* RandomContrast in place; row_sums has n*c*h doubles of room. */
static void contrast_layer(int n, int h, int w, int c, float *x, const float *factor,
                           double *row_sums, float *means) {
    size_t image = (size_t)h * w * c;
#pragma omp parallel for collapse(2) schedule(static)
    for (int i = 0; i < n; i++)
        for (int row = 0; row < h; row++)
            for (int ch = 0; ch < c; ch++)
                row_sums[((size_t)i * c + ch) * h + row] =
                    wn_augment_row_sum(x + (size_t)i * image, w, c, row, ch);
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            means[i * c + ch] = wn_augment_mean_of_rows(row_sums + ((size_t)i * c + ch) * h, h, w);
#pragma omp parallel for collapse(2) schedule(static)
    for (int i = 0; i < n; i++)
        for (int row = 0; row < h; row++) {
            float *p = x + (size_t)i * image + (size_t)row * w * c;
            for (int col = 0; col < w; col++)
                for (int ch = 0; ch < c; ch++)
                    p[(size_t)col * c + ch] =
                        wn_augment_contrast(p[(size_t)col * c + ch], means[i * c + ch], factor[i]);
        }
}

/* The layers after the rotation, on float images: y holds the rotated batch. */
static int float_layers(int n, int h, int w, int c, float *y, const wn_augment_batch *a, int mode) {
    size_t count = (size_t)n * h * w * c;
    float *scratch = (a->zoom || a->shift) ? malloc(count * sizeof *scratch) : NULL;
    wn_augment_xform *t = malloc((size_t)n * sizeof *t);
    unsigned char *identity = malloc((size_t)n);
    double *row_sums = a->contrast ? malloc((size_t)n * c * h * sizeof *row_sums) : NULL;
    float *means = a->contrast ? malloc((size_t)n * c * sizeof *means) : NULL;
    if (((a->zoom || a->shift) && !scratch) || !t || !identity || (a->contrast && (!row_sums || !means))) {
        free(scratch), free(t), free(identity), free(row_sums), free(means);
        return wn_fail("augment_preprocess: out of memory for %d images of %dx%dx%d", n, h, w, c);
    }
    float *cur = y, *other = scratch;
    for (int layer = 0; layer < 2; layer++) {
        const float *v = layer == 0 ? a->zoom : a->shift;
        if (!v) continue;
        for (int i = 0; i < n; i++) {
            float p = v[2 * i], q = v[2 * i + 1];
            identity[i] = layer == 0 ? (p == 1.0f && q == 1.0f) : (p == 0.0f && q == 0.0f);
            t[i] = layer == 0 ? wn_augment_zoom(p, q, h, w) : wn_augment_translation(p, q);
        }
        resample_layer(n, h, w, c, cur, other, t, identity);
        float *swap = cur;
        cur = other, other = swap;
    }
    if (a->contrast) contrast_layer(n, h, w, c, cur, a->contrast, row_sums, means);
    size_t pixels = (size_t)n * h * w;
#pragma omp parallel for schedule(static)
    for (size_t p = 0; p < pixels; p++) {
        float *px = y + p * c;
        if (cur != y) memcpy(px, cur + p * c, (size_t)c * sizeof *px);
        wn_preprocess_pixel(mode, px, c);
    }
    free(scratch), free(t), free(identity), free(row_sums), free(means);
    return WN_OK;
}

int wn_cpu_augment_preprocess(wn_backend *be, int n, int h, int w, int c, const uint8_t *x,
                              const wn_augment_batch *aug, float *y, int mode) {
    (void)be;
    size_t image = (size_t)h * w * c;
    const uint8_t *flip = aug ? aug->flip : NULL;
    const float *angle = aug ? aug->angle : NULL;
    int staged = wn_augment_has_float_layers(aug);
#pragma omp parallel for collapse(2) schedule(static)
    for (int i = 0; i < n; i++)
        for (int row = 0; row < h; row++)
            flip_rotate_row(x + (size_t)i * image, h, w, c, flip ? flip[i] != 0 : 0,
                            angle ? angle[i] : 0.0f, row, y + (size_t)i * image + (size_t)row * w * c,
                            staged ? -1 : mode);
    return staged ? float_layers(n, h, w, c, y, aug, mode) : WN_OK;
}
