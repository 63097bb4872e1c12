/* engine/model/graph.c — building a layer graph: shapes, Keras auto-names, weights, and
 * Keras's model.layers order (see engine/model/graph.h for the contract). */
#include "engine/model/graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/base/error.h"

void wn_graph_init(wn_graph *g, const char *name) {
    memset(g, 0, sizeof *g);
    snprintf(g->name, sizeof g->name, "%s", name ? name : "model");
    g->output = -1;
}

void wn_graph_free(wn_graph *g) {
    free(g->layers);
    g->layers = NULL;
    g->n_layers = g->cap_layers = 0;
}

const char *wn_layer_type_keras(wn_layer_type t) {
    switch (t) {
    case WN_LAYER_INPUT: return "InputLayer";
    case WN_LAYER_AUGMENT: return "Sequential";
    case WN_LAYER_CONV2D: return "Conv2D";
    case WN_LAYER_DEPTHWISE_CONV2D: return "DepthwiseConv2D";
    case WN_LAYER_SEPARABLE_CONV2D: return "SeparableConv2D";
    case WN_LAYER_ZERO_PADDING: return "ZeroPadding2D";
    case WN_LAYER_BATCHNORM: return "BatchNormalization";
    case WN_LAYER_ACTIVATION: return "Activation";
    case WN_LAYER_MAXPOOL: return "MaxPooling2D";
    case WN_LAYER_AVGPOOL: return "AveragePooling2D";
    case WN_LAYER_CONCAT: return "Concatenate";
    case WN_LAYER_SCALE_RESIDUAL: return "CustomScaleLayer";
    case WN_LAYER_ADD: return "Add";
    case WN_LAYER_GAP: return "GlobalAveragePooling2D";
    case WN_LAYER_DROPOUT: return "Dropout";
    case WN_LAYER_DENSE: return "Dense";
    case WN_LAYER_TYPE_COUNT: break;
    }
    return "?";
}

const char *wn_layer_keras_class(const wn_layer *l) {
    if (l->type == WN_LAYER_ACTIVATION && l->relu_class) return "ReLU";
    return wn_layer_type_keras(l->type);
}

const char *wn_layer_type_snake_name(wn_layer_type t) {
    switch (t) {
    case WN_LAYER_INPUT: return "input";
    case WN_LAYER_AUGMENT: return "sequential";
    case WN_LAYER_CONV2D: return "conv2d";
    case WN_LAYER_DEPTHWISE_CONV2D: return "depthwise_conv2d";
    case WN_LAYER_SEPARABLE_CONV2D: return "separable_conv2d";
    case WN_LAYER_ZERO_PADDING: return "zero_padding2d";
    case WN_LAYER_BATCHNORM: return "batch_normalization";
    case WN_LAYER_ACTIVATION: return "activation";
    case WN_LAYER_MAXPOOL: return "max_pooling2d";
    case WN_LAYER_AVGPOOL: return "average_pooling2d";
    case WN_LAYER_CONCAT: return "concatenate";
    case WN_LAYER_SCALE_RESIDUAL: return "custom_scale_layer";
    case WN_LAYER_ADD: return "add";
    case WN_LAYER_GAP: return "global_average_pooling2d";
    case WN_LAYER_DROPOUT: return "dropout";
    case WN_LAYER_DENSE: return "dense";
    case WN_LAYER_TYPE_COUNT: break;
    }
    return "layer";
}

/* Next auto name for `prefix`: zero-based ("conv2d", "conv2d_1") like
 * backend.unique_object_name, or one-based ("input_1") like backend.get_uid. */
static int auto_name(wn_graph *g, const char *prefix, int one_based, char *out) {
    wn_name_counter *c = NULL;
    for (int i = 0; i < g->n_counters; i++)
        if (!strcmp(g->counters[i].prefix, prefix)) c = &g->counters[i];
    if (!c) {
        if (g->n_counters == (int)(sizeof g->counters / sizeof g->counters[0]))
            return wn_fail("graph %s: too many auto-name prefixes", g->name);
        c = &g->counters[g->n_counters++];
        snprintf(c->prefix, sizeof c->prefix, "%s", prefix);
        c->next = one_based ? 1 : 0;
    }
    int k = c->next++;
    if (k == 0)
        snprintf(out, WN_NAME_MAX, "%s", prefix);
    else
        snprintf(out, WN_NAME_MAX, "%s_%d", prefix, k);
    return WN_OK;
}

