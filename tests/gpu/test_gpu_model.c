/* tests/gpu/test_gpu_model.c — the whole model on both backends through the executor
 * (engine/runtime/executor.h): the notebook's InceptionResNetV2 + head at a small input, and
 * EfficientNet-Lite0 (depthwise convolutions, ReLU6, BN with a trainable gamma),
 * batch 2, the same initial weights (random, BN statistics and gamma moved off 1/0)
 * on the CPU backend (answer key) and the CUDA backend:
 *   1. inference forward: backbone output and logits;
 *   2. one training step at a fine-tune boundary, augmentation (fixed flips and
 *      angles) and dropout (fixed seed) included: the loss, the correct count, every
 *      weight gradient of the trainable suffix (BN gamma included), the BN moving
 *      statistics, and the weights after Adam (see "Adam" below).
 *   3. host staging (irv2, boundary 500): a sequence of train steps and evals whose
 *      images come from two pinned buffers filled in turn like the loader's, some
 *      steps reading the loss (the host waits for the forward only) and some not
 *      (nothing waits: uploads on the copy stream overlap queued compute, ordered
 *      by events), each buffer overwritten with other pixels as soon as the call that
 *      read it returns: the losses read, the running totals, a prediction and every
 *      weight at the end must match the CPU running the same sequence.
 * Boundaries: irv2 0 ("all": backward through every layer) and 500 (the notebook's);
 * efficientnet_lite0 0 and 100; xception (71), resnet50, mobilenet_v2, densenet121 (64) 0 and
 * their `wastenet run` default (not with --quick unless --arch names one).
 *
 * Tolerances (normwise relative error) are for a 780-layer network, not one op:
 * rounding differences of single ops (TF32: ~5e-4 each) compound through ~250
 * convolutions, and a ReLU whose input sits within rounding of 0 may switch.
 *   fp32: outputs, loss, moving statistics <= 1e-4, gradients <= 1e-3
 *   tf32: outputs, loss, moving statistics <= 2e-2, gradients <= 5e-2
 *   bf16: the bf16 plan (--precision bf16: bf16 activations and convolutions, float32
 *         master weights, WN_EXEC_BF16) on the CUDA backend's bf16 ops against the same
 *         plan on the CPU backend's: outputs, loss, moving statistics <= TOL_BF16_MODEL
 *         (5e-2, tests/common/tolerance.h: the bf16-vs-float32 model bound; two bf16
 *         runs whose roundings differ sit about as far apart), gradients <= 1e-1
 *         (the tf32 ratio of gradient to output bound)
 * These bounds are first estimates; the first GPU run (docs/GPU_LOG.md) records
 * the errors actually seen.
 *
 * Adam. Keras Adam's first step is p -= lr * g / (|g| + eps / sqrt(1 - b2)), i.e.
 * lr * sign(g) for every |g| above ~3e-6: a gradient whose sign differs between the
 * backends (any |g| below the gradient error) moves its weight by 2 lr although both
 * backends are right, so "weights after one step within 1e-3" can fail falsely.
 * The step is therefore checked in three parts:
 *   a. frozen weights (the prefix below the boundary) unchanged, bit for bit;
 *   b. the update rule, each backend against its OWN gradient: p1 must equal
 *      wn_adam_step(p0, g_backend) (kernels/adam.h, the formula both backends
 *      compile) within 2^-21 |p0| + 1e-5 lr per weight (a few float32 roundings:
 *      the GPU may contract a*b+c into an FMA where the CPU does not);
 *   c. the two backends' updates p1 - p0 agree (normwise <= 1e-2) on the weights
 *      whose gradient is far above the gradient error actually measured:
 *      |g_cpu| > 10 * rms(g_gpu - g_cpu) and > 10 * eps / sqrt(1 - b2) (there the
 *      update's sign is certain and within 10% of lr, flat in g); fewer than 1 in 10^4 such
 *      weights flipping stays under the bound, a wrong update rule or a stale
 *      gradient does not.
 *
 * The CUDA backend runs deterministic (wn_backend_set_deterministic): at the first
 * boundary a second run on a fresh executor must give bit-identical loss and
 * gradients.
 *
 * Usage: test_gpu_model [--quick] [--self-test] [--precision fp32|tf32|bf16]
 *                       [--arch irv2|efficientnet_lite0|xception|resnet50|
 *                               mobilenet_v2|densenet121] [IMAGE_SIZE]
 *   --quick: boundary 0 only, fp32 only unless --precision says otherwise, and the
 *   staging sequence (compute-sanitizer);
 *   --precision: that precision only (the staging sequence runs with fp32);
 *   --arch: that architecture only (the staging sequence is irv2's);
 *   --self-test: a second CPU backend stands in for the GPU (results must be
 *   bit-identical: the CPU backend is deterministic).
 * Exit: 0 passed, 1 failed, 77 skipped (no CUDA build or no usable GPU). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/runtime/backend.h"
#include "engine/backends/cpu/backend_cpu.h"
#include "engine/backends/cuda/backend_cuda.h"
#include "host/base/error.h"
#include "engine/runtime/executor.h"
#include "engine/model/model.h"
#include "kernels/adam/adam.h"
#include "tests/common/tolerance.h"

enum { BATCH = 2, CLASSES = 6 };

#define STEP_LR 1e-3f
#define ADAM_B1 0.9f /* the executor's (engine/runtime/executor.c) */
#define ADAM_B2 0.999f
#define ADAM_EPS 1e-7f

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

