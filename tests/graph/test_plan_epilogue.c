/* tests/graph/test_plan_epilogue.c — the plan's convolution epilogues
 * (engine/runtime/plan.c: plan_epilogues) and what running them gives:
 *  1. the plan: a fused convolution never runs backward, its affine step is its only
 *     reader, runs no backward either and is marked in_epilogue, and the convolution's
 *     own output takes no memory; with the notebook's boundary (InceptionResNetV2 at
 *     75x75, fine-tune-at 500; EfficientNet-Lite0 at 64, boundary 60) some pairs below
 *     it are fused and none above; with everything trainable none; for inference every
 *     convolution whose only reader is a BatchNormalization or an activation; under
 *     WN_EXEC_KEEP_ALL none; float32 and bf16 plans alike;
 *  2. running it (CPU backend, float32): the logits and the backbone output of a
 *     forward pass, and the loss and every trainable weight's gradient of a training
 *     step with the boundary, are equal to those of the same executor planned with
 *     WN_EXEC_KEEP_ALL (nothing fused) — == element for element: the epilogue is the
 *     same arithmetic as the separate affine pass.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/backends/cpu/backend_cpu.h"
#include "engine/model/model.h"
#include "engine/runtime/exec_internal.h"
#include "engine/runtime/executor.h"
#include "host/base/error.h"
#include "tests/common/check.h"
#include "tests/common/rng.h"

/* Fused pairs in the plan, after checking each one's invariants; *eligible counts the
 * convolutions whose only reader is an affine step (fused or not). */
static int count_fused(const wn_plan *p, const char *what, int *eligible) {
    int fused = 0, bad = 0, *readers = calloc((size_t)p->n_values, sizeof *readers);
    for (int k = 0; k < p->n_steps; k++)
        for (int j = 0; j < p->steps[k].n_in; j++)
            if (p->steps[k].in_val[j] >= 0) readers[p->steps[k].in_val[j]]++;
    *eligible = 0;
    for (int k = 0; k < p->n_steps; k++) {
        const wn_step *s = &p->steps[k];
        if (s->kind == WN_STEP_CONV && s->part != WN_CONV_DEPTHWISE && readers[s->out_val] == 1)
            for (int r = k + 1; r < p->n_steps; r++)
                if (p->steps[r].kind == WN_STEP_AFFINE && p->steps[r].in_val[0] == s->out_val)
                    ++*eligible;
        if (s->epilogue < 0) continue;
        fused++;
        const wn_step *a = &p->steps[s->epilogue];
        bad += s->kind != WN_STEP_CONV || s->backward || a->kind != WN_STEP_AFFINE ||
               !a->in_epilogue || a->backward || a->in_val[0] != s->out_val ||
               readers[s->out_val] != 1 || p->values[s->out_val].floats != 0 ||
               p->values[a->out_val].start > k;
    }
    int marked = 0;
    for (int k = 0; k < p->n_steps; k++) marked += p->steps[k].in_epilogue;
    CHECK(bad == 0, "%s: %d fused pairs break the plan's rules", what, bad);
    CHECK(marked == fused, "%s: %d affine steps marked in_epilogue for %d fused convolutions",
          what, marked, fused);
    free(readers);
    return fused;
}

static void check_plans(const char *arch, int size, int boundary) {
    wn_model m;
    CHECK_OK(wn_model_create(&m, arch, size, size, 6, 3));
    static const unsigned precisions[] = {0, WN_EXEC_BF16};
    for (int pi = 0; pi < 2; pi++) {
        unsigned prec = precisions[pi];
        char what[128];
        int eligible, fused;
        wn_plan p;
        /* the boundary: fused below it only */
        CHECK_OK(wn_model_set_fine_tune(&m, boundary));
        CHECK_OK(wn_plan_make(&p, &m, 2, prec));
        snprintf(what, sizeof what, "%s %s fine-tune-at %d", arch, prec ? "bf16" : "float32",
                 boundary);
        fused = count_fused(&p, what, &eligible);
        int above = 0;
        for (int k = 0; k < p.n_steps; k++)
            above += p.steps[k].epilogue >= 0 && p.steps[k].layer >= p.lowest_backward_layer;
        CHECK(fused > 0 && above == 0, "%s: %d fused, %d of them at or above the lowest "
              "backward layer", what, fused, above);
        printf("%s %s: %d of %d convolution + affine pairs fused\n",
               fused > 0 && !above ? "ok  " : "FAIL", what, fused, eligible);
        wn_plan_free(&p);
        /* everything trainable: nothing */
        CHECK_OK(wn_model_set_fine_tune(&m, 0));
        CHECK_OK(wn_plan_make(&p, &m, 2, prec));
        fused = count_fused(&p, what, &eligible);
        CHECK(fused == 0, "%s %s, all trainable: %d pairs fused", arch, prec ? "bf16" : "float32",
              fused);
        wn_plan_free(&p);
        /* inference: every eligible pair; KEEP_ALL: none */
        CHECK_OK(wn_plan_make(&p, &m, 2, prec | WN_EXEC_INFERENCE_ONLY));
        fused = count_fused(&p, what, &eligible);
        CHECK(fused == eligible && fused > 0, "%s %s, inference: %d of %d pairs fused", arch,
              prec ? "bf16" : "float32", fused, eligible);
        wn_plan_free(&p);
        CHECK_OK(wn_plan_make(&p, &m, 2, prec | WN_EXEC_INFERENCE_ONLY | WN_EXEC_KEEP_ALL));
        fused = count_fused(&p, what, &eligible);
        CHECK(fused == 0, "%s %s, KEEP_ALL: %d pairs fused", arch, prec ? "bf16" : "float32",
              fused);
        wn_plan_free(&p);
    }
    wn_model_free(&m);
}