/* Appends a layer of `type` reading `n` inputs; returns its pointer or NULL. */
static wn_layer *layer_new(wn_graph *g, wn_layer_type type, const char *name, int n,
                           const int *inputs) {
    if (g->finalized) {
        wn_fail("graph %s: layers cannot be added after wn_graph_finalize", g->name);
        return NULL;
    }
    for (int i = 0; i < n; i++)
        if (inputs[i] < 0) return NULL; /* an earlier add failed: keep its reason */
    for (int i = 0; i < n; i++)
        if (inputs[i] >= g->n_layers) {
            wn_fail("graph %s: layer %s reads layer id %d, which does not exist", g->name,
                    name ? name : wn_layer_type_snake_name(type), inputs[i]);
            return NULL;
        }
    if (n > WN_MAX_INPUTS) {
        wn_fail("graph %s: layer %s has %d inputs (at most %d)", g->name,
                name ? name : wn_layer_type_snake_name(type), n, WN_MAX_INPUTS);
        return NULL;
    }
    if (g->n_layers == g->cap_layers) {
        int cap = g->cap_layers ? 2 * g->cap_layers : 256;
        wn_layer *p = realloc(g->layers, (size_t)cap * sizeof *p);
        if (!p) {
            wn_fail("graph %s: out of memory growing to %d layers", g->name, cap);
            return NULL;
        }
        g->layers = p, g->cap_layers = cap;
    }
    wn_layer *l = &g->layers[g->n_layers];
    memset(l, 0, sizeof *l);
    if (name) {
        if (strlen(name) >= WN_NAME_MAX) {
            wn_fail("graph %s: layer name '%s' is too long", g->name, name);
            return NULL;
        }
        snprintf(l->name, sizeof l->name, "%s", name);
    } else if (auto_name(g, wn_layer_type_snake_name(type), type == WN_LAYER_INPUT, l->name) != WN_OK) {
        return NULL;
    }
    l->type = type;
    l->n_inputs = n;
    for (int i = 0; i < n; i++) l->inputs[i] = inputs[i];
    l->activation = WN_ACT_NONE;
    g->n_layers++;
    return l;
}

static int layer_id(const wn_graph *g, const wn_layer *l) { return (int)(l - g->layers); }

/* Declares weight `short_name` of layer `l` with the given Keras shape. */
static void weight_add(wn_layer *l, const char *short_name, int in_stats, int rank, int d0,
                       int d1, int d2, int d3) {
    wn_weight *w = &l->weights[l->n_weights++];
    char layer[WN_NAME_MAX];
    memcpy(layer, l->name, sizeof layer);
    snprintf(w->name, sizeof w->name, "%.60s/%.24s:0", layer, short_name);
    w->rank = rank;
    int d[4] = {d0, d1, d2, d3};
    w->count = 1;
    for (int i = 0; i < 4; i++) {
        w->dims[i] = i < rank ? d[i] : 0;
        if (i < rank) w->count *= (size_t)d[i];
    }
    w->in_stats = in_stats;
    l->param_count += w->count;
    if (!in_stats) l->trainable_count += w->count;
}

static wn_layer *input_of(wn_graph *g, const wn_layer *l, int i) {
    return &g->layers[l->inputs[i]];
}

int wn_graph_add_input(wn_graph *g, const char *name, int h, int w, int c, int from) {
    if (h < 1 || w < 1 || c < 1)
        return wn_fail("graph %s: input shape %dx%dx%d is invalid", g->name, h, w, c);
    wn_layer *l = layer_new(g, WN_LAYER_INPUT, name, from >= 0 ? 1 : 0, &from);
    if (!l) return WN_ERR;
    if (from >= 0) {
        const wn_layer *p = input_of(g, l, 0);
        if (p->out_h != h || p->out_w != w || p->out_c != c) {
            g->n_layers--;
            return wn_fail("graph %s: nested input expects %dx%dx%d but layer %s gives "
                           "%dx%dx%d", g->name, h, w, c, p->name, p->out_h, p->out_w, p->out_c);
        }
    } else if (g->in_c == 0) {
        g->in_h = h, g->in_w = w, g->in_c = c;
    }
    l->out_h = h, l->out_w = w, l->out_c = c;
    return layer_id(g, l);
}