/* BN statistics (and gamma, where there is one) away from the fresh 1/0/0/1 so that
 * the affine terms matter. */
static void randomize_stats(wn_model *m) {
    for (int i = 0; i < m->graph.n_layers; i++) {
        const wn_layer *l = &m->graph.layers[i];
        if (l->type != WN_LAYER_BATCHNORM) continue;
        int k = l->has_gamma ? 1 : 0;
        if (l->has_gamma) {
            float *gamma = wn_model_weight_data(m, &l->weights[0]);
            for (int c = 0; c < l->out_c; c++) gamma[c] = (float)(0.6 + 0.8 * urand());
        }
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
    float *stats;  /* [n_stats] BN moving statistics after the step */
} result;

static void result_free(result *r) {
    free(r->features), free(r->logits), free(r->grads), free(r->params), free(r->stats);
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
static int run_backend(wn_model *m, const float *params0, const float *stats0, wn_backend *be,
                       int fine_tune_at, const inputs *in, unsigned flags, result *r) {
    memset(r, 0, sizeof *r);
    memcpy(m->params, params0, m->graph.n_params * sizeof(float));
    memcpy(m->stats, stats0, m->graph.n_stats * sizeof(float));
    if (wn_model_set_fine_tune(m, fine_tune_at) != WN_OK) return WN_ERR;
    const wn_layer *bo = &m->graph.layers[m->backbone_output];
    size_t nf = (size_t)BATCH * bo->out_h * bo->out_w * bo->out_c;
    size_t nt = wn_model_trainable_count(m);
    r->features = malloc(nf * sizeof(float));
    r->logits = malloc((size_t)BATCH * CLASSES * sizeof(float));
    r->grads = malloc((nt ? nt : 1) * sizeof(float));
    r->params = malloc(m->graph.n_params * sizeof(float));
    r->stats = malloc((m->graph.n_stats ? m->graph.n_stats : 1) * sizeof(float));
    if (!r->features || !r->logits || !r->grads || !r->params || !r->stats)
        return wn_fail("out of memory");
    wn_executor *ex = NULL;
    int rc = WN_ERR;
    if (wn_executor_create(&ex, m, be, BATCH, flags) != WN_OK) goto out;
    if (wn_executor_forward(ex, in->images, BATCH, 0, NULL, NULL, 0) != WN_OK ||
        wn_executor_read_output(ex, m->backbone_output, r->features) != WN_OK ||
        wn_executor_read_output(ex, m->logits_layer, r->logits) != WN_OK)
        goto out;
    if (wn_executor_train_step(ex, in->images, in->labels, BATCH, in->flips, in->angles,
                               in->dropout_seed, &WN_ADAM_KERAS(STEP_LR), &r->loss, &r->correct) != WN_OK ||
        wn_executor_read_grads(ex, r->grads) != WN_OK ||
        wn_executor_download_weights(ex) != WN_OK)
        goto out;
    memcpy(r->params, m->params, m->graph.n_params * sizeof(float));
    memcpy(r->stats, m->stats, m->graph.n_stats * sizeof(float));
    rc = WN_OK;
out:
    if (ex) wn_executor_destroy(ex);
    memcpy(m->params, params0, m->graph.n_params * sizeof(float));
    memcpy(m->stats, stats0, m->graph.n_stats * sizeof(float));
    return rc;
}

/* a. The frozen prefix [0, first) must come back bit for bit. */
static void check_frozen(const char *what, const char *prec, const float *p0, const float *p1,
                         size_t first) {
    cases++;
    for (size_t i = 0; i < first; i++) {
        if (memcmp(&p0[i], &p1[i], sizeof(float))) {
            fails++;
            printf("FAIL %-40s [%s] frozen weight %zu of %zu changed: %.9g -> %.9g\n", what, prec,
                   i, first, p0[i], p1[i]);
            return;
        }
    }
    printf("ok   %-40s [%s] %zu frozen weights unchanged\n", what, prec, first);
}

/* b. The update rule: p1 = Adam step 1 from p0 with the backend's own gradient. */
static void check_adam_rule(const char *what, const char *prec, const float *p0, const float *g,
                            const float *p1, size_t n) {
    wn_adam_coeffs k = wn_adam_coeffs_make(STEP_LR, ADAM_B1, ADAM_B2, ADAM_EPS, 0.0f, 1);
    double worst = 0.0;
    size_t worst_i = 0;
    for (size_t i = 0; i < n; i++) {
        float p = p0[i], m = 0.0f, v = 0.0f;
        wn_adam_step(&p, g[i], &m, &v, k);
        double tol = ldexp(fabs((double)p0[i]), -21) + 1e-5 * STEP_LR;
        double r = fabs((double)p1[i] - p) / tol;
        if (!(r <= worst)) worst = r, worst_i = i; /* NaN sticks */
    }
    cases++;
    if (!(worst <= 1.0)) {
        fails++;
        printf("FAIL %-40s [%s] weight %zu: %.9g, the rule on its gradient %.9g gives a value "
               "%.1fx the tolerance away\n",
               what, prec, worst_i, p1[worst_i], g[worst_i], worst);
    } else {
        printf("ok   %-40s [%s] worst %.0f%% of 2^-21|p0| + 1e-5 lr (%zu weights)\n", what, prec,
               worst * 100.0, n);
    }
    fflush(stdout);
}

/* c. The two backends' updates on the weights whose gradient is far above the
 * measured gradient error (see the header). */
static void check_updates(const char *what, const char *prec, const float *p0, const float *g_ref,
                          const float *g_got, const float *p_ref, const float *p_got, size_t n,
                          double tol) {
    double e2 = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)g_got[i] - g_ref[i];
        e2 += d * d;
    }
    double rms_err = n ? sqrt(e2 / (double)n) : 0.0;
    double floor_g = fmax(10.0 * rms_err, 10.0 * ADAM_EPS / sqrt(1.0 - ADAM_B2));
    double d2 = 0.0, r2 = 0.0;
    size_t selected = 0, flips = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(fabs((double)g_ref[i]) > floor_g)) continue;
        selected++;
        double u_ref = (double)p_ref[i] - p0[i], u_got = (double)p_got[i] - p0[i];
        if ((u_ref < 0) != (u_got < 0)) flips++;
        d2 += (u_got - u_ref) * (u_got - u_ref), r2 += u_ref * u_ref;
    }
    double err = r2 > 0 ? sqrt(d2 / r2) : sqrt(d2);
    cases++;
    if (!isfinite(err) || (tol == 0.0 ? d2 != 0.0 : !(err <= tol))) {
        fails++;
        printf("FAIL %-40s [%s] error %.3e > tol %.0e on %zu of %zu weights with |g| > %.2e "
               "(%zu opposite)\n",
               what, prec, err, tol, selected, n, floor_g, flips);
    } else {
        printf("ok   %-40s [%s] err %.2e (tol %.0e) on %zu of %zu weights with |g| > %.2e, %zu "
               "opposite\n",
               what, prec, err, tol, selected, n, floor_g, flips);
    }
    fflush(stdout);
}

