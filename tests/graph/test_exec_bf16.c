/* tests/graph/test_exec_bf16.c — --precision bf16 for whole models (WN_EXEC_BF16,
 * engine/runtime/exec_internal.h), on the CPU backend:
 *  1. the plan: every convolution, affine, pooling, concat and residual step reads and
 *     writes bf16, GAP reads bf16 and writes float32, the head and the logits are
 *     float32, and exactly one cast is placed (the augmented images before the first
 *     convolution) — for tiny_cnn, EfficientNet-Lite0 and InceptionResNetV2 (planned
 *     only: its 780 layers at 75x75 with the notebook's boundary);
 *  2. the forward pass (inference) of tiny_cnn (32x32) and EfficientNet-Lite0
 *     (64x64, gamma BN, ReLU6, depthwise, Add) in bf16 against float32: logits and the
 *     backbone output, normwise <= TOL_BF16_MODEL (tests/common/tolerance.h says why);
 *  3. one training step with every layer trainable: the loss within 1e-2, and the
 *     weight gradients (every layer's, BN gamma and beta included) normwise <=
 *     TOL_BF16_MODEL; nothing NaN; and the plan refuses nothing the float plan runs.
 * Where a network amplifies perturbations (compare() says how that is measured and
 * allowed for), the bound is twice the error of a float32 run with weights moved by
 * bf16's unit roundoff.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/backends/cpu/backend_cpu.h"
#include "engine/model/model.h"
#include "engine/runtime/backend.h"
#include "engine/runtime/exec_internal.h"
#include "engine/runtime/executor.h"
#include "host/base/error.h"
#include "tests/common/check.h"

static double normwise(const float *got, const float *want, size_t n) {
    double num = 0.0, den = 0.0;
    for (size_t k = 0; k < n; k++) {
        if (!isfinite(got[k])) return NAN;
        double e = (double)got[k] - want[k];
        num += e * e, den += (double)want[k] * want[k];
    }
    return den > 0.0 ? sqrt(num / den) : sqrt(num);
}

static void check_plan(const char *arch, int size, int fine_tune_at) {
    wn_model m;
    CHECK_OK(wn_model_create(&m, arch, size, size, 6, 3));
    CHECK_OK(wn_model_set_fine_tune(&m, fine_tune_at));
    wn_plan p;
    CHECK_OK(wn_plan_make(&p, &m, 2, WN_EXEC_BF16));
    int casts = 0, wrong = 0;
    for (int k = 0; k < p.n_steps; k++) {
        const wn_step *s = &p.steps[k];
        wn_dtype out = p.values[s->out_val].dtype;
        switch (s->kind) {
        case WN_STEP_CAST:
            casts++;
            wrong += !(out == WN_DTYPE_BF16 && p.values[s->in_val[0]].dtype == WN_DTYPE_F32 &&
                       p.steps[k - 1].kind == WN_STEP_AUGMENT);
            break;
        case WN_STEP_GAP:
            wrong += !(s->dtype == WN_DTYPE_BF16 && out == WN_DTYPE_F32);
            break;
        case WN_STEP_AUGMENT:
        case WN_STEP_DROPOUT:
        case WN_STEP_DENSE: wrong += !(s->dtype == WN_DTYPE_F32 && out == WN_DTYPE_F32); break;
        default: wrong += !(s->dtype == WN_DTYPE_BF16 && out == WN_DTYPE_BF16); break;
        }
        for (int j = 0; j < s->n_in; j++)
            if (s->in_val[j] >= 0 && p.values[s->in_val[j]].dtype != s->dtype && s->kind != WN_STEP_CAST)
                wrong++;
    }
    CHECK(casts == 1, "%s: %d casts planned (expected 1: the augmented images)", arch, casts);
    CHECK(wrong == 0, "%s: %d steps with the wrong storage types", arch, wrong);
    CHECK(p.values[p.logits_val].dtype == WN_DTYPE_F32, "%s: logits are not float32", arch);
    printf("%s plan %s %dx%d: %d steps, %d cast, %d wrong types\n", casts == 1 && !wrong ? "ok  " : "FAIL",
           arch, size, size, p.n_steps, casts, wrong);
    wn_plan_free(&p);
    wn_model_free(&m);
}

/* bf16 against float32; `jit` is a float32 run whose weights were each moved by bf16's
 * unit roundoff 2^-9 (up or down at random): how much this network amplifies a
 * perturbation of that size. A deep random network can be chaotic (the calibrated
 * EfficientNet-Lite0 below is: 0.2% on the weights moves its logits by ~30%), so bf16
 * passes when it is within TOL_BF16_MODEL or no worse than twice that float32
 * sensitivity — an error of bf16's own size, where a wrong kernel is not. */
