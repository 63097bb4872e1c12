/* engine/runtime/dispatch.c — the one place where op arguments and shapes are checked
 * (engine/runtime/backend.h): each wn_op_* validates what it is given, naming the
 * layer, and then calls the backend's table. Backends assume valid input, so a check
 * added here holds for the CPU and the CUDA backend alike. */
#include "engine/runtime/backend.h"

#include "host/base/error.h"
#include "kernels/augment/augment.h"

static const char *who(const char *layer, const char *op) { return layer ? layer : op; }

static int check_act(wn_activation act, const char *name) {
    if (act != WN_ACT_NONE && act != WN_ACT_RELU && act != WN_ACT_RELU6)
        return wn_fail("%s: unknown activation %d", name, (int)act);
    return WN_OK;
}

static int check_channels(size_t count, int c, const char *name) {
    if (c < 1 || count % (size_t)c)
        return wn_fail("%s: %zu elements are not a multiple of %d channels", name, count, c);
    return WN_OK;
}

static int check_conv(const wn_conv_desc *d, const char *name) {
    int g = d->groups < 1 ? 1 : d->groups;
    if (d->k < 1 || d->win.c % g || d->k % g)
        return wn_fail("%s: %d input and %d output channels cannot form %d groups", name,
                       d->win.c, d->k, g);
    if (d->win.n < 1 || d->win.oh < 1 || d->win.ow < 1)
        return wn_fail("%s: invalid convolution geometry (batch %d, output %dx%d)", name,
                       d->win.n, d->win.oh, d->win.ow);
    return WN_OK;
}

static int check_pool(const wn_window *win, wn_pool_kind kind, const char *name) {
    if (kind != WN_POOL_MAX && kind != WN_POOL_AVG)
        return wn_fail("%s: unknown pooling kind %d", name, (int)kind);
    /* a pad as large as the window leaves a window with no input cell (a ZeroPadding2D
     * of that size folded in): the kernels start each maximum at the window's first cell */
    if (win->oh < 1 || win->ow < 1 || win->pad_top >= win->kh || win->pad_left >= win->kw ||
        win->pad_bottom >= win->kh || win->pad_right >= win->kw)
        return wn_fail("%s: invalid pooling geometry (output %dx%d, padding %d/%d/%d/%d for a "
                       "%dx%d window)", name, win->oh, win->ow, win->pad_top, win->pad_bottom,
                       win->pad_left, win->pad_right, win->kh, win->kw);
    return WN_OK;
}

static int check_concat(int n_in, const int *channels, const char *name) {
    if (n_in < 1) return wn_fail("%s: concatenation of %d inputs", name, n_in);
    for (int i = 0; i < n_in; i++)
        if (channels[i] < 1) return wn_fail("%s: input %d has %d channels", name, i, channels[i]);
    return WN_OK;
}

static int check_rate(float rate, const char *name) {
    if (!(rate >= 0.0f && rate < 1.0f))
        return wn_fail("%s: dropout rate %g is outside [0, 1)", name, (double)rate);
    return WN_OK;
}

/* ---------------------------------------------------------------- lifetime, memory */

void wn_backend_destroy(wn_backend *be) {
    if (be) be->ops->destroy(be);
}

