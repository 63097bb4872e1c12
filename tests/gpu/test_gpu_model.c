/* tests/gpu/test_gpu_model.c — the whole model on both backends through the executor
 * (engine/executor.h): the notebook's InceptionResNetV2 + head at a small input,
 * batch 2, the same initial weights (random, BN statistics moved off 0/1) on the CPU
 * backend (answer key) and the CUDA backend:
 *   1. inference forward: backbone output and logits;
 *   2. one training step at a fine-tune boundary, augmentation (fixed flips and
 *      angles) and dropout (fixed seed) included: the loss, the correct count, every
 *      weight gradient of the trainable suffix, and every weight after Adam.
 * Boundaries: 0 ("all": backward through every layer) and 500 (the notebook's).
 *
 * Tolerances (normwise relative error) are for a 780-layer network, not one op:
 * rounding differences of single ops (TF32: ~5e-4 each) compound through ~250
 * convolutions, and a ReLU whose input sits within rounding of 0 may switch.
 *   fp32: outputs and loss <= 1e-4, gradients and weights <= 1e-3
 *   tf32: outputs and loss <= 2e-2, gradients <= 5e-2, weights after the step <= 1e-3
 *         (a step moves weights by ~lr, so their error is dominated by the start values)
 * These bounds are first estimates; the first GPU run (docs/GPU_LOG.md) records
 * the errors actually seen.
 *
 * Usage: test_gpu_model [--quick] [--self-test] [IMAGE_SIZE]
 *   --quick: fp32 only, boundary 0 only (compute-sanitizer);
 *   --self-test: a second CPU backend stands in for the GPU (results must be
 *   bit-identical: the CPU backend is deterministic).
 * Exit: 0 passed, 1 failed, 77 skipped (no CUDA build or no usable GPU). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/backend.h"
#include "engine/error.h"
#include "engine/executor.h"
#include "engine/model.h"

enum { BATCH = 2, CLASSES = 6 };

static int cases, fails;

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static double urand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) * (1.0 / 9007199254740992.0);
}

static void compare(const char *what, const char *prec, const float *ref, const float *got,
                    size_t n, double tol) {
    double d2 = 0.0, r2 = 0.0;
    size_t bad = n;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(got[i]) && bad == n) bad = i;
        double d = (double)got[i] - ref[i];
        d2 += d * d, r2 += (double)ref[i] * ref[i];
    }
    double err = r2 > 0 ? sqrt(d2 / r2) : sqrt(d2);
    cases++;
    if (bad != n) {
        fails++;
        printf("FAIL %-40s [%s] non-finite value at %zu of %zu\n", what, prec, bad, n);
    } else if (tol == 0.0 ? d2 != 0.0 : !(err <= tol)) {
        fails++;
        printf("FAIL %-40s [%s] error %.3e > tol %.0e (%zu values)\n", what, prec, err, tol, n);
    } else {
        printf("ok   %-40s [%s] err %.2e (tol %.0e, %zu values)\n", what, prec, err, tol, n);
    }
    fflush(stdout);
}

/* BN statistics away from the fresh 0/1 so that the affine terms matter. */
static void randomize_stats(wn_model *m) {
    for (int i = 0; i < m->graph.n_layers; i++) {
        const wn_layer *l = &m->graph.layers[i];
        if (l->type != WN_LAYER_BATCHNORM) continue;
        int k = l->has_gamma ? 1 : 0;
        float *beta = wn_model_weight_data(m, &l->weights[k]);
        float *mean = wn_model_weight_data(m, &l->weights[k + 1]);
        float *var = wn_model_weight_data(m, &l->weights[k + 2]);
        for (int c = 0; c < l->out_c; c++) {
            beta[c] = (float)(0.2 * (urand() - 0.3));
            mean[c] = (float)(0.1 * (urand() - 0.5));
            var[c] = (float)(0.5 + urand());
        }
    }
}

/* What one backend produced. */
typedef struct result {
    float *features, *logits; /* inference forward */
    float loss;
    int correct;
    float *grads;  /* [trainable] */
    float *params; /* [n_params] after the step */
} result;

static void result_free(result *r) {
    free(r->features), free(r->logits), free(r->grads), free(r->params);
    memset(r, 0, sizeof *r);
}

typedef struct inputs {
    uint8_t *images;
    int32_t labels[BATCH];
    uint8_t flips[BATCH];
    float angles[BATCH];
    uint64_t dropout_seed;
} inputs;

/* Runs forward + one training step at `fine_tune_at` on `be` from the model's
 * current host weights; leaves the host weights as they were. */
static int run_backend(wn_model *m, const float *params0, wn_backend *be, int fine_tune_at,
                       const inputs *in, result *r) {
    memset(r, 0, sizeof *r);
    memcpy(m->params, params0, m->graph.n_params * sizeof(float));
    if (wn_model_set_fine_tune(m, fine_tune_at) != WN_OK) return WN_ERR;
    const wn_layer *bo = &m->graph.layers[m->backbone_output];
    size_t nf = (size_t)BATCH * bo->out_h * bo->out_w * bo->out_c;
    size_t nt = wn_model_trainable_count(m);
    r->features = malloc(nf * sizeof(float));
    r->logits = malloc((size_t)BATCH * CLASSES * sizeof(float));
    r->grads = malloc((nt ? nt : 1) * sizeof(float));
    r->params = malloc(m->graph.n_params * sizeof(float));
    if (!r->features || !r->logits || !r->grads || !r->params) return wn_fail("out of memory");
    wn_executor *ex = NULL;
    int rc = WN_ERR;
    if (wn_executor_create(&ex, m, be, BATCH, 0) != WN_OK) goto out;
    if (wn_executor_forward(ex, in->images, BATCH, 0, NULL, NULL, 0) != WN_OK ||
        wn_executor_read_output(ex, m->backbone_output, r->features) != WN_OK ||
        wn_executor_read_output(ex, m->logits_layer, r->logits) != WN_OK)
        goto out;
    if (wn_executor_train_step(ex, in->images, in->labels, BATCH, in->flips, in->angles,
                               in->dropout_seed, 1e-3f, &r->loss, &r->correct) != WN_OK ||
        wn_executor_read_grads(ex, r->grads) != WN_OK ||
        wn_executor_download_weights(ex) != WN_OK)
        goto out;
    memcpy(r->params, m->params, m->graph.n_params * sizeof(float));
    rc = WN_OK;
out:
    if (ex) wn_executor_destroy(ex);
    memcpy(m->params, params0, m->graph.n_params * sizeof(float));
    return rc;
}

