/* engine/train/augment_draws.h — the training loop's seeded random draws: per image per
 * epoch a horizontal flip and a rotation angle, per batch a dropout seed.
 *
 * Keras draws them inside TensorFlow (RandomFlip, RandomRotation, Dropout), whose
 * streams cannot be reproduced outside TF (KERAS_SEMANTICS.md, "Read this first"
 * 5); what is reproduced is their distribution:
 *   flip  = round(u), u ~ U[0, 1) float32, rounding half to even (TF's round), so
 *           u = 0.5 gives no flip and P(flip) = 0.5;
 *   angle = lower + u * (upper - lower) in float32, lower = -factor*2pi,
 *           upper = +factor*2pi: U[-f*2pi, f*2pi) (RandomRotation(f));
 * and, only when their factor is set (so that runs without them draw exactly as
 * before), per image after the angle:
 *   zoom  = U[1-f, 1+f) once, for both axes (RandomZoom(f), width_factor None);
 *   shift = dy = U[-f, f) * H, then dx = U[-f, f) * W in pixels (RandomTranslation(
 *           f, f), Keras 3's order: height first);
 *   contrast = U[1-f, 1+f) per image (Keras 3's RandomContrast(factor=(f, f)),
 *           which draws per image; tf-keras 2's RandomContrast(f) has the same range
 *           but one factor per batch; Keras 3's RandomContrast(f) with a single
 *           number draws from [1, 1+f) only, its lower bound clamped to 0).
 * Each bound is float32 of the Python double (1.0 - f), as TF casts minval/maxval.
 * The generator is xoshiro256** (Blackman, Vigna 2018) seeded through splitmix64;
 * its 4-word state is what checkpoints save, so a resumed run draws the same values
 * as an uninterrupted one.
 */
#ifndef WN_AUGMENT_DRAWS_H
#define WN_AUGMENT_DRAWS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wn_rng {
    uint64_t s[4];
} wn_rng;

/* Seeds the state from (seed, stream): different streams give independent
 * sequences from one user seed (e.g. one per training phase). */
void wn_rng_seed(wn_rng *r, uint64_t seed, uint64_t stream);
uint64_t wn_rng_next(wn_rng *r);
/* u ~ U[0, 1) as float32 (24 random bits). */
float wn_rng_uniform(wn_rng *r);

/* TF's round() on a float32 in [0, 1): half to even, so 0.5 -> 0. */
uint8_t wn_flip_from_uniform(float u);
/* RandomRotation's angle for a uniform u and factor f, in float32. */
float wn_angle_from_uniform(float u, float factor);

/* Draws n images' flips and angles (flip first, then angle, per image). With
 * flips == NULL or angles == NULL that draw is skipped entirely (augmentation
 * disabled keeps the stream as if it did not exist). */
void wn_augment_draw(wn_rng *r, int n, float factor, uint8_t *flips, float *angles);

/* The factors of every augmentation layer (0: the layer is off) and the image size
 * (the translation is a fraction of it). */
typedef struct wn_augment_factors {
    float rotation, zoom, translate, contrast;
    int h, w;
} wn_augment_factors;

/* All layers' draws of n images, per image in the order flip, angle, zoom, shift,
 * contrast; a NULL array skips that draw (zoom and shift hold 2 values per image:
 * (width, height) zoom and (dx, dy)). */
void wn_augment_draw_layers(wn_rng *r, int n, const wn_augment_factors *f, uint8_t *flips,
                            float *angles, float *zoom, float *shift, float *contrast);

#ifdef __cplusplus
}
#endif
#endif
