/* engine/train/augment_draws.c — xoshiro256** and the augmentation draws (see the header). */
#include "engine/train/augment_draws.h"

#include <math.h>

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

void wn_augment_draw(wn_rng *r, int n, float factor, uint8_t *flips, float *angles) {
    for (int i = 0; i < n; i++) {
        if (flips) flips[i] = wn_flip_from_uniform(wn_rng_uniform(r));
        if (angles) angles[i] = wn_angle_from_uniform(wn_rng_uniform(r), factor);
    }
}
