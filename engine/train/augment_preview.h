/* engine/train/augment_preview.h — the notebook's augmentation preview: one training image
 * and a few augmented versions of it, saved as a NumPy .npy file that
 * tools/plots.py draws (augment_preview.png).
 *
 * The versions are made on the host with the same element functions the backends
 * run (kernels/augment.h): flip, rotation (reflect, bilinear) with draws from
 * engine/train/augment_draws.h. Values are the augmented pixels before preprocess_input,
 * rounded to uint8 for display.
 */
#ifndef WN_AUGMENT_PREVIEW_H
#define WN_AUGMENT_PREVIEW_H

#include <stdint.h>

#include "engine/train/augment_draws.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Fills out[(1 + n_aug) * h * w * 3]: the image itself, then n_aug augmented
 * versions with flips and angles drawn from rng (rotation factor `factor`). */
void wn_augment_preview_make(const uint8_t *img, int h, int w, int n_aug, wn_rng *rng,
                             float factor, uint8_t *out);
/* The same with every layer of f (rotation, zoom, translation, contrast; f's h and w
 * are replaced by the image's), each drawn as a training epoch draws them. */
void wn_augment_preview_layers(const uint8_t *img, int h, int w, int n_aug, wn_rng *rng,
                               const wn_augment_factors *f, uint8_t *out);

/* Writes n images [n, h, w, 3] uint8 as a .npy file, atomically. */
int wn_npy_write_images(const char *path, const uint8_t *images, int n, int h, int w);

#ifdef __cplusplus
}
#endif
#endif
