/* tests/ops/test_op_grad.c — the gradient-check mode of the op cases
 * (engine/runtime/op_cases.h): every case marked WN_OPC_GRAD, on any backend, its
 * backward against central finite differences in double; each accumulating variant
 * against its overwriting twin bit for bit; and outputs fully written. Also checks
 * the case list itself (every op has cases for every mode it can take part in) and
 * that the backend fills its whole ops table.
 *
 * The method. For an op y = f(x) and the case's fixed random loss weights r (its dy
 * tensor), L(x) = sum_j r_j * y_j, summed in double from the op's float outputs. The
 * analytic gradient is the op's backward with dy = r; the numerical one is
 *     (L(x + h e_i) - L(x - h e_i)) / 2h.
 * Why this is accurate enough although the op runs in float:
 *  - h is a power of two (2^-4 unless the case says otherwise) and |x| < 8, so
 *    x +- h is exact in float;
 *  - every op here is linear in the checked input (conv, dense, concat, residual,
 *    pooling, GAP, dropout, the affine) or piecewise linear with all inputs kept
 *    more than h away from the kinks (ReLU at 0 and 6, max-pool ties), so the central
 *    difference has no truncation error; only softmax-xent is curved (op_cases.c
 *    says how its tolerance bounds the curvature term);
 *  - outputs that do not depend on x_i are bit-identical in both evaluations (the
 *    op is deterministic), so their rounding cancels; what remains is the float
 *    rounding of the affected outputs, ~1e-6 relative for these sizes.
 * The tolerance |fd - an| <= rtol * (|an| + rms(an)) with rtol = 1e-3 is ~100x that
 * bound, yet a wrong index, a missing term or a wrong factor (>= 1e-2) fails: the
 * test proves that on itself (a gradient made 1% wrong must fail) before it starts.
 *
 * usage: test_op_grad [--backend cpu|cuda] [--seed N] [op-name-substring]
 * Exit: 0 passed, 1 failed, 77 skipped (--backend cuda without a usable GPU).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/runtime/backend.h"
#include "engine/backends/cpu/backend_cpu.h"
#include "engine/backends/cuda/backend_cuda.h"
#include "engine/runtime/op_cases.h"
#include "tests/common/backend_table.h"
#include "tests/common/check.h"
#include "tests/common/rng.h"

#define MAX_FD_SAMPLES 200 /* elements checked per gradient tensor (a random sample) */

static double loss_of(wn_opc_placed *p, const wn_opc_data *d, float *scratch) {
    if (wn_opc_reset(p, d) != WN_OK || wn_opc_forward(p, d) != WN_OK) {
        fprintf(stderr, "forward failed: %s\n", wn_last_error());
        return NAN;
    }
    double l = 0.0;
    for (int i = 0; i < d->n; i++) {
        int y = d->t[i].weights_of;
        if (y < 0 || !d->t[i].count) continue;
        if (wn_opc_download(p, d, y, scratch, 0) != WN_OK) return NAN;
        const float *r = d->host[i];
        for (size_t j = 0; j < d->t[y].count; j++) l += (double)r[j] * scratch[j];
    }
    return l;
}

/* The finite-difference check of gradient tensor g against `analytic`; returns the
 * number of elements off and sets *worst to the largest relative error. */
static int fd_check(wn_opc_placed *p, wn_opc_data *d, int g, const double *analytic,
                    float *scratch, double *worst, const char *what) {
    const wn_opc_tensor *gt = &d->t[g];
    float *x = d->host[gt->grad_of];
    size_t n = gt->count;
    double rms = 0.0;
    for (size_t i = 0; i < n; i++) rms += analytic[i] * analytic[i];
    rms = sqrt(rms / (double)n);
    size_t samples = n < MAX_FD_SAMPLES ? n : MAX_FD_SAMPLES;
    int bad = 0;
    *worst = 0.0;
    for (size_t t = 0; t < samples; t++) {
        size_t i = samples == n ? t : (size_t)(rng_u64() % n);
        float v = x[i];
        x[i] = v + d->fd_h;
        double lp = loss_of(p, d, scratch);
        x[i] = v - d->fd_h;
        double lm = loss_of(p, d, scratch);
        x[i] = v;
        double fd = (lp - lm) / (2.0 * d->fd_h), an = analytic[i];
        double err = fabs(fd - an) / (fabs(an) + rms + 1e-30);
        if (!(err <= *worst)) *worst = err;
        if (!(err <= d->fd_rtol)) {
            if (what && bad < 5)
                fprintf(stderr, "  %s %s[%zu]: finite difference %.9g, backward %.9g\n", what,
                        gt->name, i, fd, an);
            bad++;
        }
    }
    return bad;
}

/* Runs forward + backward; returns the gradient tensors' values (as the op's own
 * contribution: minus the starting values for accumulating ones) in an[g]. */
