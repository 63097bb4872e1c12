/* tests/effnet/test_bn_gamma.c — the CPU backend's BN gamma gradient against central
 * finite differences in double precision.
 *
 * L = sum_i w_i * act(gamma[c] * (x_i - mean[c]) * inv_std[c] + beta[c]) over random
 * x, w and BN terms, for act in {none, ReLU, ReLU6}, odd channel and pixel counts.
 * bn_gamma_backward gets x, the float forward output y (computed by the backend's
 * own affine_act_forward, so the mask is the one training uses) and dy = w, and must
 * match dL/dgamma computed by differences of the double-precision loss. Inputs whose
 * pre-activation lies within 1e-3 of a kink (0 or 6) are nudged away so the
 * difference quotient is the derivative. Also: count not a multiple of c fails. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine/runtime/backend.h"
#include "engine/backends/cpu/backend_cpu.h"
#include "host/base/error.h"

static unsigned long long rng = 0x9E3779B97F4A7C15ull;
static double uniform(double lo, double hi) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return lo + (hi - lo) * (double)(rng >> 11) / 9007199254740992.0;
}

static double act_d(double v, wn_activation act) {
    if (act == WN_ACT_RELU) return v > 0 ? v : 0;
    if (act == WN_ACT_RELU6) return v > 0 ? (v < 6 ? v : 6) : 0;
    return v;
}

/* The loss in double for gamma channel `ch` moved by h. */
static double loss(const float *x, const float *w, size_t pixels, int c, const float *gamma,
                   const float *beta, const float *mean, const float *inv_std,
                   wn_activation act, int ch, double h) {
    double s = 0;
    for (size_t p = 0; p < pixels; p++)
        for (int k = 0; k < c; k++) {
            double g = gamma[k] + (k == ch ? h : 0.0);
            double v = g * ((double)x[p * c + k] - mean[k]) * inv_std[k] + beta[k];
            s += w[p * c + k] * act_d(v, act);
        }
    return s;
}

int main(void) {
    wn_backend *be = wn_backend_cpu();
    if (!be) {
        fprintf(stderr, "no CPU backend: %s\n", wn_last_error());
        return 1;
    }
    int fails = 0;
    const wn_activation acts[3] = {WN_ACT_NONE, WN_ACT_RELU, WN_ACT_RELU6};
    const int shapes[3][2] = {{7, 5}, {33, 3}, {129, 17}}; /* pixels, channels */
    for (int si = 0; si < 3; si++) {
        for (int ai = 0; ai < 3; ai++) {
            size_t pixels = (size_t)shapes[si][0];
            int c = shapes[si][1];
            size_t n = pixels * (size_t)c;
            wn_activation act = acts[ai];
            float *x = malloc(n * sizeof *x), *w = malloc(n * sizeof *w);
            float *y = malloc(n * sizeof *y);
            float *gamma = malloc(c * sizeof *gamma), *beta = malloc(c * sizeof *beta);
            float *mean = malloc(c * sizeof *mean), *inv_std = malloc(c * sizeof *inv_std);
            float *scale = malloc(c * sizeof *scale), *shift = malloc(c * sizeof *shift);
            float *dgamma = malloc(c * sizeof *dgamma);
            for (int k = 0; k < c; k++) {
                gamma[k] = (float)uniform(0.2, 3.0) * (k % 3 == 2 ? -1.0f : 1.0f);
                beta[k] = (float)uniform(-1, 4);
                mean[k] = (float)uniform(-1, 1);
                inv_std[k] = (float)(1.0 / sqrt(uniform(0.1, 4.0) + 1e-3));
                scale[k] = gamma[k] * inv_std[k];
                shift[k] = beta[k] - mean[k] * scale[k];
            }
            for (size_t i = 0; i < n; i++) {
                int k = (int)(i % (size_t)c);
                x[i] = (float)uniform(-4, 4);
                w[i] = (float)uniform(-1, 1);
                /* keep the pre-activation away from the kinks at 0 and 6 */
                for (int tries = 0; tries < 100; tries++) {
                    double v = gamma[k] * ((double)x[i] - mean[k]) * inv_std[k] + beta[k];
                    if (fabs(v) > 1e-3 && fabs(v - 6.0) > 1e-3) break;
                    x[i] += 0.01f;
                }
            }
            if (wn_op_affine_act_forward(be, n, c, x, scale, shift, act, y, "bn") != WN_OK ||
                wn_op_bn_gamma_backward(be, n, c, x, y, w, mean, inv_std, act, dgamma, "bn") !=
                    WN_OK) {
                fprintf(stderr, "FAIL: %s\n", wn_last_error());
                return 1;
            }
            double worst = 0;
            for (int k = 0; k < c; k++) {
                const double h = 1e-6;
                double fd = (loss(x, w, pixels, c, gamma, beta, mean, inv_std, act, k, h) -
                             loss(x, w, pixels, c, gamma, beta, mean, inv_std, act, k, -h)) /
                            (2 * h);
                double err = fabs(fd - dgamma[k]) / (1.0 + fabs(fd));
                if (err > worst) worst = err;
            }
            /* float inputs, double sums: the only error is the float x_hat terms */
            int ok = worst < 1e-4;
            printf("%s pixels %zu channels %d act %d: worst relative error %.2e\n",
                   ok ? "ok  " : "FAIL", pixels, c, (int)act, worst);
            fails += !ok;
            free(x), free(w), free(y), free(gamma), free(beta), free(mean), free(inv_std);
            free(scale), free(shift), free(dgamma);
        }
    }
    float one = 1;
    if (wn_op_bn_gamma_backward(be, 5, 2, &one, &one, &one, &one, &one, WN_ACT_NONE, &one,
                              "bad") == WN_OK) {
        fprintf(stderr, "FAIL: 5 elements over 2 channels was accepted\n");
        fails++;
    }
    wn_backend_destroy(be);
    if (fails) {
        printf("%d failed\n", fails);
        return 1;
    }
    printf("bn_gamma_backward matches finite differences\n");
    return 0;
}