void *wn_backend_alloc(wn_backend *be, size_t bytes) { return be->ops->alloc(be, bytes); }
void wn_backend_free(wn_backend *be, void *p) {
    if (p) be->ops->free(be, p);
}
int wn_backend_copy_to_backend(wn_backend *be, void *dst, const void *src_host, size_t bytes) {
    return be->ops->copy_to_backend(be, dst, src_host, bytes);
}
int wn_backend_copy_to_host(wn_backend *be, void *dst_host, const void *src, size_t bytes) {
    return be->ops->copy_to_host(be, dst_host, src, bytes);
}
int wn_backend_copy(wn_backend *be, void *dst, const void *src, size_t bytes) {
    return be->ops->copy(be, dst, src, bytes);
}
int wn_backend_fill(wn_backend *be, float *x, size_t count, float value) {
    return be->ops->fill(be, x, count, value);
}
int wn_backend_synchronize(wn_backend *be) { return be->ops->synchronize(be); }
int wn_backend_set_deterministic(wn_backend *be, int on) {
    return be->ops->set_deterministic(be, on);
}
int wn_backend_join_group(wn_backend *be, const wn_rank_group *group) {
    if (!group || group->size < 1 || group->rank < 0 || group->rank >= group->size ||
        !group->sum_floats || !group->broadcast)
        return wn_fail("%s backend: not a group of ranks", be->name);
    return be->ops->join_group(be, group);
}
int wn_backend_allreduce_sum(wn_backend *be, float *x, size_t count) {
    if (!count) return WN_OK;
    if (!x) return wn_fail("allreduce_sum: no buffer");
    return be->ops->allreduce_sum(be, x, count);
}
int wn_backend_allreduce_begin(wn_backend *be, float *x, size_t count) {
    if (!count) return WN_OK;
    if (!x) return wn_fail("allreduce_begin: no buffer");
    if (!be->ops->allreduce_begin) return be->ops->allreduce_sum(be, x, count);
    return be->ops->allreduce_begin(be, x, count);
}
int wn_backend_allreduce_end(wn_backend *be) {
    return be->ops->allreduce_end ? be->ops->allreduce_end(be) : WN_OK;
}
int wn_backend_allreduce_overlaps(const wn_backend *be) {
    return be->ops->allreduce_begin != NULL;
}

static void *staging_alloc(void *user, size_t bytes) {
    wn_backend *be = user;
    return be->ops->host_alloc(be, bytes);
}

static void staging_free(void *user, void *p) {
    wn_backend *be = user;
    be->ops->host_free(be, p);
}

wn_host_allocator wn_backend_staging_allocator(wn_backend *be) {
    wn_host_allocator a = {staging_alloc, staging_free, be, be->kind == WN_BACKEND_CUDA};
    return a;
}

/* ---------------------------------------------------------------- ops */

int wn_op_conv2d_forward(wn_backend *be, const wn_conv_desc *d, const float *x,
                         const float *w, const float *bias, float *y, const char *layer) {
    if (check_conv(d, who(layer, "conv2d_forward")) != WN_OK) return WN_ERR;
    return be->ops->conv2d_forward(be, d, x, w, bias, y, layer);
}

int wn_op_conv2d_forward_epilogue(wn_backend *be, const wn_conv_desc *d, const float *x,
                                  const float *w, const float *bias, const wn_conv_epilogue *e,
                                  float *y, const char *layer) {
    const char *name = who(layer, "conv2d_forward_epilogue");
    if (check_conv(d, name) != WN_OK || check_act(e->act, name) != WN_OK) return WN_ERR;
    if (be->ops->conv2d_forward_epilogue)
        return be->ops->conv2d_forward_epilogue(be, d, x, w, bias, e, y, layer);
    if (be->ops->conv2d_forward(be, d, x, w, bias, y, layer) != WN_OK) return WN_ERR;
    size_t count = (size_t)d->win.n * d->win.oh * d->win.ow * d->k;
    return be->ops->affine_act_forward(be, count, d->k, y, e->scale, e->shift, e->act, y, layer);
}

int wn_op_conv2d_backward_data(wn_backend *be, const wn_conv_desc *d, const float *dy,
                               const float *w, float *dx, int accumulate, const char *layer) {
    if (check_conv(d, who(layer, "conv2d_backward_data")) != WN_OK) return WN_ERR;
    return be->ops->conv2d_backward_data(be, d, dy, w, dx, accumulate, layer);
}

int wn_op_conv2d_backward_filter(wn_backend *be, const wn_conv_desc *d, const float *x,
                                 const float *dy, float *dw, float *db, const char *layer) {
    if (check_conv(d, who(layer, "conv2d_backward_filter")) != WN_OK) return WN_ERR;
    return be->ops->conv2d_backward_filter(be, d, x, dy, dw, db, layer);
}

int wn_op_affine_act_forward(wn_backend *be, size_t count, int c, const float *x,
                             const float *scale, const float *shift, wn_activation act,
                             float *y, const char *layer) {
    const char *name = who(layer, "affine_act_forward");
    if (check_channels(count, c, name) != WN_OK || check_act(act, name) != WN_OK)
        return WN_ERR;
    return be->ops->affine_act_forward(be, count, c, x, scale, shift, act, y, layer);
}

