/* engine/runtime/executor_bf16.c — the steps of a bf16 plan (exec_internal.h): forward
 * and backward of each step that runs bf16 ops, and of the plan's cast steps, through
 * the checked bf16 calls of engine/runtime/backend_bf16.h. The float32 steps (and
 * everything else an executor does) stay in engine/runtime/executor.c; this file
 * mirrors its step_forward/step_backward case by case.
 *
 * A bf16 step reads and writes bf16 values and bf16 gradients; the convolution
 * kernels come from the executor's bf16 copy of the weights, while bias, BN terms and
 * statistics are the float32 buffers, and weight gradients are written in float32
 * straight into the gradient buffer Adam reads. */
#include "engine/runtime/backend_bf16.h"
#include "engine/runtime/exec_internal.h"
#include "host/base/error.h"

static wn_bf16 *val16(const wn_exec_bf16_ctx *c, int v) {
    return (wn_bf16 *)(c->arena + c->plan->values[v].offset);
}
static float *valf(const wn_exec_bf16_ctx *c, int v) {
    return c->arena + c->plan->values[v].offset;
}
static wn_bf16 *grad16(const wn_exec_bf16_ctx *c, int v) {
    return (wn_bf16 *)(c->arena + c->plan->values[v].grad_offset);
}
static float *gradf(const wn_exec_bf16_ctx *c, int v) {
    return c->arena + c->plan->values[v].grad_offset;
}
static wn_bf16 *in_grad16(const wn_exec_bf16_ctx *c, const wn_step *s, int i) {
    return s->in_grad[i] ? grad16(c, s->in_val[i]) : NULL;
}
static float *wgrad(const wn_exec_bf16_ctx *c, const wn_weight *w) {
    return c->grads + (w->offset - c->trainable_first);
}
static const wn_bf16 *weight16(const wn_exec_bf16_ctx *c, const wn_layer *l, int k) {
    return k >= 0 && k < l->n_weights ? c->params16 + l->weights[k].offset : NULL;
}
static const float *weightf(const wn_exec_bf16_ctx *c, const wn_layer *l, int k) {
    return k >= 0 && k < l->n_weights ? c->params + l->weights[k].offset : NULL;
}
static const float *bn_term(const wn_exec_bf16_ctx *c, const wn_step *s, size_t which) {
    return s->bn >= 0 ? c->bn + which : NULL;
}

static size_t step_count(const wn_exec_bf16_ctx *c, const wn_step *s, int n) {
    return c->plan->values[s->out_val].per_image * (size_t)n;
}