static int run_case(wn_opc_placed *p, wn_opc_data *d, double **an, float **raw, float *scratch,
                    const char *desc) {
    CHECK_OK(wn_opc_reset(p, d));
    if (wn_opc_forward(p, d) != WN_OK || wn_opc_backward(p, d) != WN_OK) {
        CHECK(0, "%s: %s", desc, wn_last_error());
        return WN_ERR;
    }
    for (int i = 0; i < d->n; i++) {
        const wn_opc_tensor *t = &d->t[i];
        if (!t->count || (t->role != WN_OPC_OUT && t->role != WN_OPC_GRADIENT)) continue;
        float *dst = t->role == WN_OPC_GRADIENT ? raw[i] : scratch;
        CHECK_OK(wn_opc_download(p, d, i, dst, 0));
        int finite = 1;
        for (size_t k = 0; k < t->count && finite; k++) finite = isfinite(dst[k]);
        CHECK(finite, "%s: output %s not fully written (NaN left)", desc, t->name);
        if (t->role == WN_OPC_GRADIENT) {
            const float *start = d->host[i];
            for (size_t k = 0; k < t->count; k++)
                an[i][k] = (double)dst[k] - (t->accumulate ? (double)start[k] : 0.0);
        }
    }
    return WN_OK;
}

static void alloc_grads(const wn_opc_data *d, double **an, float **raw) {
    for (int i = 0; i < d->n; i++) {
        an[i] = NULL, raw[i] = NULL;
        if (d->t[i].role != WN_OPC_GRADIENT || !d->t[i].count) continue;
        an[i] = malloc(d->t[i].count * sizeof(double));
        raw[i] = test_alloc_f(d->t[i].count);
        if (!an[i]) exit(1);
    }
}

static void free_grads(const wn_opc_data *d, double **an, float **raw) {
    for (int i = 0; i < d->n; i++) free(an[i]), free(raw[i]);
}

static size_t largest_tensor(const wn_opc_data *d) {
    size_t m = 1;
    for (int i = 0; i < d->n; i++)
        if (d->t[i].count > m) m = d->t[i].count;
    return m;
}

static void grad_case(wn_backend *be, const wn_op_case *c, uint64_t seed) {
    char desc[256], shape[200];
    wn_opc_describe(c, shape, sizeof shape);
    snprintf(desc, sizeof desc, "%s %s", wn_opc_op_name(c->op), shape);
    wn_opc_data d;
    wn_opc_placed p;
    CHECK_OK(wn_opc_data_init(&d, c, seed));
    CHECK_OK(wn_opc_place(&p, be, &d, 0, 0.0f));
    double *an[WN_OPC_MAX_TENSORS];
    float *raw[WN_OPC_MAX_TENSORS], *scratch = test_alloc_f(largest_tensor(&d));
    alloc_grads(&d, an, raw);
    int checked = 0, bad = 0;
    double worst_all = 0.0;
    if (run_case(&p, &d, an, raw, scratch, desc) == WN_OK) {
        for (int g = 0; g < d.n; g++) {
            if (d.t[g].role != WN_OPC_GRADIENT || !d.t[g].count || d.t[g].grad_of < 0) continue;
            double worst;
            int b = fd_check(&p, &d, g, an[g], scratch, &worst, desc);
            CHECK(b == 0, "%s: %s: %d elements off (worst relative error %.3g, tol %.1g)", desc,
                  d.t[g].name, b, worst, d.fd_rtol);
            checked++, bad += b;
            if (worst > worst_all) worst_all = worst;
        }
        /* accumulate = 1 adds the overwriting variant's result onto the start, bit for bit */
        if (c->variant & WN_OPC_V_ACC) {
            wn_op_case over = *c;
            over.variant &= ~WN_OPC_V_ACC;
            wn_opc_data d0;
            wn_opc_placed p0;
            CHECK_OK(wn_opc_data_init(&d0, &over, seed));
            CHECK_OK(wn_opc_place(&p0, be, &d0, 0, 0.0f));
            double *an0[WN_OPC_MAX_TENSORS];
            float *raw0[WN_OPC_MAX_TENSORS];
            alloc_grads(&d0, an0, raw0);
            if (run_case(&p0, &d0, an0, raw0, scratch, desc) == WN_OK)
                for (int g = 0; g < d.n; g++) {
                    if (!d.t[g].accumulate || d.t[g].role != WN_OPC_GRADIENT || !d.t[g].count) continue;
                    const float *start = d.host[g];
                    size_t off = 0;
                    for (size_t k = 0; k < d.t[g].count; k++)
                        off += raw[g][k] != start[k] + raw0[g][k];
                    CHECK(off == 0, "%s: %s with accumulate=1 differs from start + gradient at %zu "
                          "of %zu elements", desc, d.t[g].name, off, d.t[g].count);
                }
            free_grads(&d0, an0, raw0);
            wn_opc_unplace(&p0, &d0);
            wn_opc_data_free(&d0);
        }
    }
    printf("%s %-60s %d gradient(s), worst relative error %.2e (tol %.0e)\n",
           bad ? "FAIL" : "ok  ", desc, checked, worst_all, d.fd_rtol);
    free_grads(&d, an, raw);
    free(scratch);
    wn_opc_unplace(&p, &d);
    wn_opc_data_free(&d);
}

