/* engine/train/augment_draws.c — xoshiro256** and the augmentation draws (see the header). */
#include "engine/train/augment_draws.h"

#include <math.h>
#include <stddef.h>

#include "host/base/rng.h"
void wn_rng_seed(wn_rng *r, uint64_t seed, uint64_t stream) {
    uint64_t x = seed ^ (stream * 0xD1B54A32D192ED03ull);
    for (int i = 0; i < 4; i++) r->s[i] = wn_splitmix64(&x);
    /* An all-zero state would stay zero; splitmix64 cannot give four zeros, but be sure. */
    if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3])) r->s[0] = 1;
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t wn_rng_next(wn_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float wn_rng_uniform(wn_rng *r) {
    return (float)(wn_rng_next(r) >> 40) * (1.0f / 16777216.0f); /* exact in float32 */
}

uint8_t wn_flip_from_uniform(float u) {
    /* nearbyintf rounds half to even in the default rounding mode, like tf.round. */
    return nearbyintf(u) != 0.0f;
}

float wn_angle_from_uniform(float u, float factor) {
    const float two_pi = 6.28318530717958647692f;
    float lower = -factor * two_pi, upper = factor * two_pi;
    /* tf.random.uniform(minval, maxval) for floats: minval + u * (maxval - minval). */
    return lower + u * (upper - lower);
}

/* tf.random.uniform(minval, maxval) for floats, bounds given as Python doubles. */
static float uniform_between(wn_rng *r, double lower, double upper) {
    float lo = (float)lower, hi = (float)upper;
    return lo + wn_rng_uniform(r) * (hi - lo);
}

void wn_augment_draw_layers(wn_rng *r, int n, const wn_augment_factors *f, uint8_t *flips,
                            float *angles, float *zoom, float *shift, float *contrast) {
    for (int i = 0; i < n; i++) {
        if (flips) flips[i] = wn_flip_from_uniform(wn_rng_uniform(r));
        if (angles) angles[i] = wn_angle_from_uniform(wn_rng_uniform(r), f->rotation);
        if (zoom) /* RandomZoom: height_zoom, and width_zoom = height_zoom */
            zoom[2 * i] = zoom[2 * i + 1] =
                uniform_between(r, 1.0 - (double)f->zoom, 1.0 + (double)f->zoom);
        if (shift) {
            float dy = uniform_between(r, -(double)f->translate, (double)f->translate) * (float)f->h;
            float dx = uniform_between(r, -(double)f->translate, (double)f->translate) * (float)f->w;
            shift[2 * i] = dx, shift[2 * i + 1] = dy;
        }
        if (contrast)
            contrast[i] = uniform_between(r, 1.0 - (double)f->contrast, 1.0 + (double)f->contrast);
    }
}

void wn_augment_draw(wn_rng *r, int n, float factor, uint8_t *flips, float *angles) {
    wn_augment_factors f = {factor, 0.0f, 0.0f, 0.0f, 0, 0};
    wn_augment_draw_layers(r, n, &f, flips, angles, NULL, NULL, NULL);
}
