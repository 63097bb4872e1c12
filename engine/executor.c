/* engine/executor.c — runs the plan of engine/plan.c on a backend: allocation,
 * weight upload, forward (training or inference), loss, backward to the boundary,
 * and Adam over the trainable suffix of params (engine/executor.h).
 *
 * On the CUDA backend two things differ, both invisible to the CPU backend: a plan is
 * checked against the GPU's free memory before anything is allocated (a refusal names
 * the largest batch that fits), and image batches go up on the copy stream into two
 * alternating device buffers (see "image upload" below). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/backend_cuda.h"
#include "engine/error.h"
#include "engine/exec_internal.h"

struct wn_executor {
    wn_model *model;
    wn_backend *be;
    wn_plan plan;

    float *params;      /* backend [n_params] */
    float *stats;       /* backend [n_stats] */
    float *bn;          /* backend [plan.bn_floats]: per BN scale, negms, shift; ones */
    float *arena;       /* backend [plan.arena_floats] */
    uint8_t *images[2]; /* backend [batch, H, W, 3] each; images[1] only on CUDA */
    int image_buffers;  /* 1 (CPU) or 2 (CUDA: double-buffered uploads) */
    int image_next;     /* CUDA: the buffer (and upload event slot) of the next batch */
    int cuda;           /* 1 on the CUDA backend */
    int alloc_failed;   /* an allocation failed (for the out-of-memory advice) */
    int32_t *labels;    /* backend [batch] */
    int32_t *zero_labels; /* host [batch]: predict's placeholder labels */
    float *probs;       /* backend [batch, num_classes]: predict's softmax */
    float *preprocess;  /* backend [6]: scale[3], shift[3] that turn x/127.5 - 1 into
                           EfficientNet-Lite's (x - 127)/128; NULL for Keras's 'tf' */
    float *step_stats;  /* backend [2]: this step's loss sum, correct count */
    float *totals;      /* backend [2]: running sums since the last take */
    float *grads;       /* backend [trainable]: aligned with params[trainable_first..] */
    float *adam_m, *adam_v; /* backend [trainable] */
    size_t trainable;   /* floats in the trainable suffix */
    size_t trainable_first;
    long adam_t;        /* steps taken (Keras's optimizer.iterations) */
    long seen;          /* images in the running totals */
    int last_n;         /* images in the last forward */
    int grads_valid;
};

/* ---------------------------------------------------------------- memory */

static void *be_alloc(wn_executor *ex, size_t bytes, const char *what) {
    void *p = ex->be->alloc(ex->be, bytes ? bytes : 16);
    if (!p) {
        ex->alloc_failed = 1;
        wn_fail_context("allocating %s (%.1f MiB) on %s: ", what, bytes / 1048576.0,
                        ex->be->name);
    }
    return p;
}

static void be_release(wn_executor *ex, void **p) {
    if (*p) ex->be->free(ex->be, *p);
    *p = NULL;
}

static void free_plan_buffers(wn_executor *ex) {
    be_release(ex, (void **)&ex->arena);
    be_release(ex, (void **)&ex->grads);
    be_release(ex, (void **)&ex->adam_m);
    be_release(ex, (void **)&ex->adam_v);
    wn_plan_free(&ex->plan);
}

/* Device memory free for this executor's plan: what the GPU has free, the free space
 * of the backend's arena, and what the executor itself holds already (its weights and
 * image buffers, when a new boundary is planned). */
static int cuda_available(wn_executor *ex, size_t *avail) {
    wn_cuda_memory mem;
    if (wn_cuda_memory_info(ex->be, &mem) != WN_OK) return WN_ERR;
    *avail = mem.device_free + (mem.reserved > mem.in_use ? mem.reserved - mem.in_use : 0);
    if (ex->params) {
        wn_exec_sizes s;
        wn_exec_sizes_make(ex->model, &ex->plan, ex->image_buffers, &s);
        *avail += s.fixed_device;
    }
    return WN_OK;
}

/* After an allocation failed on CUDA although the plan was checked (fragmentation,
 * another process): the current reason, plus the largest batch that fits in what is
 * free once the failed plan's buffers are gone (call after freeing them) and `held`
 * bytes that the executor still holds and would give back. */
static int cuda_oom_advice(wn_backend *be, wn_model *m, int batch, unsigned flags,
                           int image_buffers, size_t held) {
    char reason[1024];
    snprintf(reason, sizeof reason, "%s", wn_last_error());
    wn_cuda_memory mem;
    int largest = 0;
    if (wn_cuda_memory_info(be, &mem) != WN_OK ||
        wn_exec_largest_batch(m, flags, image_buffers,
                              held + mem.device_free +
                                  (mem.reserved > mem.in_use ? mem.reserved - mem.in_use : 0),
                              batch - 1, &largest) != WN_OK)
        return wn_fail("%s", reason);
    if (largest > 0)
        return wn_fail("%s; with the GPU memory free now, the largest batch that fits is %d: "
                       "use --batch %d", reason, largest, largest);
    return wn_fail("%s; with the GPU memory free now not even batch 1 fits", reason);
}

