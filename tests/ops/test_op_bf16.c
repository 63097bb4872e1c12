/* tests/ops/test_op_bf16.c — the bf16 mode of the op cases (engine/runtime/op_cases.h):
 * every small case (WN_OPC_GRAD or WN_OPC_QUICK) of an op with a bf16 form runs twice
 * on the backend, in float32 and in bf16 (activations, and a convolution's kernel,
 * stored bf16: kernels/common/backend_bf16_ops.h), on the same host values, and each
 * output and gradient of the bf16 run is compared with the float32 run:
 *     normwise error ||bf16 - f32||_2 / ||f32||_2 <= TOL_BF16_OP (1e-2, why in
 *     tests/common/tolerance.h), never NaN or Inf (outputs start as NaN, so an unwritten
 *     element fails too),
 * and each case must show some rounding (worst error > 1e-5): a bf16 form that ran in
 * float32 (or did nothing to its inputs) would not.
 *
 * The activations' kinks: affine_act and bn_gamma run only their gradient-check cases,
 * whose pre-activations keep 0.25 away from ReLU's kinks at 0 and 6 (op_cases.c). Nearer
 * than bf16's rounding, a kink is where bf16 legitimately differs: a pre-activation
 * that rounds across 0, or a ReLU6 output just below 6 stored as 6.0, flips that
 * element's gradient mask.
 *
 * Max pooling is left out where the case's distinct input values (0.25 apart, op_cases.c)
 * grow past 32: bf16 cannot keep them apart there, and a tie sends the gradient to another
 * cell (TensorFlow's first-maximum rule), which is bf16's answer, not an error.
 *
 * Sums of a handful of elements are left out too (scaled_add with count < 8): there the
 * normwise error is one element's relative error, and where x and scale*r nearly cancel
 * the bf16 rounding of the inputs (2^-9 of |x| and |scale*r|) is amplified by the
 * cancellation (a 1-element case drawn as x = 0.1, scale*r = -0.09 errs by ~2e-2).
 *
 * usage: test_op_bf16 [--backend cpu|cuda] [--seed N] [op-name-substring]
 * Exit: 0 passed, 1 failed, 77 skipped (--backend cuda without a usable GPU, or a
 * backend without bf16 ops).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/backends/cpu/backend_cpu.h"
#include "engine/backends/cuda/backend_cuda.h"
#include "engine/runtime/backend_bf16.h"
#include "engine/runtime/op_cases.h"
#include "tests/common/check.h"

/* Runs the case placed as `act`; out[i] gets every OUT/GRADIENT/INOUT tensor. */
static int run(wn_backend *be, const wn_opc_data *d, wn_dtype act, float **out) {
    wn_opc_placed p;
    if (wn_opc_place_as(&p, be, d, 0, 0.0f, act) != WN_OK) return WN_ERR;
    int rc = wn_opc_forward(&p, d);
    if (rc == WN_OK) rc = wn_opc_backward(&p, d);
    for (int i = 0; rc == WN_OK && i < d->n; i++)
        if (out[i]) rc = wn_opc_download(&p, d, i, out[i], 0);
    wn_opc_unplace(&p, d);
    return rc;
}

static int compared(const wn_opc_tensor *t) {
    return t->count && (t->role == WN_OPC_OUT || t->role == WN_OPC_GRADIENT ||
                        t->role == WN_OPC_INOUT);
}

/* ||a - b|| / ||a||; NaN when b has a NaN or Inf. */
static double normwise(const float *b, const float *a, size_t n) {
    double num = 0.0, den = 0.0;
    for (size_t k = 0; k < n; k++) {
        if (!isfinite(b[k])) return NAN;
        double e = (double)b[k] - a[k];
        num += e * e, den += (double)a[k] * a[k];
    }
    return den > 0.0 ? sqrt(num / den) : sqrt(num);
}

