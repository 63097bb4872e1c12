/* engine/runtime/executor.c — runs the plan of engine/runtime/plan.c on a backend:
 * allocation, weight upload, forward (training or inference), loss, backward to the
 * boundary, and Adam over the trainable suffix of params (engine/runtime/executor.h).
 *
 * Everything goes through the backend contract (engine/runtime/backend.h): a plan is
 * checked against the backend's free memory before anything is allocated (a refusal
 * names the largest batch that fits), and image batches go up through the upload
 * entries into be->upload_slots alternating buffers (see "image upload" below). The
 * CPU backend takes the same paths as the CUDA backend, with plain implementations. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/runtime/backend_bf16.h"
#include "engine/runtime/exec_internal.h"
#include "host/base/error.h"

#define WN_MAX_UPLOAD_SLOTS 4

struct wn_executor {
    wn_model *model;
    wn_backend *be;
    wn_plan plan;

    float *params;      /* backend [n_params] */
    float *stats;       /* backend [n_stats] */
    float *bn;          /* backend [plan.bn_floats]: per BN scale, negms, shift, inv_std,
                           negmean (wn_bn_entry) */
    float *arena;       /* backend [plan.arena_floats] */
    uint8_t *images[WN_MAX_UPLOAD_SLOTS]; /* backend [batch, H, W, 3], one per upload slot */
    int image_next;     /* the slot of the next batch */
    int alloc_failed;   /* an allocation failed (for the out-of-memory advice) */
    int32_t *labels;    /* backend [batch] */
    int32_t *zero_labels; /* host [batch]: predict's placeholder labels */
    float *probs;       /* backend [batch, num_classes]: predict's softmax */
    float *preprocess;  /* backend [6]: scale[3], shift[3] that turn x/127.5 - 1 into
                           EfficientNet-Lite's (x - 127)/128; NULL for Keras's 'tf' */
    float *step_stats;  /* backend [4]: this step's loss sum, correct count; totals */
    float *totals;      /* = step_stats + 2: running sums since the last take */
    wn_bf16 *params16;  /* backend [n_params] bf16 copy of params (WN_EXEC_BF16), cast
                           at upload and after each Adam step */
    float label_smoothing; /* the loss's target smoothing (0: none; see backend_ops.h) */
    float *grads;       /* backend [trainable]: aligned with params[trainable_first..] */
    float *adam_m, *adam_v; /* backend [trainable] */
    size_t trainable;   /* floats in the trainable suffix */
    size_t trainable_first;
    long adam_t;        /* steps taken (Keras's optimizer.iterations) */
    long seen;          /* images in the running totals */
    int last_n;         /* images in the last forward */
    int grads_valid;
    int part_first;     /* data-parallel step: the place of this rank's first image in
                           the whole batch (dropout's counter offset); 0 otherwise */
    size_t bucket_floats; /* gradient bucket size of a data-parallel step; 0: one sum
                             after backward */
    wn_grad_bucket *buckets; /* [n_buckets] for the current plan, in backward's order */
    int n_buckets;
};

/* ---------------------------------------------------------------- memory */

/* Where each buffer of the list (engine/runtime/exec_internal.h) lives; copy k of the
 * image buffer is images[k]. */
static void **buffer_slot(wn_executor *ex, int id, int copy) {
    switch ((wn_exec_buffer_id)id) {
    case WN_EXEC_BUF_PARAMS: return (void **)&ex->params;
    case WN_EXEC_BUF_STATS: return (void **)&ex->stats;
    case WN_EXEC_BUF_BN: return (void **)&ex->bn;
    case WN_EXEC_BUF_IMAGES: return (void **)&ex->images[copy];
    case WN_EXEC_BUF_LABELS: return (void **)&ex->labels;
    case WN_EXEC_BUF_PROBS: return (void **)&ex->probs;
    case WN_EXEC_BUF_PREPROCESS: return (void **)&ex->preprocess;
    case WN_EXEC_BUF_STEP_STATS: return (void **)&ex->step_stats;
    case WN_EXEC_BUF_PARAMS16: return (void **)&ex->params16;
    case WN_EXEC_BUF_ARENA: return (void **)&ex->arena;
    case WN_EXEC_BUF_GRADS: return (void **)&ex->grads;
    case WN_EXEC_BUF_ADAM_M: return (void **)&ex->adam_m;
    case WN_EXEC_BUF_ADAM_V: return (void **)&ex->adam_v;
    case WN_EXEC_BUF_COUNT: break;
    }
    return NULL;
}

/* Allocates the buffers [first, last) of the list, exactly as sized. */
static int alloc_buffers(wn_executor *ex, const wn_exec_sizes *s, int first, int last) {
    for (int id = first; id < last; id++) {
        const wn_exec_buffer *b = &s->buf[id];
        for (int k = 0; b->bytes && k < b->copies; k++) {
            void **slot = buffer_slot(ex, id, k);
            *slot = wn_backend_alloc(ex->be, b->bytes);
            if (!*slot) {
                ex->alloc_failed = 1;
                return wn_fail_context("allocating %s (%.1f MiB) on %s: ", b->what,
                                       b->bytes / 1048576.0, ex->be->name);
            }
        }
    }
    return WN_OK;
}

static void free_buffers(wn_executor *ex, int first, int last) {
    for (int id = first; id < last; id++)
        for (int k = 0; k < WN_MAX_UPLOAD_SLOTS; k++) {
            if (id != WN_EXEC_BUF_IMAGES && k > 0) break;
            void **slot = buffer_slot(ex, id, k);
            wn_backend_free(ex->be, *slot);
            *slot = NULL;
        }
}

static void free_plan_buffers(wn_executor *ex) {
    free_buffers(ex, WN_EXEC_BUF_FIRST_PLANNED, WN_EXEC_BUF_COUNT);
    wn_plan_free(&ex->plan);
    free(ex->buckets);
    ex->buckets = NULL, ex->n_buckets = 0;
}

static int make_buckets(wn_executor *ex) {
    free(ex->buckets);
    ex->buckets = NULL, ex->n_buckets = 0;
    return wn_grad_buckets_make(&ex->plan, &ex->model->graph, ex->trainable_first,
                                ex->trainable, ex->bucket_floats, &ex->buckets,
                                &ex->n_buckets);
}

