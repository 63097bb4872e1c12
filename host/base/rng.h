/* host/base/rng.h — splitmix64 (Steele, Lea, Flood 2014), the one 64-bit mixer and
 * stream generator every host-side random draw starts from: the loader's epoch
 * permutations, the augmentation RNG's seeding, Keras-style weight initialisation,
 * and the tests' random inputs. (The dropout mask's counter-based hash on the device
 * is kernels/dropout/dropout.h.) */
#ifndef WN_RNG_H
#define WN_RNG_H

#include <stdint.h>

/* The output function: a bijective mix of z. */
static inline uint64_t wn_splitmix64_mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The next value of the stream whose state is *s. */
static inline uint64_t wn_splitmix64(uint64_t *s) {
    return wn_splitmix64_mix(*s += 0x9E3779B97F4A7C15ull);
}

/* The next value as a double in [0, 1) (53 random bits). */
static inline double wn_splitmix64_unit(uint64_t *s) {
    return (double)(wn_splitmix64(s) >> 11) * (1.0 / 9007199254740992.0);
}

#endif
