/* engine/model/model.c — the notebook's whole model (engine/model/model.h): building it around
 * a registered backbone, fresh-model weights, and the fine-tune boundary. */
#include "engine/model/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/base/error.h"
#include "host/base/rng.h"

static int check_size(const wn_backbone_def *def, int h, int w) {
    if (h < def->min_size || w < def->min_size)
        return wn_fail("model %s: input %dx%d is too small; the smallest is %dx%d", def->name,
                       h, w, def->min_size, def->min_size);
    return WN_OK;
}

int wn_backbone_build_graph(wn_graph *g, const char *arch, int h, int w) {
    const wn_backbone_def *def = wn_backbone_find(arch);
    if (!def) return WN_ERR;
    char name[WN_NAME_MAX];
    wn_backbone_keras_name(def, h, w, name, sizeof name);
    wn_graph_init(g, name);
    if (check_size(def, h, w) != WN_OK) return WN_ERR;
    int out = def->build(g, -1, h, w);
    out = wn_graph_order_keras(g, 0, out);
    for (int i = 0; i < g->n_layers; i++) g->layers[i].block = 1;
    if (wn_graph_finalize(g, out) != WN_OK) {
        wn_fail_context("building %s: ", def->name);
        wn_graph_free(g);
        return WN_ERR;
    }
    return WN_OK;
}

int wn_model_create(wn_model *m, const char *arch, int image_h, int image_w, int num_classes,
                    uint64_t init_seed) {
    memset(m, 0, sizeof *m);
    const wn_backbone_def *def = wn_backbone_find(arch);
    if (!def) return WN_ERR;
    if (check_size(def, image_h, image_w) != WN_OK) return WN_ERR;
    if (num_classes < 2)
        return wn_fail("model %s: %d classes; a classifier needs at least 2", arch,
                       num_classes);
    m->backbone = def;
    wn_backbone_keras_name(def, image_h, image_w, m->backbone_name, sizeof m->backbone_name);
    m->image_h = image_h, m->image_w = image_w;
    m->num_classes = num_classes;
    m->dropout_rate = 0.2f;

    /* The notebook's get_model(): Input first, then the augmentation Sequential and
     * preprocess, then the backbone (built inside the call, so its own input is
     * input_2), GAP, Dropout(0.2), Dense(softmax). */
    wn_graph *g = &m->graph;
    wn_graph_init(g, "model");
    int x = wn_graph_add_input(g, NULL, image_h, image_w, 3, -1);
    x = wn_graph_add_augment(g, NULL, x);
    m->backbone_first = g->n_layers;
    x = def->build(g, x, image_h, image_w);
    x = wn_graph_order_keras(g, m->backbone_first, x);
    if (x < 0) goto fail;
    m->backbone_output = x;
    m->backbone_count = g->n_layers - m->backbone_first;
    for (int i = m->backbone_first; i < g->n_layers; i++) {
        g->layers[i].block = 1;
        m->backbone_params += g->layers[i].param_count;
    }
    x = wn_graph_add_gap(g, NULL, x);
    x = wn_graph_add_dropout(g, NULL, x, m->dropout_rate);
    x = wn_graph_add_dense(g, NULL, x, num_classes, 1);
    m->logits_layer = x;
    if (wn_graph_finalize(g, x) != WN_OK) goto fail;

    m->params = malloc((g->n_params ? g->n_params : 1) * sizeof(float));
    m->stats = malloc((g->n_stats ? g->n_stats : 1) * sizeof(float));
    if (!m->params || !m->stats) {
        wn_fail("model %s: out of memory for %zu weights", arch, g->n_params + g->n_stats);
        goto fail;
    }
    wn_model_init_weights(m, init_seed);
    wn_model_set_fine_tune(m, WN_FINE_TUNE_NONE);
    return WN_OK;
fail:
    wn_fail_context("building model %s at %dx%d: ", arch, image_h, image_w);
    wn_model_free(m);
    return WN_ERR;
}

const char *wn_model_backbone_name(const wn_model *m) {
    if (m->backbone_name[0]) return m->backbone_name;
    return m->backbone ? m->backbone->keras_name : m->graph.name;
}