typedef struct precision_case {
    wn_precision p;  /* the backend's */
    unsigned flags;  /* the executor's (WN_EXEC_BF16: the bf16 plan on both sides) */
    const char *name;
    double out, grad, weight;
} precision_case;

enum { N_PRECS = 3 };
static const precision_case precs[N_PRECS] = {
    {WN_PRECISION_FP32, 0, "fp32", 1e-4, 1e-3, 1e-3},
    {WN_PRECISION_TF32, 0, "tf32", 2e-2, 5e-2, 1e-3},
    {WN_PRECISION_TF32, WN_EXEC_BF16, "bf16", TOL_BF16_MODEL, 1e-1, 1e-3},
};
#define UPDATE_TOL 1e-2 /* part c of the Adam check */

/* The backend under test: a second CPU backend in self-test mode, else CUDA in
 * deterministic mode (parity runs must replay bit for bit). */
static wn_backend *open_gpu(int self_test, wn_precision p) {
    if (self_test) return wn_backend_cpu();
    wn_backend *be = wn_backend_cuda(0, p);
    if (be && wn_backend_set_deterministic(be, 1) != WN_OK) {
        wn_backend_destroy(be);
        return NULL;
    }
    return be;
}

/* The other backbones and their (small) test sizes: Xception's minimum is 71. */
static const struct {
    const char *arch;
    int size;
} other_archs[] = {{"xception", 71}, {"resnet50", 64}, {"mobilenet_v2", 64}, {"densenet121", 64}};