/* Plans for the model's current boundary and allocates the plan's buffers. */
static int make_plan(wn_executor *ex, int batch, unsigned flags) {
    wn_backend *be = ex->be;
    if (wn_plan_make(&ex->plan, ex->model, batch, flags) != WN_OK) return WN_ERR;
    for (int k = 0; k < ex->plan.n_steps; k++)
        if (ex->plan.steps[k].gamma_grad && !ex->be->bn_gamma_backward)
            return wn_fail("layer %s: the %s backend cannot train a BatchNormalization gamma; "
                           "freeze it with a higher --fine-tune-at",
                           ex->model->graph.layers[ex->plan.steps[k].layer].name, ex->be->name);
    if (ex->cuda) {
        /* Refuse before allocating: a plan that cannot fit is a message, not a crash
         * halfway through the first step. */
        size_t avail;
        if (cuda_available(ex, &avail) != WN_OK ||
            wn_exec_fit_check(ex->model, &ex->plan, ex->image_buffers, avail) != WN_OK)
            return WN_ERR;
    }
    if (!ex->cuda) {
        /* On the CPU a too-large allocation may succeed (overcommit) and the process
         * be killed when the pages are touched: a plan whose activations alone exceed
         * the RAM is refused, with the batch that could fit. */
        long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
        double ram = pages > 0 && page > 0 ? (double)pages * (double)page : 0;
        double need = (double)ex->plan.arena_floats * sizeof(float);
        if (ram > 0 && need > ram) {
            long fit = (long)((double)batch * ram / need);
            return wn_fail("batch %d at %dx%d needs %.0f MiB of activations for %s, more than "
                           "this machine's %.0f MiB of RAM: use --batch %ld or less (an estimate)%s",
                           batch, ex->model->image_h, ex->model->image_w, need / 1048576.0,
                           ex->model->backbone->name, ram / 1048576.0, fit > 0 ? fit : 1,
                           fit > 0 ? "" : " and a smaller --image-size");
        }
    }
    ex->arena = be_alloc(ex, ex->plan.arena_floats * sizeof(float), "activations");
    if (!ex->arena) return WN_ERR;
    ex->trainable_first = ex->model->trainable_first;
    ex->trainable = (flags & WN_EXEC_INFERENCE_ONLY) ? 0 : wn_model_trainable_count(ex->model);
    if (ex->trainable) {
        size_t bytes = ex->trainable * sizeof(float);
        ex->grads = be_alloc(ex, bytes, "gradients");
        ex->adam_m = ex->grads ? be_alloc(ex, bytes, "Adam m") : NULL;
        ex->adam_v = ex->adam_m ? be_alloc(ex, bytes, "Adam v") : NULL;
        if (!ex->adam_v) return WN_ERR;
        if (be->fill(be, ex->grads, ex->trainable, 0.0f) != WN_OK ||
            be->fill(be, ex->adam_m, ex->trainable, 0.0f) != WN_OK ||
            be->fill(be, ex->adam_v, ex->trainable, 0.0f) != WN_OK)
            return WN_ERR;
    }
    ex->adam_t = 0;
    ex->grads_valid = 0;
    return WN_OK;
}

