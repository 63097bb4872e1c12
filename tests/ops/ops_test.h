/* tests/ops/ops_test.h — shared helpers of the op tests: a seeded RNG, check
 * counting, NaN-poisoned outputs, and the finite-difference gradient checker.
 *
 * Gradient checks. For an op y = f(x) (x is one float input: data, weight or bias)
 * and a fixed random r, the scalar loss is L(x) = sum_j r_j * y_j, summed in double
 * from the op's float outputs. The analytic gradient is the op's backward with
 * dy = r. The numerical one is the central difference
 *     (L(x + h e_i) - L(x - h e_i)) / 2h.
 * Why this is accurate enough although the op runs in float:
 *  - h is a power of two (2^-4 by default) and |x| < 8, so x +- h is exact in float;
 *  - every op here is linear in the checked input (conv, dense, concat, residual,
 *    pooling, GAP, dropout, the affine) or piecewise linear with all inputs kept
 *    more than h away from the kinks (ReLU at 0 and 6, max-pool ties), so the central
 *    difference has no truncation error; only softmax-xent is curved (its test
 *    says how it bounds the curvature term);
 *  - outputs that do not depend on x_i are bit-identical in both evaluations (the
 *    op is deterministic), so their rounding cancels exactly; what remains is the
 *    float rounding of the affected outputs, about |y_j| * 2^-24 * (terms summed),
 *    divided by 2h: ~1e-6 relative for these sizes.
 * The tolerance |fd - an| <= rtol * (|an| + rms(an)) with rtol = 1e-3 is ~100x that
 * bound, yet a wrong index, a missing term or a wrong factor (>= 1e-2) fails.
 */
#ifndef WN_OPS_TEST_H
#define WN_OPS_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/runtime/backend.h"
#include "host/base/error.h"

static int g_failures = 0, g_checks = 0;

#define CHECK(cond, ...)                                                          \
    do {                                                                          \
        g_checks++;                                                               \
        if (!(cond)) {                                                            \
            g_failures++;                                                         \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                  \
            fprintf(stderr, __VA_ARGS__);                                         \
            fprintf(stderr, "\n");                                                \
        }                                                                         \
    } while (0)

/* Calls a backend op and aborts the test with the reason when it fails. */
#define OK(call)                                                                  \
    do {                                                                          \
        if ((call) != WN_OK) {                                                    \
            fprintf(stderr, "FAIL %s:%d: %s -> %s\n", __FILE__, __LINE__, #call,  \
                    wn_last_error());                                             \
            exit(1);                                                              \
        }                                                                         \
    } while (0)

static inline int test_finish(const char *name) {
    if (g_failures) {
        fprintf(stderr, "%s: %d of %d checks FAILED\n", name, g_failures, g_checks);
        return 1;
    }
    printf("%s: all %d checks passed\n", name, g_checks);
    return 0;
}

/* ---- xorshift64* RNG, seeded per test so failures reproduce ---- */
static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static inline void rng_seed(uint64_t s) { g_rng = s * 0x9E3779B97F4A7C15ull + 1; }
static inline uint64_t rng_u64(void) {
    g_rng ^= g_rng >> 12, g_rng ^= g_rng << 25, g_rng ^= g_rng >> 27;
    return g_rng * 2685821657736338717ull;
}
/* uniform in [lo, hi) */
static inline float rng_uniform(float lo, float hi) {
    return lo + (hi - lo) * (float)((rng_u64() >> 40) * (1.0 / 16777216.0));
}
static inline int rng_int(int lo, int hi) { return lo + (int)(rng_u64() % (uint64_t)(hi - lo + 1)); }

static inline float *alloc_f(size_t n) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}
static inline float *rand_f(size_t n, float lo, float hi) {
    float *p = alloc_f(n);
    for (size_t i = 0; i < n; i++) p[i] = rng_uniform(lo, hi);
    return p;
}
static inline void poison(float *p, size_t n) {
    for (size_t i = 0; i < n; i++) p[i] = NAN;
}
static inline double dot_d(const float *a, const float *b, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}
static inline int all_finite(const float *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(p[i])) return 0;
    return 1;
}

/* Max |a-b| / (|b| + scale) over n elements, and where. */
static inline double max_rel_err(const float *a, const float *b, size_t n, double scale, size_t *at) {
    double worst = 0.0;
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]) / (fabs((double)b[i]) + scale);
        if (!(e <= worst)) worst = e, w = i; /* NaN counts as worst */
    }
    if (at) *at = w;
    return worst;
}
static inline double rms_f(const float *a, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * a[i];
    return n ? sqrt(s / n) : 0.0;
}

/* The loss L = sum(r * y) of one forward evaluation; y is poisoned first so an
 * unwritten output makes L NaN and the check fail. */
typedef void (*fd_forward_fn)(void *ctx, float *y);

typedef struct fd_spec {
    const char *name;       /* what is checked, for messages */
    float *param;           /* the input perturbed in place */
    size_t count;           /* its elements */
    const float *analytic;  /* the backward's gradient for this input, [count] */
    float *y;               /* forward output buffer */
    size_t y_count;
    const float *r;         /* loss weights, [y_count] */
    fd_forward_fn forward;
    void *ctx;
    float h;                /* perturbation, a power of two */
    double rtol;
    size_t max_checks;      /* 0: every element; else a random sample of this many */
} fd_spec;

static inline double fd_loss(const fd_spec *s) {
    poison(s->y, s->y_count);
    s->forward(s->ctx, s->y);
    return dot_d(s->r, s->y, s->y_count);
}

static inline void fd_check(const fd_spec *s) {
    double rms = rms_f(s->analytic, s->count);
    size_t n = s->max_checks && s->max_checks < s->count ? s->max_checks : s->count;
    int bad = 0;
    double worst = 0.0;
    for (size_t t = 0; t < n; t++) {
        size_t i = n == s->count ? t : (size_t)(rng_u64() % s->count);
        float v = s->param[i];
        s->param[i] = v + s->h;
        double lp = fd_loss(s);
        s->param[i] = v - s->h;
        double lm = fd_loss(s);
        s->param[i] = v;
        double fd = (lp - lm) / (2.0 * s->h);
        double an = s->analytic[i];
        double err = fabs(fd - an) / (fabs(an) + rms + 1e-30);
        if (!(err <= worst)) worst = err;
        if (!(err <= s->rtol)) {
            if (bad < 5)
                fprintf(stderr, "  %s[%zu]: finite difference %.9g, backward %.9g\n", s->name, i,
                        fd, an);
            bad++;
        }
    }
    CHECK(bad == 0, "%s: %d of %zu gradient elements off (worst relative error %.3g, tol %.1g)",
          s->name, bad, n, worst, s->rtol);
}

#endif