static void bf16_case(wn_backend *be, const wn_op_case *c, uint64_t seed, double *worst_all) {
    char desc[256], shape[200];
    wn_opc_describe(c, shape, sizeof shape);
    snprintf(desc, sizeof desc, "%s %s", wn_opc_op_name(c->op), shape);
    wn_opc_data d;
    CHECK_OK(wn_opc_data_init(&d, c, seed));
    float *ref[WN_OPC_MAX_TENSORS] = {0}, *got[WN_OPC_MAX_TENSORS] = {0};
    for (int i = 0; i < d.n; i++)
        if (compared(&d.t[i])) ref[i] = test_alloc_f(d.t[i].count), got[i] = test_alloc_f(d.t[i].count);
    int ok = run(be, &d, WN_DTYPE_F32, ref) == WN_OK && run(be, &d, WN_DTYPE_BF16, got) == WN_OK;
    CHECK(ok, "%s: %s", desc, wn_last_error());
    double worst = 0.0;
    const char *worst_name = "-";
    for (int i = 0; ok && i < d.n; i++) {
        if (!ref[i]) continue;
        double e = normwise(got[i], ref[i], d.t[i].count);
        CHECK(e <= TOL_BF16_OP, "%s: %s normwise error %.3g (tol %.0e)%s", desc, d.t[i].name, e,
              TOL_BF16_OP, isnan(e) ? " (NaN or Inf in the bf16 result)" : "");
        if (!(e <= worst)) worst = e, worst_name = d.t[i].name;
    }
    size_t largest = 0;
    for (int i = 0; i < d.n; i++)
        if (ref[i] && d.t[i].count > largest) largest = d.t[i].count;
    /* (a single ReLU'd element may well be exactly 0 in both) */
    CHECK(!ok || largest < 8 || worst > 1e-5, "%s: bf16 results equal the float32 ones (worst "
          "%.3g): no rounding happened", desc, worst);
    printf("%s %-60s worst %-7s %.2e (tol %.0e)\n", ok && worst <= TOL_BF16_OP ? "ok  " : "FAIL",
           desc, worst_name, worst, TOL_BF16_OP);
    if (worst > *worst_all) *worst_all = worst;
    for (int i = 0; i < d.n; i++) free(ref[i]), free(got[i]);
    wn_opc_data_free(&d);
}

/* The cases this test runs (see the top): small ones, away from kinks and ties. */
static int bf16_comparable(const wn_op_case *c) {
    if (!wn_opc_has_bf16(c->op)) return 0;
    if (c->op == WN_OPC_AFFINE_ACT || c->op == WN_OPC_BN_GAMMA) return (c->modes & WN_OPC_GRAD) != 0;
    if (!(c->modes & (WN_OPC_GRAD | WN_OPC_QUICK))) return 0;
    if (c->op == WN_OPC_SCALED_ADD && c->s[0] < 8) return 0;
    if (c->op != WN_OPC_POOL || (c->variant & 2)) return 1;
    double nx = (double)c->s[0] * c->s[1] * c->s[2] * c->s[3];
    return 0.125 * nx <= 32.0;
}

int main(int argc, char **argv) {
    const char *backend = "cpu", *filter = NULL;
    uint64_t seed = 2026;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--backend") && i + 1 < argc) backend = argv[++i];
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
        else filter = argv[i];
    }
    wn_backend *be = NULL;
    if (!strcmp(backend, "cuda")) {
        if (!wn_cuda_available()) {
            printf("test_op_bf16: skipped (no usable GPU)\n");
            return 77;
        }
        be = wn_backend_cuda(0, WN_PRECISION_TF32);
    } else {
        be = wn_backend_cpu();
    }
    CHECK_OK(be ? WN_OK : WN_ERR);
    if (wn_backend_bf16_check(be) != WN_OK) {
        printf("test_op_bf16: skipped (%s)\n", wn_last_error());
        wn_backend_destroy(be);
        return 77;
    }
    printf("bf16 on %s: %s\n", be->name, wn_backend_bf16_describe(be));
    int n_cases, ran = 0, per_op[WN_OPC_OP_COUNT] = {0};
    const wn_op_case *cases = wn_op_cases(&n_cases);
    double worst = 0.0;
    for (int k = 0; k < n_cases; k++) {
        const wn_op_case *c = &cases[k];
        if (!bf16_comparable(c)) continue;
        if (filter && !strstr(wn_opc_op_name(c->op), filter)) continue;
        bf16_case(be, c, seed + (uint64_t)k, &worst);
        ran++, per_op[c->op]++;
    }
    /* every op with a bf16 form took part (unless filtered) */
    for (int op = 0; op < WN_OPC_OP_COUNT && !filter; op++)
        if (wn_opc_has_bf16((wn_opc_op)op))
            CHECK(per_op[op] > 0, "op %s has a bf16 form but no bf16 case ran",
                  wn_opc_op_name((wn_opc_op)op));
    printf("%d bf16 cases, worst normwise error %.2e (tol %.0e)\n", ran, worst, TOL_BF16_OP);
    wn_backend_destroy(be);
    return test_finish("test_op_bf16");
}