int wn_executor_create(wn_executor **out, wn_model *model, wn_backend *be, int batch,
                       unsigned flags) {
    *out = NULL;
    wn_executor *ex = calloc(1, sizeof *ex);
    if (!ex) return wn_fail("executor: out of memory");
    ex->model = model, ex->be = be;
    ex->cuda = wn_backend_is_cuda(be);
    ex->image_buffers = ex->cuda ? 2 : 1;
    const wn_graph *g = &model->graph;
    if (make_plan(ex, batch, flags) != WN_OK) goto fail;
    size_t image_bytes = (size_t)batch * g->in_h * g->in_w * g->in_c;
    ex->params = be_alloc(ex, g->n_params * sizeof(float), "parameters");
    ex->stats = ex->params ? be_alloc(ex, g->n_stats * sizeof(float), "BN statistics") : NULL;
    ex->bn = ex->stats ? be_alloc(ex, ex->plan.bn_floats * sizeof(float), "BN terms") : NULL;
    ex->images[0] = ex->bn ? be_alloc(ex, image_bytes, "images") : NULL;
    if (ex->images[0] && ex->image_buffers == 2)
        ex->images[1] = be_alloc(ex, image_bytes, "images (second upload buffer)");
    uint8_t *last_images = ex->images[ex->image_buffers - 1];
    /* CUDA: the copy stream will write the image buffers, ordered by events only after
     * this executor's own augmentations. The arena may have handed out blocks that
     * queued compute (another executor's step, destroyed before it ran) still uses:
     * let that finish once, here. */
    if (last_images && ex->cuda && be->synchronize(be) != WN_OK) goto fail;
    ex->labels = last_images ? be_alloc(ex, (size_t)batch * sizeof(int32_t), "labels") : NULL;
    ex->probs = ex->labels ? be_alloc(ex, (size_t)batch * model->num_classes * sizeof(float),
                                      "probabilities")
                           : NULL;
    ex->step_stats = ex->probs ? be_alloc(ex, 4 * sizeof(float), "loss totals") : NULL;
    ex->zero_labels = calloc((size_t)batch, sizeof(int32_t));
    if (!ex->step_stats || !ex->zero_labels) {
        if (!ex->zero_labels) wn_fail("out of memory");
        goto fail;
    }
    ex->totals = ex->step_stats + 2;
    if (model->backbone->preprocess == WN_PREPROCESS_LITE) {
        /* (x - 127)/128 = (x/127.5 - 1) * (127.5/128) + 0.5/128, both constants exact in
         * float; within a few ulps of the direct formula. The backends' fused op does
         * x/127.5 - 1 (and the augmentation); this affine finishes the preprocessing. */
        const float pre[6] = {127.5f / 128, 127.5f / 128, 127.5f / 128,
                              0.5f / 128,   0.5f / 128,   0.5f / 128};
        ex->preprocess = be_alloc(ex, sizeof pre, "preprocess terms");
        if (!ex->preprocess || be->copy_to_backend(be, ex->preprocess, pre, sizeof pre) != WN_OK)
            goto fail;
    }
    if (be->fill(be, ex->step_stats, 4, 0.0f) != WN_OK) goto fail;
    if (wn_executor_upload_weights(ex) != WN_OK) goto fail;
    *out = ex;
    return WN_OK;
fail:
    wn_fail_context("executor for %s, batch %d: ", model->backbone->name, batch);
    {
        int advise = ex->cuda && ex->alloc_failed, buffers = ex->image_buffers;
        wn_executor_destroy(ex);
        if (advise) cuda_oom_advice(be, model, batch, flags, buffers, 0);
    }
    return WN_ERR;
}

void wn_executor_destroy(wn_executor *ex) {
    if (!ex) return;
    free_plan_buffers(ex);
    be_release(ex, (void **)&ex->params);
    be_release(ex, (void **)&ex->stats);
    be_release(ex, (void **)&ex->bn);
    be_release(ex, (void **)&ex->images[0]);
    be_release(ex, (void **)&ex->images[1]);
    be_release(ex, (void **)&ex->labels);
    be_release(ex, (void **)&ex->probs);
    be_release(ex, (void **)&ex->preprocess);
    be_release(ex, (void **)&ex->step_stats);
    free(ex->zero_labels);
    free(ex);
}