/* Memory free for a plan on the backend: what it can still give, plus `held` bytes
 * that this executor holds already and would keep using (its weights and image
 * buffers, when a new boundary is planned). */
static int memory_available(wn_backend *be, size_t held, size_t *avail) {
    size_t total;
    if (be->ops->memory(be, avail, &total) != WN_OK) return WN_ERR;
    *avail += held;
    return WN_OK;
}

/* After an allocation failed although the plan was checked (fragmentation, another
 * process): the current reason, plus the largest batch that fits in what is free once
 * the failed plan's buffers are gone (call after freeing them) and `held` bytes that
 * the executor still holds and would give back. */
static int oom_advice(wn_backend *be, wn_model *m, int batch, unsigned flags, size_t held) {
    char reason[1024];
    snprintf(reason, sizeof reason, "%s", wn_last_error());
    size_t avail;
    int largest = 0;
    if (memory_available(be, held, &avail) != WN_OK ||
        wn_exec_largest_batch(be, m, flags, avail, batch - 1, &largest) != WN_OK)
        return wn_fail("%s", reason);
    if (largest > 0)
        return wn_fail("%s; with the memory free now, the largest batch that fits is %d: "
                       "use --batch %d", reason, largest, largest);
    return wn_fail("%s; with the memory free now not even batch 1 fits", reason);
}

/* Plans for the model's current boundary and allocates the plan's buffers; `held` are
 * the bytes of the buffers this executor keeps through the plan. */
static int make_plan(wn_executor *ex, int batch, unsigned flags, size_t held) {
    wn_backend *be = ex->be;
    if (wn_plan_make(&ex->plan, ex->model, batch, flags) != WN_OK) return WN_ERR;
    /* Refuse before allocating: a plan that cannot fit is a message, not a crash
     * halfway through the first step. */
    wn_exec_sizes s;
    wn_exec_sizes_make(be, ex->model, &ex->plan, &s);
    size_t avail;
    if (memory_available(be, held, &avail) != WN_OK ||
        wn_exec_fit_check(be, ex->model, &ex->plan, avail) != WN_OK)
        return WN_ERR;
    if (alloc_buffers(ex, &s, WN_EXEC_BUF_FIRST_PLANNED, WN_EXEC_BUF_COUNT) != WN_OK)
        return WN_ERR;
    ex->trainable_first = ex->model->trainable_first;
    ex->trainable = (flags & WN_EXEC_INFERENCE_ONLY) ? 0 : wn_model_trainable_count(ex->model);
    if (make_buckets(ex) != WN_OK) return WN_ERR;
    if (ex->trainable && (wn_backend_fill(be, ex->grads, ex->trainable, 0.0f) != WN_OK ||
                          wn_backend_fill(be, ex->adam_m, ex->trainable, 0.0f) != WN_OK ||
                          wn_backend_fill(be, ex->adam_v, ex->trainable, 0.0f) != WN_OK))
        return WN_ERR;
    ex->adam_t = 0;
    ex->grads_valid = 0;
    return WN_OK;
}

/* The preprocessing that follows the fused augmentation, per model. */
static int upload_preprocess(wn_executor *ex) {
    if (!ex->preprocess) return WN_OK;
    /* (x - 127)/128 = (x/127.5 - 1) * (127.5/128) + 0.5/128, both constants exact in
     * float; within a few ulps of the direct formula. The backends' fused op does
     * x/127.5 - 1 (and the augmentation); this affine finishes the preprocessing. */
    const float pre[6] = {127.5f / 128, 127.5f / 128, 127.5f / 128,
                          0.5f / 128,   0.5f / 128,   0.5f / 128};
    return wn_backend_copy_to_backend(ex->be, ex->preprocess, pre, sizeof pre);
}

int wn_executor_create(wn_executor **out, wn_model *model, wn_backend *be, int batch,
                       unsigned flags) {
    *out = NULL;
    if (be->upload_slots < 1 || be->upload_slots > WN_MAX_UPLOAD_SLOTS)
        return wn_fail("executor: backend %s has %d upload slots (1..%d)", be->name,
                       be->upload_slots, WN_MAX_UPLOAD_SLOTS);
    if ((flags & WN_EXEC_BF16) && wn_backend_bf16_check(be) != WN_OK) return WN_ERR;
    wn_executor *ex = calloc(1, sizeof *ex);
    if (!ex) return wn_fail("executor: out of memory");
    ex->model = model, ex->be = be;
    if (make_plan(ex, batch, flags, 0) != WN_OK) goto fail;
    wn_exec_sizes s;
    wn_exec_sizes_make(be, model, &ex->plan, &s);
    if (alloc_buffers(ex, &s, 0, WN_EXEC_BUF_FIRST_PLANNED) != WN_OK) goto fail;
    /* Asynchronous uploads write the image buffers ordered only after this executor's
     * own readers. The allocator may have handed out blocks that queued work (another
     * executor's step, destroyed before it ran) still uses: let that finish once. */
    if (wn_backend_synchronize(be) != WN_OK) goto fail;
    ex->totals = ex->step_stats + 2;
    ex->zero_labels = calloc((size_t)batch, sizeof(int32_t));
    if (!ex->zero_labels) {
        wn_fail("out of memory");
        goto fail;
    }
    if (upload_preprocess(ex) != WN_OK || wn_backend_fill(be, ex->step_stats, 4, 0.0f) != WN_OK ||
        wn_executor_upload_weights(ex) != WN_OK)
        goto fail;
    *out = ex;
    return WN_OK;
fail:
    wn_fail_context("executor for %s, batch %d: ", model->backbone->name, batch);
    {
        int advise = ex->alloc_failed;
        wn_executor_destroy(ex);
        if (advise) oom_advice(be, model, batch, flags, 0);
    }
    return WN_ERR;
}

void wn_executor_destroy(wn_executor *ex) {
    if (!ex) return;
    free_plan_buffers(ex);
    free_buffers(ex, 0, WN_EXEC_BUF_FIRST_PLANNED);
    free(ex->zero_labels);
    free(ex);
}

int wn_executor_set_grad_buckets(wn_executor *ex, size_t bytes) {
    ex->bucket_floats = bytes / sizeof(float);
    if (bytes && !ex->bucket_floats) ex->bucket_floats = 1;
    return make_buckets(ex);
}