int wn_graph_add_augment(wn_graph *g, const char *name, int x) {
    wn_layer *l = layer_new(g, WN_LAYER_AUGMENT, name, 1, &x);
    if (!l) return WN_ERR;
    const wn_layer *p = input_of(g, l, 0);
    if (p->type != WN_LAYER_INPUT || p->n_inputs != 0) {
        g->n_layers--;
        return wn_fail("graph %s: the augmentation layer must read the image input",
                       g->name);
    }
    l->out_h = p->out_h, l->out_w = p->out_w, l->out_c = p->out_c;
    return layer_id(g, l);
}

/* Output size of a window op, TensorFlow rules (engine/window.c). */
static int window_shape(wn_graph *g, wn_layer *l, int kh, int kw, int sh, int sw,
                        wn_padding pad) {
    const wn_layer *p = input_of(g, l, 0);
    wn_window win;
    if (wn_window_init(&win, 1, p->out_h, p->out_w, p->out_c, kh, kw, sh, sw, pad,
                       l->name) != WN_OK) {
        g->n_layers--;
        return WN_ERR;
    }
    l->kh = kh, l->kw = kw, l->sh = sh, l->sw = sw, l->padding = pad;
    l->out_h = win.oh, l->out_w = win.ow;
    return WN_OK;
}

int wn_graph_add_conv2d(wn_graph *g, const char *name, int x, int filters, int kh, int kw,
                        int sh, int sw, wn_padding pad, int use_bias) {
    wn_layer *l = layer_new(g, WN_LAYER_CONV2D, name, 1, &x);
    if (!l) return WN_ERR;
    if (filters < 1) {
        g->n_layers--;
        return wn_fail("graph %s: conv %s has %d filters", g->name, l->name, filters);
    }
    if (window_shape(g, l, kh, kw, sh, sw, pad) != WN_OK) return WN_ERR;
    int c = input_of(g, l, 0)->out_c;
    l->filters = filters, l->out_c = filters, l->use_bias = use_bias;
    weight_add(l, "kernel", 0, 4, kh, kw, c, filters);
    if (use_bias) weight_add(l, "bias", 0, 1, filters, 0, 0, 0);
    return layer_id(g, l);
}

int wn_graph_add_depthwise_conv2d(wn_graph *g, const char *name, int x, int kh, int kw,
                                  int sh, int sw, wn_padding pad, int use_bias) {
    wn_layer *l = layer_new(g, WN_LAYER_DEPTHWISE_CONV2D, name, 1, &x);
    if (!l) return WN_ERR;
    if (window_shape(g, l, kh, kw, sh, sw, pad) != WN_OK) return WN_ERR;
    int c = input_of(g, l, 0)->out_c;
    l->filters = c, l->out_c = c, l->use_bias = use_bias;
    /* Keras's (kh, kw, C, depth_multiplier) is the same memory order as the
     * backend's HWIO (kh, kw, 1, C) for groups = C. */
    weight_add(l, "depthwise_kernel", 0, 4, kh, kw, c, 1);
    if (use_bias) weight_add(l, "bias", 0, 1, c, 0, 0, 0);
    return layer_id(g, l);
}

int wn_graph_add_separable_conv2d(wn_graph *g, const char *name, int x, int filters, int kh,
                                  int kw, int sh, int sw, wn_padding pad, int use_bias) {
    wn_layer *l = layer_new(g, WN_LAYER_SEPARABLE_CONV2D, name, 1, &x);
    if (!l) return WN_ERR;
    if (filters < 1) {
        g->n_layers--;
        return wn_fail("graph %s: separable conv %s has %d filters", g->name, l->name, filters);
    }
    if (window_shape(g, l, kh, kw, sh, sw, pad) != WN_OK) return WN_ERR;
    int c = input_of(g, l, 0)->out_c;
    l->filters = filters, l->out_c = filters, l->use_bias = use_bias;
    weight_add(l, "depthwise_kernel", 0, 4, kh, kw, c, 1);
    weight_add(l, "pointwise_kernel", 0, 4, 1, 1, c, filters);
    if (use_bias) weight_add(l, "bias", 0, 1, filters, 0, 0, 0);
    return layer_id(g, l);
}