int wn_executor_set_fine_tune(wn_executor *ex, int fine_tune_at) {
    int batch = ex->plan.batch;
    unsigned flags = ex->plan.flags;
    int old = ex->model->fine_tune_at;
    wn_exec_sizes held; /* the weights and image buffers stay through a re-plan */
    wn_exec_sizes_make(ex->model, &ex->plan, ex->image_buffers, &held);
    if (wn_model_set_fine_tune(ex->model, fine_tune_at) != WN_OK) return WN_ERR;
    free_plan_buffers(ex);
    ex->alloc_failed = 0;
    if (make_plan(ex, batch, flags) != WN_OK) {
        /* Leave a usable executor behind: the previous boundary's plan. */
        free_plan_buffers(ex);
        if (ex->cuda && ex->alloc_failed)
            cuda_oom_advice(ex->be, ex->model, batch, flags, ex->image_buffers,
                            held.fixed_device);
        char reason[1024];
        snprintf(reason, sizeof reason, "%s", wn_last_error());
        wn_model_set_fine_tune(ex->model, old);
        if (make_plan(ex, batch, flags) != WN_OK) return WN_ERR;
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
    if (!l->has_gamma) return WN_OK;
    size_t ca = (b->c + 63) / 64 * 64;
    float *scale = ex->bn + b->off, *negms = scale + ca, *inv_std = scale + 3 * ca;
    if (ex->be->affine_act_forward(ex->be, (size_t)b->c, b->c, ex->params + l->weights[0].offset,
                                   inv_std, NULL, WN_ACT_NONE, scale, l->name) != WN_OK)
        return WN_ERR;
    return ex->be->affine_act_forward(ex->be, (size_t)b->c, b->c, scale, inv_std + ca, NULL,
                                      WN_ACT_NONE, negms, l->name);
}

/* shift = beta * 1 + (-mean * scale), on the backend, for BN entry b. */
static int bn_shift_update(wn_executor *ex, const wn_bn_entry *b) {
    const wn_layer *l = &ex->model->graph.layers[b->layer];
    const wn_weight *beta = &l->weights[l->has_gamma ? 1 : 0];
    size_t c = (size_t)b->c, ca = (b->c + 63) / 64 * 64;
    float *ones = ex->bn + ex->plan.bn_floats - (size_t)((ex->plan.max_bn_c + 63) / 64 * 64);
    return ex->be->affine_act_forward(ex->be, c, b->c, ex->params + beta->offset, ones,
                                      ex->bn + b->off + ca, WN_ACT_NONE,
                                      ex->bn + b->off + 2 * ca, l->name);
}

int wn_executor_upload_weights(wn_executor *ex) {
    wn_backend *be = ex->be;
    wn_model *m = ex->model;
    const wn_graph *g = &m->graph;
    if (be->copy_to_backend(be, ex->params, m->params, g->n_params * sizeof(float)) != WN_OK ||
        be->copy_to_backend(be, ex->stats, m->stats, g->n_stats * sizeof(float)) != WN_OK)
        return WN_ERR;
    /* BN inference terms: scale = gamma / sqrt(var + eps), negms = -mean * scale, as
     * TensorFlow's fused batch norm computes them (in float). */
    float *host = calloc(ex->plan.bn_floats ? ex->plan.bn_floats : 1, sizeof(float));
    if (!host) return wn_fail("uploading weights: out of memory");
    for (int i = 0; i < ex->plan.n_bn; i++) {
        const wn_bn_entry *b = &ex->plan.bn[i];
        const wn_layer *l = &g->layers[b->layer];
        int k = 0;
        const float *gamma = l->has_gamma ? wn_model_weight_data(m, &l->weights[k++]) : NULL;
        k++; /* beta */
        const float *mean = wn_model_weight_data(m, &l->weights[k++]);
        const float *var = wn_model_weight_data(m, &l->weights[k]);
        size_t ca = (b->c + 63) / 64 * 64;
        for (int c = 0; c < b->c; c++) {
            float inv_std = 1.0f / sqrtf(var[c] + l->epsilon), s = inv_std;
            if (gamma) s *= gamma[c];
            host[b->off + c] = s;
            host[b->off + ca + c] = -mean[c] * s;
            host[b->off + 3 * ca + c] = inv_std; /* for gamma updates and gradients */
            host[b->off + 4 * ca + c] = -mean[c];
        }
    }
    size_t ones_at = ex->plan.bn_floats - (size_t)((ex->plan.max_bn_c + 63) / 64 * 64);
    for (int c = 0; c < ex->plan.max_bn_c; c++) host[ones_at + c] = 1.0f;
    int rc = be->copy_to_backend(be, ex->bn, host, ex->plan.bn_floats * sizeof(float));
    free(host);
    if (rc != WN_OK) return WN_ERR;
    for (int i = 0; i < ex->plan.n_bn; i++)
        if (bn_shift_update(ex, &ex->plan.bn[i]) != WN_OK) return WN_ERR;
    return WN_OK;
}

int wn_executor_download_weights(wn_executor *ex) {
    const wn_graph *g = &ex->model->graph;
    wn_backend *be = ex->be;
    if (be->copy_to_host(be, ex->model->params, ex->params, g->n_params * sizeof(float)) !=
            WN_OK ||
        be->copy_to_host(be, ex->model->stats, ex->stats, g->n_stats * sizeof(float)) != WN_OK)
        return WN_ERR;
    return be->synchronize(be);
}

/* ---------------------------------------------------------------- forward */

static float *val_ptr(wn_executor *ex, int v) { return ex->arena + ex->plan.values[v].offset; }
static float *grad_ptr(wn_executor *ex, int v) {
    return ex->arena + ex->plan.values[v].grad_offset;
}

static const wn_layer *in_layer(const wn_graph *g, const wn_layer *l, int i) {
    return &g->layers[l->inputs[i]];
}

static int conv_desc(const wn_graph *g, const wn_layer *l, int n, wn_conv_desc *d) {
    const wn_layer *p = in_layer(g, l, 0);
    if (wn_window_init(&d->win, n, p->out_h, p->out_w, p->out_c, l->kh, l->kw, l->sh, l->sw,
                       l->padding, l->name) != WN_OK)
        return WN_ERR;
    d->k = l->out_c;
    d->groups = l->type == WN_LAYER_DEPTHWISE_CONV2D ? p->out_c : 1;
    return WN_OK;
}

static int pool_window(const wn_graph *g, const wn_layer *l, int n, wn_window *w) {
    const wn_layer *p = in_layer(g, l, 0);
    return wn_window_init(w, n, p->out_h, p->out_w, p->out_c, l->kh, l->kw, l->sh, l->sw,
                          l->padding, l->name);
}

static float *bn_scale(wn_executor *ex, const wn_step *s) {
    return s->bn >= 0 ? ex->bn + ex->plan.bn[s->bn].off : NULL;
}
static float *bn_shift(wn_executor *ex, const wn_step *s) {
    if (s->bn < 0) return NULL;
    size_t ca = (size_t)(ex->plan.bn[s->bn].c + 63) / 64 * 64;
    return ex->bn + ex->plan.bn[s->bn].off + 2 * ca;
}

static const float *weight(wn_executor *ex, const wn_layer *l, int k) {
    return k < l->n_weights ? ex->params + l->weights[k].offset : NULL;
}

/* dev_images: the backend buffer holding this forward's uint8 batch. */
static int step_forward(wn_executor *ex, const wn_step *s, int n, const uint8_t *dev_images,
                        int training, const uint8_t *flips, const float *angles,
                        uint64_t seed) {
    wn_backend *be = ex->be;
    const wn_graph *g = &ex->model->graph;
    const wn_layer *l = &g->layers[s->layer];
    const wn_value *ov = &ex->plan.values[s->out_val];
    size_t count = ov->per_image * (size_t)n;
    float *y = val_ptr(ex, s->out_val);
    const float *x = s->n_in && s->in_val[0] >= 0 ? val_ptr(ex, s->in_val[0]) : NULL;
    switch (s->kind) {
    case WN_STEP_AUGMENT:
        if (be->augment_preprocess(be, n, l->out_h, l->out_w, l->out_c, dev_images,
                                   training ? flips : NULL, training ? angles : NULL,
                                   y) != WN_OK)
            return WN_ERR;
        if (!ex->preprocess || l->out_c != 3) return WN_OK;
        return be->affine_act_forward(be, count, 3, y, ex->preprocess, ex->preprocess + 3,
                                      WN_ACT_NONE, y, l->name);
    case WN_STEP_CONV: {
        wn_conv_desc d;
        if (conv_desc(g, l, n, &d) != WN_OK) return WN_ERR;
        return be->conv2d_forward(be, &d, x, weight(ex, l, 0), l->use_bias ? weight(ex, l, 1)
                                                                          : NULL,
                                  y, l->name);
    }
    case WN_STEP_AFFINE:
        return be->affine_act_forward(be, count, g->layers[s->out_layer].out_c, x,
                                      bn_scale(ex, s), bn_shift(ex, s), s->act, y,
                                      g->layers[s->out_layer].name);
    case WN_STEP_POOL: {
        wn_window w;
        if (pool_window(g, l, n, &w) != WN_OK) return WN_ERR;
        return be->pool_forward(be, &w, l->type == WN_LAYER_MAXPOOL ? WN_POOL_MAX : WN_POOL_AVG,
                                x, y, l->name);
    }
    case WN_STEP_CONCAT: {
        const float *xs[WN_MAX_INPUTS];
        int ch[WN_MAX_INPUTS];
        for (int i = 0; i < s->n_in; i++)
            xs[i] = val_ptr(ex, s->in_val[i]), ch[i] = in_layer(g, l, i)->out_c;
        return be->concat_forward(be, (size_t)n * l->out_h * l->out_w, s->n_in, xs, ch, y,
                                  l->name);
    }
    case WN_STEP_RESIDUAL:
        return be->residual_forward(be, count, x, val_ptr(ex, s->in_val[1]), l->scale, y,
                                    l->name);
    case WN_STEP_ADD:
        if (be->residual_forward(be, count, x, val_ptr(ex, s->in_val[1]), 1.0f, y, l->name) !=
            WN_OK)
            return WN_ERR;
        for (int i = 2; i < s->n_in; i++)
            if (be->residual_forward(be, count, y, val_ptr(ex, s->in_val[i]), 1.0f, y,
                                     l->name) != WN_OK)
                return WN_ERR;
        return WN_OK;
    case WN_STEP_GAP: {
        const wn_layer *p = in_layer(g, l, 0);
        return be->gap_forward(be, n, p->out_h * p->out_w, p->out_c, x, y, l->name);
    }
    case WN_STEP_DROPOUT:
        if (!training || l->rate == 0.0f) return be->copy(be, y, x, count * sizeof(float));
        return be->dropout_forward(be, count, l->rate, seed, 0, x, y, l->name);
    case WN_STEP_DENSE:
        return be->dense_forward(be, n, in_layer(g, l, 0)->out_c, l->out_c, x, weight(ex, l, 0),
                                 l->use_bias ? weight(ex, l, 1) : NULL, y, l->name);
    }
    return wn_fail("executor: step of layer %s has an unknown kind", l->name);
}

/* ---------------------------------------------------------------- image upload
 *
 * CPU backend: a copy into images[0], done when the call returns.
 *
 * CUDA backend (host staging): the uint8 batch goes up on the copy stream from the
 * caller's buffer (the loader's pinned staging buffer, so the copy is a true
 * asynchronous DMA; pageable memory works too, only slower) into images[0] and
 * images[1] in turn, so that the upload of one batch overlaps the compute still
 * queued from the previous one: its backward and Adam (train_step reads the loss
 * right after the forward), or everything when the caller reads no per-step values.
 * Events order it (engine/backend_cuda.h):
 *   - the copy into a buffer waits until the compute stream has run the last reader
 *     of that buffer, the augmentation of two uploads ago (upload_consumed);
 *   - the compute stream waits for the copy before this forward (upload_ready);
 *   - the host waits for the copy before the forward returns, so the caller may
 *     refill its buffer as soon as the call returns (the loader does, at its next
 *     batch). The host never waits for compute here. */

static int images_upload(wn_executor *ex, const uint8_t *images, size_t bytes, int *slot) {
    wn_backend *be = ex->be;
    if (!ex->cuda) {
        *slot = 0;
        return be->copy_to_backend(be, ex->images[0], images, bytes);
    }
    int k = ex->image_next;
    ex->image_next = 1 - k;
    *slot = k;
    if (wn_cuda_upload(be, k, ex->images[k], images, bytes) != WN_OK ||
        wn_cuda_upload_acquire(be, k) != WN_OK)
        return wn_fail_context("uploading a batch of images: ");
    return WN_OK;
}

/* The augmentation, the buffer's only reader, has been queued. */
static int images_consumed(wn_executor *ex, int slot) {
    return ex->cuda ? wn_cuda_upload_release(ex->be, slot) : WN_OK;
}

/* The caller's buffer has been copied (CUDA: the copy stream's copy finished). */
static int images_host_wait(wn_executor *ex, int slot) {
    return ex->cuda ? wn_cuda_upload_host_wait(ex->be, slot) : WN_OK;
}

static int run_forward(wn_executor *ex, const uint8_t *images, int n, int training,
                       const uint8_t *flips, const float *angles, uint64_t seed) {
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
        rc = step_forward(ex, s, n, ex->images[slot], training, flips, angles, seed);
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
    return run_forward(ex, images, n, training, flips, angles, dropout_seed);
}

/* ---------------------------------------------------------------- backward */

static float *in_grad_ptr(wn_executor *ex, const wn_step *s, int i) {
    return s->in_grad[i] ? grad_ptr(ex, s->in_val[i]) : NULL;
}

static float *wgrad_ptr(wn_executor *ex, const wn_layer *l, int k) {
    return ex->grads + (l->weights[k].offset - ex->trainable_first);
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
    switch (s->kind) {
    case WN_STEP_AUGMENT: return WN_OK; /* never reached: nothing below needs gradients */
    case WN_STEP_CONV: {
        wn_conv_desc d;
        if (conv_desc(g, l, n, &d) != WN_OK) return WN_ERR;
        if (s->wgrad &&
            be->conv2d_backward_filter(be, &d, x, dy, wgrad_ptr(ex, l, 0),
                                       l->use_bias ? wgrad_ptr(ex, l, 1) : NULL,
                                       l->name) != WN_OK)
            return WN_ERR;
        if (dx && be->conv2d_backward_data(be, &d, dy, weight(ex, l, 0), dx, acc, l->name) !=
                      WN_OK)
            return WN_ERR;
        return WN_OK;
    }
    case WN_STEP_AFFINE: {
        float *dshift = NULL;
        if (s->gamma_grad) {
            /* dgamma = sum g * (x - mean) * inv_std; x is the BN input, kept for it. */
            const wn_bn_entry *b = &ex->plan.bn[s->bn];
            size_t ca = (b->c + 63) / 64 * 64;
            if (be->bn_gamma_backward(be, count, b->c, x, val_ptr(ex, s->out_val), dy,
                                      ex->stats + l->weights[2].offset, ex->bn + b->off + 3 * ca,
                                      s->act, wgrad_ptr(ex, l, 0), l->name) != WN_OK)
                return WN_ERR;
        }
        if (s->wgrad && s->bn >= 0) dshift = wgrad_ptr(ex, l, l->has_gamma ? 1 : 0);
        return be->affine_act_backward(be, count, g->layers[s->out_layer].out_c,
                                       val_ptr(ex, s->out_val), dy, bn_scale(ex, s), s->act, dx,
                                       acc, dshift, g->layers[s->out_layer].name);
    }
    case WN_STEP_POOL: {
        wn_window w;
        if (!dx) return WN_OK;
        if (pool_window(g, l, n, &w) != WN_OK) return WN_ERR;
        return be->pool_backward(be, &w,
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
            if (any && be->concat_backward(be, (size_t)n * l->out_h * l->out_w, s->n_in, dy,
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
            int rc = i == 0 ? be->residual_backward(be, count, dy, scale, d, NULL,
                                                     s->in_accum[i], l->name)
                            : be->residual_backward(be, count, dy, scale, NULL, d,
                                                     s->in_accum[i], l->name);
            if (rc != WN_OK) return WN_ERR;
        }
        return WN_OK;
    }
    case WN_STEP_GAP: {
        const wn_layer *p = in_layer(g, l, 0);
        if (!dx) return WN_OK;
        return be->gap_backward(be, n, p->out_h * p->out_w, p->out_c, dy, dx, acc, l->name);
    }
    case WN_STEP_DROPOUT:
        if (!dx) return WN_OK;
        if (l->rate == 0.0f) {
            if (acc) return be->residual_backward(be, count, dy, 1.0f, dx, NULL, 1, l->name);
            return be->copy(be, dx, dy, count * sizeof(float));
        }
        return be->dropout_backward(be, count, l->rate, seed, 0, dy, dx, acc, l->name);
    case WN_STEP_DENSE:
        if (dx && acc)
            return wn_fail("layer %s: its input has several readers; Dense cannot add to a "
                           "data gradient", l->name);
        return be->dense_backward(be, n, in_layer(g, l, 0)->out_c, l->out_c, x,
                                  weight(ex, l, 0), dy, dx, s->wgrad ? wgrad_ptr(ex, l, 0) : NULL,
                                  s->wgrad && l->use_bias ? wgrad_ptr(ex, l, 1) : NULL,
                                  l->name);
    }
    return wn_fail("executor: step of layer %s has an unknown kind", l->name);
}

/* softmax cross-entropy on the logits into step_stats (zeroed first), then added
 * to the running totals (an in-place x + 1*r on two floats). */
static int run_loss(wn_executor *ex, const int32_t *labels, int n, float *probs_dev,
                    float *dlogits, int count_in_totals) {
    wn_backend *be = ex->be;
    const wn_model *m = ex->model;
    if (be->copy_to_backend(be, ex->labels, labels, (size_t)n * sizeof(int32_t)) != WN_OK ||
        be->fill(be, ex->step_stats, 2, 0.0f) != WN_OK ||
        be->softmax_xent(be, n, m->num_classes, val_ptr(ex, ex->plan.logits_val), ex->labels,
                         (float)n, probs_dev, dlogits, ex->step_stats) != WN_OK)
        return wn_fail_context("loss: ");
    if (!count_in_totals) return WN_OK;
    if (be->residual_forward(be, 2, ex->totals, ex->step_stats, 1.0f, ex->totals, "totals") !=
        WN_OK)
        return wn_fail_context("loss totals: ");
    ex->seen += n;
    return WN_OK;
}

static int read_step_stats(wn_executor *ex, int n, float *loss, int *correct) {
    if (!loss && !correct) return WN_OK;
    float st[2];
    if (ex->be->copy_to_host(ex->be, st, ex->step_stats, sizeof st) != WN_OK ||
        ex->be->synchronize(ex->be) != WN_OK)
        return WN_ERR;
    if (loss) *loss = st[0] / (float)n;
    if (correct) *correct = (int)lrintf(st[1]);
    return WN_OK;
}

int wn_executor_train_step(wn_executor *ex, const uint8_t *images, const int32_t *labels,
                           int n, const uint8_t *flips, const float *angles,
                           uint64_t dropout_seed, float lr, float *loss, int *correct) {
    if (ex->plan.flags & WN_EXEC_INFERENCE_ONLY)
        return wn_fail("executor: train step on an inference-only executor");
    if (!ex->trainable) return wn_fail("executor: nothing is trainable");
    wn_backend *be = ex->be;
    const wn_graph *g = &ex->model->graph;
    if (run_forward(ex, images, n, 1, flips, angles, dropout_seed) != WN_OK) return WN_ERR;
    if (run_loss(ex, labels, n, NULL, grad_ptr(ex, ex->plan.logits_val), 1) != WN_OK)
        return WN_ERR;
    /* The host's one read of the step, right after the loss: on CUDA it waits for the
     * forward only, and backward and Adam stay queued when this returns, so the next
     * batch's upload overlaps them. */
    if (read_step_stats(ex, n, loss, correct) != WN_OK) return WN_ERR;
    for (int k = ex->plan.n_steps - 1; k >= 0; k--) {
        const wn_step *s = &ex->plan.steps[k];
        if (!s->backward) continue;
        if (step_backward(ex, s, n, dropout_seed) != WN_OK)
            return wn_fail_context("backward, layer %s: ", g->layers[s->layer].name);
    }
    ex->grads_valid = 1;
    ex->adam_t++;
    if (be->adam_update(be, ex->trainable, ex->params + ex->trainable_first, ex->grads,
                        ex->adam_m, ex->adam_v, lr, 0.9f, 0.999f, 1e-7f, ex->adam_t) != WN_OK)
        return wn_fail_context("Adam: ");
    for (int i = 0; i < ex->plan.n_bn; i++)
        if (ex->plan.bn[i].trainable && (bn_scale_update(ex, &ex->plan.bn[i]) != WN_OK ||
                                         bn_shift_update(ex, &ex->plan.bn[i]) != WN_OK))
            return WN_ERR;
    return WN_OK;
}

int wn_executor_eval_batch(wn_executor *ex, const uint8_t *images, const int32_t *labels,
                           int n, float *loss, int *correct) {
    if (run_forward(ex, images, n, 0, NULL, NULL, 0) != WN_OK ||
        run_loss(ex, labels, n, NULL, NULL, 1) != WN_OK)
        return WN_ERR;
    return read_step_stats(ex, n, loss, correct);
}

int wn_executor_predict(wn_executor *ex, const uint8_t *images, int n, float *probs) {
    if (run_forward(ex, images, n, 0, NULL, NULL, 0) != WN_OK) return WN_ERR;
    /* softmax_xent computes the probabilities; its loss (against label 0) is not
     * counted anywhere. */
    if (run_loss(ex, ex->zero_labels, n, ex->probs, NULL, 0) != WN_OK) return WN_ERR;
    if (ex->be->copy_to_host(ex->be, probs, ex->probs,
                             (size_t)n * ex->model->num_classes * sizeof(float)) != WN_OK)
        return WN_ERR;
    return ex->be->synchronize(ex->be);
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
    if (ex->be->copy_to_host(ex->be, dst, val_ptr(ex, v),
                             x->per_image * (size_t)ex->last_n * sizeof(float)) != WN_OK)
        return WN_ERR;
    return ex->be->synchronize(ex->be);
}

int wn_executor_read_grads(wn_executor *ex, float *dst) {
    if (!ex->grads_valid) return wn_fail("read_grads: no training step has run");
    if (ex->be->copy_to_host(ex->be, dst, ex->grads, ex->trainable * sizeof(float)) != WN_OK)
        return WN_ERR;
    return ex->be->synchronize(ex->be);
}

int wn_executor_take_totals(wn_executor *ex, double *loss_sum, long *correct, long *seen) {
    float t[2];
    if (ex->be->copy_to_host(ex->be, t, ex->totals, sizeof t) != WN_OK ||
        ex->be->synchronize(ex->be) != WN_OK ||
        ex->be->fill(ex->be, ex->totals, 2, 0.0f) != WN_OK)
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
    if (ex->trainable && (ex->be->copy_to_host(ex->be, m, ex->adam_m, bytes) != WN_OK ||
                          ex->be->copy_to_host(ex->be, v, ex->adam_v, bytes) != WN_OK ||
                          ex->be->synchronize(ex->be) != WN_OK))
        return WN_ERR;
    if (t) *t = ex->adam_t;
    return WN_OK;
}

int wn_executor_set_adam(wn_executor *ex, const float *m, const float *v, long t) {
    if (t < 0) return wn_fail("set_adam: step %ld is negative", t);
    size_t bytes = ex->trainable * sizeof(float);
    if (ex->trainable && (ex->be->copy_to_backend(ex->be, ex->adam_m, m, bytes) != WN_OK ||
                          ex->be->copy_to_backend(ex->be, ex->adam_v, v, bytes) != WN_OK))
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
    info->weight_bytes = (g->n_params + g->n_stats + ex->plan.bn_floats) * sizeof(float);
    info->optimizer_bytes = 3 * ex->trainable * sizeof(float);
    wn_exec_sizes sz;
    wn_exec_sizes_make(ex->model, &ex->plan, ex->image_buffers, &sz);
    info->total_bytes = sz.requested;
    wn_exec_sizes_make(ex->model, &ex->plan, 2, &sz); /* as the CUDA backend plans it */
    info->device_bytes = sz.device;
    info->steps = ex->plan.n_steps;
    info->backward_steps = ex->plan.backward_steps;
    info->lowest_backward_layer = ex->plan.lowest_backward_layer;
    /* A weight gradient and a data gradient each cost about one forward pass of the
     * layer's multiply-adds. */
    for (int k = 0; k < ex->plan.n_steps; k++) {
        const wn_step *s = &ex->plan.steps[k];
        double f = wn_layer_flops(g, s->layer);
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