int wn_executor_grad_buckets(const wn_executor *ex) { return ex->n_buckets; }

int wn_executor_set_label_smoothing(wn_executor *ex, float smoothing) {
    if (!(smoothing >= 0.0f && smoothing < 1.0f))
        return wn_fail("label smoothing %g: expected 0 <= s < 1", (double)smoothing);
    ex->label_smoothing = smoothing;
    return WN_OK;
}

float wn_executor_label_smoothing(const wn_executor *ex) { return ex->label_smoothing; }

int wn_executor_set_fine_tune(wn_executor *ex, int fine_tune_at) {
    int batch = ex->plan.batch;
    unsigned flags = ex->plan.flags;
    int old = ex->model->fine_tune_at;
    wn_exec_sizes held; /* the weights and image buffers stay through a re-plan */
    wn_exec_sizes_make(ex->be, ex->model, &ex->plan, &held);
    if (wn_model_set_fine_tune(ex->model, fine_tune_at) != WN_OK) return WN_ERR;
    free_plan_buffers(ex);
    ex->alloc_failed = 0;
    if (make_plan(ex, batch, flags, held.fixed) != WN_OK) {
        /* Leave a usable executor behind: the previous boundary's plan. */
        free_plan_buffers(ex);
        if (ex->alloc_failed) oom_advice(ex->be, ex->model, batch, flags, held.fixed);
        char reason[1024];
        snprintf(reason, sizeof reason, "%s", wn_last_error());
        wn_model_set_fine_tune(ex->model, old);
        if (make_plan(ex, batch, flags, held.fixed) != WN_OK) return WN_ERR;
        return wn_fail("%s", reason);
    }
    /* BN shift terms of newly trainable layers are recomputed from beta each step;
     * the frozen ones were computed at upload and beta has not moved since. */
    return WN_OK;
}

/* ---------------------------------------------------------------- weights */

/* For a BN with gamma: scale = gamma * inv_std and negms = scale * (-mean), on the
 * backend, the same float products the upload computes on the host. */
static int bn_scale_update(wn_executor *ex, const wn_bn_entry *b) {
    const wn_layer *l = &ex->model->graph.layers[b->layer];
    const wn_weight *gamma = wn_bn_weight(l, WN_BN_GAMMA);
    if (!gamma) return WN_OK;
    float *bn = ex->bn;
    if (wn_op_mul(ex->be, (size_t)b->c, ex->params + gamma->offset, bn + b->inv_std,
                  bn + b->scale, l->name) != WN_OK)
        return WN_ERR;
    return wn_op_mul(ex->be, (size_t)b->c, bn + b->scale, bn + b->negmean, bn + b->negms,
                     l->name);
}

/* shift = beta + (-mean * scale), on the backend, for BN entry b. */
static int bn_shift_update(wn_executor *ex, const wn_bn_entry *b) {
    const wn_layer *l = &ex->model->graph.layers[b->layer];
    const wn_weight *beta = wn_bn_weight(l, WN_BN_BETA);
    return wn_op_scaled_add(ex->be, (size_t)b->c, ex->params + beta->offset, ex->bn + b->negms,
                            1.0f, ex->bn + b->shift, l->name);
}

int wn_executor_upload_weights(wn_executor *ex) {
    wn_backend *be = ex->be;
    wn_model *m = ex->model;
    const wn_graph *g = &m->graph;
    if (wn_backend_copy_to_backend(be, ex->params, m->params, g->n_params * sizeof(float)) !=
            WN_OK ||
        wn_backend_copy_to_backend(be, ex->stats, m->stats, g->n_stats * sizeof(float)) != WN_OK)
        return WN_ERR;
    /* BN inference terms: scale = gamma / sqrt(var + eps), negms = -mean * scale, as
     * TensorFlow's fused batch norm computes them (in float). */
    float *host = calloc(ex->plan.bn_floats ? ex->plan.bn_floats : 1, sizeof(float));
    if (!host) return wn_fail("uploading weights: out of memory");
    for (int i = 0; i < ex->plan.n_bn; i++) {
        const wn_bn_entry *b = &ex->plan.bn[i];
        const wn_layer *l = &g->layers[b->layer];
        const wn_weight *gw = wn_bn_weight(l, WN_BN_GAMMA);
        const float *gamma = gw ? wn_model_weight_data(m, gw) : NULL;
        const float *mean = wn_model_weight_data(m, wn_bn_weight(l, WN_BN_MEAN));
        const float *var = wn_model_weight_data(m, wn_bn_weight(l, WN_BN_VARIANCE));
        for (int c = 0; c < b->c; c++) {
            float inv_std = 1.0f / sqrtf(var[c] + l->epsilon), s = inv_std;
            if (gamma) s *= gamma[c];
            host[b->scale + c] = s;
            host[b->negms + c] = -mean[c] * s;
            host[b->inv_std + c] = inv_std; /* for gamma updates and gradients */
            host[b->negmean + c] = -mean[c];
        }
    }
    int rc = wn_backend_copy_to_backend(be, ex->bn, host, ex->plan.bn_floats * sizeof(float));
    free(host);
    if (rc != WN_OK) return WN_ERR;
    for (int i = 0; i < ex->plan.n_bn; i++)
        if (bn_shift_update(ex, &ex->plan.bn[i]) != WN_OK) return WN_ERR;
    if (ex->params16 && wn_op_cast_to_bf16(be, g->n_params, ex->params, ex->params16, 0) != WN_OK)
        return wn_fail_context("uploading weights, bf16 copy: ");
    return WN_OK;
}

int wn_executor_download_weights(wn_executor *ex) {
    const wn_graph *g = &ex->model->graph;
    wn_backend *be = ex->be;
    if (wn_backend_copy_to_host(be, ex->model->params, ex->params,
                                g->n_params * sizeof(float)) != WN_OK ||
        wn_backend_copy_to_host(be, ex->model->stats, ex->stats, g->n_stats * sizeof(float)) !=
            WN_OK)
        return WN_ERR;
    return wn_backend_synchronize(be);
}

/* ---------------------------------------------------------------- forward */

static float *val_ptr(wn_executor *ex, int v) { return ex->arena + ex->plan.values[v].offset; }
static float *grad_ptr(wn_executor *ex, int v) {
    return ex->arena + ex->plan.values[v].grad_offset;
}

