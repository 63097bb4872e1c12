/* engine/runtime/plan.c — the executor's plan (engine/runtime/exec_internal.h): steps with BN +
 * Activation fusion, which values need gradients under the fine-tune boundary,
 * what backward must keep, and one arena whose offsets are packed by lifetime; and
 * the memory arithmetic on top of it (bytes per buffer, the largest batch that fits
 * in what a backend has free). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/base/error.h"
#include "engine/runtime/exec_internal.h"
#include "kernels/augment/augment.h"
#include "kernels/common/backend_bf16_ops.h"

#define ALIGN_FLOATS 64 /* 256 bytes: cuDNN/cuBLAS and AVX-512 friendly */

static size_t align_up(size_t n) { return (n + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS; }

void wn_plan_free(wn_plan *p) {
    free(p->steps);
    free(p->values);
    free(p->val_of);
    free(p->bn);
    memset(p, 0, sizeof *p);
}

static int new_value(wn_plan *p, const wn_graph *g, int layer, int step) {
    wn_value *v = &p->values[p->n_values];
    const wn_layer *l = &g->layers[layer];
    memset(v, 0, sizeof *v);
    v->layer = layer;
    v->per_image = (size_t)l->out_h * l->out_w * l->out_c;
    v->floats = v->per_image * (size_t)p->batch;
    v->start = v->end = step;
    p->val_of[layer] = p->n_values;
    return p->n_values++;
}

/* A ZeroPadding2D has no step of its own: its one reader takes it as explicit pads.
 * That is exact for a 'valid' convolution; for a 'valid' max pooling only when the
 * padded values are >= 0 (a ReLU's output), where a zero never wins over them. */
static int check_zero_padding(const wn_graph *g, int pad, int n_readers) {
    const wn_layer *l = &g->layers[pad];
    int reader = -1;
    for (int i = pad + 1; i < g->n_layers && reader < 0; i++)
        for (int j = 0; j < g->layers[i].n_inputs; j++)
            if (g->layers[i].inputs[j] == pad) reader = i;
    if (n_readers != 1 || reader < 0)
        return wn_fail("planning: ZeroPadding2D %s has %d readers; the executor folds it into "
                       "exactly one convolution or max pooling", l->name, n_readers);
    const wn_layer *r = &g->layers[reader];
    const wn_layer *src = &g->layers[l->inputs[0]];
    int conv = r->type == WN_LAYER_CONV2D || r->type == WN_LAYER_DEPTHWISE_CONV2D ||
               r->type == WN_LAYER_SEPARABLE_CONV2D;
    int relu_max = r->type == WN_LAYER_MAXPOOL && src->type == WN_LAYER_ACTIVATION &&
                   src->activation != WN_ACT_NONE;
    if (!(conv || relu_max) || r->padding != WN_PAD_VALID)
        return wn_fail("planning: ZeroPadding2D %s is read by %s (%s); the executor folds "
                       "padding only into a 'valid' convolution, or a 'valid' max pooling "
                       "of a ReLU's output", l->name, r->name, wn_layer_keras_class(r));
    return WN_OK;
}

int wn_step_conv(const wn_graph *g, const wn_step *s, int n, wn_conv_desc *d, int *kernel,
                 int *bias) {
    const wn_layer *l = &g->layers[s->layer];
    int c_in = g->layers[wn_layer_data_input(g, l)].out_c;
    if (s->part == WN_CONV_POINTWISE) {
        /* 1x1 on the depthwise half's output [oh, ow, C_in] */
        if (wn_window_init(&d->win, n, l->out_h, l->out_w, c_in, 1, 1, 1, 1, WN_PAD_VALID,
                           l->name) != WN_OK)
            return WN_ERR;
        d->k = l->out_c, d->groups = 1;
        *kernel = 1, *bias = l->use_bias ? 2 : -1;
        return WN_OK;
    }
    if (wn_layer_window(g, l, n, &d->win) != WN_OK) return WN_ERR;
    if (s->part == WN_CONV_DEPTHWISE) {
        d->k = c_in, d->groups = c_in;
        *kernel = 0, *bias = -1;
        return WN_OK;
    }
    d->k = l->out_c;
    d->groups = l->type == WN_LAYER_DEPTHWISE_CONV2D ? c_in : 1;
    *kernel = 0, *bias = l->use_bias ? 1 : -1;
    return WN_OK;
}

/* Steps in forward order; values; the BN table. */
static int plan_steps(wn_plan *p, const wn_model *m) {
    const wn_graph *g = &m->graph;
    int n = g->n_layers;
    int *readers = calloc((size_t)n, sizeof(int)), *fused_into = malloc((size_t)n * sizeof(int));
    if (!readers || !fused_into) {
        free(readers), free(fused_into);
        return wn_fail("planning: out of memory");
    }
    for (int i = 0; i < n; i++) {
        fused_into[i] = -1;
        for (int j = 0; j < g->layers[i].n_inputs; j++) readers[g->layers[i].inputs[j]]++;
    }
    for (int i = 0; i < n; i++) {
        const wn_layer *l = &g->layers[i];
        if (l->type != WN_LAYER_ACTIVATION) continue;
        const wn_layer *src = &g->layers[l->inputs[0]];
        if (src->type == WN_LAYER_BATCHNORM && readers[l->inputs[0]] == 1 &&
            l->inputs[0] != g->output)
            fused_into[l->inputs[0]] = i;
    }
    for (int i = 0; i < n; i++) {
        const wn_layer *l = &g->layers[i];
        if (l->type == WN_LAYER_BATCHNORM) {
            wn_bn_entry *b = &p->bn[p->n_bn++];
            /* five arrays of C floats, each starting on an aligned offset */
            size_t ca = align_up((size_t)l->out_c), at = p->bn_floats;
            b->layer = i, b->c = l->out_c;
            b->scale = at, b->negms = at + ca, b->shift = at + 2 * ca;
            b->inv_std = at + 3 * ca, b->negmean = at + 4 * ca;
            p->bn_floats += 5 * ca;
        }
        if (l->type == WN_LAYER_INPUT) {
            p->val_of[i] = l->n_inputs ? p->val_of[l->inputs[0]] : -1;
            continue;
        }
        if (l->type == WN_LAYER_ACTIVATION && l->inputs[0] >= 0 &&
            fused_into[l->inputs[0]] == i)
            continue; /* produced by its BN's step */
        if (l->type == WN_LAYER_ZERO_PADDING) {
            /* folded into its reader's window (graph.h: wn_layer_window) */
            if (check_zero_padding(g, i, readers[i]) != WN_OK) {
                free(readers), free(fused_into);
                return WN_ERR;
            }
            continue;
        }
        wn_step *s = &p->steps[p->n_steps];
        memset(s, 0, sizeof *s);
        s->layer = i, s->out_layer = i, s->bn = -1, s->act = WN_ACT_NONE;
        s->n_in = l->n_inputs;
        for (int j = 0; j < l->n_inputs; j++) {
            int src = l->inputs[j];
            if (g->layers[src].type == WN_LAYER_ZERO_PADDING) src = g->layers[src].inputs[0];
            s->in_val[j] = p->val_of[src];
            if (s->in_val[j] < 0 && l->type != WN_LAYER_AUGMENT) {
                free(readers), free(fused_into);
                return wn_fail("planning: layer %s reads the raw image input; only the "
                               "augmentation layer may", l->name);
            }
        }
        switch (l->type) {
        case WN_LAYER_AUGMENT: s->kind = WN_STEP_AUGMENT; break;
        case WN_LAYER_CONV2D:
        case WN_LAYER_DEPTHWISE_CONV2D: s->kind = WN_STEP_CONV; break;
        case WN_LAYER_SEPARABLE_CONV2D: {
            /* the depthwise half: its own step and value [oh, ow, C_in] */
            s->kind = WN_STEP_CONV;
            s->part = WN_CONV_DEPTHWISE;
            s->out_val = new_value(p, g, i, p->n_steps);
            wn_value *v = &p->values[s->out_val];
            v->per_image = (size_t)l->out_h * l->out_w * g->layers[l->inputs[0]].out_c;
            v->floats = v->per_image * (size_t)p->batch;
            p->n_steps++;
            /* then the pointwise half reads it */
            wn_step *pw = &p->steps[p->n_steps];
            *pw = *s;
            pw->part = WN_CONV_POINTWISE;
            pw->n_in = 1;
            pw->in_val[0] = s->out_val;
            s = pw;
            break;
        }
        case WN_LAYER_BATCHNORM:
            s->kind = WN_STEP_AFFINE;
            s->bn = p->n_bn - 1;
            if (fused_into[i] >= 0) {
                s->out_layer = fused_into[i];
                s->act = g->layers[fused_into[i]].activation;
                p->val_of[i] = -1;
            }
            break;
        case WN_LAYER_ACTIVATION:
            s->kind = WN_STEP_AFFINE;
            s->act = l->activation;
            break;
        case WN_LAYER_MAXPOOL:
        case WN_LAYER_AVGPOOL: s->kind = WN_STEP_POOL; break;
        case WN_LAYER_CONCAT: s->kind = WN_STEP_CONCAT; break;
        case WN_LAYER_SCALE_RESIDUAL: s->kind = WN_STEP_RESIDUAL; break;
        case WN_LAYER_ADD: s->kind = WN_STEP_ADD; break;
        case WN_LAYER_GAP: s->kind = WN_STEP_GAP; break;
        case WN_LAYER_DROPOUT: s->kind = WN_STEP_DROPOUT; break;
        case WN_LAYER_DENSE: s->kind = WN_STEP_DENSE; break;
        default:
            free(readers), free(fused_into);
            return wn_fail("planning: layer %s has a type the executor cannot run", l->name);
        }
        s->out_val = new_value(p, g, s->out_layer, p->n_steps);
        p->n_steps++;
    }
    free(readers), free(fused_into);
    p->logits_val = p->val_of[m->logits_layer];
    p->backbone_val = p->val_of[m->backbone_output];
    if (p->logits_val < 0 || p->backbone_val < 0)
        return wn_fail("planning: the model's backbone output or logits have no value");
    return WN_OK;
}

/* ---------------------------------------------------------------- precision */

/* The type a step of this kind reads its activations in under `act` (the plan's
 * activation type): the kinds with bf16 kernels (kernels/common/backend_bf16_ops.h)
 * read `act`, the others float32. */
static wn_dtype step_in_dtype(wn_step_kind kind, wn_dtype act) {
    switch (kind) {
    case WN_STEP_CONV:
    case WN_STEP_AFFINE:
    case WN_STEP_POOL:
    case WN_STEP_CONCAT:
    case WN_STEP_RESIDUAL:
    case WN_STEP_ADD:
    case WN_STEP_GAP: return act;
    default: return WN_DTYPE_F32;
    }
}

/* What it writes: the same, except GAP (the float32 head starts there) and a cast. */
static wn_dtype step_out_dtype(const wn_step *s) {
    return s->kind == WN_STEP_GAP ? WN_DTYPE_F32 : s->dtype;
}

static void value_set_dtype(wn_value *v, int batch, wn_dtype t) {
    v->dtype = t;
    v->floats = (v->per_image * (size_t)batch * wn_dtype_size(t) + 3) / 4;
}

/* Gives every step and value its type and inserts the casts where a value meets a
 * reader of the other type: one cast per (value, type), placed before its first
 * reader and shared by the later ones. Runs after plan_steps: step indices shift,
 * so each value's start (its producer's step) is set again. */
static int plan_precision(wn_plan *p) {
    wn_dtype act = wn_plan_act_dtype(p->flags);
    int cap_steps = p->n_steps + p->n_values, cap_values = 2 * p->n_values;
    wn_step *steps = malloc((size_t)cap_steps * sizeof *steps);
    wn_value *values = realloc(p->values, (size_t)cap_values * sizeof *values);
    int *cast_of = malloc((size_t)p->n_values * sizeof *cast_of); /* value -> its cast */
    if (values) p->values = values;
    if (!steps || !values || !cast_of) {
        free(steps), free(cast_of);
        return wn_fail("planning: out of memory");
    }
    int n_orig = p->n_values, n = 0;
    for (int v = 0; v < n_orig; v++) cast_of[v] = -1;
    for (int k = 0; k < p->n_steps; k++) {
        wn_step s = p->steps[k];
        s.dtype = step_in_dtype(s.kind, act);
        for (int j = 0; j < s.n_in; j++) {
            int src = s.in_val[j];
            if (src < 0 || src >= n_orig || p->values[src].dtype == s.dtype) continue;
            if (cast_of[src] < 0) {
                wn_value *cv = &p->values[p->n_values];
                *cv = p->values[src];
                value_set_dtype(cv, p->batch, s.dtype);
                wn_step *c = &steps[n];
                memset(c, 0, sizeof *c);
                c->kind = WN_STEP_CAST, c->dtype = s.dtype;
                c->layer = c->out_layer = cv->layer, c->bn = -1, c->act = WN_ACT_NONE;
                c->part = WN_CONV_WHOLE;
                c->n_in = 1, c->in_val[0] = src, c->out_val = p->n_values;
                cast_of[src] = p->n_values++;
                n++;
            }
            s.in_val[j] = cast_of[src];
        }
        value_set_dtype(&p->values[s.out_val], p->batch, step_out_dtype(&s));
        steps[n++] = s;
    }
    free(cast_of);
    free(p->steps);
    p->steps = steps, p->n_steps = n;
    for (int k = 0; k < n; k++) {
        wn_value *v = &p->values[steps[k].out_val];
        v->start = v->end = k;
    }
    return WN_OK;
}

/* Which steps run backward, which weights and inputs get gradients. */
static int plan_gradients(wn_plan *p, const wn_model *m) {
    const wn_graph *g = &m->graph;
    int training = !(p->flags & WN_EXEC_INFERENCE_ONLY);
    p->lowest_backward_layer = -1;
    for (int k = 0; k < p->n_steps; k++) {
        wn_step *s = &p->steps[k];
        const wn_layer *l = &g->layers[s->layer];
        s->wgrad = training && s->kind != WN_STEP_CAST && l->trainable_count > 0 &&
                   wn_model_layer_trainable(m, s->layer);
        /* A trainable gamma needs the BN's input x in backward (dgamma = sum g*x_hat). */
        s->gamma_grad = s->wgrad && l->type == WN_LAYER_BATCHNORM && l->has_gamma;
        int req = s->wgrad;
        for (int j = 0; j < s->n_in; j++)
            if (s->in_val[j] >= 0 && p->values[s->in_val[j]].requires_grad) req = 1;
        p->values[s->out_val].requires_grad = req;
        s->backward = req;
        if (req) {
            p->backward_steps++;
            if (p->lowest_backward_layer < 0) p->lowest_backward_layer = s->layer;
        }
        for (int j = 0; j < s->n_in; j++)
            s->in_grad[j] = req && s->in_val[j] >= 0 && p->values[s->in_val[j]].requires_grad;
    }
    for (int b = 0; b < p->n_bn; b++)
        p->bn[b].trainable =
            training && wn_model_layer_trainable(m, p->bn[b].layer);
    return WN_OK;
}

/* Frozen convolutions take the BatchNormalization (+ activation) after them into their
 * epilogue (kernels/common/op_types.h: wn_conv_epilogue): one pass over the output
 * instead of a store, a load and a second store. Only where nothing else needs the
 * convolution's own output: neither step runs backward (no gradient reaches them, so
 * no weight gradient, no gamma gradient and no mask reads it), the affine step is its
 * only reader, and the types agree. Not under WN_EXEC_KEEP_ALL, whose callers read
 * every layer's output. */
static int plan_epilogues(wn_plan *p) {
    for (int k = 0; k < p->n_steps; k++) p->steps[k].epilogue = -1, p->steps[k].in_epilogue = 0;
    if (p->flags & WN_EXEC_KEEP_ALL) return WN_OK;
    int *readers = calloc((size_t)p->n_values, sizeof *readers);
    int *reader = malloc((size_t)p->n_values * sizeof *reader);
    if (!readers || !reader) {
        free(readers), free(reader);
        return wn_fail("planning: out of memory");
    }
    for (int k = 0; k < p->n_steps; k++)
        for (int j = 0; j < p->steps[k].n_in; j++) {
            int v = p->steps[k].in_val[j];
            if (v >= 0) readers[v]++, reader[v] = k;
        }
    for (int k = 0; k < p->n_steps; k++) {
        wn_step *s = &p->steps[k];
        int v = s->out_val;
        if (s->kind != WN_STEP_CONV || s->part == WN_CONV_DEPTHWISE || s->backward ||
            readers[v] != 1 || v == p->logits_val || v == p->backbone_val)
            continue;
        wn_step *a = &p->steps[reader[v]];
        if (a->kind != WN_STEP_AFFINE || a->backward || a->n_in != 1 ||
            p->values[a->out_val].dtype != p->values[v].dtype)
            continue;
        s->epilogue = reader[v];
        a->in_epilogue = 1;
        p->values[a->out_val].start = k; /* written by the convolution now */
        p->values[v].floats = 0;         /* never stored */
        p->val_of[p->values[v].layer] = -1;
    }
    free(readers), free(reader);
    return WN_OK;
}

/* Live intervals: forward reads, backward reads, pins; gradient writers. */
static void plan_lifetimes(wn_plan *p) {
    int S = p->n_steps, last = 2 * S + 1;
    for (int k = 0; k < S; k++) {
        wn_step *s = &p->steps[k];
        int tb = 2 * S - k; /* time of this step's backward */
        for (int j = 0; j < s->n_in; j++) {
            if (s->in_val[j] < 0) continue;
            wn_value *v = &p->values[s->in_val[j]];
            if (v->end < k) v->end = k;
            /* Backward reads x in conv/dense weight gradients and in pooling. */
            int keep = s->backward && ((s->wgrad && (s->kind == WN_STEP_CONV ||
                                                     s->kind == WN_STEP_DENSE)) ||
                                       s->kind == WN_STEP_POOL || s->gamma_grad);
            if (keep && v->end < tb) v->end = tb;
        }
        /* affine_act and pooling backward read their own output y. */
        if (s->backward && (s->kind == WN_STEP_AFFINE || s->kind == WN_STEP_POOL)) {
            wn_value *v = &p->values[s->out_val];
            if (v->end < tb) v->end = tb;
        }
    }
    wn_value *lv = &p->values[p->logits_val];
    if (lv->end < S) lv->end = S; /* the loss reads it */
    lv->end = last;               /* and it stays readable, as the backbone output */
    p->values[p->backbone_val].end = last;
    if (p->flags & WN_EXEC_KEEP_ALL)
        for (int v = 0; v < p->n_values; v++) p->values[v].end = last;

    /* Gradients: written first by the reader that runs backward first (the highest
     * step), accumulated by the others, read by the producer's backward. */
    for (int v = 0; v < p->n_values; v++) p->values[v].grad_start = -1;
    if (lv->requires_grad) lv->grad_start = S;
    for (int k = S - 1; k >= 0; k--) {
        wn_step *s = &p->steps[k];
        for (int j = 0; j < s->n_in; j++) {
            if (!s->in_grad[j]) continue;
            wn_value *v = &p->values[s->in_val[j]];
            s->in_accum[j] = v->grad_start >= 0;
            if (v->grad_start < 0) v->grad_start = 2 * S - k;
        }
    }
    for (int v = 0; v < p->n_values; v++) {
        wn_value *x = &p->values[v];
        if (!x->requires_grad) continue;
        x->grad_end = 2 * S - x->start;
        if (x->grad_start < 0) x->grad_start = x->grad_end; /* never written: unused */
    }
}

typedef struct pack_item {
    size_t floats;
    int start, end;
    size_t *offset;
} pack_item;

static int item_cmp(const void *a, const void *b) {
    const pack_item *x = a, *y = b;
    if (x->floats != y->floats) return x->floats > y->floats ? -1 : 1;
    return x->start - y->start;
}

static int placed_cmp(const void *a, const void *b) {
    const pack_item *x = *(pack_item *const *)a, *y = *(pack_item *const *)b;
    return *x->offset < *y->offset ? -1 : *x->offset > *y->offset;
}

/* Greedy packing, largest first: each buffer takes the lowest offset that does not
 * collide with an already placed buffer whose lifetime overlaps its own. */
static int plan_pack(wn_plan *p) {
    int cap = 2 * p->n_values, n = 0;
    pack_item *items = malloc((size_t)cap * sizeof *items);
    pack_item **live = malloc((size_t)cap * sizeof *live);
    if (!items || !live) {
        free(items), free(live);
        return wn_fail("planning: out of memory");
    }
    for (int v = 0; v < p->n_values; v++) {
        wn_value *x = &p->values[v];
        items[n++] = (pack_item){align_up(x->floats), x->start, x->end, &x->offset};
        if (x->requires_grad)
            items[n++] = (pack_item){align_up(x->floats), x->grad_start, x->grad_end,
                                     &x->grad_offset};
    }
    qsort(items, (size_t)n, sizeof *items, item_cmp);
    p->arena_floats = 0;
    for (int i = 0; i < n; i++) {
        int nl = 0;
        for (int j = 0; j < i; j++)
            if (items[j].start <= items[i].end && items[i].start <= items[j].end)
                live[nl++] = &items[j];
        qsort(live, (size_t)nl, sizeof *live, placed_cmp);
        size_t off = 0;
        for (int j = 0; j < nl; j++) {
            if (*live[j]->offset >= off + items[i].floats) break;
            size_t end = *live[j]->offset + live[j]->floats;
            if (end > off) off = end;
        }
        *items[i].offset = off;
        if (off + items[i].floats > p->arena_floats) p->arena_floats = off + items[i].floats;
    }
    free(items), free(live);
    return WN_OK;
}

int wn_plan_make(wn_plan *p, const wn_model *m, int batch, unsigned flags) {
    const wn_graph *g = &m->graph;
    memset(p, 0, sizeof *p);
    if (batch < 1) return wn_fail("planning: batch size %d must be >= 1", batch);
    p->batch = batch, p->flags = flags;
    int n = g->n_layers;
    p->steps = malloc((size_t)2 * n * sizeof *p->steps);
    p->values = malloc((size_t)2 * n * sizeof *p->values);
    p->val_of = malloc((size_t)n * sizeof *p->val_of);
    p->bn = malloc((size_t)n * sizeof *p->bn);
    if (!p->steps || !p->values || !p->val_of || !p->bn) {
        wn_plan_free(p);
        return wn_fail("planning: out of memory");
    }
    for (int i = 0; i < n; i++) p->val_of[i] = -1;
    if (plan_steps(p, m) != WN_OK || plan_precision(p) != WN_OK ||
        plan_gradients(p, m) != WN_OK || plan_epilogues(p) != WN_OK) {
        wn_plan_free(p);
        return WN_ERR;
    }
    plan_lifetimes(p);
    if (plan_pack(p) != WN_OK) {
        wn_plan_free(p);
        return WN_ERR;
    }
    return WN_OK;
}

/* ---------------------------------------------------------------- backend memory */

static size_t round_up(size_t bytes, size_t align) {
    if (align < 2) return bytes;
    return (bytes + align - 1) / align * align;
}

/* The most scratch any convolution call of the plan takes. */
static size_t conv_scratch(wn_backend *be, const wn_model *m, const wn_plan *p) {
    const wn_graph *g = &m->graph;
    size_t most = 0;
    for (int k = 0; k < p->n_steps; k++) {
        const wn_step *s = &p->steps[k];
        if (s->kind != WN_STEP_CONV) continue;
        wn_conv_desc d;
        int kernel, bias;
        if (wn_step_conv(g, s, p->batch, &d, &kernel, &bias) != WN_OK)
            continue; /* planning already accepted the layer; cannot happen */
        /* a bf16 step asks the bf16 table (a plan with bf16 steps is refused on a
         * backend without one before anything is sized) */
        size_t (*scratch)(wn_backend *, wn_conv_call, const wn_conv_desc *, int) =
            s->dtype == WN_DTYPE_BF16 && be->bf16 ? be->bf16->conv_scratch_bytes
                                                  : be->ops->conv_scratch_bytes;
        size_t b = scratch(be, WN_CONV_CALL_FORWARD, &d, 0);
        if (s->wgrad) {
            size_t f = scratch(be, WN_CONV_CALL_BACKWARD_FILTER, &d, 0);
            if (f > b) b = f;
        }
        if (s->backward && s->in_grad[0]) {
            size_t bd = scratch(be, WN_CONV_CALL_BACKWARD_DATA, &d, s->in_accum[0]);
            if (bd > b) b = bd;
        }
        if (b > most) most = b;
    }
    return most;
}

void wn_exec_sizes_make(wn_backend *be, const wn_model *m, const wn_plan *p,
                        wn_exec_sizes *s) {
    const wn_graph *g = &m->graph;
    size_t b = (size_t)p->batch;
    size_t trainable = (p->flags & WN_EXEC_INFERENCE_ONLY)
                           ? 0
                           : wn_model_trainable_count(m) * sizeof(float);
    memset(s, 0, sizeof *s);
    /* Required buffers are asked for at least 16 bytes (a model without BN still gets a
     * BN buffer), so every pointer the ops see is valid; optional ones may be absent. */
#define WN_REQ(x) ((x) != 0 ? (x) : (size_t)16)
    s->buf[WN_EXEC_BUF_PARAMS] = (wn_exec_buffer){"parameters", WN_REQ(g->n_params * sizeof(float)), 1};
    s->buf[WN_EXEC_BUF_STATS] = (wn_exec_buffer){"BN statistics", WN_REQ(g->n_stats * sizeof(float)), 1};
    s->buf[WN_EXEC_BUF_BN] = (wn_exec_buffer){"BN terms", WN_REQ(p->bn_floats * sizeof(float)), 1};
    s->buf[WN_EXEC_BUF_IMAGES] = (wn_exec_buffer){"images", b * g->in_h * g->in_w * g->in_c,
                                                  be->upload_slots};
    s->buf[WN_EXEC_BUF_LABELS] = (wn_exec_buffer){"labels", b * sizeof(int32_t), 1};
    s->buf[WN_EXEC_BUF_PROBS] = (wn_exec_buffer){"probabilities",
                                                 b * (size_t)m->num_classes * sizeof(float), 1};
    s->buf[WN_EXEC_BUF_PREPROCESS] = (wn_exec_buffer){
        "preprocess terms", m->backbone->preprocess == WN_PREPROCESS_LITE ? 6 * sizeof(float) : 0,
        1};
    s->buf[WN_EXEC_BUF_STEP_STATS] = (wn_exec_buffer){"loss totals", 4 * sizeof(float), 1};
    s->buf[WN_EXEC_BUF_PARAMS16] = (wn_exec_buffer){
        "bf16 weights", (p->flags & WN_EXEC_BF16) ? WN_REQ(g->n_params * sizeof(wn_bf16)) : 0, 1};
    s->buf[WN_EXEC_BUF_ARENA] = (wn_exec_buffer){"activations", WN_REQ(p->arena_floats * sizeof(float)), 1};
#undef WN_REQ
    s->buf[WN_EXEC_BUF_GRADS] = (wn_exec_buffer){"gradients", trainable, 1};
    s->buf[WN_EXEC_BUF_ADAM_M] = (wn_exec_buffer){"Adam m", trainable, 1};
    s->buf[WN_EXEC_BUF_ADAM_V] = (wn_exec_buffer){"Adam v", trainable, 1};
    for (int i = 0; i < WN_EXEC_BUF_COUNT; i++) {
        const wn_exec_buffer *x = &s->buf[i];
        if (!x->bytes) continue;
        s->requested += x->bytes * (size_t)x->copies;
        size_t r = round_up(x->bytes, be->alloc_align) * (size_t)x->copies;
        if (i < WN_EXEC_BUF_FIRST_PLANNED) s->fixed += r;
        else s->planned += r;
    }
    s->scratch = conv_scratch(be, m, p);
    /* a training step's augmentation (inference only preprocesses, in place) */
    if (!(p->flags & WN_EXEC_INFERENCE_ONLY)) {
        size_t aug = wn_augment_scratch_bytes(p->batch, g->in_h, g->in_w, g->in_c,
                                              be->alloc_align);
        if (aug > s->scratch) s->scratch = aug;
    }
    s->needed = s->fixed + s->planned + s->scratch + be->reserve_bytes;
}

/* 1 when batch `b` fits, 0 when not, WN_ERR when planning fails. */
static int batch_fits(wn_backend *be, const wn_model *m, unsigned flags, size_t available,
                      int b) {
    wn_plan p;
    if (wn_plan_make(&p, m, b, flags) != WN_OK) return WN_ERR;
    wn_exec_sizes s;
    wn_exec_sizes_make(be, m, &p, &s);
    wn_plan_free(&p);
    return s.needed <= available;
}

int wn_exec_largest_batch(wn_backend *be, const wn_model *m, unsigned flags,
                          size_t available, int max_batch, int *largest) {
    *largest = 0;
    if (max_batch < 1) return WN_OK;
    /* Memory grows with the batch (every activation is batch x per-image), so the
     * answer is found by bisection: lo fits (or is 0), hi does not (or is max + 1). */
    int lo = 0, hi = max_batch + 1;
    while (hi - lo > 1) {
        int mid = lo + (hi - lo) / 2;
        int fits = batch_fits(be, m, flags, available, mid);
        if (fits < 0) return WN_ERR;
        if (fits) lo = mid;
        else hi = mid;
    }
    /* The arena's greedy packing is not provably monotone in the batch: the bisection's
     * answer was planned and fits; it is what we report. */
    *largest = lo;
    return WN_OK;
}

static double mib(size_t bytes) { return bytes / 1048576.0; }

int wn_exec_fit_check(wn_backend *be, const wn_model *m, const wn_plan *p, size_t available) {
    wn_exec_sizes s;
    wn_exec_sizes_make(be, m, p, &s);
    if (s.needed <= available) return WN_OK;
    int largest = 0;
    if (wn_exec_largest_batch(be, m, p->flags, available, p->batch - 1, &largest) != WN_OK)
        return wn_fail_context("out of %s; finding the largest batch that fits: ",
                               be->kind == WN_BACKEND_CUDA ? "GPU memory" : "memory (RAM)");
    char boundary[32];
    if (m->fine_tune_at == WN_FINE_TUNE_NONE) snprintf(boundary, sizeof boundary, "none");
    else snprintf(boundary, sizeof boundary, "%d", m->fine_tune_at);
    char advice[200];
    if (largest > 0)
        snprintf(advice, sizeof advice, "the largest batch that fits is %d: use --batch %d",
                 largest, largest);
    else
        snprintf(advice, sizeof advice,
                 "not even batch 1 fits: use a smaller --image-size, a larger --fine-tune-at%s",
                 be->kind == WN_BACKEND_CPU ? "" : ", or --backend cpu");
    size_t weights = s.buf[WN_EXEC_BUF_PARAMS].bytes + s.buf[WN_EXEC_BUF_STATS].bytes +
                     s.buf[WN_EXEC_BUF_BN].bytes + s.buf[WN_EXEC_BUF_PARAMS16].bytes;
    size_t optimizer = s.buf[WN_EXEC_BUF_GRADS].bytes + s.buf[WN_EXEC_BUF_ADAM_M].bytes +
                       s.buf[WN_EXEC_BUF_ADAM_V].bytes;
    size_t arena = s.buf[WN_EXEC_BUF_ARENA].bytes;
    size_t rest = s.fixed + s.planned - weights - optimizer - arena;
    return wn_fail("out of %s on %s: %s at %dx%d, batch %d, fine-tune-at %s needs %.0f MiB "
                   "(activations and gradients %.0f, weights %.0f, gradients and Adam state "
                   "%.0f, images and the rest %.0f, per-op scratch %.0f, reserve %.0f) but "
                   "%.0f MiB are free; %s",
                   be->kind == WN_BACKEND_CUDA ? "GPU memory" : "memory (RAM)", be->name,
                   m->backbone->name, m->image_h, m->image_w, p->batch, boundary,
                   mib(s.needed), mib(arena), mib(weights), mib(optimizer), mib(rest),
                   mib(s.scratch), mib(be->reserve_bytes), mib(available), advice);
}
