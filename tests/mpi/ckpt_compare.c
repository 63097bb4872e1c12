/* tests/mpi/ckpt_compare.c — two checkpoints of the same phase, compared within a
 * tolerance: same place (epoch, step, status, Adam step, early stopping's best epoch),
 * and weights, moving statistics, Adam moments and the best snapshot within
 *   |a - b| <= atol + rtol * max|a|   (per array, max over the array).
 * Prints the largest differences; exit 0 when within, 1 when not, 2 on bad input.
 *
 * usage: ckpt_compare A.ckpt B.ckpt RTOL ATOL */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine/train/checkpoint.h"
#include "host/base/error.h"

/* Largest |a-b| and largest |a| over n floats. */
static void max_diff(const float *a, const float *b, size_t n, double *diff, double *scale) {
    *diff = 0, *scale = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= *diff)) *diff = d; /* a NaN counts as a difference */
        if (fabs((double)a[i]) > *scale) *scale = fabs((double)a[i]);
    }
}

static int within(const char *what, const float *a, const float *b, size_t n, double rtol,
                  double atol) {
    if (!n) return 1;
    if (!a || !b) {
        printf("%-8s present in only one file\n", what);
        return 0;
    }
    double d, s;
    max_diff(a, b, n, &d, &s);
    int ok = d <= atol + rtol * s;
    printf("%-8s %8zu values: max |a-b| %.3g, max |a| %.3g, relative %.3g %s\n", what, n, d, s,
           s > 0 ? d / s : d, ok ? "ok" : "OVER TOLERANCE");
    return ok;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: ckpt_compare A.ckpt B.ckpt RTOL ATOL\n");
        return 2;
    }
    wn_checkpoint a, b;
    if (wn_checkpoint_load(&a, argv[1]) != WN_OK || wn_checkpoint_load(&b, argv[2]) != WN_OK) {
        fprintf(stderr, "ckpt_compare: %s\n", wn_last_error());
        return 2;
    }
    double rtol = atof(argv[3]), atol = atof(argv[4]);
    int ok = 1;
    if (a.epoch != b.epoch || a.step != b.step || a.status != b.status || a.adam_t != b.adam_t ||
        a.es.best_epoch != b.es.best_epoch || a.n_params != b.n_params ||
        a.n_stats != b.n_stats || a.trainable_first != b.trainable_first) {
        printf("place differs: epoch %d/%d step %d/%d status %d/%d adam_t %ld/%ld best epoch "
               "%d/%d params %zu/%zu\n",
               a.epoch, b.epoch, a.step, b.step, a.status, b.status, a.adam_t, b.adam_t,
               a.es.best_epoch, b.es.best_epoch, a.n_params, b.n_params);
        ok = 0;
    } else {
        size_t nt = a.n_params - a.trainable_first;
        ok &= within("params", a.params, b.params, a.n_params, rtol, atol);
        ok &= within("stats", a.stats, b.stats, a.n_stats, rtol, atol);
        ok &= within("adam_m", a.adam_m, b.adam_m, nt, rtol, atol);
        ok &= within("adam_v", a.adam_v, b.adam_v, nt, rtol, atol);
        if (a.has_best && b.has_best) ok &= within("best", a.best, b.best, nt, rtol, atol);
    }
    wn_checkpoint_free(&a);
    wn_checkpoint_free(&b);
    return ok ? 0 : 1;
}