static size_t count_unequal(const float *a, const float *b, size_t n) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += !(a[i] == b[i]);
    return bad;
}

/* Fused (default plan) against unfused (KEEP_ALL), float32, with the boundary. */
static void check_run(wn_backend *be, const char *arch, int size, int boundary) {
    enum { N = 3 };
    wn_model m;
    CHECK_OK(wn_model_create(&m, arch, size, size, 6, 5));
    CHECK_OK(wn_model_set_fine_tune(&m, boundary));
    size_t npix = (size_t)N * size * size * 3;
    uint8_t *img = malloc(npix);
    int32_t labels[N] = {2, 0, 5};
    rng_seed(987);
    for (size_t i = 0; i < npix; i++) img[i] = (uint8_t)rng_int(0, 255);
    const wn_layer *bb = &m.graph.layers[m.backbone_output];
    size_t nbb = (size_t)N * bb->out_h * bb->out_w * bb->out_c, nlog = (size_t)N * 6;
    size_t ng = wn_model_trainable_count(&m);
    float *out[2][3], loss[2];
    for (int run = 0; run < 2; run++) {
        wn_executor *ex;
        CHECK_OK(wn_executor_create(&ex, &m, be, N, run ? WN_EXEC_KEEP_ALL : 0));
        out[run][0] = test_alloc_f(nlog), out[run][1] = test_alloc_f(nbb);
        out[run][2] = test_alloc_f(ng);
        CHECK_OK(wn_executor_forward(ex, img, N, 0, NULL, NULL, 0));
        CHECK_OK(wn_executor_read_output(ex, m.logits_layer, out[run][0]));
        CHECK_OK(wn_executor_read_output(ex, m.backbone_output, out[run][1]));
        CHECK_OK(wn_executor_train_step(ex, img, labels, N, NULL, NULL, 42,
                                        &WN_ADAM_KERAS(1e-3f), &loss[run], NULL));
        CHECK_OK(wn_executor_read_grads(ex, out[run][2]));
        wn_executor_destroy(ex);
    }
    size_t dl = count_unequal(out[0][0], out[1][0], nlog);
    size_t db = count_unequal(out[0][1], out[1][1], nbb);
    size_t dg = count_unequal(out[0][2], out[1][2], ng);
    CHECK(dl == 0 && db == 0, "%s: fused forward differs from unfused (%zu logits, %zu backbone "
          "outputs)", arch, dl, db);
    CHECK(loss[0] == loss[1], "%s: loss %.9g fused, %.9g unfused", arch, loss[0], loss[1]);
    CHECK(dg == 0, "%s: %zu of %zu weight gradients differ fused/unfused", arch, dg, ng);
    printf("%s %s %dx%d fine-tune-at %d, float32: fused = unfused (logits, backbone output, "
           "loss %.6f, %zu gradients)\n", dl || db || dg || loss[0] != loss[1] ? "FAIL" : "ok  ",
           arch, size, size, boundary, loss[0], ng);
    for (int run = 0; run < 2; run++)
        for (int i = 0; i < 3; i++) free(out[run][i]);
    free(img);
    wn_model_free(&m);
}

int main(void) {
    check_plans("irv2", 75, 500);
    check_plans("efficientnet_lite0", 64, 60);
    wn_backend *be = wn_backend_cpu();
    if (!be) {
        fprintf(stderr, "FAIL: %s\n", wn_last_error());
        return 1;
    }
    check_run(be, "irv2", 75, 500);
    check_run(be, "efficientnet_lite0", 64, 60);
    wn_backend_destroy(be);
    return test_finish("test_plan_epilogue");
}