/* `arch`'s `wastenet run` default boundary as a Keras layer index. */
static int default_boundary(const char *arch, int size, int *at) {
    wn_model m;
    if (wn_model_create(&m, arch, size, size, CLASSES, 42) != WN_OK) return WN_ERR;
    int rc = m.backbone->fine_tune_default
                 ? wn_fine_tune_resolve(&m.graph, m.backbone_first, m.backbone_count,
                                        m.backbone->fine_tune_default, at)
                 : wn_fail("%s has no default fine-tuning boundary", arch);
    wn_model_free(&m);
    return rc;
}

/* Which precisions and architectures this run covers (command line). */
static int want_prec[N_PRECS] = {1, 1, 1};
static const char *only_arch = NULL;

/* Parts 1 and 2 for one architecture. */
static int parity_model(wn_backend *cpu, const char *arch, int size, const int *boundaries,
                        int n_boundaries, int quick, int self_test) {
    wn_model m;
    if (wn_model_create(&m, arch, size, size, CLASSES, 42) != WN_OK) {
        printf("FAIL setup %s: %s\n", arch, wn_last_error());
        fails++;
        return WN_ERR;
    }
    randomize_stats(&m);
    float *params0 = malloc(m.graph.n_params * sizeof(float));
    float *stats0 = malloc((m.graph.n_stats ? m.graph.n_stats : 1) * sizeof(float));
    inputs in;
    size_t npix = (size_t)BATCH * size * size * 3;
    in.images = malloc(npix);
    if (!params0 || !stats0 || !in.images) return WN_ERR;
    memcpy(params0, m.params, m.graph.n_params * sizeof(float));
    memcpy(stats0, m.stats, m.graph.n_stats * sizeof(float));
    for (size_t i = 0; i < npix; i++) in.images[i] = (uint8_t)(urand() * 256.0);
    in.labels[0] = 1, in.labels[1] = 4;
    in.flips[0] = 1, in.flips[1] = 0;
    in.angles[0] = 0.3f, in.angles[1] = -1.1f;
    in.dropout_seed = 20251125;
    printf("whole-model parity: %s %dx%d, batch %d%s\n", arch, size, size, BATCH,
           self_test ? " (self-test: CPU against CPU)" : "");

    for (int b = 0; b < (quick ? 1 : n_boundaries); b++) {
        result refs[2]; /* the CPU's float32 plan and its bf16 plan */
        memset(refs, 0, sizeof refs);
        int ref_ok = 1;
        for (int k = 0; k < 2 && ref_ok; k++) {
            if (k == 0 ? !want_prec[0] && !want_prec[1] : !want_prec[2]) continue;
            if (run_backend(&m, params0, stats0, cpu, boundaries[b], &in, k ? WN_EXEC_BF16 : 0,
                            &refs[k]) != WN_OK) {
                printf("FAIL CPU reference%s at fine-tune-at %d: %s\n", k ? " (bf16)" : "",
                       boundaries[b], wn_last_error());
                fails++;
                ref_ok = 0;
            }
        }
        if (!ref_ok) {
            result_free(&refs[0]), result_free(&refs[1]);
            break;
        }
        size_t nt = wn_model_trainable_count(&m);
        const wn_layer *bo = &m.graph.layers[m.backbone_output];
        size_t nf = (size_t)BATCH * bo->out_h * bo->out_w * bo->out_c;
        for (int p = 0; p < N_PRECS; p++) {
            if (!want_prec[p]) continue;
            const result ref = refs[precs[p].flags ? 1 : 0]; /* a shallow copy, read only */
            unsigned flags = precs[p].flags;
            wn_backend *gpu = open_gpu(self_test, precs[p].p);
            if (!gpu) {
                printf("FAIL creating the CUDA backend: %s\n", wn_last_error());
                fails++;
                continue;
            }
            result got;
            char what[80];
            const char *pn = precs[p].name;
            double t_out = self_test ? 0.0 : precs[p].out, t_grad = self_test ? 0.0 : precs[p].grad,
                   t_w = self_test ? 0.0 : precs[p].weight;
            if (run_backend(&m, params0, stats0, gpu, boundaries[b], &in, flags, &got) != WN_OK) {
                printf("FAIL %s run at fine-tune-at %d: %s\n", gpu->name, boundaries[b],
                       wn_last_error());
                fails++;
            } else {
                snprintf(what, sizeof what, "%s backbone output (inference)", arch);
                compare(what, pn, ref.features, got.features, nf, t_out);
                snprintf(what, sizeof what, "%s logits (inference)", arch);
                compare(what, pn, ref.logits, got.logits, (size_t)BATCH * CLASSES, t_out);
                snprintf(what, sizeof what, "%s train step loss, ft=%d", arch, boundaries[b]);
                compare(what, pn, &ref.loss, &got.loss, 1, t_out);
                cases++;
                if (got.correct != ref.correct && t_out == 0.0) {
                    fails++;
                    printf("FAIL correct count %d vs %d\n", got.correct, ref.correct);
                }
                snprintf(what, sizeof what, "%s weight gradients, ft=%d", arch, boundaries[b]);
                compare(what, pn, ref.grads, got.grads, nt, t_grad);
                snprintf(what, sizeof what, "%s BN moving stats, ft=%d", arch, boundaries[b]);
                compare(what, pn, ref.stats, got.stats, m.graph.n_stats, t_out);
                size_t first = m.trainable_first;
                snprintf(what, sizeof what, "%s frozen weights, ft=%d", arch, boundaries[b]);
                check_frozen(what, pn, params0, got.params, first);
                snprintf(what, sizeof what, "%s Adam rule (CPU), ft=%d", arch, boundaries[b]);
                check_adam_rule(what, pn, params0 + first, ref.grads, ref.params + first, nt);
                snprintf(what, sizeof what, "%s Adam rule (%s), ft=%d", arch,
                         self_test ? "stand-in" : "GPU", boundaries[b]);
                check_adam_rule(what, pn, params0 + first, got.grads, got.params + first, nt);
                snprintf(what, sizeof what, "%s Adam updates, |g| >> error, ft=%d", arch,
                         boundaries[b]);
                check_updates(what, pn, params0 + first, ref.grads, got.grads, ref.params + first,
                              got.params + first, nt, t_w > 0 ? UPDATE_TOL : 0.0);
                if (b == 0) { /* deterministic mode: a second run gives the same bits */
                    result again;
                    if (run_backend(&m, params0, stats0, gpu, boundaries[b], &in, flags, &again) !=
                        WN_OK) {
                        printf("FAIL second %s run: %s\n", gpu->name, wn_last_error());
                        fails++;
                    } else {
                        snprintf(what, sizeof what, "%s rerun: loss bit-identical", arch);
                        compare(what, pn, &got.loss, &again.loss, 1, 0.0);
                        snprintf(what, sizeof what, "%s rerun: gradients bit-identical", arch);
                        compare(what, pn, got.grads, again.grads, nt, 0.0);
                    }
                    result_free(&again);
                }
            }
            result_free(&got);
            wn_backend_destroy(gpu);
        }
        result_free(&refs[0]), result_free(&refs[1]);
    }
    free(params0), free(stats0), free(in.images);
    wn_model_free(&m);
    return WN_OK;
}