static const wn_layer *in_layer(const wn_graph *g, const wn_layer *l, int i) {
    return &g->layers[l->inputs[i]];
}

static int pool_window(const wn_graph *g, const wn_layer *l, int n, wn_window *w) {
    return wn_layer_window(g, l, n, w);
}

static float *bn_scale(wn_executor *ex, const wn_step *s) {
    return s->bn >= 0 ? ex->bn + ex->plan.bn[s->bn].scale : NULL;
}
static float *bn_shift(wn_executor *ex, const wn_step *s) {
    return s->bn >= 0 ? ex->bn + ex->plan.bn[s->bn].shift : NULL;
}

static const float *weight(wn_executor *ex, const wn_layer *l, int k) {
    return k < l->n_weights ? ex->params + l->weights[k].offset : NULL;
}

/* What the bf16 steps (engine/runtime/executor_bf16.c) need. */
static wn_exec_bf16_ctx bf16_ctx(wn_executor *ex) {
    wn_exec_bf16_ctx c = {ex->be,   ex->model, &ex->plan, ex->arena,          ex->params,
                          ex->stats, ex->bn,   ex->params16, ex->grads, ex->trainable_first};
    return c;
}

static int runs_bf16(const wn_step *s) {
    return s->dtype == WN_DTYPE_BF16 || s->kind == WN_STEP_CAST;
}

/* Dropout's counter offset: a rank's images sit at places part_first.. of the whole
 * batch, so each element draws the mask one process would draw for it. */
static uint64_t dropout_offset(const wn_executor *ex, size_t count, int n) {
    return n > 0 ? (uint64_t)ex->part_first * (uint64_t)(count / (size_t)n) : 0;
}

/* dev_images: the backend buffer holding this forward's uint8 batch. */
static int step_forward(wn_executor *ex, const wn_step *s, int n, const uint8_t *dev_images,
                        int training, const wn_augment_batch *aug, uint64_t seed) {
    wn_backend *be = ex->be;
    const wn_graph *g = &ex->model->graph;
    const wn_layer *l = &g->layers[s->layer];
    const wn_value *ov = &ex->plan.values[s->out_val];
    size_t count = ov->per_image * (size_t)n;
    float *y = val_ptr(ex, s->out_val);
    const float *x = s->n_in && s->in_val[0] >= 0 ? val_ptr(ex, s->in_val[0]) : NULL;
    if (s->in_epilogue) return WN_OK; /* its convolution applied it */
    if (runs_bf16(s)) {
        wn_exec_bf16_ctx c = bf16_ctx(ex);
        return wn_exec_bf16_forward(&c, s, n);
    }
    switch (s->kind) {
    case WN_STEP_CAST: break; /* runs_bf16 */
    case WN_STEP_AUGMENT:
        if (wn_op_augment(be, n, l->out_h, l->out_w, l->out_c, dev_images, training ? aug : NULL,
                          y, wn_preprocess_augment_mode(ex->model->backbone->preprocess)) != WN_OK)
            return WN_ERR;
        if (!ex->preprocess || l->out_c != 3) return WN_OK;
        return wn_op_affine_act_forward(be, count, 3, y, ex->preprocess, ex->preprocess + 3,
                                      WN_ACT_NONE, y, l->name);
    case WN_STEP_CONV: {
        wn_conv_desc d;
        int kernel, bias;
        if (wn_step_conv(g, s, n, &d, &kernel, &bias) != WN_OK) return WN_ERR;
        const float *w = weight(ex, l, kernel), *b = bias >= 0 ? weight(ex, l, bias) : NULL;
        if (s->epilogue >= 0) {
            const wn_step *a = &ex->plan.steps[s->epilogue];
            wn_conv_epilogue e = {bn_scale(ex, a), bn_shift(ex, a), a->act};
            return wn_op_conv2d_forward_epilogue(be, &d, x, w, b, &e, val_ptr(ex, a->out_val),
                                                 l->name);
        }
        return wn_op_conv2d_forward(be, &d, x, w, b, y, l->name);
    }
    case WN_STEP_AFFINE:
        return wn_op_affine_act_forward(be, count, g->layers[s->out_layer].out_c, x,
                                      bn_scale(ex, s), bn_shift(ex, s), s->act, y,
                                      g->layers[s->out_layer].name);
    case WN_STEP_POOL: {
        wn_window w;
        if (pool_window(g, l, n, &w) != WN_OK) return WN_ERR;
        return wn_op_pool_forward(be, &w, l->type == WN_LAYER_MAXPOOL ? WN_POOL_MAX : WN_POOL_AVG,
                                x, y, l->name);
    }
    case WN_STEP_CONCAT: {
        const float *xs[WN_MAX_INPUTS];
        int ch[WN_MAX_INPUTS];
        for (int i = 0; i < s->n_in; i++)
            xs[i] = val_ptr(ex, s->in_val[i]), ch[i] = in_layer(g, l, i)->out_c;
        return wn_op_concat_forward(be, (size_t)n * l->out_h * l->out_w, s->n_in, xs, ch, y,
                                  l->name);
    }
    case WN_STEP_RESIDUAL:
        return wn_op_scaled_add(be, count, x, val_ptr(ex, s->in_val[1]), l->scale, y,
                                    l->name);
    case WN_STEP_ADD:
        if (wn_op_scaled_add(be, count, x, val_ptr(ex, s->in_val[1]), 1.0f, y, l->name) !=
            WN_OK)
            return WN_ERR;
        for (int i = 2; i < s->n_in; i++)
            if (wn_op_scaled_add(be, count, y, val_ptr(ex, s->in_val[i]), 1.0f, y,
                                     l->name) != WN_OK)
                return WN_ERR;
        return WN_OK;
    case WN_STEP_GAP: {
        const wn_layer *p = in_layer(g, l, 0);
        return wn_op_gap_forward(be, n, p->out_h * p->out_w, p->out_c, x, y, l->name);
    }
    case WN_STEP_DROPOUT:
        if (!training || l->rate == 0.0f) return wn_backend_copy(be, y, x, count * sizeof(float));
        return wn_op_dropout_forward(be, count, l->rate, seed, dropout_offset(ex, count, n), x,
                                     y, l->name);
    case WN_STEP_DENSE:
        return wn_op_dense_forward(be, n, in_layer(g, l, 0)->out_c, l->out_c, x, weight(ex, l, 0),
                                 l->use_bias ? weight(ex, l, 1) : NULL, y, l->name);
    }
    return wn_fail("executor: step of layer %s has an unknown kind", l->name);
}

