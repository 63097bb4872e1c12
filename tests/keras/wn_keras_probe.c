/* tests/keras/wn_keras_probe.c — a test-only program that lets the Keras parity
 * scripts (tests/keras/test_*.py) run wastenet on their inputs. Raw files are little-
 * endian, row-major: images uint8 [N,H,W,3], labels int32 [N], outputs float32.
 *
 *   wn_keras_probe forward ARCH H W CLASSES WEIGHTS.h5 IMAGES.u8 N BACKBONE.f32 PROBS.f32
 *       loads WEIGHTS (either layout), runs inference (no augmentation, no dropout)
 *       and writes the backbone output [N,h,w,c] and the softmax [N,CLASSES]
 *   wn_keras_probe trainable ARCH H W CLASSES FINE_TUNE_AT
 *       prints the names of the trainable weights, in order, one per line
 *       (FINE_TUNE_AT: none | all | N, as `--fine-tune-at`)
 *   wn_keras_probe train-step ARCH H W CLASSES WEIGHTS.h5 FINE_TUNE_AT LR IMAGES.u8
 *                             LABELS.i32 N OUT.h5 GRADS.f32
 *       one Adam step (no augmentation, dropout rate 0), then writes the whole model
 *       to OUT.h5 (the export layout) and the step's weight gradients to GRADS.f32
 *       (the trainable weights in the order `trainable` lists them)
 *
 *   wn_keras_probe init ARCH H W CLASSES SEED OUT.h5
 *       a fresh model (wn_model_create's initialisation from SEED) with random BN
 *       statistics and beta (moving_mean, beta U(-0.1, 0.1), moving_variance
 *       U(0.5, 1.5)), written in the export layout: random weights for architectures
 *       Keras has no application for (EfficientNet-Lite)
 *
 * Each prints one JSON line of facts (how the weights were matched, the loss) first.
 * Exit status: 0 success, 1 failure (reason on stderr), 2 usage. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/runtime/backend.h"
#include "engine/backends/cpu/backend_cpu.h"
#include "host/base/error.h"
#include "engine/runtime/executor.h"
#include "engine/model/model.h"
#include "engine/train/model_weights.h"

static int fail(const char *what) {
    fprintf(stderr, "wn_keras_probe: %s: %s\n", what, wn_last_error());
    return 1;
}

static void *read_file(const char *path, size_t bytes) {
    FILE *fp = fopen(path, "rb");
    void *buf = malloc(bytes ? bytes : 1);
    if (!fp || !buf || fread(buf, 1, bytes, fp) != bytes) {
        wn_fail("%s: cannot read %zu bytes", path, bytes);
        if (fp) fclose(fp);
        free(buf);
        return NULL;
    }
    fclose(fp);
    return buf;
}

static int write_file(const char *path, const void *data, size_t bytes) {
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(data, 1, bytes, fp) != bytes || fclose(fp) != 0)
        return wn_fail("%s: cannot write", path);
    return WN_OK;
}

static int model_open(wn_model *m, char **argv, const char *weights, wn_weights_info *info) {
    if (wn_model_create(m, argv[0], atoi(argv[1]), atoi(argv[2]), atoi(argv[3]), 1) != WN_OK)
        return WN_ERR;
    if (weights && wn_model_weights_load(m, weights, info) != WN_OK) {
        wn_model_free(m);
        return WN_ERR;
    }
    return WN_OK;
}

static void print_info(const wn_weights_info *info) {
    printf("{\"scope\": \"%s\", \"by_name\": %d, \"nested\": %d, \"layers\": %d, "
           "\"values\": %zu, \"keras_version\": \"%s\"",
           info->scope == WN_WEIGHTS_WHOLE_MODEL ? "whole" : "backbone", info->by_name,
           info->nested, info->layers, info->values, info->keras_version);
}

static int cmd_forward(char **argv) {
    wn_model m;
    wn_weights_info info;
    if (model_open(&m, argv, argv[4], &info) != WN_OK) return fail("loading");
    int n = atoi(argv[6]);
    size_t img_bytes = (size_t)n * m.image_h * m.image_w * 3;
    uint8_t *images = read_file(argv[5], img_bytes);
    if (!images) return fail("images");
    wn_backend *be = wn_backend_cpu();
    wn_executor *ex = NULL;
    if (!be || wn_executor_create(&ex, &m, be, n, WN_EXEC_INFERENCE_ONLY) != WN_OK)
        return fail("executor");
    const wn_layer *bo = &m.graph.layers[m.backbone_output];
    size_t bsize = (size_t)n * bo->out_h * bo->out_w * bo->out_c;
    float *backbone = malloc(bsize * sizeof(float));
    float *probs = malloc((size_t)n * m.num_classes * sizeof(float));
    if (wn_executor_forward(ex, images, n, 0, NULL, NULL, 0) != WN_OK ||
        wn_executor_read_output(ex, m.backbone_output, backbone) != WN_OK)
        return fail("forward");
    if (wn_executor_predict(ex, images, n, probs) != WN_OK) return fail("predict");
    if (write_file(argv[7], backbone, bsize * sizeof(float)) != WN_OK ||
        write_file(argv[8], probs, (size_t)n * m.num_classes * sizeof(float)) != WN_OK)
        return fail("output");
    print_info(&info);
    printf(", \"backbone_shape\": [%d, %d, %d, %d]}\n", n, bo->out_h, bo->out_w, bo->out_c);
    wn_executor_destroy(ex);
    wn_backend_destroy(be);
    free(images), free(backbone), free(probs);
    wn_model_free(&m);
    return 0;
}

static int cmd_trainable(char **argv) {
    wn_model m;
    int fine_tune_at;
    if (model_open(&m, argv, NULL, NULL) != WN_OK) return fail("model");
    if (wn_fine_tune_parse(argv[4], &fine_tune_at) != WN_OK ||
        wn_model_set_fine_tune(&m, fine_tune_at) != WN_OK)
        return fail("fine-tune boundary");
    /* what the optimizer updates: the params suffix [trainable_first, n_params); it
     * must agree with the per-layer trainable flags */
    size_t count = 0;
    for (int i = 0; i < m.graph.n_layers; i++) {
        const wn_layer *l = &m.graph.layers[i];
        for (int k = 0; k < l->n_weights; k++) {
            const wn_weight *w = &l->weights[k];
            if (w->in_stats) continue;
            int in_suffix = w->offset >= m.trainable_first;
            if (in_suffix != (wn_model_layer_trainable(&m, i) != 0)) {
                fprintf(stderr, "wn_keras_probe: layer %s: trainable flag %d but params "
                        "suffix %d\n", l->name, wn_model_layer_trainable(&m, i), in_suffix);
                return 1;
            }
            if (in_suffix) {
                printf("%s\n", w->name);
                count += w->count;
            }
        }
    }
    if (count != wn_model_trainable_count(&m)) {
        fprintf(stderr, "wn_keras_probe: listed %zu trainable values, model says %zu\n", count,
                wn_model_trainable_count(&m));
        return 1;
    }
    wn_model_free(&m);
    return 0;
}