void wn_model_free(wn_model *m) {
    wn_graph_free(&m->graph);
    free(m->params);
    free(m->stats);
    m->params = m->stats = NULL;
}

/* splitmix64 (host/base/rng.h): one independent stream per (seed, weight). */

/* Keras's glorot_uniform: U[-L, L], L = sqrt(6 / (fan_in + fan_out)), with the
 * receptive field counted in both fans for kernels of rank 4. */
static void glorot_fill(float *p, const wn_weight *w, uint64_t stream) {
    double field = w->rank == 4 ? (double)w->dims[0] * w->dims[1] : 1.0;
    double fan_in = field * w->dims[w->rank - 2], fan_out = field * w->dims[w->rank - 1];
    double limit = sqrt(6.0 / (fan_in + fan_out));
    uint64_t state = wn_splitmix64_mix(stream);
    for (size_t i = 0; i < w->count; i++) {
        state += 0x9E3779B97F4A7C15ull;
        double u = (double)(wn_splitmix64_mix(state) >> 11) * (1.0 / 9007199254740992.0);
        p[i] = (float)((2.0 * u - 1.0) * limit);
    }
}

static int weight_is(const wn_weight *w, const char *short_name) {
    const char *slash = strrchr(w->name, '/');
    size_t n = strlen(short_name);
    return slash && !strncmp(slash + 1, short_name, n) && slash[1 + n] == ':';
}

void wn_model_init_weights(wn_model *m, uint64_t seed) {
    const wn_graph *g = &m->graph;
    uint64_t k = 0;
    for (int i = 0; i < g->n_layers; i++) {
        const wn_layer *l = &g->layers[i];
        for (int j = 0; j < l->n_weights; j++, k++) {
            const wn_weight *w = &l->weights[j];
            float *p = wn_model_weight_data(m, w);
            float value = 0.0f; /* biases, beta, moving_mean */
            if (weight_is(w, "kernel") || weight_is(w, "depthwise_kernel") ||
                weight_is(w, "pointwise_kernel")) {
                glorot_fill(p, w, wn_splitmix64_mix(seed) ^ (k * 0xD1B54A32D192ED03ull));
                continue;
            }
            if (weight_is(w, "gamma") || weight_is(w, "moving_variance")) value = 1.0f;
            for (size_t e = 0; e < w->count; e++) p[e] = value;
        }
    }
}

float *wn_model_weight_data(wn_model *m, const wn_weight *w) {
    return (w->in_stats ? m->stats : m->params) + w->offset;
}

int wn_fine_tune_parse(const char *s, int *fine_tune_at) {
    if (!strcmp(s, "none")) {
        *fine_tune_at = WN_FINE_TUNE_NONE;
        return WN_OK;
    }
    if (!strcmp(s, "all")) {
        *fine_tune_at = 0;
        return WN_OK;
    }
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 0 || v > 100000)
        return wn_fail("--fine-tune-at %s: expected none, all or a layer index >= 0", s);
    *fine_tune_at = (int)v;
    return WN_OK;
}

int wn_fine_tune_resolve(const wn_graph *g, int first, int count, const char *s,
                         int *fine_tune_at) {
    if (*s >= '0' && *s <= '9') return wn_fine_tune_parse(s, fine_tune_at);
    if (!strcmp(s, "none") || !strcmp(s, "all")) return wn_fine_tune_parse(s, fine_tune_at);
    size_t n = strlen(s);
    for (int i = 0; i < count; i++)
        if (!strcmp(g->layers[first + i].name, s)) {
            *fine_tune_at = i;
            return WN_OK;
        }
    for (int i = 0; i < count; i++) {
        const char *name = g->layers[first + i].name;
        if (!strncmp(name, s, n) && (name[n] == '_' || name[n] == '/')) {
            *fine_tune_at = i;
            return WN_OK;
        }
    }
    return wn_fail("--fine-tune-at %s: expected none, all, a layer index, or a layer or "
                   "block name of the backbone (no layer is named '%s' or starts with "
                   "'%s_' or '%s/'; `wastenet summary --expand` lists them)",
                   s, s, s, s);
}