/* ---------------------------------------------------------------- image upload
 *
 * The uint8 batch goes up through the backend's upload entries from the caller's
 * buffer (the loader's staging buffer, pinned on CUDA so the copy is a true
 * asynchronous DMA) into images[0..upload_slots-1] in turn, so that on the CUDA backend
 * the upload of one batch overlaps the compute still queued from the previous one: its
 * backward and Adam (train_step reads the loss right after the forward), or everything
 * when the caller reads no per-step values. The CPU backend has one slot and copies
 * synchronously; the calls are the same:
 *   - the copy into a slot waits until its last reader, the augmentation of
 *     upload_slots uploads ago, has run (upload_release marks that);
 *   - the ops queued after the upload wait for the copy;
 *   - the host waits for the copy before the forward returns (upload_wait), so the
 *     caller may refill its buffer as soon as the call returns (the loader does, at
 *     its next batch). The host never waits for compute here. */

static int images_upload(wn_executor *ex, const uint8_t *images, size_t bytes, int *slot) {
    int k = ex->image_next;
    ex->image_next = (k + 1) % ex->be->upload_slots;
    *slot = k;
    if (ex->be->ops->upload_async(ex->be, k, ex->images[k], images, bytes) != WN_OK)
        return wn_fail_context("uploading a batch of images: ");
    return WN_OK;
}

/* The augmentation, the buffer's only reader, has been queued. */
static int images_consumed(wn_executor *ex, int slot) {
    return ex->be->ops->upload_release(ex->be, slot);
}

/* The caller's buffer has been copied. */
static int images_host_wait(wn_executor *ex, int slot) {
    return ex->be->ops->upload_wait(ex->be, slot);
}

static int run_forward(wn_executor *ex, const uint8_t *images, int n, int training,
                       const wn_augment_batch *aug, uint64_t seed) {
    const wn_graph *g = &ex->model->graph;
    if (n < 1 || n > ex->plan.batch)
        return wn_fail("executor: batch of %d images; this executor was planned for 1..%d", n,
                       ex->plan.batch);
    int slot;
    if (images_upload(ex, images, (size_t)n * g->in_h * g->in_w * g->in_c, &slot) != WN_OK)
        return WN_ERR;
    int rc = WN_OK, consumed = 0;
    for (int k = 0; k < ex->plan.n_steps && rc == WN_OK; k++) {
        const wn_step *s = &ex->plan.steps[k];
        rc = step_forward(ex, s, n, ex->images[slot], training, aug, seed);
        if (rc != WN_OK) wn_fail_context("forward, layer %s: ", g->layers[s->layer].name);
        if (s->kind == WN_STEP_AUGMENT && !consumed) {
            consumed = 1;
            if (images_consumed(ex, slot) != WN_OK) rc = WN_ERR;
        }
    }
    if (rc != WN_OK) {
        /* The copy may still be in flight: let it finish before the caller's buffer
         * can go away, and mark the device buffer free again; the reason stays. */
        char reason[1024];
        snprintf(reason, sizeof reason, "%s", wn_last_error());
        if (!consumed) images_consumed(ex, slot);
        images_host_wait(ex, slot);
        return wn_fail("%s", reason);
    }
    if ((!consumed && images_consumed(ex, slot) != WN_OK) ||
        images_host_wait(ex, slot) != WN_OK)
        return WN_ERR;
    ex->last_n = n;
    return WN_OK;
}

int wn_executor_forward(wn_executor *ex, const uint8_t *images, int n, int training,
                        const uint8_t *flips, const float *angles, uint64_t dropout_seed) {
    wn_augment_batch aug = {flips, angles, NULL, NULL, NULL};
    return run_forward(ex, images, n, training, &aug, dropout_seed);
}

/* ---------------------------------------------------------------- backward */

static float *in_grad_ptr(wn_executor *ex, const wn_step *s, int i) {
    return s->in_grad[i] ? grad_ptr(ex, s->in_val[i]) : NULL;
}

/* The gradient of weight w inside the trainable suffix. */
static float *wgrad_ptr(wn_executor *ex, const wn_weight *w) {
    return ex->grads + (w->offset - ex->trainable_first);
}