int wn_op_affine_act_backward(wn_backend *be, size_t count, int c, const float *y,
                              const float *dy, const float *scale, wn_activation act,
                              float *dx, int accumulate, float *dshift, const char *layer) {
    const char *name = who(layer, "affine_act_backward");
    if (check_channels(count, c, name) != WN_OK || check_act(act, name) != WN_OK)
        return WN_ERR;
    return be->ops->affine_act_backward(be, count, c, y, dy, scale, act, dx, accumulate,
                                        dshift, layer);
}

int wn_op_bn_gamma_backward(wn_backend *be, size_t count, int c, const float *x,
                            const float *y, const float *dy, const float *mean,
                            const float *inv_std, wn_activation act, float *dgamma,
                            const char *layer) {
    const char *name = who(layer, "bn_gamma_backward");
    if (check_channels(count, c, name) != WN_OK || check_act(act, name) != WN_OK)
        return WN_ERR;
    return be->ops->bn_gamma_backward(be, count, c, x, y, dy, mean, inv_std, act, dgamma,
                                      layer);
}

int wn_op_pool_forward(wn_backend *be, const wn_window *win, wn_pool_kind kind,
                       const float *x, float *y, const char *layer) {
    if (check_pool(win, kind, who(layer, "pool_forward")) != WN_OK) return WN_ERR;
    return be->ops->pool_forward(be, win, kind, x, y, layer);
}

int wn_op_pool_backward(wn_backend *be, const wn_window *win, wn_pool_kind kind,
                        const float *x, const float *y, const float *dy, float *dx,
                        int accumulate, const char *layer) {
    if (check_pool(win, kind, who(layer, "pool_backward")) != WN_OK) return WN_ERR;
    return be->ops->pool_backward(be, win, kind, x, y, dy, dx, accumulate, layer);
}

int wn_op_concat_forward(wn_backend *be, size_t pixels, int n_in, const float *const *x,
                         const int *channels, float *y, const char *layer) {
    if (check_concat(n_in, channels, who(layer, "concat_forward")) != WN_OK) return WN_ERR;
    return be->ops->concat_forward(be, pixels, n_in, x, channels, y, layer);
}

int wn_op_concat_backward(wn_backend *be, size_t pixels, int n_in, const float *dy,
                          const int *channels, float *const *dx, int accumulate,
                          const char *layer) {
    if (check_concat(n_in, channels, who(layer, "concat_backward")) != WN_OK) return WN_ERR;
    return be->ops->concat_backward(be, pixels, n_in, dy, channels, dx, accumulate, layer);
}

int wn_op_scaled_add(wn_backend *be, size_t count, const float *x, const float *r,
                     float scale, float *y, const char *layer) {
    return be->ops->scaled_add(be, count, x, r, scale, y, layer);
}

int wn_op_scaled_add_backward(wn_backend *be, size_t count, const float *dy, float scale,
                              float *dx, float *dr, int accumulate, const char *layer) {
    return be->ops->scaled_add_backward(be, count, dy, scale, dx, dr, accumulate, layer);
}

int wn_op_mul(wn_backend *be, size_t count, const float *a, const float *b, float *y,
              const char *layer) {
    return be->ops->mul(be, count, a, b, y, layer);
}

int wn_op_gap_forward(wn_backend *be, int n, int hw, int c, const float *x, float *y,
                      const char *layer) {
    if (n < 1 || hw < 1 || c < 1)
        return wn_fail("%s: invalid shape %dx%dx%d", who(layer, "gap_forward"), n, hw, c);
    return be->ops->gap_forward(be, n, hw, c, x, y, layer);
}

int wn_op_gap_backward(wn_backend *be, int n, int hw, int c, const float *dy, float *dx,
                       int accumulate, const char *layer) {
    if (n < 1 || hw < 1 || c < 1)
        return wn_fail("%s: invalid shape %dx%dx%d", who(layer, "gap_backward"), n, hw, c);
    return be->ops->gap_backward(be, n, hw, c, dy, dx, accumulate, layer);
}

int wn_op_dropout_forward(wn_backend *be, size_t count, float rate, uint64_t seed,
                          uint64_t offset, const float *x, float *y, const char *layer) {
    if (check_rate(rate, who(layer, "dropout_forward")) != WN_OK) return WN_ERR;
    return be->ops->dropout_forward(be, count, rate, seed, offset, x, y, layer);
}