/* The checker must be able to fail: a gradient 1% off, and one element off by one
 * tolerance's worth, are both caught. */
static void self_test(wn_backend *be, const wn_op_case *cases, int n_cases, uint64_t seed) {
    for (int k = 0; k < n_cases; k++) {
        if (cases[k].op != WN_OPC_CONV2D || !(cases[k].modes & WN_OPC_GRAD)) continue;
        wn_opc_data d;
        wn_opc_placed p;
        CHECK_OK(wn_opc_data_init(&d, &cases[k], seed));
        CHECK_OK(wn_opc_place(&p, be, &d, 0, 0.0f));
        double *an[WN_OPC_MAX_TENSORS];
        float *raw[WN_OPC_MAX_TENSORS], *scratch = test_alloc_f(largest_tensor(&d));
        alloc_grads(&d, an, raw);
        if (run_case(&p, &d, an, raw, scratch, "self-test") == WN_OK) {
            const int g = 6; /* conv2d's dw */
            double worst;
            CHECK(fd_check(&p, &d, g, an[g], scratch, &worst, NULL) == 0,
                  "self-test: the true conv2d dw fails (worst %.3g)", worst);
            for (size_t i = 0; i < d.t[g].count; i++) an[g][i] *= 1.01;
            CHECK(fd_check(&p, &d, g, an[g], scratch, &worst, NULL) > 0,
                  "self-test: a conv2d dw 1%% too large passed the gradient check");
            for (size_t i = 0; i < d.t[g].count; i++) an[g][i] /= 1.01;
            an[g][d.t[g].count / 2] += 0.05 * (fabs(an[g][d.t[g].count / 2]) + 1.0);
            CHECK(fd_check(&p, &d, g, an[g], scratch, &worst, NULL) > 0,
                  "self-test: a conv2d dw with one wrong element passed the gradient check");
        }
        free_grads(&d, an, raw);
        free(scratch);
        wn_opc_unplace(&p, &d);
        wn_opc_data_free(&d);
        return;
    }
    CHECK(0, "self-test: no conv2d gradient case in the list");
}

/* Every op has parity and quick cases, every op with a backward has gradient cases,
 * and every case describes a valid set of tensors. */
static void check_list(const wn_op_case *cases, int n) {
    int parity[WN_OPC_OP_COUNT] = {0}, quick[WN_OPC_OP_COUNT] = {0}, grad[WN_OPC_OP_COUNT] = {0};
    for (int i = 0; i < n; i++) {
        parity[cases[i].op] += (cases[i].modes & WN_OPC_PARITY) != 0;
        quick[cases[i].op] += (cases[i].modes & WN_OPC_QUICK) != 0;
        grad[cases[i].op] += (cases[i].modes & WN_OPC_GRAD) != 0;
        wn_opc_data d;
        int ok = wn_opc_data_init(&d, &cases[i], 1) == WN_OK;
        CHECK(ok, "case %d (%s): %s", i, wn_opc_op_name(cases[i].op), wn_last_error());
        if (ok) wn_opc_data_free(&d);
    }
    for (int op = 0; op < WN_OPC_OP_COUNT; op++) {
        const char *name = wn_opc_op_name((wn_opc_op)op);
        CHECK(parity[op] > 0, "op %s has no parity case", name);
        CHECK(quick[op] > 0, "op %s has no quick case", name);
        CHECK(!wn_opc_has_gradient((wn_opc_op)op) || grad[op] > 0, "op %s has no gradient case", name);
    }
}

int main(int argc, char **argv) {
    const char *backend = "cpu", *filter = NULL;
    uint64_t seed = 2024;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--backend") && i + 1 < argc) backend = argv[++i];
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
        else filter = argv[i];
    }
    wn_backend *be;
    if (!strcmp(backend, "cuda")) {
        if (!wn_cuda_available()) {
            printf("skipped: no usable CUDA GPU\n");
            return 77;
        }
        be = wn_backend_cuda(0, WN_PRECISION_FP32);
    } else if (!strcmp(backend, "cpu")) {
        be = wn_backend_cpu();
    } else {
        fprintf(stderr, "test_op_grad: unknown backend '%s' (cpu or cuda)\n", backend);
        return 2;
    }
    if (!be) {
        fprintf(stderr, "FAIL: backend %s: %s\n", backend, wn_last_error());
        return 1;
    }
    rng_seed(seed);
    printf("gradient check on the %s backend, seed %llu\n", be->name, (unsigned long long)seed);
    check_backend_table(be);
    int n;
    const wn_op_case *cases = wn_op_cases(&n);
    check_list(cases, n);
    self_test(be, cases, n, seed);
    int ran = 0;
    for (int i = 0; i < n; i++) {
        if (!(cases[i].modes & WN_OPC_GRAD)) continue;
        if (filter && !strstr(wn_opc_op_name(cases[i].op), filter)) continue;
        grad_case(be, &cases[i], seed + (uint64_t)i);
        ran++;
    }
    CHECK(ran > 0, "no gradient case matched '%s'", filter ? filter : "");
    wn_backend_destroy(be);
    return test_finish("test_op_grad");
}
