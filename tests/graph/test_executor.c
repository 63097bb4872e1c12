/* tests/graph/test_executor.c — the executor on the CPU backend with the notebook's
 * InceptionResNetV2 model at a small input (75x75 by default, batch 2):
 *  1. a whole-model forward runs, gives finite probabilities that sum to 1, and is
 *     bit-identical across two runs and across two executors;
 *  2. the frozen boundary: after a training step at fine_tune_at N, no layer below
 *     N has a data gradient, frozen weights are bit-unchanged, trainable ones moved;
 *     layers below the boundary keep no activations (the arena grows with N);
 *  3. the executor's gradients (fusion, concat, residual, pooling, GAP, Dense and
 *     the accumulation of several readers) against central finite differences of
 *     the loss, for the weights above fine_tune_at 590 (block17_20 and up, through
 *     mixed_7a's pooling and every block8);
 *  4. head-only training on one batch lowers the loss.
 * Usage: test_executor [IMAGE_SIZE] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/runtime/backend.h"
#include "engine/backends/cpu/backend_cpu.h"
#include "host/base/error.h"
#include "engine/runtime/executor.h"
#include "engine/model/model.h"
#include "tests/common/check.h"
#include "tests/common/rng.h"

static float fd_step = 1e-3f;

#define MUST(call)                                                                       \
    do {                                                                                 \
        if ((call) != WN_OK) {                                                           \
            fprintf(stderr, "FAIL %s:%d: %s: %s\n", __FILE__, __LINE__, #call,           \
                    wn_last_error());                                                    \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

enum { BATCH = 2, CLASSES = 6 };

/* the tests' shared splitmix64 stream (tests/common/rng.h) */
static double urand(void) { return wn_splitmix64_unit(&test_rng_state); }