/* ---------------------------------------------------------------- part 3: staging */

enum { SEQ = 7 }; /* calls in the staging sequence */

/* The sequence: t = train step, e = eval batch; 1 = reads the per-step values. Runs
 * of calls that read nothing let the host run ahead of the GPU. */
static const struct { char kind; int read; } seq[SEQ] = {
    {'t', 1}, {'t', 0}, {'t', 0}, {'t', 1}, {'e', 0}, {'t', 0}, {'e', 1}};

typedef struct seq_result {
    float loss[SEQ];
    int correct[SEQ];
    double totals_loss;
    long totals_correct, totals_seen;
    float probs[BATCH * CLASSES];
    float *params;
} seq_result;

/* Runs the sequence on `be`, every batch taken from staging[k % 2] (the loader's two
 * slots), which is refilled with batch k just before call k and overwritten with
 * other pixels as soon as call k returns. */
static int run_sequence(wn_model *m, const float *params0, wn_backend *be, uint8_t *staging[2],
                        const uint8_t *batches, const int32_t *labels, seq_result *r) {
    size_t image_bytes = (size_t)BATCH * m->image_h * m->image_w * 3;
    memset(r, 0, sizeof *r);
    memcpy(m->params, params0, m->graph.n_params * sizeof(float));
    r->params = malloc(m->graph.n_params * sizeof(float));
    if (!r->params) return wn_fail("out of memory");
    wn_executor *ex = NULL;
    int rc = WN_ERR;
    if (wn_executor_create(&ex, m, be, BATCH, 0) != WN_OK) goto out;
    for (int k = 0; k < SEQ; k++) {
        uint8_t *buf = staging[k % 2];
        memcpy(buf, batches + (size_t)k * image_bytes, image_bytes);
        const int32_t *lab = labels + (size_t)k * BATCH;
        float *loss = seq[k].read ? &r->loss[k] : NULL;
        int *correct = seq[k].read ? &r->correct[k] : NULL;
        uint8_t flips[BATCH] = {(uint8_t)(k & 1), (uint8_t)(~k & 1)};
        float angles[BATCH] = {0.1f * k, -0.2f * k};
        int call = seq[k].kind == 't'
                       ? wn_executor_train_step(ex, buf, lab, BATCH, flips, angles,
                                                (uint64_t)(1000 + k), &WN_ADAM_KERAS(1e-3f), loss, correct)
                       : wn_executor_eval_batch(ex, buf, lab, BATCH, loss, correct);
        if (call != WN_OK) goto out;
        /* The executor promised the buffer is read: scribble over it at once. */
        memset(buf, (k * 37 + 11) & 0xFF, image_bytes);
    }
    if (wn_executor_take_totals(ex, &r->totals_loss, &r->totals_correct, &r->totals_seen) !=
        WN_OK)
        goto out;
    memcpy(staging[0], batches, image_bytes);
    if (wn_executor_predict(ex, staging[0], BATCH, r->probs) != WN_OK) goto out;
    memset(staging[0], 0x5A, image_bytes);
    if (wn_executor_download_weights(ex) != WN_OK) goto out;
    memcpy(r->params, m->params, m->graph.n_params * sizeof(float));
    rc = WN_OK;
out:
    if (ex) wn_executor_destroy(ex);
    memcpy(m->params, params0, m->graph.n_params * sizeof(float));
    return rc;
}