static void compare(const char *what, const float *got, const float *want, const float *jit,
                    size_t n) {
    double e = normwise(got, want, n), ej = normwise(jit, want, n);
    int ok = e <= TOL_BF16_MODEL || e <= 2.0 * ej;
    CHECK(ok, "%s: normwise error %.3g (tol %.0e, or 2x the float32 sensitivity %.3g)", what, e,
          TOL_BF16_MODEL, ej);
    printf("%s %-44s normwise %.2e (tol %.0e; float32 with weights +-2^-9: %.2e)\n",
           ok ? "ok  " : "FAIL", what, e, TOL_BF16_MODEL, ej);
}

/* Keras's random initialisation with moving mean 0 and variance 1 lets
 * EfficientNet-Lite's activations shrink layer by layer (the backbone output is
 * ~1e-11 at 64x64), so every ReLU6 sits at its kink, where bf16 rounding legitimately
 * flips masks. A trained network's BN statistics match its activations; this gives the
 * random one the same: each BN's moving mean and variance become the batch statistics
 * of its input, layer by layer in forward order (one float32 forward per BN). */
static void calibrate_bn(wn_backend *be, wn_model *m, const uint8_t *img, int n) {
    wn_executor *ex;
    CHECK_OK(wn_executor_create(&ex, m, be, n, WN_EXEC_INFERENCE_ONLY | WN_EXEC_KEEP_ALL));
    float *x = NULL;
    for (int li = 0; li < m->graph.n_layers; li++) {
        const wn_layer *l = &m->graph.layers[li];
        if (l->type != WN_LAYER_BATCHNORM) continue;
        const wn_layer *in = &m->graph.layers[l->inputs[0]];
        size_t px = (size_t)n * in->out_h * in->out_w;
        int c = in->out_c;
        free(x);
        x = test_alloc_f(px * c);
        CHECK_OK(wn_executor_forward(ex, img, n, 0, NULL, NULL, 0));
        CHECK_OK(wn_executor_read_output(ex, l->inputs[0], x));
        float *mean = m->stats + wn_bn_weight(l, WN_BN_MEAN)->offset;
        float *var = m->stats + wn_bn_weight(l, WN_BN_VARIANCE)->offset;
        for (int ch = 0; ch < c; ch++) {
            double s1 = 0, s2 = 0;
            for (size_t p = 0; p < px; p++) s1 += x[p * c + ch], s2 += (double)x[p * c + ch] * x[p * c + ch];
            double mu = s1 / px;
            mean[ch] = (float)mu, var[ch] = (float)(s2 / px - mu * mu);
        }
        CHECK_OK(wn_executor_upload_weights(ex));
    }
    free(x);
    wn_executor_destroy(ex);
}

