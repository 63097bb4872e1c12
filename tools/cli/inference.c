/* tools/cli/inference.c — models, class names and backends for predict and evaluate
 * (see inference.h). */
#include "engine/backends/cpu/backend_cpu.h"
#include "engine/backends/cuda/backend_cuda.h"
#include "tools/cli/inference.h"
#include "host/regular_file.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/train/checkpoint.h"
#include "host/base/error.h"
#include "engine/train/model_weights.h"
#include "host/keras_archive.h"

static const char *const notebook_classes[6] = {"cardboard", "glass", "metal",
                                                 "paper",     "plastic", "trash"};

void wn_class_list_free(wn_class_list *c) {
    for (int i = 0; i < c->n; i++) free(c->v[i]);
    free(c->v);
    c->n = 0, c->v = NULL;
}

static int push(wn_class_list *c, const char *s, size_t len) {
    char **v = realloc(c->v, (size_t)(c->n + 1) * sizeof *v);
    if (!v) return wn_fail("out of memory");
    c->v = v;
    c->v[c->n] = strndup(s, len);
    if (!c->v[c->n]) return wn_fail("out of memory");
    c->n++;
    return WN_OK;
}

static int from_list(wn_class_list *c, const char *list) {
    for (const char *p = list;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == 0) return wn_fail("--classes %s: empty class name", list);
        if (push(c, p, len) != WN_OK) return WN_ERR;
        if (!comma) return WN_OK;
        p = comma + 1;
    }
}

/* classes.txt beside the weights file; 0 when there is none. */
static int from_run_folder(wn_class_list *c, const char *weights) {
    char copy[4096], path[4200];
    snprintf(copy, sizeof copy, "%s", weights);
    snprintf(path, sizeof path, "%s/classes.txt", dirname(copy));
    FILE *f = wn_fopen_regular(path, "r", NULL);
    if (!f) return 0;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        size_t len = strcspn(line, "\r\n");
        if (len && push(c, line, len) != WN_OK) break;
    }
    fclose(f);
    c->from_file = c->n > 0;
    return c->n;
}

int wn_class_list_resolve(wn_class_list *c, const char *class_list, const char *weights, int k) {
    memset(c, 0, sizeof *c);
    if (class_list) {
        if (from_list(c, class_list) != WN_OK) return WN_ERR;
    } else if (!from_run_folder(c, weights) && k == 6) {
        for (int i = 0; i < 6; i++)
            if (push(c, notebook_classes[i], strlen(notebook_classes[i])) != WN_OK) return WN_ERR;
    }
    if (c->n == 0)
        for (int i = 0; i < k; i++) {
            char name[32];
            snprintf(name, sizeof name, "class_%d", i);
            if (push(c, name, strlen(name)) != WN_OK) return WN_ERR;
        }
    if (c->n != k)
        return wn_fail("%d class names for %s, a model with %d outputs: pass --classes with %d "
                       "names", c->n, weights, k, k);
    return WN_OK;
}

int wn_class_list_equal(const wn_class_list *a, const wn_class_list *b) {
    if (a->n != b->n) return 0;
    for (int i = 0; i < a->n; i++)
        if (strcmp(a->v[i], b->v[i])) return 0;
    return 1;
}

void wn_inference_default_size(const char *weights, int *h, int *w) {
    *h = *w = WN_DEFAULT_IMAGE_SIZE;
    if (!wn_keras_archive_is(weights)) return;
    wn_keras_config cfg;
    /* an unreadable archive keeps 320: loading it then reports why */
    if (wn_keras_archive_config(weights, &cfg) != WN_OK) {
        wn_clear_error();
        return;
    }
    if (cfg.input_h > 0 && cfg.input_w > 0) *h = cfg.input_h, *w = cfg.input_w;
    wn_keras_config_free(&cfg);
}

int wn_inference_load_model(wn_model *m, const char *weights, const char *arch, int size,
                            const char *command) {
    const char *why;
    FILE *probe = wn_fopen_regular(weights, "rb", &why);
    if (!probe) return wn_fail("%s: cannot read the weights: %s", weights, why);
    fclose(probe);
    if (wn_checkpoint_is_file(weights)) return wn_checkpoint_load_model(m, weights);
    int classes = wn_model_weights_head_classes(weights);
    if (classes < 0) return WN_ERR; /* unreadable: its reason names the file */
    if (classes == 0)
        return wn_fail("%s: no dense head found: %s needs the whole model's weights (a "
                       "checkpoint, or a *_weights.h5 from a run), not a backbone-only file",
                       weights, command);
    int h = size, w = size;
    if (size <= 0) wn_inference_default_size(weights, &h, &w);
    if (wn_model_create(m, arch, h, w, classes, 0) != WN_OK) return WN_ERR;
    wn_weights_info info;
    if (wn_model_weights_load(m, weights, &info) != WN_OK) {
        wn_model_free(m);
        return WN_ERR;
    }
    if (info.scope == WN_WEIGHTS_BACKBONE_ONLY) {
        wn_model_free(m);
        return wn_fail("%s holds the backbone only: %s needs a trained head", weights, command);
    }
    return WN_OK;
}

wn_backend *wn_inference_backend(const char *name) {
    if (!strcmp(name, "cuda") || (!strcmp(name, "auto") && wn_cuda_available()))
        return wn_backend_cuda(0, WN_PRECISION_TF32);
    return wn_backend_cpu();
}