int wn_graph_add_zero_padding(wn_graph *g, const char *name, int x, int top, int bottom,
                              int left, int right) {
    if (top < 0 || bottom < 0 || left < 0 || right < 0)
        return wn_fail("graph %s: zero padding (%d, %d, %d, %d) is negative", g->name, top,
                       bottom, left, right);
    wn_layer *l = layer_new(g, WN_LAYER_ZERO_PADDING, name, 1, &x);
    if (!l) return WN_ERR;
    const wn_layer *p = input_of(g, l, 0);
    l->pad_t = top, l->pad_b = bottom, l->pad_l = left, l->pad_r = right;
    l->out_h = p->out_h + top + bottom, l->out_w = p->out_w + left + right;
    l->out_c = p->out_c;
    return layer_id(g, l);
}

int wn_layer_data_input(const wn_graph *g, const wn_layer *l) {
    int in = l->inputs[0];
    const wn_layer *p = &g->layers[in];
    return p->type == WN_LAYER_ZERO_PADDING ? p->inputs[0] : in;
}

int wn_layer_window(const wn_graph *g, const wn_layer *l, int n, wn_window *win) {
    const wn_layer *p = &g->layers[l->inputs[0]];
    if (p->type != WN_LAYER_ZERO_PADDING)
        return wn_window_init(win, n, p->out_h, p->out_w, p->out_c, l->kh, l->kw, l->sh, l->sw,
                              l->padding, l->name);
    if (l->padding != WN_PAD_VALID)
        return wn_fail("layer %s: reads ZeroPadding2D %s but has 'same' padding; only a "
                       "'valid' window can take the padding as its own", l->name, p->name);
    /* The padded tensor's valid window, then the same window on the unpadded input
     * with explicit pads. */
    const wn_layer *src = &g->layers[p->inputs[0]];
    return wn_window_init_zero_padded(win, n, src->out_h, src->out_w, src->out_c, l->kh, l->kw,
                                      l->sh, l->sw, p->pad_t, p->pad_b, p->pad_l, p->pad_r,
                                      l->name);
}

int wn_graph_add_batchnorm(wn_graph *g, const char *name, int x, int scale, float epsilon) {
    wn_layer *l = layer_new(g, WN_LAYER_BATCHNORM, name, 1, &x);
    if (!l) return WN_ERR;
    const wn_layer *p = input_of(g, l, 0);
    l->out_h = p->out_h, l->out_w = p->out_w, l->out_c = p->out_c;
    l->has_gamma = scale, l->epsilon = epsilon;
    int c = p->out_c;
    /* Keras's legacy weight order: trainable (gamma, beta), then non-trainable. */
    if (scale) weight_add(l, "gamma", 0, 1, c, 0, 0, 0);
    weight_add(l, "beta", 0, 1, c, 0, 0, 0);
    weight_add(l, "moving_mean", 1, 1, c, 0, 0, 0);
    weight_add(l, "moving_variance", 1, 1, c, 0, 0, 0);
    return layer_id(g, l);
}

int wn_graph_add_activation(wn_graph *g, const char *name, int x, wn_activation act) {
    wn_layer *l = layer_new(g, WN_LAYER_ACTIVATION, name, 1, &x);
    if (!l) return WN_ERR;
    const wn_layer *p = input_of(g, l, 0);
    l->out_h = p->out_h, l->out_w = p->out_w, l->out_c = p->out_c;
    l->activation = act;
    return layer_id(g, l);
}