int main(int argc, char **argv) {
    int quick = 0, self_test = 0, size = 75;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--self-test")) self_test = 1;
        else size = atoi(argv[i]);
    }
    if (!self_test && !wn_cuda_available()) {
        wn_backend *probe = wn_backend_cuda(0, WN_PRECISION_TF32);
        printf("skipped: no usable CUDA GPU (%s)\n", probe ? "?" : wn_last_error());
        if (probe) probe->destroy(probe);
        return 77;
    }
    wn_backend *cpu = wn_backend_cpu();
    wn_model m;
    if (!cpu || wn_model_create(&m, "irv2", size, size, CLASSES, 42) != WN_OK) {
        fprintf(stderr, "FAIL setup: %s\n", wn_last_error());
        return 1;
    }
    randomize_stats(&m);
    float *params0 = malloc(m.graph.n_params * sizeof(float));
    inputs in;
    size_t npix = (size_t)BATCH * size * size * 3;
    in.images = malloc(npix);
    if (!params0 || !in.images) return 1;
    memcpy(params0, m.params, m.graph.n_params * sizeof(float));
    for (size_t i = 0; i < npix; i++) in.images[i] = (uint8_t)(urand() * 256.0);
    in.labels[0] = 1, in.labels[1] = 4;
    in.flips[0] = 1, in.flips[1] = 0;
    in.angles[0] = 0.3f, in.angles[1] = -1.1f;
    in.dropout_seed = 20251125;
    printf("whole-model parity: irv2 %dx%d, batch %d%s\n", size, size, BATCH,
           self_test ? " (self-test: CPU against CPU)" : "");

    struct { wn_precision p; const char *name; double out, grad, weight; } precs[] = {
        {WN_PRECISION_FP32, "fp32", 1e-4, 1e-3, 1e-3},
        {WN_PRECISION_TF32, "tf32", 2e-2, 5e-2, 1e-3},
    };
    int boundaries[] = {0, 500};
    for (int b = 0; b < (quick ? 1 : 2); b++) {
        result ref;
        if (run_backend(&m, params0, cpu, boundaries[b], &in, &ref) != WN_OK) {
            printf("FAIL CPU reference at fine-tune-at %d: %s\n", boundaries[b], wn_last_error());
            return 1;
        }
        size_t nt = wn_model_trainable_count(&m);
        const wn_layer *bo = &m.graph.layers[m.backbone_output];
        size_t nf = (size_t)BATCH * bo->out_h * bo->out_w * bo->out_c;
        for (int p = 0; p < (quick ? 1 : 2); p++) {
            wn_backend *gpu = self_test ? wn_backend_cpu() : wn_backend_cuda(0, precs[p].p);
            if (!gpu) {
                printf("FAIL creating the CUDA backend: %s\n", wn_last_error());
                fails++;
                continue;
            }
            result got;
            char what[64];
            const char *pn = precs[p].name;
            double t_out = self_test ? 0.0 : precs[p].out, t_grad = self_test ? 0.0 : precs[p].grad,
                   t_w = self_test ? 0.0 : precs[p].weight;
            if (run_backend(&m, params0, gpu, boundaries[b], &in, &got) != WN_OK) {
                printf("FAIL %s run at fine-tune-at %d: %s\n", gpu->name, boundaries[b],
                       wn_last_error());
                fails++;
            } else {
                snprintf(what, sizeof what, "backbone output (inference)");
                compare(what, pn, ref.features, got.features, nf, t_out);
                compare("logits (inference)", pn, ref.logits, got.logits, (size_t)BATCH * CLASSES,
                        t_out);
                snprintf(what, sizeof what, "train step loss, ft=%d", boundaries[b]);
                compare(what, pn, &ref.loss, &got.loss, 1, t_out);
                cases++;
                if (got.correct != ref.correct && t_out == 0.0) {
                    fails++;
                    printf("FAIL correct count %d vs %d\n", got.correct, ref.correct);
                }
                snprintf(what, sizeof what, "weight gradients, ft=%d", boundaries[b]);
                compare(what, pn, ref.grads, got.grads, nt, t_grad);
                snprintf(what, sizeof what, "weights after Adam, ft=%d", boundaries[b]);
                compare(what, pn, ref.params, got.params, m.graph.n_params, t_w);
            }
            result_free(&got);
            gpu->destroy(gpu);
        }
        result_free(&ref);
    }
    printf("\n%d comparisons, %d failed\n", cases, fails);
    free(params0), free(in.images);
    wn_model_free(&m);
    cpu->destroy(cpu);
    return fails ? 1 : 0;
}
