/* engine/train/augment_preview.c — augmented versions of one image, and a .npy writer. */
#include "engine/train/augment_preview.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "host/base/error.h"
#include "host/base/atomic_file.h"
#include "kernels/augment/augment.h"

void wn_augment_preview_make(const uint8_t *img, int h, int w, int n_aug, wn_rng *rng,
                             float factor, uint8_t *out) {
    size_t per = (size_t)h * (size_t)w * 3;
    memcpy(out, img, per);
    for (int k = 0; k < n_aug; k++) {
        uint8_t flip;
        float angle;
        wn_augment_draw(rng, 1, factor, &flip, &angle);
        wn_augment_xform t = wn_augment_rotation(angle, h, w);
        uint8_t *dst = out + (size_t)(k + 1) * per;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int ch = 0; ch < 3; ch++) {
                    float v = wn_augment_value(img, h, w, 3, flip, &t, y, x, ch);
                    long r = lrintf(v);
                    dst[((size_t)y * w + x) * 3 + ch] = (uint8_t)(r < 0 ? 0 : r > 255 ? 255 : r);
                }
    }
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