int wn_graph_add_relu_layer(wn_graph *g, const char *name, int x, wn_activation act) {
    /* Keras auto-names a ReLU layer "re_lu" */
    char auto_buf[WN_NAME_MAX];
    if (!name) {
        if (auto_name(g, "re_lu", 0, auto_buf) != WN_OK) return WN_ERR;
        name = auto_buf;
    }
    int id = wn_graph_add_activation(g, name, x, act);
    if (id >= 0) g->layers[id].relu_class = 1;
    return id;
}

int wn_graph_add_pool(wn_graph *g, const char *name, int x, wn_pool_kind kind, int kh,
                      int kw, int sh, int sw, wn_padding pad) {
    wn_layer *l = layer_new(g, kind == WN_POOL_MAX ? WN_LAYER_MAXPOOL : WN_LAYER_AVGPOOL,
                            name, 1, &x);
    if (!l) return WN_ERR;
    if (window_shape(g, l, kh, kw, sh, sw, pad) != WN_OK) return WN_ERR;
    l->out_c = input_of(g, l, 0)->out_c;
    return layer_id(g, l);
}

int wn_graph_add_concat(wn_graph *g, const char *name, int n, const int *xs) {
    wn_layer *l = layer_new(g, WN_LAYER_CONCAT, name, n, xs);
    if (!l) return WN_ERR;
    const wn_layer *p0 = input_of(g, l, 0);
    int c = 0;
    for (int i = 0; i < n; i++) {
        const wn_layer *p = input_of(g, l, i);
        if (p->out_h != p0->out_h || p->out_w != p0->out_w) {
            g->n_layers--;
            return wn_fail("graph %s: concatenate %s: input %s is %dx%d, %s is %dx%d",
                           g->name, l->name, p0->name, p0->out_h, p0->out_w, p->name,
                           p->out_h, p->out_w);
        }
        c += p->out_c;
    }
    l->out_h = p0->out_h, l->out_w = p0->out_w, l->out_c = c;
    return layer_id(g, l);
}

/* Elementwise layers: every input has the same shape. */
static int same_shapes(wn_graph *g, wn_layer *l) {
    const wn_layer *p0 = input_of(g, l, 0);
    for (int i = 1; i < l->n_inputs; i++) {
        const wn_layer *p = input_of(g, l, i);
        if (p->out_h != p0->out_h || p->out_w != p0->out_w || p->out_c != p0->out_c) {
            g->n_layers--;
            return wn_fail("graph %s: %s: input %s is %dx%dx%d but %s is %dx%dx%d", g->name,
                           l->name, p0->name, p0->out_h, p0->out_w, p0->out_c, p->name,
                           p->out_h, p->out_w, p->out_c);
        }
    }
    l->out_h = p0->out_h, l->out_w = p0->out_w, l->out_c = p0->out_c;
    return WN_OK;
}

int wn_graph_add_scale_residual(wn_graph *g, const char *name, int x, int r, float scale) {
    int in[2] = {x, r};
    wn_layer *l = layer_new(g, WN_LAYER_SCALE_RESIDUAL, name, 2, in);
    if (!l) return WN_ERR;
    if (same_shapes(g, l) != WN_OK) return WN_ERR;
    l->scale = scale;
    return layer_id(g, l);
}

int wn_graph_add_add(wn_graph *g, const char *name, int n, const int *xs) {
    if (n < 2) return wn_fail("graph %s: an Add layer needs at least 2 inputs", g->name);
    wn_layer *l = layer_new(g, WN_LAYER_ADD, name, n, xs);
    if (!l) return WN_ERR;
    if (same_shapes(g, l) != WN_OK) return WN_ERR;
    return layer_id(g, l);
}

int wn_graph_add_gap(wn_graph *g, const char *name, int x) {
    wn_layer *l = layer_new(g, WN_LAYER_GAP, name, 1, &x);
    if (!l) return WN_ERR;
    l->out_h = l->out_w = 1;
    l->out_c = input_of(g, l, 0)->out_c;
    return layer_id(g, l);
}

int wn_graph_add_dropout(wn_graph *g, const char *name, int x, float rate) {
    if (!(rate >= 0.0f && rate < 1.0f))
        return wn_fail("graph %s: dropout rate %g is outside [0, 1)", g->name, rate);
    wn_layer *l = layer_new(g, WN_LAYER_DROPOUT, name, 1, &x);
    if (!l) return WN_ERR;
    const wn_layer *p = input_of(g, l, 0);
    l->out_h = p->out_h, l->out_w = p->out_w, l->out_c = p->out_c;
    l->rate = rate;
    return layer_id(g, l);
}