static void check_model(wn_backend *be, const char *arch, int size) {
    enum { N = 4 };
    wn_model m;
    CHECK_OK(wn_model_create(&m, arch, size, size, 6, 7));
    CHECK_OK(wn_model_set_fine_tune(&m, 0)); /* everything trainable */
    size_t npix = (size_t)N * size * size * 3;
    uint8_t *img = malloc(npix);
    int32_t labels[N] = {0, 3, 5, 1};
    uint64_t r = 12345;
    for (size_t i = 0; i < npix; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        img[i] = (uint8_t)(r >> 56);
    }
    const wn_layer *bb = &m.graph.layers[m.backbone_output];
    size_t nbb = (size_t)N * bb->out_h * bb->out_w * bb->out_c, nlog = (size_t)N * 6;
    size_t ng = wn_model_trainable_count(&m);
    calibrate_bn(be, &m, img, N);
    float *out[3][3];
    float loss[3];
    float *saved = test_alloc_f(m.graph.n_params);
    memcpy(saved, m.params, m.graph.n_params * sizeof(float));
    for (int prec = 0; prec < 3; prec++) {
        /* run 0 float32, 1 bf16, 2 float32 with jittered weights; each executor uploads
         * m's params */
        if (prec == 2) {
            uint64_t q = 77;
            for (size_t i = 0; i < m.graph.n_params; i++) {
                q = q * 6364136223846793005ull + 1442695040888963407ull;
                m.params[i] *= (q >> 63) ? 1.0f + 1.0f / 512 : 1.0f - 1.0f / 512;
            }
        }
        wn_executor *ex;
        CHECK_OK(wn_executor_create(&ex, &m, be, N, prec == 1 ? WN_EXEC_BF16 : 0));
        out[prec][0] = test_alloc_f(nlog), out[prec][1] = test_alloc_f(nbb);
        out[prec][2] = test_alloc_f(ng);
        CHECK_OK(wn_executor_forward(ex, img, N, 0, NULL, NULL, 0));
        CHECK_OK(wn_executor_read_output(ex, m.logits_layer, out[prec][0]));
        CHECK_OK(wn_executor_read_output(ex, m.backbone_output, out[prec][1]));
        CHECK_OK(wn_executor_train_step(ex, img, labels, N, NULL, NULL, 99, &WN_ADAM_KERAS(1e-3f),
                                        &loss[prec], NULL));
        CHECK_OK(wn_executor_read_grads(ex, out[prec][2]));
        wn_executor_destroy(ex);
    }
    memcpy(m.params, saved, m.graph.n_params * sizeof(float));
    free(saved);
    char what[128];
    snprintf(what, sizeof what, "%s %dx%d logits", arch, size, size);
    compare(what, out[1][0], out[0][0], out[2][0], nlog);
    snprintf(what, sizeof what, "%s %dx%d backbone output", arch, size, size);
    compare(what, out[1][1], out[0][1], out[2][1], nbb);
    snprintf(what, sizeof what, "%s %dx%d weight gradients (%zu)", arch, size, size, ng);
    compare(what, out[1][2], out[0][2], out[2][2], ng);
    double le = fabs((double)loss[1] - loss[0]) / fabs((double)loss[0]);
    double lj = fabs((double)loss[2] - loss[0]) / fabs((double)loss[0]);
    CHECK(isfinite(loss[1]) && (le <= 1e-2 || le <= 2 * lj), "%s: loss %.6g in bf16, %.6g in float32",
          arch, loss[1], loss[0]);
    printf("%s %s %dx%d loss %.6f (float32 %.6f, with weights +-2^-9 %.6f)\n",
           le <= 1e-2 || le <= 2 * lj ? "ok  " : "FAIL", arch, size, size, loss[1], loss[0], loss[2]);
    for (int p = 0; p < 3; p++)
        for (int k = 0; k < 3; k++) free(out[p][k]);
    free(img);
    wn_model_free(&m);
}

int main(void) {
    check_plan("tiny_cnn", 32, 0);
    check_plan("efficientnet_lite0", 64, 0);
    check_plan("irv2", 75, 500);
    wn_backend *be = wn_backend_cpu();
    CHECK_OK(be ? WN_OK : WN_ERR);
    check_model(be, "tiny_cnn", 32);
    check_model(be, "efficientnet_lite0", 64);
    wn_backend_destroy(be);
    return test_finish("test_exec_bf16");
}