static void parity_staging(wn_backend *cpu, int size, int self_test) {
    wn_model m;
    if (wn_model_create(&m, "irv2", size, size, CLASSES, 7) != WN_OK ||
        wn_model_set_fine_tune(&m, 500) != WN_OK) {
        printf("FAIL setup: %s\n", wn_last_error());
        fails++;
        return;
    }
    randomize_stats(&m);
    size_t image_bytes = (size_t)BATCH * size * size * 3;
    float *params0 = malloc(m.graph.n_params * sizeof(float));
    uint8_t *batches = malloc(SEQ * image_bytes);
    int32_t labels[SEQ * BATCH];
    uint8_t *pageable[2] = {malloc(image_bytes), malloc(image_bytes)};
    if (!params0 || !batches || !pageable[0] || !pageable[1]) return;
    memcpy(params0, m.params, m.graph.n_params * sizeof(float));
    for (size_t i = 0; i < SEQ * image_bytes; i++) batches[i] = (uint8_t)(urand() * 256.0);
    for (int i = 0; i < SEQ * BATCH; i++) labels[i] = (int32_t)(urand() * CLASSES);
    printf("host staging: irv2 %dx%d, fine-tune-at 500, %d calls from two %s buffers\n", size,
           size, SEQ, self_test ? "ordinary (self-test)" : "pinned");

    seq_result ref, got;
    if (run_sequence(&m, params0, cpu, pageable, batches, labels, &ref) != WN_OK) {
        printf("FAIL CPU reference sequence: %s\n", wn_last_error());
        fails++;
        goto done;
    }
    wn_backend *gpu = open_gpu(self_test, WN_PRECISION_FP32);
    /* the backend's own staging memory: pinned on CUDA, aligned memory on the CPU */
    uint8_t *staging[2] = {NULL, NULL};
    if (gpu) {
        staging[0] = gpu->ops->host_alloc(gpu, image_bytes);
        staging[1] = staging[0] ? gpu->ops->host_alloc(gpu, image_bytes) : NULL;
    }
    if (!gpu || !staging[0] || !staging[1]) {
        printf("FAIL creating the CUDA backend or pinned buffers: %s\n", wn_last_error());
        fails++;
    } else if (run_sequence(&m, params0, gpu, staging, batches, labels, &got) != WN_OK) {
        printf("FAIL %s sequence: %s\n", gpu->name, wn_last_error());
        fails++;
    } else {
        double t_out = self_test ? 0.0 : precs[0].out, t_w = self_test ? 0.0 : precs[0].weight;
        for (int k = 0; k < SEQ; k++) {
            if (!seq[k].read) continue;
            char what[80];
            snprintf(what, sizeof what, "staged call %d (%s) loss", k,
                     seq[k].kind == 't' ? "train" : "eval");
            compare(what, "fp32", &ref.loss[k], &got.loss[k], 1, t_out);
        }
        float tl[2] = {(float)ref.totals_loss, (float)got.totals_loss};
        compare("staged running loss total", "fp32", &tl[0], &tl[1], 1, t_out);
        cases++;
        if (got.totals_seen != ref.totals_seen ||
            (t_out == 0.0 && got.totals_correct != ref.totals_correct)) {
            fails++;
            printf("FAIL running totals: seen %ld vs %ld, correct %ld vs %ld\n", got.totals_seen,
                   ref.totals_seen, got.totals_correct, ref.totals_correct);
        }
        compare("staged predict probabilities", "fp32", ref.probs, got.probs,
                (size_t)BATCH * CLASSES, t_out);
        compare("staged weights after the sequence", "fp32", ref.params, got.params,
                m.graph.n_params, t_w);
        free(got.params);
    }
    if (gpu) {
        if (staging[0]) gpu->ops->host_free(gpu, staging[0]);
        if (staging[1]) gpu->ops->host_free(gpu, staging[1]);
        wn_backend_destroy(gpu);
    }
    free(ref.params);
done:
    free(params0), free(batches), free(pageable[0]), free(pageable[1]);
    wn_model_free(&m);
}