int wn_graph_add_dense(wn_graph *g, const char *name, int x, int units, int use_bias) {
    wn_layer *l = layer_new(g, WN_LAYER_DENSE, name, 1, &x);
    if (!l) return WN_ERR;
    const wn_layer *p = input_of(g, l, 0);
    if (p->out_h != 1 || p->out_w != 1 || units < 1) {
        g->n_layers--;
        return wn_fail("graph %s: dense %s needs a flat input (got %dx%dx%d from %s) and "
                       ">= 1 unit", g->name, l->name, p->out_h, p->out_w, p->out_c, p->name);
    }
    l->out_h = l->out_w = 1, l->out_c = units, l->filters = units, l->use_bias = use_bias;
    weight_add(l, "kernel", 0, 2, p->out_c, units, 0, 0);
    if (use_bias) weight_add(l, "bias", 0, 1, units, 0, 0, 0);
    return layer_id(g, l);
}

/* ------------------------------------------------------------ Keras's order */

typedef struct order_state {
    wn_graph *g;
    int first;
    int *visit_index; /* [n] first-reach index of the depth-first search, -1 unseen */
    char *state;      /* [n] 0 new, 1 in progress, 2 finished */
    int *post;        /* [n] finished layers, inputs before readers */
    int n_post, n_seen;
} order_state;

/* functional.py::_build_map_helper: index on first reach, then the inputs in call
 * order, then append to the list of finished layers. */
static int order_visit(order_state *s, int id) {
    if (s->state[id] == 2) return WN_OK;
    if (s->state[id] == 1)
        return wn_fail("graph %s: layer %s is part of a cycle", s->g->name,
                       s->g->layers[id].name);
    if (s->visit_index[id] < 0) s->visit_index[id] = s->n_seen++;
    s->state[id] = 1;
    const wn_layer *l = &s->g->layers[id];
    for (int i = 0; i < l->n_inputs; i++) {
        int p = l->inputs[i];
        if (p < s->first) {
            if (l->type != WN_LAYER_INPUT)
                return wn_fail("graph %s: layer %s reads %s from outside its model; only "
                               "the model's input layer may", s->g->name, l->name,
                               s->g->layers[p].name);
            continue;
        }
        if (order_visit(s, p) != WN_OK) return WN_ERR;
    }
    s->state[id] = 2;
    s->post[s->n_post++] = id;
    return WN_OK;
}

static int *order_depth; /* sort keys for qsort (single-threaded graph building) */
static int *order_index;

static int order_cmp(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    if (order_depth[x] != order_depth[y]) return order_depth[x] > order_depth[y] ? -1 : 1;
    return order_index[x] - order_index[y];
}