static int step_backward(wn_executor *ex, const wn_step *s, int n, uint64_t seed) {
    wn_backend *be = ex->be;
    const wn_graph *g = &ex->model->graph;
    const wn_layer *l = &g->layers[s->layer];
    const wn_value *ov = &ex->plan.values[s->out_val];
    size_t count = ov->per_image * (size_t)n;
    const float *dy = grad_ptr(ex, s->out_val);
    const float *x = s->n_in && s->in_val[0] >= 0 ? val_ptr(ex, s->in_val[0]) : NULL;
    float *dx = s->n_in ? in_grad_ptr(ex, s, 0) : NULL;
    int acc = s->n_in ? s->in_accum[0] : 0;
    if (runs_bf16(s)) {
        wn_exec_bf16_ctx c = bf16_ctx(ex);
        return wn_exec_bf16_backward(&c, s, n);
    }
    switch (s->kind) {
    case WN_STEP_CAST: break; /* runs_bf16 */
    case WN_STEP_AUGMENT: return WN_OK; /* never reached: nothing below needs gradients */
    case WN_STEP_CONV: {
        wn_conv_desc d;
        int kernel, bias;
        if (wn_step_conv(g, s, n, &d, &kernel, &bias) != WN_OK) return WN_ERR;
        if (s->wgrad &&
            wn_op_conv2d_backward_filter(be, &d, x, dy, wgrad_ptr(ex, &l->weights[kernel]),
                                         bias >= 0 ? wgrad_ptr(ex, &l->weights[bias]) : NULL,
                                         l->name) != WN_OK)
            return WN_ERR;
        if (dx && wn_op_conv2d_backward_data(be, &d, dy, weight(ex, l, kernel), dx, acc,
                                             l->name) != WN_OK)
            return WN_ERR;
        return WN_OK;
    }
    case WN_STEP_AFFINE: {
        float *dshift = NULL;
        if (s->gamma_grad) {
            /* dgamma = sum g * (x - mean) * inv_std; x is the BN input, kept for it. */
            const wn_bn_entry *b = &ex->plan.bn[s->bn];
            if (wn_op_bn_gamma_backward(be, count, b->c, x, val_ptr(ex, s->out_val), dy,
                                        ex->stats + wn_bn_weight(l, WN_BN_MEAN)->offset,
                                        ex->bn + b->inv_std, s->act,
                                        wgrad_ptr(ex, wn_bn_weight(l, WN_BN_GAMMA)), l->name) !=
                WN_OK)
                return WN_ERR;
        }
        if (s->wgrad && s->bn >= 0) dshift = wgrad_ptr(ex, wn_bn_weight(l, WN_BN_BETA));
        return wn_op_affine_act_backward(be, count, g->layers[s->out_layer].out_c,
                                       val_ptr(ex, s->out_val), dy, bn_scale(ex, s), s->act, dx,
                                       acc, dshift, g->layers[s->out_layer].name);
    }
    case WN_STEP_POOL: {
        wn_window w;
        if (!dx) return WN_OK;
        if (pool_window(g, l, n, &w) != WN_OK) return WN_ERR;
        return wn_op_pool_backward(be, &w,
                                 l->type == WN_LAYER_MAXPOOL ? WN_POOL_MAX : WN_POOL_AVG, x,
                                 val_ptr(ex, s->out_val), dy, dx, acc, l->name);
    }
    case WN_STEP_CONCAT: {
        /* One call per accumulate mode: the backend takes one flag for all inputs. */
        int ch[WN_MAX_INPUTS];
        for (int i = 0; i < s->n_in; i++) ch[i] = in_layer(g, l, i)->out_c;
        for (int mode = 0; mode < 2; mode++) {
            float *dxs[WN_MAX_INPUTS];
            int any = 0;
            for (int i = 0; i < s->n_in; i++) {
                dxs[i] = s->in_grad[i] && s->in_accum[i] == mode ? grad_ptr(ex, s->in_val[i])
                                                                   : NULL;
                any |= dxs[i] != NULL;
            }
            if (any && wn_op_concat_backward(be, (size_t)n * l->out_h * l->out_w, s->n_in, dy,
                                           ch, dxs, mode, l->name) != WN_OK)
                return WN_ERR;
        }
        return WN_OK;
    }
    case WN_STEP_RESIDUAL:
    case WN_STEP_ADD: {
        float scale = s->kind == WN_STEP_RESIDUAL ? l->scale : 1.0f;
        for (int i = 0; i < s->n_in; i++) {
            if (!s->in_grad[i]) continue;
            /* Input 0 of a residual gets dy; the others scale*dy (1 for Add). */
            float *d = grad_ptr(ex, s->in_val[i]);
            int rc = i == 0 ? wn_op_scaled_add_backward(be, count, dy, scale, d, NULL,
                                                     s->in_accum[i], l->name)
                            : wn_op_scaled_add_backward(be, count, dy, scale, NULL, d,
                                                     s->in_accum[i], l->name);
            if (rc != WN_OK) return WN_ERR;
        }
        return WN_OK;
    }
    case WN_STEP_GAP: {
        const wn_layer *p = in_layer(g, l, 0);
        if (!dx) return WN_OK;
        return wn_op_gap_backward(be, n, p->out_h * p->out_w, p->out_c, dy, dx, acc, l->name);
    }
    case WN_STEP_DROPOUT:
        if (!dx) return WN_OK;
        if (l->rate == 0.0f) {
            if (acc) return wn_op_scaled_add_backward(be, count, dy, 1.0f, dx, NULL, 1, l->name);
            return wn_backend_copy(be, dx, dy, count * sizeof(float));
        }
        return wn_op_dropout_backward(be, count, l->rate, seed, dropout_offset(ex, count, n), dy,
                                      dx, acc, l->name);
    case WN_STEP_DENSE:
        if (dx && acc)
            return wn_fail("layer %s: its input has several readers; Dense cannot add to a "
                           "data gradient", l->name);
        return wn_op_dense_backward(be, n, in_layer(g, l, 0)->out_c, l->out_c, x,
                                  weight(ex, l, 0), dy, dx, s->wgrad ? wgrad_ptr(ex, &l->weights[0]) : NULL,
                                  s->wgrad && l->use_bias ? wgrad_ptr(ex, &l->weights[1]) : NULL,
                                  l->name);
    }
    return wn_fail("executor: step of layer %s has an unknown kind", l->name);
}

/* softmax cross-entropy on the logits into step_stats (zeroed first), then added
 * to the running totals (an in-place x + 1*r on two floats). */
static int run_loss(wn_executor *ex, const int32_t *labels, int n, float n_mean,
                    float *probs_dev, float *dlogits, int count_in_totals) {
    wn_backend *be = ex->be;
    const wn_model *m = ex->model;
    if (wn_backend_copy_to_backend(be, ex->labels, labels, (size_t)n * sizeof(int32_t)) != WN_OK ||
        wn_backend_fill(be, ex->step_stats, 2, 0.0f) != WN_OK ||
        wn_op_softmax_xent(be, n, m->num_classes, val_ptr(ex, ex->plan.logits_val), ex->labels,
                           ex->label_smoothing, n_mean, probs_dev, dlogits,
                           ex->step_stats) != WN_OK)
        return wn_fail_context("loss: ");
    if (!count_in_totals) return WN_OK;
    if (wn_op_scaled_add(be, 2, ex->totals, ex->step_stats, 1.0f, ex->totals, "totals") !=
        WN_OK)
        return wn_fail_context("loss totals: ");
    ex->seen += n;
    return WN_OK;
}

static int read_step_stats(wn_executor *ex, int n, float *loss, int *correct) {
    if (!loss && !correct) return WN_OK;
    float st[2];
    if (wn_backend_copy_to_host(ex->be, st, ex->step_stats, sizeof st) != WN_OK ||
        wn_backend_synchronize(ex->be) != WN_OK)
        return WN_ERR;
    if (loss) *loss = n > 0 ? st[0] / (float)n : 0.0f;
    if (correct) *correct = (int)lrintf(st[1]);
    return WN_OK;
}