int wn_exec_bf16_forward(const wn_exec_bf16_ctx *c, const wn_step *s, int n) {
    wn_backend *be = c->be;
    const wn_graph *g = &c->model->graph;
    const wn_layer *l = &g->layers[s->layer];
    size_t count = step_count(c, s, n);
    int x = s->n_in ? s->in_val[0] : -1;
    switch (s->kind) {
    case WN_STEP_CAST:
        if (s->dtype == WN_DTYPE_BF16)
            return wn_op_cast_to_bf16(be, count, valf(c, x), val16(c, s->out_val), 0);
        return wn_op_cast_to_f32(be, count, val16(c, x), valf(c, s->out_val), 0);
    case WN_STEP_CONV: {
        wn_conv_desc d;
        int kernel, bias;
        if (wn_step_conv(g, s, n, &d, &kernel, &bias) != WN_OK) return WN_ERR;
        if (s->epilogue >= 0) {
            const wn_step *a = &c->plan->steps[s->epilogue];
            const wn_bn_entry *b = a->bn >= 0 ? &c->plan->bn[a->bn] : NULL;
            wn_conv_epilogue e = {b ? bn_term(c, a, b->scale) : NULL,
                                  b ? bn_term(c, a, b->shift) : NULL, a->act};
            return wn_op_bf16_conv2d_forward_epilogue(be, &d, val16(c, x), weight16(c, l, kernel),
                                                      weightf(c, l, bias), &e,
                                                      val16(c, a->out_val), l->name);
        }
        return wn_op_bf16_conv2d_forward(be, &d, val16(c, x), weight16(c, l, kernel),
                                         weightf(c, l, bias), val16(c, s->out_val), l->name);
    }
    case WN_STEP_AFFINE: {
        const wn_bn_entry *b = s->bn >= 0 ? &c->plan->bn[s->bn] : NULL;
        return wn_op_bf16_affine_act_forward(
            be, count, g->layers[s->out_layer].out_c, val16(c, x),
            b ? bn_term(c, s, b->scale) : NULL, b ? bn_term(c, s, b->shift) : NULL, s->act,
            val16(c, s->out_val), g->layers[s->out_layer].name);
    }
    case WN_STEP_POOL: {
        wn_window w;
        if (wn_layer_window(g, l, n, &w) != WN_OK) return WN_ERR;
        return wn_op_bf16_pool_forward(be, &w, l->type == WN_LAYER_MAXPOOL ? WN_POOL_MAX : WN_POOL_AVG,
                                       val16(c, x), val16(c, s->out_val), l->name);
    }
    case WN_STEP_CONCAT: {
        const wn_bf16 *xs[WN_MAX_INPUTS];
        int ch[WN_MAX_INPUTS];
        for (int i = 0; i < s->n_in; i++)
            xs[i] = val16(c, s->in_val[i]), ch[i] = g->layers[l->inputs[i]].out_c;
        return wn_op_bf16_concat_forward(be, (size_t)n * l->out_h * l->out_w, s->n_in, xs, ch,
                                         val16(c, s->out_val), l->name);
    }
    case WN_STEP_RESIDUAL:
        return wn_op_bf16_scaled_add(be, count, val16(c, x), val16(c, s->in_val[1]), l->scale,
                                     val16(c, s->out_val), l->name);
    case WN_STEP_ADD: {
        wn_bf16 *y = val16(c, s->out_val);
        if (wn_op_bf16_scaled_add(be, count, val16(c, x), val16(c, s->in_val[1]), 1.0f, y,
                                  l->name) != WN_OK)
            return WN_ERR;
        for (int i = 2; i < s->n_in; i++)
            if (wn_op_bf16_scaled_add(be, count, y, val16(c, s->in_val[i]), 1.0f, y, l->name) !=
                WN_OK)
                return WN_ERR;
        return WN_OK;
    }
    case WN_STEP_GAP: {
        const wn_layer *p = &g->layers[l->inputs[0]];
        return wn_op_bf16_gap_forward(be, n, p->out_h * p->out_w, p->out_c, val16(c, x),
                                      valf(c, s->out_val), l->name);
    }
    default: break;
    }
    return wn_fail("executor: layer %s has no bf16 step of its kind", l->name);
}