int wn_graph_order_keras(wn_graph *g, int first, int output) {
    if (output < 0) return WN_ERR;
    int n = g->n_layers;
    if (first < 0 || first > output || output >= n)
        return wn_fail("graph %s: ordering range [%d, %d) with output %d is invalid", g->name,
                       first, n, output);
    order_state s = {g, first, NULL, NULL, NULL, 0, 0};
    int *depth = NULL, *perm = NULL, *map = NULL;
    s.visit_index = malloc((size_t)n * sizeof(int));
    s.state = calloc((size_t)n, 1);
    s.post = malloc((size_t)n * sizeof(int));
    depth = calloc((size_t)n, sizeof(int));
    perm = malloc((size_t)n * sizeof(int));
    map = malloc((size_t)n * sizeof(int));
    int rc = WN_ERR;
    if (!s.visit_index || !s.state || !s.post || !depth || !perm || !map) {
        wn_fail("graph %s: out of memory ordering layers", g->name);
        goto done;
    }
    for (int i = 0; i < n; i++) s.visit_index[i] = -1;
    if (order_visit(&s, output) != WN_OK) goto done;
    if (s.n_post != n - first) {
        for (int i = first; i < n; i++)
            if (s.state[i] != 2) {
                wn_fail("graph %s: layer %s does not lead to the output %s", g->name,
                        g->layers[i].name, g->layers[output].name);
                goto done;
            }
    }
    /* Depth = longest path to the output: walk readers before their inputs
     * (reverse of the finished list) and push depth + 1 to each input. */
    for (int k = s.n_post - 1; k >= 0; k--) {
        const wn_layer *l = &g->layers[s.post[k]];
        for (int i = 0; i < l->n_inputs; i++) {
            int p = l->inputs[i];
            if (p >= first && depth[p] < depth[s.post[k]] + 1) depth[p] = depth[s.post[k]] + 1;
        }
    }
    int m = n - first;
    for (int i = 0; i < m; i++) perm[i] = first + i;
    order_depth = depth, order_index = s.visit_index;
    qsort(perm, (size_t)m, sizeof(int), order_cmp);
    for (int i = 0; i < first; i++) map[i] = i;
    for (int i = 0; i < m; i++) map[perm[i]] = first + i;
    wn_layer *sorted = malloc((size_t)m * sizeof *sorted);
    if (!sorted) {
        wn_fail("graph %s: out of memory ordering layers", g->name);
        goto done;
    }
    for (int i = 0; i < m; i++) {
        sorted[i] = g->layers[perm[i]];
        for (int j = 0; j < sorted[i].n_inputs; j++)
            sorted[i].inputs[j] = map[sorted[i].inputs[j]];
    }
    memcpy(g->layers + first, sorted, (size_t)m * sizeof *sorted);
    free(sorted);
    rc = map[output];
done:
    free(s.visit_index);
    free(s.state);
    free(s.post);
    free(depth);
    free(perm);
    free(map);
    return rc;
}

int wn_graph_finalize(wn_graph *g, int output) {
    if (output < 0) return WN_ERR;
    if (output >= g->n_layers)
        return wn_fail("graph %s: output id %d does not exist", g->name, output);
    g->n_params = g->n_stats = 0;
    for (int i = 0; i < g->n_layers; i++) {
        wn_layer *l = &g->layers[i];
        for (int j = 0; j < l->n_inputs; j++)
            if (l->inputs[j] >= i)
                return wn_fail("graph %s: layer %s reads %s, which comes after it; order "
                               "the layers (wn_graph_order_keras) first", g->name, l->name,
                               g->layers[l->inputs[j]].name);
        for (int j = 0; j < l->n_weights; j++) {
            wn_weight *w = &l->weights[j];
            size_t *total = w->in_stats ? &g->n_stats : &g->n_params;
            w->offset = *total;
            *total += w->count;
        }
    }
    for (int i = 0; i < g->n_layers; i++)
        for (int j = i + 1; j < g->n_layers; j++)
            if (!strcmp(g->layers[i].name, g->layers[j].name) &&
                g->layers[i].block == g->layers[j].block)
                return wn_fail("graph %s: two layers are named %s (ids %d and %d)", g->name,
                               g->layers[i].name, i, j);
    g->output = output;
    g->finalized = 1;
    return WN_OK;
}

double wn_layer_flops(const wn_graph *g, int layer) {
    const wn_layer *l = &g->layers[layer];
    const wn_layer *p = l->n_inputs ? &g->layers[l->inputs[0]] : NULL;
    double out = (double)l->out_h * l->out_w;
    switch (l->type) {
    case WN_LAYER_CONV2D: return 2.0 * out * l->out_c * l->kh * l->kw * p->out_c;
    case WN_LAYER_DEPTHWISE_CONV2D: return 2.0 * out * l->out_c * l->kh * l->kw;
    case WN_LAYER_SEPARABLE_CONV2D:
        return 2.0 * out * p->out_c * (l->kh * l->kw + l->out_c);
    case WN_LAYER_DENSE: return 2.0 * p->out_c * l->out_c;
    default: return 0.0;
    }
}

int wn_graph_find(const wn_graph *g, const char *name) {
    for (int i = 0; i < g->n_layers; i++)
        if (!strcmp(g->layers[i].name, name)) return i;
    return -1;
}