int wn_executor_train_step(wn_executor *ex, const uint8_t *images, const int32_t *labels,
                           int n, const uint8_t *flips, const float *angles,
                           uint64_t dropout_seed, const wn_adam_params *adam, float *loss,
                           int *correct) {
    wn_augment_batch aug = {flips, angles, NULL, NULL, NULL};
    return wn_executor_train_step_part(ex, images, labels, n, &aug, dropout_seed, NULL, adam,
                                       loss, correct);
}

/* Forward, loss and backward of a step's n >= 1 images into ex->grads; with `reduce`,
 * each gradient bucket's sum over the ranks begins as soon as backward has written it
 * (without buckets the caller sums the whole buffer). */
static int step_gradients(wn_executor *ex, const uint8_t *images, const int32_t *labels, int n,
                          float n_mean, const wn_augment_batch *aug, uint64_t dropout_seed,
                          int reduce, float *loss, int *correct) {
    const wn_graph *g = &ex->model->graph;
    if (run_forward(ex, images, n, 1, aug, dropout_seed) != WN_OK) return WN_ERR;
    if (run_loss(ex, labels, n, n_mean, NULL, grad_ptr(ex, ex->plan.logits_val), 1) != WN_OK)
        return WN_ERR;
    /* The host's one read of the step, right after the loss: on CUDA it waits for the
     * forward only, and backward and Adam stay queued when this returns, so the next
     * batch's upload overlaps them. */
    if (read_step_stats(ex, n, loss, correct) != WN_OK) return WN_ERR;
    int next_bucket = 0;
    for (int k = ex->plan.n_steps - 1; k >= 0; k--) {
        const wn_step *s = &ex->plan.steps[k];
        if (s->backward && step_backward(ex, s, n, dropout_seed) != WN_OK)
            return wn_fail_context("backward, layer %s: ", g->layers[s->layer].name);
        for (; reduce && next_bucket < ex->n_buckets &&
               ex->buckets[next_bucket].after_step == k;
             next_bucket++) {
            const wn_grad_bucket *b = &ex->buckets[next_bucket];
            if (wn_backend_allreduce_begin(ex->be, ex->grads + b->first, b->count) != WN_OK)
                return wn_fail_context("summing gradients %zu..%zu over the ranks: ", b->first,
                                       b->first + b->count);
        }
    }
    return WN_OK;
}

int wn_executor_train_step_part(wn_executor *ex, const uint8_t *images, const int32_t *labels,
                                int n, const wn_augment_batch *aug, uint64_t dropout_seed,
                                const wn_step_part *part,
                                const wn_adam_params *adam, float *loss, int *correct) {
    if (ex->plan.flags & WN_EXEC_INFERENCE_ONLY)
        return wn_fail("executor: train step on an inference-only executor");
    if (!ex->trainable) return wn_fail("executor: nothing is trainable");
    if (part && (part->global < 1 || part->first < 0 || n < 0 || part->first + n > part->global))
        return wn_fail("executor: images %d..%d are not part of a batch of %d", part->first,
                       part->first + n, part->global);
    wn_backend *be = ex->be;
    int rc, bucketed = part && ex->n_buckets > 0;
    if (n > 0) {
        ex->part_first = part ? part->first : 0;
        rc = step_gradients(ex, images, labels, n, part ? (float)part->global : (float)n, aug,
                            dropout_seed, bucketed, loss, correct);
        ex->part_first = 0;
    } else { /* an empty slice of a short last batch: this rank adds nothing */
        if (loss) *loss = 0.0f;
        if (correct) *correct = 0;
        rc = wn_backend_fill(be, ex->grads, ex->trainable, 0.0f);
        /* the same sums as the other ranks', in the same order, or they would not pair */
        for (int b = 0; rc == WN_OK && bucketed && b < ex->n_buckets; b++)
            rc = wn_backend_allreduce_begin(be, ex->grads + ex->buckets[b].first,
                                            ex->buckets[b].count);
    }
    /* Each rank's gradient is its images' share of the whole batch's mean: their sum
     * over the ranks is that mean. Bucketed sums began during backward; Adam waits for
     * them (also after a failure, so that no sum still writes the buffer). */
    if (bucketed && wn_backend_allreduce_end(be) != WN_OK && rc == WN_OK)
        rc = wn_fail_context("summing the gradients over the ranks: ");
    if (rc != WN_OK) return WN_ERR;
    if (part && !bucketed && wn_backend_allreduce_sum(be, ex->grads, ex->trainable) != WN_OK)
        return wn_fail_context("summing the gradients over the ranks: ");
    ex->grads_valid = 1;
    ex->adam_t++;
    if (wn_op_adam_update(be, ex->trainable, ex->params + ex->trainable_first, ex->grads,
                          ex->adam_m, ex->adam_v, adam, ex->adam_t) != WN_OK)
        return wn_fail_context("Adam: ");
    /* the bf16 copy of what Adam moved: one cast per update, not one per use */
    if (ex->params16 &&
        wn_op_cast_to_bf16(be, ex->trainable, ex->params + ex->trainable_first,
                           ex->params16 + ex->trainable_first, 0) != WN_OK)
        return wn_fail_context("Adam, bf16 copy of the weights: ");
    for (int i = 0; i < ex->plan.n_bn; i++)
        if (ex->plan.bn[i].trainable && (bn_scale_update(ex, &ex->plan.bn[i]) != WN_OK ||
                                         bn_shift_update(ex, &ex->plan.bn[i]) != WN_OK))
            return WN_ERR;
    return WN_OK;
}

int wn_executor_eval_batch(wn_executor *ex, const uint8_t *images, const int32_t *labels,
                           int n, float *loss, int *correct) {
    if (run_forward(ex, images, n, 0, NULL, 0) != WN_OK ||
        run_loss(ex, labels, n, (float)n, NULL, NULL, 1) != WN_OK)
        return WN_ERR;
    return read_step_stats(ex, n, loss, correct);
}

int wn_executor_predict(wn_executor *ex, const uint8_t *images, int n, float *probs) {
    if (run_forward(ex, images, n, 0, NULL, 0) != WN_OK) return WN_ERR;
    /* softmax_xent computes the probabilities; its loss (against label 0) is not
     * counted anywhere. */
    if (run_loss(ex, ex->zero_labels, n, (float)n, ex->probs, NULL, 0) != WN_OK) return WN_ERR;
    if (wn_backend_copy_to_host(ex->be, probs, ex->probs,
                             (size_t)n * ex->model->num_classes * sizeof(float)) != WN_OK)
        return WN_ERR;
    return wn_backend_synchronize(ex->be);
}