int wn_op_dropout_backward(wn_backend *be, size_t count, float rate, uint64_t seed,
                           uint64_t offset, const float *dy, float *dx, int accumulate,
                           const char *layer) {
    if (check_rate(rate, who(layer, "dropout_backward")) != WN_OK) return WN_ERR;
    return be->ops->dropout_backward(be, count, rate, seed, offset, dy, dx, accumulate, layer);
}

int wn_op_dense_forward(wn_backend *be, int n, int in, int out, const float *x,
                        const float *w, const float *b, float *y, const char *layer) {
    if (n < 1 || in < 1 || out < 1)
        return wn_fail("%s: invalid shape %dx%d -> %d", who(layer, "dense_forward"), n, in, out);
    return be->ops->dense_forward(be, n, in, out, x, w, b, y, layer);
}

int wn_op_dense_backward(wn_backend *be, int n, int in, int out, const float *x,
                         const float *w, const float *dy, float *dx, float *dw, float *db,
                         const char *layer) {
    if (n < 1 || in < 1 || out < 1)
        return wn_fail("%s: invalid shape %dx%d -> %d", who(layer, "dense_backward"), n, in,
                       out);
    return be->ops->dense_backward(be, n, in, out, x, w, dy, dx, dw, db, layer);
}

int wn_op_softmax_xent(wn_backend *be, int n, int k, const float *logits,
                       const int32_t *labels, float label_smoothing, float n_mean,
                       float *probs, float *dlogits, float *stats) {
    if (n < 1 || k < 1) return wn_fail("softmax_xent: invalid shape %dx%d", n, k);
    if (!(n_mean > 0.0f))
        return wn_fail("softmax_xent: batch size to average over is %g", (double)n_mean);
    if (!(label_smoothing >= 0.0f && label_smoothing <= 1.0f))
        return wn_fail("softmax_xent: label smoothing %g is outside [0, 1]",
                       (double)label_smoothing);
    return be->ops->softmax_xent(be, n, k, logits, labels, label_smoothing, n_mean, probs,
                                 dlogits, stats);
}

int wn_op_adam_update(wn_backend *be, size_t count, float *p, const float *g, float *m,
                      float *v, const wn_adam_params *adam, long t) {
    if (t < 1) return wn_fail("adam_update: step %ld must be 1 or more", t);
    if (!(adam->weight_decay >= 0.0f && adam->weight_decay < 1e30f))
        return wn_fail("adam_update: weight decay %g must be 0 or more",
                       (double)adam->weight_decay);
    return be->ops->adam_update(be, count, p, g, m, v, adam->lr, adam->beta1, adam->beta2,
                                adam->epsilon, adam->weight_decay, t);
}

int wn_op_augment(wn_backend *be, int n, int h, int w, int c, const uint8_t *x,
                  const wn_augment_batch *aug, float *y, int mode) {
    if (n < 1 || h < 1 || w < 1 || c < 1)
        return wn_fail("augment_preprocess: invalid shape %dx%dx%dx%d", n, h, w, c);
    if (mode != WN_AUG_PRE_TF && c != 3)
        return wn_fail("augment_preprocess: preprocess mode %d needs 3 channels, not %d", mode,
                       c);
    return be->ops->augment_preprocess(be, n, h, w, c, x, aug, y, mode);
}

int wn_op_augment_preprocess(wn_backend *be, int n, int h, int w, int c, const uint8_t *x,
                             const uint8_t *flip, const float *angle, float *y, int mode) {
    wn_augment_batch aug = {flip, angle, NULL, NULL, NULL};
    return wn_op_augment(be, n, h, w, c, x, &aug, y, mode);
}

/* ---------------------------------------------------------------- shared checks */

/* The same checks for the bf16 ops (engine/runtime/dispatch_bf16.c). */
int wn_dispatch_check_affine(size_t count, int c, wn_activation act, const char *name) {
    if (check_channels(count, c, name) != WN_OK) return WN_ERR;
    return check_act(act, name);
}
int wn_dispatch_check_conv(const wn_conv_desc *d, const char *name) { return check_conv(d, name); }
int wn_dispatch_check_pool(const wn_window *win, wn_pool_kind kind, const char *name) {
    return check_pool(win, kind, name);
}
int wn_dispatch_check_concat(int n_in, const int *channels, const char *name) {
    return check_concat(n_in, channels, name);
}
