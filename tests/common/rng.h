/* tests/common/rng.h — the tests' random numbers: one splitmix64 stream
 * (host/base/rng.h), seeded per test so that a failure reproduces. */
#ifndef WN_TESTS_COMMON_RNG_H
#define WN_TESTS_COMMON_RNG_H

#include <stddef.h>
#include <stdint.h>

#include "host/base/rng.h"

extern uint64_t test_rng_state;

static inline void rng_seed(uint64_t seed) { test_rng_state = seed; }
static inline uint64_t rng_u64(void) { return wn_splitmix64(&test_rng_state); }
/* uniform in [lo, hi) */
static inline float rng_uniform(float lo, float hi) {
    return lo + (hi - lo) * (float)wn_splitmix64_unit(&test_rng_state);
}
/* uniform integer in [lo, hi] */
static inline int rng_int(int lo, int hi) {
    return lo + (int)(rng_u64() % (uint64_t)(hi - lo + 1));
}
/* n floats uniform in [lo, hi) (exits on out of memory) */
float *rng_floats(size_t n, float lo, float hi);

#endif
