/* kernels/augment/augment_cpu.c — the CPU backend's fused augmentation (flip, rotation) + preprocess: an OpenMP loop over the
 * element functions of kernels/augment/augment.h, the formulas the CUDA kernel runs too. */
#include <string.h>

#include "host/base/error.h"
#include "kernels/common/cpu_ctx.h"
#include "kernels/augment/augment.h"

int wn_cpu_augment_preprocess(wn_backend *be, int n, int h, int w, int c, const uint8_t *x,
                              const uint8_t *flip, const float *angle, float *y, int mode) {
    (void)be;
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
                    for (int ch = 0; ch < c; ch++)
                        out[(size_t)col * c + ch] =
                            wn_preprocess_value(mode, (float)px[wn_preprocess_source(mode, c, ch)], ch);
                }
            } else {
                wn_augment_xform t = wn_augment_rotation(a, h, w);
                for (int col = 0; col < w; col++)
                    for (int ch = 0; ch < c; ch++)
                        out[(size_t)col * c + ch] = wn_augment_pixel(img, h, w, c, f, &t, row, col, ch, mode);
            }
        }
    return WN_OK;
}