/* BN statistics away from the fresh 0/1, so that the affine terms matter. */
static void randomize_stats(wn_model *m) {
    for (size_t i = 0; i < m->graph.n_stats; i++) m->stats[i] = 0.0f;
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

static void check_forward(wn_model *m, wn_backend *be, const uint8_t *img) {
    wn_executor *a, *b;
    MUST(wn_executor_create(&a, m, be, BATCH, WN_EXEC_INFERENCE_ONLY));
    MUST(wn_executor_create(&b, m, be, BATCH, WN_EXEC_INFERENCE_ONLY));
    const wn_layer *bo = &m->graph.layers[m->backbone_output];
    size_t nb = (size_t)BATCH * bo->out_h * bo->out_w * bo->out_c;
    float *f1 = malloc(nb * sizeof(float)), *f2 = malloc(nb * sizeof(float));
    float p1[BATCH * CLASSES], p2[BATCH * CLASSES], p3[BATCH * CLASSES];
    MUST(wn_executor_predict(a, img, BATCH, p1));
    MUST(wn_executor_read_output(a, m->backbone_output, f1));
    MUST(wn_executor_predict(a, img, BATCH, p2));
    MUST(wn_executor_read_output(a, m->backbone_output, f2));
    MUST(wn_executor_predict(b, img, BATCH, p3));
    CHECK(!memcmp(p1, p2, sizeof p1), "predict differs between two runs");
    CHECK(!memcmp(p1, p3, sizeof p1), "predict differs between two executors");
    CHECK(!memcmp(f1, f2, nb * sizeof(float)), "backbone output differs between two runs");
    double nz = 0;
    for (size_t i = 0; i < nb; i++) {
        CHECK(isfinite(f1[i]) && f1[i] >= 0.0f, "backbone output[%zu] = %g", i, f1[i]);
        nz += f1[i] > 0.0f;
        if (test_failures > 5) break;
    }
    CHECK(nz > 0.05 * nb, "backbone output is almost all zero (%g of %zu)", nz, nb);
    for (int r = 0; r < BATCH; r++) {
        double s = 0;
        for (int k = 0; k < CLASSES; k++) s += p1[r * CLASSES + k];
        CHECK(fabs(s - 1.0) < 1e-5, "probabilities of image %d sum to %.8f", r, s);
    }
    printf("forward: backbone %dx%dx%d, %.0f%% positive, deterministic; p[0] = %.5f %.5f ...\n",
           bo->out_h, bo->out_w, bo->out_c, 100.0 * nz / nb, p1[0], p1[1]);
    free(f1), free(f2);
    wn_executor_destroy(a);
    wn_executor_destroy(b);
}

static void check_boundary(wn_model *m, wn_backend *be, const uint8_t *img,
                           const int32_t *labels) {
    size_t arena[3];
    int bounds[3] = {WN_FINE_TUNE_NONE, 700, 0};
    float *before = malloc(m->graph.n_params * sizeof(float));
    memcpy(before, m->params, m->graph.n_params * sizeof(float));
    for (int t = 0; t < 3; t++) {
        MUST(wn_model_set_fine_tune(m, bounds[t]));
        wn_executor *ex;
        MUST(wn_executor_create(&ex, m, be, BATCH, 0));
        wn_plan_info info;
        wn_executor_plan_info(ex, &info);
        arena[t] = info.arena_bytes;
        float loss;
        int correct;
        MUST(wn_executor_train_step(ex, img, labels, BATCH, NULL, NULL, 7, &WN_ADAM_KERAS(1e-3f), &loss,
                                    &correct));
        CHECK(isfinite(loss) && loss > 0.0f, "fine_tune_at %d: loss %g", bounds[t], loss);
        int below = 0, above = 0;
        for (int i = 0; i < m->graph.n_layers; i++) {
            int g = wn_executor_has_data_grad(ex, i);
            if (i < m->first_trainable_layer) below += g;
            else above += g;
        }
        CHECK(below == 0, "fine_tune_at %d: %d layers below the boundary have a data gradient",
              bounds[t], below);
        CHECK(above > 0, "fine_tune_at %d: no data gradient at all", bounds[t]);
        CHECK(info.lowest_backward_layer >= m->first_trainable_layer,
              "fine_tune_at %d: backward reaches layer %d below the boundary %d", bounds[t],
              info.lowest_backward_layer, m->first_trainable_layer);
        MUST(wn_executor_download_weights(ex));
        size_t first = m->trainable_first, changed = 0;
        CHECK(!memcmp(before, m->params, first * sizeof(float)),
              "fine_tune_at %d: a frozen weight changed", bounds[t]);
        for (size_t i = first; i < m->graph.n_params; i++) changed += before[i] != m->params[i];
        CHECK(changed > (m->graph.n_params - first) / 2,
              "fine_tune_at %d: only %zu of %zu trainable weights moved", bounds[t], changed,
              m->graph.n_params - first);
        printf("fine_tune_at %4d: loss %.4f, %zu trainable, %d backward steps, arena %.1f MiB,"
               " total %.1f MiB\n",
               bounds[t], loss, m->graph.n_params - first, info.backward_steps,
               info.arena_bytes / 1048576.0, info.total_bytes / 1048576.0);
        memcpy(m->params, before, m->graph.n_params * sizeof(float));
        wn_executor_destroy(ex);
    }
    CHECK(arena[0] <= arena[1] && arena[1] < arena[2],
          "activation memory should grow as the boundary goes down: %zu, %zu, %zu", arena[0],
          arena[1], arena[2]);
    free(before);
}

/* The loss as eval computes it (dropout is disabled for this test). */
static double eval_loss(wn_executor *ex, wn_model *m, const uint8_t *img,
                        const int32_t *labels) {
    float loss;
    MUST(wn_executor_upload_weights(ex));
    MUST(wn_executor_eval_batch(ex, img, labels, BATCH, &loss, NULL));
    (void)m;
    return loss;
}

static void check_gradients(wn_model *m, wn_backend *be, const uint8_t *img,
                            const int32_t *labels) {
    /* Dropout off: the training forward then equals the inference forward. */
    for (int i = 0; i < m->graph.n_layers; i++)
        if (m->graph.layers[i].type == WN_LAYER_DROPOUT) m->graph.layers[i].rate = 0.0f;
    MUST(wn_model_set_fine_tune(m, 590));
    wn_executor *ex;
    MUST(wn_executor_create(&ex, m, be, BATCH, 0));
    size_t first = m->trainable_first, nt = m->graph.n_params - first;
    float *g = malloc(nt * sizeof(float));
    MUST(wn_executor_train_step(ex, img, labels, BATCH, NULL, NULL, 1, &WN_ADAM_KERAS(0.0f), NULL, NULL));
    MUST(wn_executor_read_grads(ex, g));
    /* Per trainable layer, its weight element with the largest gradient. */
    int checked = 0, bad = 0, arrays = 0;
    double worst = 0;
    for (int i = m->first_trainable_layer; i < m->graph.n_layers; i++) {
        const wn_layer *l = &m->graph.layers[i];
        for (int k = 0; k < l->n_weights; k++) {
            const wn_weight *w = &l->weights[k];
            if (w->in_stats) continue;
            size_t best = 0;
            for (size_t e = 0; e < w->count; e++)
                if (fabsf(g[w->offset - first + e]) > fabsf(g[w->offset - first + best])) best = e;
            /* Every 9th weight array (and the head), to keep the test quick. */
            if (arrays++ % 9 != 0 && l->type != WN_LAYER_DENSE) continue;
            size_t at = w->offset + best;
            float keep = m->params[at], h = fd_step * fmaxf(1.0f, fabsf(keep));
            m->params[at] = keep + h;
            double lp = eval_loss(ex, m, img, labels);
            m->params[at] = keep - h;
            double lm = eval_loss(ex, m, img, labels);
            m->params[at] = keep;
            double fd = (lp - lm) / (2.0 * h), an = g[at - first];
            /* Tolerance: 5% relative, plus the float32 loss's resolution over 2h
             * (about 2.5e-7 * loss / h); ReLU kinks stay outside a step this small. */
            double err = fabs(fd - an) / fmax(fmax(fabs(fd), fabs(an)), 1e-3);
            if (err > worst) worst = err;
            if (fabs(fd - an) > 0.05 * fmax(fabs(fd), fabs(an)) + 3e-4) {
                bad++;
                fprintf(stderr, "  %s[%zu]: backprop %.6g, finite differences %.6g\n", w->name,
                        best, an, fd);
            }
            checked++;
        }
    }
    CHECK(bad == 0, "%d of %d gradients disagree with finite differences", bad, checked);
    CHECK(checked >= 12, "only %d gradients checked", checked);
    printf("gradients: %d weight arrays above fine_tune_at 590 checked, worst relative error "
           "%.2e\n", checked, worst);
    MUST(wn_executor_upload_weights(ex));
    free(g);
    wn_executor_destroy(ex);
}

static void check_learning(wn_model *m, wn_backend *be, const uint8_t *img,
                           const int32_t *labels) {
    MUST(wn_model_set_fine_tune(m, WN_FINE_TUNE_NONE));
    wn_executor *ex;
    MUST(wn_executor_create(&ex, m, be, BATCH, 0));
    float first = 0, loss = 0;
    for (int s = 0; s < 8; s++) {
        MUST(wn_executor_train_step(ex, img, labels, BATCH, NULL, NULL, 100 + s, &WN_ADAM_KERAS(1e-2f), &loss,
                                    NULL));
        if (s == 0) first = loss;
    }
    CHECK(wn_executor_adam_step(ex) == 8, "Adam step counter %ld", wn_executor_adam_step(ex));
    double sum;
    long correct, seen;
    MUST(wn_executor_take_totals(ex, &sum, &correct, &seen));
    CHECK(seen == 8 * BATCH, "totals saw %ld images", seen);
    CHECK(loss < 0.7f * first, "head training: loss %.4f after 8 steps, %.4f at first", loss,
          first);
    printf("head training: loss %.4f -> %.4f over 8 steps\n", first, loss);
    wn_executor_destroy(ex);
}

int main(int argc, char **argv) {
    int size = argc > 1 ? atoi(argv[1]) : 75;
    if (argc > 2) fd_step = (float)atof(argv[2]);
    wn_backend *be = wn_backend_cpu();
    if (!be) {
        fprintf(stderr, "FAIL: no CPU backend: %s\n", wn_last_error());
        return 1;
    }
    wn_model m;
    MUST(wn_model_create(&m, "irv2", size, size, CLASSES, 42));
    randomize_stats(&m);
    size_t npix = (size_t)BATCH * size * size * 3;
    uint8_t *img = malloc(npix);
    for (size_t i = 0; i < npix; i++) img[i] = (uint8_t)(urand() * 256.0);
    int32_t labels[BATCH] = {1, 4};

    check_forward(&m, be, img);
    check_boundary(&m, be, img, labels);
    check_gradients(&m, be, img, labels);
    check_learning(&m, be, img, labels);

    free(img);
    wn_model_free(&m);
    wn_backend_destroy(be);
    return test_finish("test_executor");
}