int wn_model_set_fine_tune(wn_model *m, int fine_tune_at) {
    const wn_graph *g = &m->graph;
    if (fine_tune_at != WN_FINE_TUNE_NONE &&
        (fine_tune_at < 0 || fine_tune_at > m->backbone_count))
        return wn_fail("--fine-tune-at %d: the %s backbone has %d layers; use none, all "
                       "or 0..%d", fine_tune_at, m->backbone->name, m->backbone_count,
                       m->backbone_count);
    m->fine_tune_at = fine_tune_at;
    int first = fine_tune_at == WN_FINE_TUNE_NONE ? m->backbone_count : fine_tune_at;
    m->first_trainable_layer = m->backbone_first + first;
    m->trainable_first = g->n_params;
    for (int i = m->first_trainable_layer; i < g->n_layers; i++) {
        const wn_layer *l = &g->layers[i];
        int found = 0;
        for (int j = 0; j < l->n_weights && !found; j++)
            if (!l->weights[j].in_stats) {
                m->trainable_first = l->weights[j].offset;
                found = 1;
            }
        if (found) break;
    }
    return WN_OK;
}

int wn_model_layer_trainable(const wn_model *m, int layer) {
    return layer >= m->first_trainable_layer;
}

size_t wn_model_trainable_count(const wn_model *m) {
    return m->graph.n_params - m->trainable_first;
}

size_t wn_model_backbone_trainable(const wn_model *m) {
    size_t n = 0;
    int end = m->backbone_first + m->backbone_count;
    for (int i = m->first_trainable_layer; i < end; i++)
        n += m->graph.layers[i].trainable_count;
    return n;
}

double wn_model_flops(const wn_model *m) {
    double f = 0.0;
    for (int i = 0; i < m->graph.n_layers; i++) f += wn_layer_flops(&m->graph, i);
    return f;
}

static void row_set(wn_summary_row *r, const char *name, const char *cls, const wn_layer *l,
                    int first, int last) {
    snprintf(r->name, sizeof r->name, "%s", name);
    r->keras_class = cls;
    r->rank = (l->out_h == 1 && l->out_w == 1 && l->type != WN_LAYER_INPUT) ? 1 : 3;
    r->h = l->out_h, r->w = l->out_w, r->c = l->out_c;
    r->params = r->trainable = 0;
    r->first_layer = first, r->last_layer = last;
}

int wn_model_summary_rows(const wn_model *m, wn_summary_row *rows, int cap) {
    const wn_graph *g = &m->graph;
    int n = 0, end = m->backbone_first + m->backbone_count;
    for (int i = 0; i < g->n_layers; i++) {
        const wn_layer *l = &g->layers[i];
        if (i >= m->backbone_first && i < end) {
            if (i != m->backbone_first) continue;
            if (n < cap) {
                row_set(&rows[n], wn_model_backbone_name(m), "Functional",
                        &g->layers[m->backbone_output], m->backbone_first, end - 1);
                rows[n].params = m->backbone_params;
                rows[n].trainable = wn_model_backbone_trainable(m);
            }
            n++;
            continue;
        }
        if (l->type == WN_LAYER_AUGMENT) {
            /* Keras: the Sequential, then preprocess_input's ops (x/127.5 and x-1) */
            if (n < cap) row_set(&rows[n], l->name, "Sequential", l, i, i);
            n++;
            const char *names[3], *classes[3];
            int k = wn_preprocess_keras_layers(m->backbone->preprocess, names, classes);
            for (int j = 0; j < k; j++, n++)
                if (n < cap) row_set(&rows[n], names[j], classes[j], l, i, i);
            continue;
        }
        if (n < cap) {
            row_set(&rows[n], l->name, wn_layer_type_keras(l->type), l, i, i);
            rows[n].params = l->param_count;
            rows[n].trainable = wn_model_layer_trainable(m, i) ? l->trainable_count : 0;
        }
        n++;
    }
    return n;
}
