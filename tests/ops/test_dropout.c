/* tests/ops/test_dropout.c — the counter-based dropout mask: reproducible for a
 * (seed, offset), a pure function of seed and offset + i (so a call over a slice
 * at offset o equals that slice of a call at offset 0), different for another
 * seed, the right keep rate and survivor scale 1/(1 - rate), uniform draws in
 * [0, 1) on a 2^-24 grid, and the backend equal to kernels/dropout.h bit for bit
 * (the CUDA kernel calls the same function).
 *
 * Keep rate: over N = 2^20 draws the kept fraction has standard deviation
 * sqrt(r(1-r)/N) <= 5e-4; the tolerance 3e-3 is 6 sigma.
 */
#include "engine/backends/cpu/backend_cpu.h"
#include "kernels/dropout/dropout.h"
#include "tests/ops/ops_test.h"

int main(void) {
    wn_backend *be = wn_backend_cpu();
    if (!be) {
        fprintf(stderr, "FAIL: %s\n", wn_last_error());
        return 1;
    }
    const size_t N = (size_t)1 << 20;
    float *x = alloc_f(N), *y = alloc_f(N), *y2 = alloc_f(N);
    for (size_t i = 0; i < N; i++) x[i] = 1.0f + (float)(i % 7);
    const float rates[] = {0.2f, 0.5f, 0.05f};
    for (size_t ri = 0; ri < 3; ri++) {
        float rate = rates[ri], scale = 1.0f / (1.0f - rate);
        uint64_t seed = 1234 + ri, off = 977;
        OK(wn_op_dropout_forward(be, N, rate, seed, off, x, y, "d"));
        OK(wn_op_dropout_forward(be, N, rate, seed, off, x, y2, "d"));
        CHECK(memcmp(y, y2, N * sizeof(float)) == 0, "rate %g: same (seed, offset) gave another mask", (double)rate);
        size_t kept = 0;
        int bad_scale = 0, bad_fn = 0;
        for (size_t i = 0; i < N; i++) {
            int k = y[i] != 0.0f;
            kept += k;
            if (k && y[i] != x[i] * scale) bad_scale++;
            if (k != wn_dropout_keep(seed, off + i, rate)) bad_fn++;
        }
        double frac = (double)kept / N;
        CHECK(fabs(frac - (1.0 - rate)) <= 3e-3, "rate %g: kept fraction %.5f, want %.5f", (double)rate, frac,
              1.0 - rate);
        CHECK(bad_scale == 0, "rate %g: %d survivors not scaled by 1/(1-rate)", (double)rate, bad_scale);
        CHECK(bad_fn == 0, "rate %g: %d elements differ from wn_dropout_keep", (double)rate, bad_fn);
        /* a slice at offset off + 1000 equals elements 1000.. of the full call */
        OK(wn_op_dropout_forward(be, 5000, rate, seed, off + 1000, x + 1000, y2, "d"));
        CHECK(memcmp(y2, y + 1000, 5000 * sizeof(float)) == 0, "rate %g: mask depends on more than offset + i",
              (double)rate);
        /* another seed: masks agree only by chance, on r^2 + (1-r)^2 of elements */
        OK(wn_op_dropout_forward(be, N, rate, seed + 1, off, x, y2, "d"));
        size_t same = 0;
        for (size_t i = 0; i < N; i++) same += (y[i] != 0.0f) == (y2[i] != 0.0f);
        double want_same = rate * rate + (1 - rate) * (1 - rate);
        CHECK(fabs((double)same / N - want_same) <= 3e-3, "rate %g: seeds agree on %.4f of the mask, want %.4f",
              (double)rate, (double)same / N, want_same);
        /* backward uses the same mask */
        OK(wn_op_dropout_backward(be, N, rate, seed, off, x, y2, 0, "d"));
        CHECK(memcmp(y, y2, N * sizeof(float)) == 0, "rate %g: backward mask differs from forward", (double)rate);
    }
    /* the uniform draws: range, grid, mean and a 16-bin histogram */
    int bad_range = 0;
    double sum = 0;
    size_t bins[16] = {0};
    for (size_t i = 0; i < N; i++) {
        float u = wn_dropout_uniform(42, i);
        if (!(u >= 0.0f && u < 1.0f) || u * 16777216.0f != floorf(u * 16777216.0f)) bad_range++;
        sum += u;
        bins[(int)(u * 16)]++;
    }
    CHECK(bad_range == 0, "%d uniforms outside [0,1) or off the 2^-24 grid", bad_range);
    CHECK(fabs(sum / N - 0.5) < 2e-3, "uniform mean %.5f", sum / N);
    double chi2 = 0, e = N / 16.0;
    for (int b = 0; b < 16; b++) chi2 += (bins[b] - e) * (bins[b] - e) / e;
    CHECK(chi2 < 50.0, "uniform histogram chi^2 %.1f over 15 degrees of freedom (p < 1e-5)", chi2);
    /* rate 0 keeps everything unchanged; rate 1 is refused */
    OK(wn_op_dropout_forward(be, 1000, 0.0f, 7, 0, x, y, "d"));
    CHECK(memcmp(x, y, 1000 * sizeof(float)) == 0, "rate 0 changed values");
    CHECK(wn_op_dropout_forward(be, 10, 1.0f, 7, 0, x, y, "d") == WN_ERR, "rate 1 must be refused");
    free(x), free(y), free(y2);
    wn_backend_destroy(be);
    return test_finish("test_dropout");
}
