/* tests/common/check.c — see check.h and rng.h. */
#include "tests/common/check.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "tests/common/rng.h"

int test_checks, test_failures;
uint64_t test_rng_state = 0x853c49e6748fea9bull;

void test_check_failed(const char *file, int line, const char *fmt, ...) {
    test_failures++;
    fprintf(stderr, "FAIL %s:%d: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
}

int test_finish(const char *name) {
    if (test_failures || test_checks == 0) {
        fprintf(stderr, "%s: %d of %d checks FAILED\n", name, test_failures, test_checks);
        return 1;
    }
    printf("%s: all %d checks passed\n", name, test_checks);
    return 0;
}

float *test_alloc_f(size_t n) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    if (!p) {
        fprintf(stderr, "out of memory (%zu floats)\n", n);
        exit(1);
    }
    for (size_t i = 0; i < n; i++) p[i] = NAN;
    return p;
}

float *rng_floats(size_t n, float lo, float hi) {
    float *p = test_alloc_f(n);
    for (size_t i = 0; i < n; i++) p[i] = rng_uniform(lo, hi);
    return p;
}

double tensor_error(const float *got, const float *want, size_t n, size_t *at) {
    double max_diff = 0.0, scale = 0.0;
    size_t where = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        if (!(d <= max_diff)) max_diff = d, where = i; /* NaN counts as the worst */
        if (fabs((double)want[i]) > scale) scale = fabs((double)want[i]);
    }
    if (at) *at = where;
    if (isnan(max_diff)) return INFINITY;
    return max_diff / (scale > 0.0 ? scale : 1.0);
}

int check_tensor(const char *name, const float *got, const float *want, size_t n, double tol) {
    size_t at = 0, bad_got = n, bad_want = n;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(got[i]) && bad_got == n) bad_got = i;
        if (!isfinite(want[i]) && bad_want == n) bad_want = i;
    }
    double err = tensor_error(got, want, n, &at);
    int ok = bad_got == n && bad_want == n && (tol == 0.0 ? err == 0.0 : err <= tol);
    test_checks++;
    printf("%s %-40s %8zu values  error %.3e (tol %.0e)  max |diff| %.3e at %zu\n",
           ok ? "ok  " : "FAIL", name, n, err, tol,
           n ? fabs((double)got[at] - (double)want[at]) : 0.0, at);
    if (!ok) {
        test_failures++;
        if (bad_want != n) printf("     the reference has a non-finite value at %zu\n", bad_want);
        if (bad_got != n) printf("     non-finite value %g at %zu\n", (double)got[bad_got], bad_got);
        printf("     first values (got, want):");
        for (size_t i = 0; i < n && i < 5; i++)
            printf(" (%.8g, %.8g)", (double)got[i], (double)want[i]);
        printf("\n     largest difference: [%zu] got %.8g want %.8g\n", at, (double)got[at],
               (double)want[at]);
    }
    fflush(stdout);
    return ok;
}
