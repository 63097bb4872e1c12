/* tests/ops/test_softmax_xent.c — the fused softmax + cross-entropy + accuracy
 * against a straightforward double computation (p = exp(z)/sum exp(z), loss =
 * -log p[label], gradient (p - onehot)/n_mean), with huge logits (no overflow),
 * argmax ties (the first maximum wins, like tf.argmax), stats accumulating across
 * calls, NULL outputs, and a bad label refused.
 */
#include "engine/backends/cpu/backend_cpu.h"
#include "tests/ops/ops_test.h"

static wn_backend *be;

static void check_batch(int n, int k, const float *z, const int32_t *labels, float n_mean) {
    size_t nz = (size_t)n * k;
    float *probs = alloc_f(nz), *dz = alloc_f(nz), stats[2] = {10.0f, 3.0f};
    poison(probs, nz), poison(dz, nz);
    OK(wn_op_softmax_xent(be, n, k, z, labels, 0.0f, n_mean, probs, dz, stats));
    double loss = 0;
    int correct = 0;
    double worst_p = 0, worst_g = 0;
    for (int r = 0; r < n; r++) {
        const float *zr = z + (size_t)r * k;
        double mx = zr[0], s = 0;
        int am = 0;
        for (int j = 1; j < k; j++)
            if (zr[j] > mx) mx = zr[j], am = j;
        for (int j = 0; j < k; j++) s += exp((double)zr[j] - mx);
        for (int j = 0; j < k; j++) {
            double p = exp((double)zr[j] - mx) / s;
            double g = (p - (j == labels[r])) / n_mean;
            double ep = fabs(probs[(size_t)r * k + j] - p), eg = fabs(dz[(size_t)r * k + j] - g);
            if (!(ep <= worst_p)) worst_p = ep;
            if (!(eg <= worst_g)) worst_g = eg;
        }
        loss += log(s) + mx - zr[labels[r]];
        correct += am == labels[r];
    }
    /* float softmax of K <= 10 terms: ~1e-7 absolute per probability */
    CHECK(worst_p <= 1e-6, "probs: max error %.3g", worst_p);
    CHECK(worst_g <= 1e-6 / n_mean, "dlogits: max error %.3g", worst_g);
    CHECK(fabs(stats[0] - (10.0 + loss)) <= 1e-5 * (10.0 + fabs(loss)),
          "stats[0] = %.9g, want 10 + %.9g", (double)stats[0], loss);
    CHECK(stats[1] == 3.0f + correct, "stats[1] = %g, want 3 + %d", (double)stats[1], correct);
    free(probs), free(dz);
}

int main(void) {
    rng_seed(8);
    be = wn_backend_cpu();
    if (!be) {
        fprintf(stderr, "FAIL: %s\n", wn_last_error());
        return 1;
    }
    for (int t = 0; t < 20; t++) {
        int n = rng_int(1, 16), k = rng_int(2, 10);
        float *z = rand_f((size_t)n * k, -8, 8);
        int32_t *labels = malloc((size_t)n * sizeof *labels);
        for (int i = 0; i < n; i++) labels[i] = rng_int(0, k - 1);
        check_batch(n, k, z, labels, (float)n);
        check_batch(n, k, z, labels, 64.0f); /* a partial last batch averaged over 64 */
        free(z), free(labels);
    }
    /* huge logits: exp(1000) overflows unless shifted by the maximum */
    const float big[6] = {1000.0f, 999.0f, -1000.0f, 0.0f, 1000.0f, 998.0f};
    int32_t lab_big[2] = {1, 2};
    check_batch(2, 3, big, lab_big, 2.0f);
    /* ties: maxima at 1 and 3; the first (1) is the prediction */
    const float tie[8] = {0.0f, 2.0f, 1.0f, 2.0f, 0.0f, 2.0f, 1.0f, 2.0f};
    int32_t lab_tie[2] = {1, 3};
    float stats[2] = {0, 0};
    OK(wn_op_softmax_xent(be, 2, 4, tie, lab_tie, 0.0f, 2.0f, NULL, NULL, stats));
    CHECK(stats[1] == 1.0f, "ties: %g correct, want 1 (label 1 matches the first maximum, 3 does not)",
          (double)stats[1]);
    CHECK(fabs(stats[0] - 2 * (log(2 * exp(2.0) + exp(1.0) + 1.0) - 2.0)) < 1e-5, "ties: loss %g",
          (double)stats[0]);
    int32_t bad[1] = {4};
    CHECK(wn_op_softmax_xent(be, 1, 4, tie, bad, 0.0f, 1.0f, NULL, NULL, stats) == WN_ERR,
          "label 4 of 4 classes must be refused");
    wn_backend_destroy(be);
    return test_finish("test_softmax_xent");
}
