/* tests/ops/ops_test.h — helpers of the op tests on top of tests/common (checks,
 * RNG): NaN-poisoned outputs, error measures, and the finite-difference checker
 * test_conv.c uses (test_op_grad.c runs the op cases' own).
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
#include "tests/common/check.h"
#include "tests/common/rng.h"

/* Checks, counters, test_finish and the RNG are tests/common's; OK is CHECK_OK. */
#define OK(call) CHECK_OK(call)
#define alloc_f(n) test_alloc_f(n)
#define rand_f(n, lo, hi) rng_floats((n), (lo), (hi))

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