/* ---------------------------------------------------------------- reading back */

int wn_executor_read_output(wn_executor *ex, int layer, float *dst) {
    const wn_graph *g = &ex->model->graph;
    if (layer < 0 || layer >= g->n_layers) return wn_fail("read_output: no layer %d", layer);
    int v = ex->plan.val_of[layer];
    if (v < 0)
        return wn_fail("read_output: layer %s has no stored output (fused into the next "
                       "layer or the raw image)", g->layers[layer].name);
    if (!(ex->plan.flags & WN_EXEC_KEEP_ALL) && v != ex->plan.logits_val &&
        v != ex->plan.backbone_val)
        return wn_fail("read_output: layer %s's buffer is reused; create the executor with "
                       "WN_EXEC_KEEP_ALL to read it", g->layers[layer].name);
    if (!ex->last_n) return wn_fail("read_output: nothing has run yet");
    const wn_value *x = &ex->plan.values[v];
    size_t count = x->per_image * (size_t)ex->last_n;
    if (x->dtype == WN_DTYPE_BF16) {
        /* bf16 on the backend: widened on the host (exact) */
        wn_bf16 *h = malloc(count * sizeof *h);
        if (!h) return wn_fail("read_output: out of memory");
        int rc = wn_backend_copy_to_host(ex->be, h, val_ptr(ex, v), count * sizeof *h);
        if (rc == WN_OK) rc = wn_backend_synchronize(ex->be);
        for (size_t i = 0; rc == WN_OK && i < count; i++) dst[i] = wn_bf16_to_f32(h[i]);
        free(h);
        return rc;
    }
    if (wn_backend_copy_to_host(ex->be, dst, val_ptr(ex, v), count * sizeof(float)) != WN_OK)
        return WN_ERR;
    return wn_backend_synchronize(ex->be);
}

int wn_executor_read_grads(wn_executor *ex, float *dst) {
    if (!ex->grads_valid) return wn_fail("read_grads: no training step has run");
    if (wn_backend_copy_to_host(ex->be, dst, ex->grads, ex->trainable * sizeof(float)) != WN_OK)
        return WN_ERR;
    return wn_backend_synchronize(ex->be);
}

int wn_executor_take_totals(wn_executor *ex, double *loss_sum, long *correct, long *seen) {
    float t[2];
    if (wn_backend_copy_to_host(ex->be, t, ex->totals, sizeof t) != WN_OK ||
        wn_backend_synchronize(ex->be) != WN_OK ||
        wn_backend_fill(ex->be, ex->totals, 2, 0.0f) != WN_OK)
        return WN_ERR;
    if (loss_sum) *loss_sum = t[0];
    if (correct) *correct = lrintf(t[1]);
    if (seen) *seen = ex->seen;
    ex->seen = 0;
    return WN_OK;
}

/* ---------------------------------------------------------------- Adam state */

long wn_executor_adam_step(const wn_executor *ex) { return ex->adam_t; }

int wn_executor_get_adam(wn_executor *ex, float *m, float *v, long *t) {
    size_t bytes = ex->trainable * sizeof(float);
    if (ex->trainable && (wn_backend_copy_to_host(ex->be, m, ex->adam_m, bytes) != WN_OK ||
                          wn_backend_copy_to_host(ex->be, v, ex->adam_v, bytes) != WN_OK ||
                          wn_backend_synchronize(ex->be) != WN_OK))
        return WN_ERR;
    if (t) *t = ex->adam_t;
    return WN_OK;
}

int wn_executor_set_adam(wn_executor *ex, const float *m, const float *v, long t) {
    if (t < 0) return wn_fail("set_adam: step %ld is negative", t);
    size_t bytes = ex->trainable * sizeof(float);
    if (ex->trainable && (wn_backend_copy_to_backend(ex->be, ex->adam_m, m, bytes) != WN_OK ||
                          wn_backend_copy_to_backend(ex->be, ex->adam_v, v, bytes) != WN_OK))
        return WN_ERR;
    ex->adam_t = t;
    return WN_OK;
}

/* ---------------------------------------------------------------- facts */

void wn_executor_plan_info(const wn_executor *ex, wn_plan_info *info) {
    const wn_graph *g = &ex->model->graph;
    memset(info, 0, sizeof *info);
    info->batch = ex->plan.batch;
    info->arena_bytes = ex->plan.arena_floats * sizeof(float);
    info->weight_bytes = (g->n_params + g->n_stats + ex->plan.bn_floats) * sizeof(float) +
                         (ex->params16 ? g->n_params * sizeof(wn_bf16) : 0);
    info->optimizer_bytes = 3 * ex->trainable * sizeof(float);
    wn_exec_sizes sz;
    wn_exec_sizes_make(ex->be, ex->model, &ex->plan, &sz);
    info->total_bytes = sz.requested;
    info->needed_bytes = sz.needed;
    info->steps = ex->plan.n_steps;
    info->backward_steps = ex->plan.backward_steps;
    info->lowest_backward_layer = ex->plan.lowest_backward_layer;
    /* A weight gradient and a data gradient each cost about one forward pass of the
     * layer's multiply-adds. */
    for (int k = 0; k < ex->plan.n_steps; k++) {
        const wn_step *s = &ex->plan.steps[k];
        /* a SeparableConv2D's two steps: its layer's count once */
        double f = s->part == WN_CONV_DEPTHWISE || s->kind == WN_STEP_CAST
                       ? 0.0
                       : wn_layer_flops(g, s->layer);
        info->forward_flops += f;
        if (!s->backward) continue;
        if (s->wgrad) info->train_flops += f;
        if (s->n_in && s->in_grad[0]) info->train_flops += f;
    }
    info->train_flops += info->forward_flops;
}

int wn_executor_has_data_grad(const wn_executor *ex, int layer) {
    if (layer < 0 || layer >= ex->model->graph.n_layers) return 0;
    int v = ex->plan.val_of[layer];
    /* A nested input aliases its producer's value; only count the owner. */
    return v >= 0 && ex->plan.values[v].layer == layer && ex->plan.values[v].requires_grad;
}
