/* tests/effnet/test_effnet_train.c — fine-tuning EfficientNet-Lite through the executor:
 * the weight gradients of BN gamma (fused with ReLU6 and bare), BN beta and a
 * convolution kernel above the boundary against central finite differences of the
 * loss, and one real Adam step that moves gamma.
 *
 * Model: efficientnet_lite0 at 64x64, 6 classes, Keras's fresh initialisation from a
 * seed, BN statistics randomised (so gamma is not multiplied by a unit x_hat), dropout
 * set to 0 (train and eval losses are then the same function), boundary at
 * block7a_expand_conv, batch 4 of random images. Gradients come from one
 * wn_executor_train_step at learning rate 0 (Adam then leaves every weight as it is);
 * each finite difference re-uploads the weights and evaluates the batch. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/runtime/backend.h"
#include "engine/backends/cpu/backend_cpu.h"
#include "host/base/error.h"
#include "engine/runtime/executor.h"
#include "engine/model/model.h"

#define CHECK(call)                                                         \
    do {                                                                    \
        if ((call) != WN_OK) {                                              \
            fprintf(stderr, "FAIL: %s: %s\n", #call, wn_last_error());      \
            exit(1);                                                        \
        }                                                                   \
    } while (0)

enum { BATCH = 4, SIZE = 64, CLASSES = 6 };

static uint64_t rng = 88172645463325252ull;
static double uniform(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static float eval_loss(wn_executor *ex, const uint8_t *img, const int32_t *lab) {
    float loss;
    int correct;
    CHECK(wn_executor_upload_weights(ex));
    CHECK(wn_executor_eval_batch(ex, img, lab, BATCH, &loss, &correct));
    return loss;
}

int main(void) {
    wn_model m;
    CHECK(wn_model_create(&m, "efficientnet_lite0", SIZE, SIZE, CLASSES, 7));
    wn_graph *g = &m.graph;
    for (int i = 0; i < g->n_layers; i++)
        if (g->layers[i].type == WN_LAYER_DROPOUT) g->layers[i].rate = 0.0f;
    /* moving statistics away from (0, 1) so x_hat differs from x */
    for (int i = 0; i < g->n_layers; i++) {
        const wn_layer *l = &g->layers[i];
        if (l->type != WN_LAYER_BATCHNORM) continue;
        float *mean = wn_model_weight_data(&m, &l->weights[l->n_weights - 2]);
        float *var = wn_model_weight_data(&m, &l->weights[l->n_weights - 1]);
        float *gamma = wn_model_weight_data(&m, &l->weights[0]);
        for (int c = 0; c < l->out_c; c++) {
            mean[c] = (float)(0.2 * (uniform() - 0.5));
            var[c] = (float)(0.5 + uniform());
            gamma[c] = (float)(0.5 + uniform());
        }
    }
    int boundary = wn_graph_find(g, "block7a_expand_conv");
    if (boundary < 0) {
        fprintf(stderr, "FAIL: no block7a_expand_conv\n");
        return 1;
    }
    CHECK(wn_model_set_fine_tune(&m, boundary - m.backbone_first));

    wn_backend *be = wn_backend_cpu();
    if (!be) {
        fprintf(stderr, "FAIL: %s\n", wn_last_error());
        return 1;
    }
    wn_executor *ex;
    CHECK(wn_executor_create(&ex, &m, be, BATCH, 0));
    uint8_t *img = malloc((size_t)BATCH * SIZE * SIZE * 3);
    int32_t lab[BATCH];
    for (size_t i = 0; i < (size_t)BATCH * SIZE * SIZE * 3; i++) img[i] = (uint8_t)(uniform() * 256);
    for (int i = 0; i < BATCH; i++) lab[i] = i % CLASSES;

    size_t trainable = wn_model_trainable_count(&m);
    float *grads = malloc(trainable * sizeof *grads);
    float loss0;
    int correct;
    CHECK(wn_executor_train_step(ex, img, lab, BATCH, NULL, NULL, 1, &WN_ADAM_KERAS(0.0f), &loss0, &correct));
    CHECK(wn_executor_read_grads(ex, grads));

    /* Probes: for each BN kind, the gamma channel with the largest analytic gradient
     * (the float loss makes the finite difference resolve about 2e-6 for gamma;
     * dead ReLU6 channels have none), a
     * beta and a convolution kernel element. */
    /* h: a gamma step moves the pre-activation by h*x_hat, small enough for the ReLU6
     * kinks; beta and kernel steps move it directly, so they take a smaller h. */
    struct probe {
        const char *layer;
        int weight, index;
        float h;
    } probes[] = {
        {"block7a_expand_bn", 0, -1, 4e-2f},  /* gamma, fused with ReLU6 */
        {"block7a_bn", 0, -1, 4e-2f},         /* gamma after the depthwise conv, ReLU6 */
        {"block7a_project_bn", 0, -1, 4e-2f}, /* gamma, no activation */
        {"top_bn", 0, -1, 4e-2f},             /* gamma, ReLU6, below GAP */
        {"block7a_bn", 1, -1, 1e-2f},         /* beta */
        {"block7a_project_conv", 0, 1234, 1e-2f},
    };
    for (size_t k = 0; k < sizeof probes / sizeof probes[0]; k++) {
        const wn_layer *l = &g->layers[wn_graph_find(g, probes[k].layer)];
        const wn_weight *w = &l->weights[probes[k].weight];
        if (probes[k].index >= 0) continue;
        float best = -1;
        for (size_t c = 0; c < w->count; c++) {
            float a = fabsf(grads[w->offset + c - m.trainable_first]);
            if (a > best) best = a, probes[k].index = (int)c;
        }
    }
    int fails = 0;
    for (size_t k = 0; k < sizeof probes / sizeof probes[0]; k++) {
        int li = wn_graph_find(g, probes[k].layer);
        const wn_weight *w = &g->layers[li].weights[probes[k].weight];
        size_t at = w->offset + (size_t)probes[k].index;
        float *p = m.params + at, saved = *p;
        float h = probes[k].h * (fabsf(saved) > 1.0f ? fabsf(saved) : 1.0f);
        *p = saved + h;
        double lp = eval_loss(ex, img, lab);
        *p = saved - h;
        double lm = eval_loss(ex, img, lab);
        *p = saved;
        double fd = (lp - lm) / (2.0 * h);
        double got = grads[at - m.trainable_first];
        double scale = fabs(fd) > fabs(got) ? fabs(fd) : fabs(got);
        double err = fabs(fd - got) / (scale > 1e-4 ? scale : 1e-4);
        int ok = err < 5e-2 && scale > 1e-4; /* a probe must have a measurable gradient */
        printf("%s %-22s %s[%d]: analytic %+.6e  finite difference %+.6e  (rel %.1e)\n",
               ok ? "ok  " : "FAIL", probes[k].layer, w->name, probes[k].index, got, fd, err);
        fails += !ok;
    }
    eval_loss(ex, img, lab); /* restore the exact weights on the backend */

    /* A real step must move gamma, and the next forward must use the new gamma. */
    int top_bn = wn_graph_find(g, "top_bn");
    const wn_weight *gw = &g->layers[top_bn].weights[0];
    size_t moved = gw->offset + (size_t)probes[3].index; /* top_bn's largest gradient */
    float before = m.params[moved];
    float loss1;
    CHECK(wn_executor_train_step(ex, img, lab, BATCH, NULL, NULL, 2, &WN_ADAM_KERAS(1e-2f), &loss1, &correct));
    CHECK(wn_executor_download_weights(ex));
    float after = m.params[moved];
    float l_backend, l_reupload;
    CHECK(wn_executor_eval_batch(ex, img, lab, BATCH, &l_backend, &correct));
    l_reupload = eval_loss(ex, img, lab); /* scale recomputed on the host at upload */
    printf("Adam step: top_bn gamma[%d] %.6f -> %.6f; loss after, backend terms %.7f, "
           "re-uploaded %.7f\n", probes[3].index, before, after, l_backend, l_reupload);
    if (before == after) {
        printf("FAIL: gamma did not move\n");
        fails++;
    }
    if (fabsf(l_backend - l_reupload) > 1e-5f * (1.0f + fabsf(l_reupload))) {
        printf("FAIL: the BN terms updated on the backend differ from the uploaded ones\n");
        fails++;
    }

    wn_executor_destroy(ex);
    wn_backend_destroy(be);
    wn_model_free(&m);
    free(img), free(grads);
    if (fails) {
        printf("%d failed\n", fails);
        return 1;
    }
    printf("EfficientNet-Lite fine-tuning gradients match finite differences\n");
    return 0;
}