int main(int argc, char **argv) {
    int quick = 0, self_test = 0, size = 75, prec_given = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--self-test")) self_test = 1;
        else if (!strcmp(argv[i], "--precision") && i + 1 < argc) {
            const char *p = argv[++i];
            if (strcmp(p, "fp32") && strcmp(p, "tf32") && strcmp(p, "bf16")) {
                fprintf(stderr, "test_gpu_model: --precision must be fp32, tf32 or bf16, not '%s'\n",
                        p);
                return 2;
            }
            for (int k = 0; k < N_PRECS; k++) want_prec[k] = !strcmp(p, precs[k].name);
            prec_given = 1;
        } else if (!strcmp(argv[i], "--arch") && i + 1 < argc) {
            only_arch = argv[++i];
            int known = 0;
            for (size_t k = 0; k < sizeof other_archs / sizeof other_archs[0]; k++)
                known |= !strcmp(only_arch, other_archs[k].arch);
            if (strcmp(only_arch, "irv2") && strcmp(only_arch, "efficientnet_lite0") && !known) {
                fprintf(stderr, "test_gpu_model: --arch must be irv2, efficientnet_lite0, xception, "
                                "resnet50, mobilenet_v2 or densenet121\n");
                return 2;
            }
        } else if (argv[i][0] != '-' && atoi(argv[i]) >= 32) size = atoi(argv[i]);
        else {
            fprintf(stderr, "test_gpu_model: unknown argument '%s' (see the file's header)\n",
                    argv[i]);
            return 2;
        }
    }
    if (quick && !prec_given) want_prec[1] = want_prec[2] = 0; /* --quick: fp32 only */
    if (!self_test && !wn_cuda_available()) {
        wn_backend *probe = wn_backend_cuda(0, WN_PRECISION_TF32);
        printf("skipped: no usable CUDA GPU (%s)\n", probe ? "?" : wn_last_error());
        if (probe) wn_backend_destroy(probe);
        return 77;
    }
    wn_backend *cpu = wn_backend_cpu();
    if (!cpu) {
        fprintf(stderr, "FAIL setup: %s\n", wn_last_error());
        return 1;
    }
    const int irv2_boundaries[] = {0, 500}, lite_boundaries[] = {0, 100};
    int irv2 = !only_arch || !strcmp(only_arch, "irv2");
    int lite = !only_arch || !strcmp(only_arch, "efficientnet_lite0");
    if (irv2) parity_model(cpu, "irv2", size, irv2_boundaries, 2, quick, self_test);
    if (lite) parity_model(cpu, "efficientnet_lite0", 64, lite_boundaries, 2, quick, self_test);
    /* the keras.applications backbones (issue 17), at small inputs, from "all" and from
     * each one's own `wastenet run` default boundary (a block: resolved as --fine-tune-at
     * resolves it) */
    for (size_t k = 0; k < sizeof other_archs / sizeof other_archs[0]; k++) {
        const char *arch = other_archs[k].arch;
        if (only_arch ? strcmp(only_arch, arch) : quick) continue; /* --quick: irv2, lite */
        int b[2] = {0, 0};
        if (default_boundary(arch, other_archs[k].size, &b[1]) != WN_OK) {
            printf("FAIL setup %s: %s\n", arch, wn_last_error());
            fails++;
            continue;
        }
        parity_model(cpu, arch, other_archs[k].size, b, 2, quick, self_test);
    }
    if (irv2 && want_prec[0]) parity_staging(cpu, size, self_test);
    printf("\n%d comparisons, %d failed\n", cases, fails);
    wn_backend_destroy(cpu);
    return fails ? 1 : 0;
}
