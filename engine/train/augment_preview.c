/* engine/train/augment_preview.c — augmented versions of one image, and a .npy writer. */
#include "engine/train/augment_preview.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/base/error.h"
#include "host/base/atomic_file.h"
#include "kernels/augment/augment.h"

/* The layers after the rotation on one float image a[h][w][3] (b: scratch of the
 * same size); returns the buffer that holds the result. */
static float *preview_float_layers(float *a, float *b, int h, int w, const float *zoom,
                                   const float *shift, const float *contrast) {
    for (int layer = 0; layer < 2; layer++) {
        const float *v = layer == 0 ? zoom : shift;
        if (!v) continue;
        wn_augment_xform t = layer == 0 ? wn_augment_zoom(v[0], v[1], h, w)
                                        : wn_augment_translation(v[0], v[1]);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int ch = 0; ch < 3; ch++)
                    b[((size_t)y * w + x) * 3 + ch] = wn_augment_resample(a, h, w, 3, &t, y, x, ch);
        float *swap = a;
        a = b, b = swap;
    }
    if (contrast) {
        double *rows = malloc((size_t)h * sizeof *rows);
        if (!rows) return a; /* a preview without its contrast rather than none */
        for (int ch = 0; ch < 3; ch++) {
            for (int y = 0; y < h; y++) rows[y] = wn_augment_row_sum(a, w, 3, y, ch);
            float mean = wn_augment_mean_of_rows(rows, h, w);
            for (size_t p = 0; p < (size_t)h * w; p++)
                a[p * 3 + ch] = wn_augment_contrast(a[p * 3 + ch], mean, contrast[0]);
        }
        free(rows);
    }
    return a;
}

void wn_augment_preview_layers(const uint8_t *img, int h, int w, int n_aug, wn_rng *rng,
                               const wn_augment_factors *f, uint8_t *out) {
    size_t per = (size_t)h * (size_t)w * 3;
    memcpy(out, img, per);
    int floats = f->zoom > 0 || f->translate > 0 || f->contrast > 0;
    float *a = floats ? malloc(per * sizeof *a) : NULL, *b = floats ? malloc(per * sizeof *b) : NULL;
    if (floats && (!a || !b)) floats = 0; /* out of memory: flip and rotation only */
    wn_augment_factors g = *f;
    g.h = h, g.w = w;
    for (int k = 0; k < n_aug; k++) {
        uint8_t flip;
        float angle, zoom[2], shift[2], contrast;
        wn_augment_draw_layers(rng, 1, &g, &flip, &angle, f->zoom > 0 ? zoom : NULL,
                               f->translate > 0 ? shift : NULL, f->contrast > 0 ? &contrast : NULL);
        wn_augment_xform t = wn_augment_rotation(angle, h, w);
        uint8_t *dst = out + (size_t)(k + 1) * per;
        const float *v = NULL;
        if (floats) {
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    for (int ch = 0; ch < 3; ch++)
                        a[((size_t)y * w + x) * 3 + ch] = wn_augment_value(img, h, w, 3, flip, &t, y, x, ch);
            v = preview_float_layers(a, b, h, w, f->zoom > 0 ? zoom : NULL,
                                     f->translate > 0 ? shift : NULL, f->contrast > 0 ? &contrast : NULL);
        }
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int ch = 0; ch < 3; ch++) {
                    size_t i = ((size_t)y * w + x) * 3 + ch;
                    float val = v ? v[i] : wn_augment_value(img, h, w, 3, flip, &t, y, x, ch);
                    long r = lrintf(val);
                    dst[i] = (uint8_t)(r < 0 ? 0 : r > 255 ? 255 : r);
                }
    }
    free(a), free(b);
}

void wn_augment_preview_make(const uint8_t *img, int h, int w, int n_aug, wn_rng *rng,
                             float factor, uint8_t *out) {
    wn_augment_factors f = {factor, 0.0f, 0.0f, 0.0f, h, w};
    wn_augment_preview_layers(img, h, w, n_aug, rng, &f, out);
}

int wn_npy_write_images(const char *path, const uint8_t *images, int n, int h, int w) {
    /* NPY 1.0: magic, version, little-endian header length, a Python dict literal
     * padded with spaces to a multiple of 64 bytes (newline last). */
    char dict[160];
    int len = snprintf(dict, sizeof dict,
                       "{'descr': '|u1', 'fortran_order': False, 'shape': (%d, %d, %d, 3), }", n,
                       h, w);
    int total = 10 + len + 1;
    int padded = (total + 63) / 64 * 64;
    char header[256];
    memset(header, ' ', sizeof header);
    memcpy(header, dict, (size_t)len);
    header[padded - 10 - 1] = '\n';
    uint16_t hlen = (uint16_t)(padded - 10);
    unsigned char lead[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hlen & 0xFF),
                              (unsigned char)(hlen >> 8)};
    wn_atomic_file af;
    if (wn_atomic_open(&af, path) != WN_OK) return WN_ERR;
    fwrite(lead, 1, sizeof lead, af.fp);
    fwrite(header, 1, (size_t)hlen, af.fp);
    fwrite(images, 1, (size_t)n * (size_t)h * (size_t)w * 3, af.fp);
    return wn_atomic_commit(&af);
}
