/* tests/ops/test_adam.c — one Keras Adam step (KERAS_SEMANTICS §6) against values
 * computed by hand (the derivation of the first is written out; the others were
 * evaluated with the same formulas in double precision by Python's math module):
 *
 *   m' = m + (g - m)(1 - b1),  v' = v + (g^2 - v)(1 - b2)
 *   alpha = lr * sqrt(1 - b2^t) / (1 - b1^t),   p' = p - alpha * m' / (sqrt(v') + eps)
 *
 * Case 1 (p 1, g 0.5, fresh slots, lr 1e-3, t 1):
 *   m' = 0.05, v' = 0.00025, alpha = 1e-3 * sqrt(0.001) / 0.1 = 3.16227766e-4,
 *   p' = 1 - 3.16227766e-4 * 0.05 / (0.0158113883 + 1e-7) = 0.99900000632.
 * Keras forms (1 - beta) from the Python double (float32(1 - 0.999) = 0.001f, not
 * 1 - 0.999f = 0.00099998713f); wn_adam_coeffs_make must do the same.
 * Case 3 shows eps sits outside the bias correction: with g = 1e-8 the "eps-hat"
 * form gives 0.24999684769; the textbook form (eps added to sqrt(v_hat)) would give
 * 0.2499090909, which the tolerance rejects.
 */
#include "engine/backends/cpu/backend_cpu.h"
#include "kernels/adam/adam.h"
#include "tests/ops/ops_test.h"

typedef struct {
    float p, g, m, v, lr;
    long t;
    double want_p, want_m, want_v;
} adam_case;

int main(void) {
    wn_backend *be = wn_backend_cpu();
    if (!be) {
        fprintf(stderr, "FAIL: %s\n", wn_last_error());
        return 1;
    }
    const adam_case cases[] = {
        {1.0f, 0.5f, 0.0f, 0.0f, 1e-3f, 1, 0.99900000632451535, 0.05, 0.00025},
        {-2.0f, -3.0f, 0.0f, 0.0f, 1e-3f, 1, -1.9990000010540914, -0.3, 0.009},
        {0.25f, 1e-8f, 0.0f, 0.0f, 1e-3f, 1, 0.24999684769081673, 1e-9, 1e-19},
        {0.5f, 0.2f, 0.1f, 0.01f, 1e-5f, 5, 0.4999981053544188, 0.11, 0.01003},
        {0.5f, 0.0f, 0.1f, 0.01f, 1e-5f, 5, 0.49999844673510441, 0.09, 0.00999},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const adam_case *c = &cases[i];
        /* each case as one element of a 3-element buffer, so the loop runs */
        float p[3] = {c->p, c->p, c->p}, g[3] = {c->g, c->g, c->g};
        float m[3] = {c->m, c->m, c->m}, v[3] = {c->v, c->v, c->v};
        OK(wn_op_adam_update(be, 3, p, g, m, v, &WN_ADAM_KERAS(c->lr), c->t));
        for (int j = 0; j < 3; j++) {
            double du_want = c->want_p - c->p, du = (double)p[j] - c->p;
            /* the update is resolved to p's float spacing (|p| * 2^-24) plus 1e-4 relative */
            double tol = 2.0 * fabs(c->p) * 5.96e-8 + 1e-4 * fabs(du_want);
            CHECK(fabs(du - du_want) <= tol, "case %zu: p' = %.10g, want %.10g (update %.6g vs %.6g)", i,
                  (double)p[j], c->want_p, du, du_want);
            CHECK(fabs(m[j] - c->want_m) <= 1e-6 * fabs(c->want_m) + 1e-30, "case %zu: m' = %.9g, want %.9g",
                  i, (double)m[j], c->want_m);
            CHECK(fabs(v[j] - c->want_v) <= 1e-6 * fabs(c->want_v) + 1e-30, "case %zu: v' = %.9g, want %.9g",
                  i, (double)v[j], c->want_v);
        }
    }
    wn_adam_coeffs k = wn_adam_coeffs_make(1e-3f, 0.9f, 0.999f, 1e-7f, 0.0f, 1);
    CHECK(k.one_minus_b1 == 0.1f && k.one_minus_b2 == 0.001f,
          "1 - beta must be float32 of the decimal difference: %.9g %.9g", (double)k.one_minus_b1,
          (double)k.one_minus_b2);
    k = wn_adam_coeffs_make(1e-3f, 0.95f, 0.9999f, 1e-7f, 0.0f, 1);
    CHECK(k.one_minus_b1 == 0.05f && k.one_minus_b2 == 0.0001f, "1 - 0.95, 1 - 0.9999: %.9g %.9g",
          (double)k.one_minus_b1, (double)k.one_minus_b2);
    /* t < 1 is refused */
    float p = 0, g = 0, m = 0, v = 0;
    CHECK(wn_op_adam_update(be, 1, &p, &g, &m, &v, &WN_ADAM_KERAS(1e-3f), 0) == WN_ERR,
          "adam step 0 must fail");
    wn_backend_destroy(be);
    return test_finish("test_adam");
}