static int cmd_train_step(char **argv) {
    wn_model m;
    wn_weights_info info;
    int fine_tune_at;
    if (model_open(&m, argv, argv[4], &info) != WN_OK) return fail("loading");
    if (wn_fine_tune_parse(argv[5], &fine_tune_at) != WN_OK ||
        wn_model_set_fine_tune(&m, fine_tune_at) != WN_OK)
        return fail("fine-tune boundary");
    /* dropout off: Keras's Dropout(0.0) is the identity even when training */
    m.dropout_rate = 0.0f;
    for (int i = 0; i < m.graph.n_layers; i++)
        if (m.graph.layers[i].type == WN_LAYER_DROPOUT) m.graph.layers[i].rate = 0.0f;
    float lr = (float)atof(argv[6]);
    int n = atoi(argv[9]);
    uint8_t *images = read_file(argv[7], (size_t)n * m.image_h * m.image_w * 3);
    int32_t *labels = read_file(argv[8], (size_t)n * sizeof(int32_t));
    if (!images || !labels) return fail("inputs");
    wn_backend *be = wn_backend_cpu();
    wn_executor *ex = NULL;
    if (!be || wn_executor_create(&ex, &m, be, n, 0) != WN_OK) return fail("executor");
    float loss = 0;
    int correct = 0;
    if (wn_executor_train_step(ex, images, labels, n, NULL, NULL, 0, &WN_ADAM_KERAS(lr), &loss, &correct) !=
            WN_OK ||
        wn_executor_download_weights(ex) != WN_OK)
        return fail("train step");
    if (wn_model_weights_save(&m, argv[10], WN_WEIGHTS_WHOLE_MODEL) != WN_OK)
        return fail("saving");
    size_t n_train = wn_model_trainable_count(&m);
    float *grads = malloc((n_train ? n_train : 1) * sizeof(float));
    if (!grads || wn_executor_read_grads(ex, grads) != WN_OK ||
        write_file(argv[11], grads, n_train * sizeof(float)) != WN_OK)
        return fail("gradients");
    free(grads);
    print_info(&info);
    printf(", \"loss\": %.9g, \"correct\": %d, \"trainable\": %zu}\n", loss, correct,
           wn_model_trainable_count(&m));
    wn_executor_destroy(ex);
    wn_backend_destroy(be);
    free(images), free(labels);
    wn_model_free(&m);
    return 0;
}

/* splitmix64 -> U[0, 1): test data only */
static double uniform01(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0;
}

static int cmd_init(char **argv) {
    wn_model m;
    uint64_t seed = strtoull(argv[4], NULL, 10);
    if (wn_model_create(&m, argv[0], atoi(argv[1]), atoi(argv[2]), atoi(argv[3]), seed) != WN_OK)
        return fail("model");
    uint64_t st = seed ^ 0x5EEDull;
    for (int i = 0; i < m.graph.n_layers; i++) {
        const wn_layer *l = &m.graph.layers[i];
        if (l->type != WN_LAYER_BATCHNORM) continue;
        for (int k = 0; k < l->n_weights; k++) {
            const wn_weight *w = &l->weights[k];
            float *v = wn_model_weight_data(&m, w);
            int var = strstr(w->name, "moving_variance") != NULL;
            int gamma = strstr(w->name, "gamma") != NULL;
            for (size_t j = 0; j < w->count; j++) {
                double u = uniform01(&st);
                v[j] = (float)(var ? 0.5 + u : (gamma ? 1.0 : 0.0) + 0.2 * u - 0.1);
            }
        }
    }
    int rc = wn_model_weights_save(&m, argv[5], WN_WEIGHTS_WHOLE_MODEL);
    wn_model_free(&m);
    if (rc != WN_OK) return fail("init");
    printf("{\"written\": \"%s\"}\n", argv[5]);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 8 && !strcmp(argv[1], "init")) return cmd_init(argv + 2);
    if (argc == 11 && !strcmp(argv[1], "forward")) return cmd_forward(argv + 2);
    if (argc == 7 && !strcmp(argv[1], "trainable")) return cmd_trainable(argv + 2);
    if (argc == 14 && !strcmp(argv[1], "train-step")) return cmd_train_step(argv + 2);
    fprintf(stderr, "usage: see the top of tests/keras/wn_keras_probe.c\n");
    return 2;
}