int wn_exec_bf16_backward(const wn_exec_bf16_ctx *c, const wn_step *s, int n) {
    wn_backend *be = c->be;
    const wn_graph *g = &c->model->graph;
    const wn_layer *l = &g->layers[s->layer];
    size_t count = step_count(c, s, n);
    int x = s->n_in ? s->in_val[0] : -1;
    int acc = s->n_in ? s->in_accum[0] : 0;
    switch (s->kind) {
    case WN_STEP_CAST:
        if (!s->in_grad[0]) return WN_OK;
        /* the gradient goes back into the source's type */
        if (s->dtype == WN_DTYPE_BF16)
            return wn_op_cast_to_f32(be, count, grad16(c, s->out_val), gradf(c, x), acc);
        return wn_op_cast_to_bf16(be, count, gradf(c, s->out_val), grad16(c, x), acc);
    case WN_STEP_CONV: {
        wn_conv_desc d;
        int kernel, bias;
        if (wn_step_conv(g, s, n, &d, &kernel, &bias) != WN_OK) return WN_ERR;
        const wn_bf16 *dy = grad16(c, s->out_val);
        if (s->wgrad &&
            wn_op_bf16_conv2d_backward_filter(be, &d, val16(c, x), dy,
                                              wgrad(c, &l->weights[kernel]),
                                              bias >= 0 ? wgrad(c, &l->weights[bias]) : NULL,
                                              l->name) != WN_OK)
            return WN_ERR;
        wn_bf16 *dx = in_grad16(c, s, 0);
        if (dx && wn_op_bf16_conv2d_backward_data(be, &d, dy, weight16(c, l, kernel), dx, acc,
                                                  l->name) != WN_OK)
            return WN_ERR;
        return WN_OK;
    }
    case WN_STEP_AFFINE: {
        const wn_bn_entry *b = s->bn >= 0 ? &c->plan->bn[s->bn] : NULL;
        const wn_bf16 *y = val16(c, s->out_val), *dy = grad16(c, s->out_val);
        if (s->gamma_grad &&
            wn_op_bf16_bn_gamma_backward(be, count, b->c, val16(c, x), y, dy,
                                         c->stats + wn_bn_weight(l, WN_BN_MEAN)->offset,
                                         c->bn + b->inv_std, s->act,
                                         wgrad(c, wn_bn_weight(l, WN_BN_GAMMA)), l->name) != WN_OK)
            return WN_ERR;
        float *dshift = s->wgrad && b ? wgrad(c, wn_bn_weight(l, WN_BN_BETA)) : NULL;
        return wn_op_bf16_affine_act_backward(be, count, g->layers[s->out_layer].out_c, y, dy,
                                              b ? bn_term(c, s, b->scale) : NULL, s->act,
                                              in_grad16(c, s, 0), acc, dshift,
                                              g->layers[s->out_layer].name);
    }
    case WN_STEP_POOL: {
        wn_window w;
        wn_bf16 *dx = in_grad16(c, s, 0);
        if (!dx) return WN_OK;
        if (wn_layer_window(g, l, n, &w) != WN_OK) return WN_ERR;
        return wn_op_bf16_pool_backward(be, &w, l->type == WN_LAYER_MAXPOOL ? WN_POOL_MAX : WN_POOL_AVG,
                                        val16(c, x), val16(c, s->out_val),
                                        grad16(c, s->out_val), dx, acc, l->name);
    }
    case WN_STEP_CONCAT: {
        /* one call per accumulate mode, as the float step does */
        int ch[WN_MAX_INPUTS];
        for (int i = 0; i < s->n_in; i++) ch[i] = g->layers[l->inputs[i]].out_c;
        for (int mode = 0; mode < 2; mode++) {
            wn_bf16 *dxs[WN_MAX_INPUTS];
            int any = 0;
            for (int i = 0; i < s->n_in; i++) {
                dxs[i] = s->in_grad[i] && s->in_accum[i] == mode ? grad16(c, s->in_val[i]) : NULL;
                any |= dxs[i] != NULL;
            }
            if (any && wn_op_bf16_concat_backward(be, (size_t)n * l->out_h * l->out_w, s->n_in,
                                                  grad16(c, s->out_val), ch, dxs, mode,
                                                  l->name) != WN_OK)
                return WN_ERR;
        }
        return WN_OK;
    }
    case WN_STEP_RESIDUAL:
    case WN_STEP_ADD: {
        float scale = s->kind == WN_STEP_RESIDUAL ? l->scale : 1.0f;
        const wn_bf16 *dy = grad16(c, s->out_val);
        for (int i = 0; i < s->n_in; i++) {
            if (!s->in_grad[i]) continue;
            wn_bf16 *d = grad16(c, s->in_val[i]);
            int rc = i == 0 ? wn_op_bf16_scaled_add_backward(be, count, dy, scale, d, NULL,
                                                             s->in_accum[i], l->name)
                            : wn_op_bf16_scaled_add_backward(be, count, dy, scale, NULL, d,
                                                             s->in_accum[i], l->name);
            if (rc != WN_OK) return WN_ERR;
        }
        return WN_OK;
    }
    case WN_STEP_GAP: {
        const wn_layer *p = &g->layers[l->inputs[0]];
        wn_bf16 *dx = in_grad16(c, s, 0);
        if (!dx) return WN_OK;
        return wn_op_bf16_gap_backward(be, n, p->out_h * p->out_w, p->out_c,
                                       gradf(c, s->out_val), dx, acc, l->name);
    }
    default: break;
    }
    return wn_fail("executor: layer %s has no bf16 step of its kind", l->name);
}
