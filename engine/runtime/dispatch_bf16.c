/* engine/runtime/dispatch_bf16.c — checked calls of the bf16 ops (backend_bf16.h): the
 * float ops' checks (engine/runtime/dispatch.c), then the backend's bf16 table. */
#include "engine/runtime/backend_bf16.h"

#include "host/base/error.h"

int wn_dispatch_check_affine(size_t count, int c, wn_activation act, const char *name);
int wn_dispatch_check_conv(const wn_conv_desc *d, const char *name);
int wn_dispatch_check_pool(const wn_window *win, wn_pool_kind kind, const char *name);
int wn_dispatch_check_concat(int n_in, const int *channels, const char *name);

static const char *who(const char *layer, const char *op) { return layer ? layer : op; }

int wn_backend_bf16_check(wn_backend *be) {
    if (be->bf16) return WN_OK;
    return wn_fail("--precision bf16: the %s backend has no bf16 kernels %s; use "
                   "--precision %s", be->name,
                   be->kind == WN_BACKEND_CUDA ? "for this GPU (cuDNN's bf16 convolutions need "
                                                 "compute capability 8.0 or newer)"
                                               : "in this build",
                   be->kind == WN_BACKEND_CUDA ? "tf32 or fp32" : "fp32");
}

const char *wn_backend_bf16_describe(wn_backend *be) {
    return be->bf16 && be->bf16->describe ? be->bf16->describe(be) : "";
}

/* The table, or NULL with the reason set. */
static const wn_backend_bf16_ops *ops(wn_backend *be) {
    return wn_backend_bf16_check(be) == WN_OK ? be->bf16 : NULL;
}

#define BF16_OPS(be)                                                                     \
    const wn_backend_bf16_ops *t = ops(be);                                              \
    if (!t) return WN_ERR

int wn_op_cast_to_bf16(wn_backend *be, size_t count, const float *x, wn_bf16 *y,
                       int accumulate) {
    BF16_OPS(be);
    return t->cast_to_bf16(be, count, x, y, accumulate);
}

int wn_op_cast_to_f32(wn_backend *be, size_t count, const wn_bf16 *x, float *y, int accumulate) {
    BF16_OPS(be);
    return t->cast_to_f32(be, count, x, y, accumulate);
}

int wn_op_bf16_conv2d_forward(wn_backend *be, const wn_conv_desc *d, const wn_bf16 *x,
                              const wn_bf16 *w, const float *bias, wn_bf16 *y,
                              const char *layer) {
    BF16_OPS(be);
    if (wn_dispatch_check_conv(d, who(layer, "conv2d_forward")) != WN_OK) return WN_ERR;
    return t->conv2d_forward(be, d, x, w, bias, y, layer);
}

int wn_op_bf16_conv2d_forward_epilogue(wn_backend *be, const wn_conv_desc *d, const wn_bf16 *x,
                                       const wn_bf16 *w, const float *bias,
                                       const wn_conv_epilogue *e, wn_bf16 *y, const char *layer) {
    BF16_OPS(be);
    const char *name = who(layer, "conv2d_forward_epilogue");
    if (wn_dispatch_check_conv(d, name) != WN_OK) return WN_ERR;
    size_t count = (size_t)d->win.n * d->win.oh * d->win.ow * d->k;
    if (wn_dispatch_check_affine(count, d->k, e->act, name) != WN_OK) return WN_ERR;
    if (t->conv2d_forward_epilogue)
        return t->conv2d_forward_epilogue(be, d, x, w, bias, e, y, layer);
    if (t->conv2d_forward(be, d, x, w, bias, y, layer) != WN_OK) return WN_ERR;
    return t->affine_act_forward(be, count, d->k, y, e->scale, e->shift, e->act, y, layer);
}

int wn_op_bf16_conv2d_backward_data(wn_backend *be, const wn_conv_desc *d, const wn_bf16 *dy,
                                    const wn_bf16 *w, wn_bf16 *dx, int accumulate,
                                    const char *layer) {
    BF16_OPS(be);
    if (wn_dispatch_check_conv(d, who(layer, "conv2d_backward_data")) != WN_OK) return WN_ERR;
    return t->conv2d_backward_data(be, d, dy, w, dx, accumulate, layer);
}

int wn_op_bf16_conv2d_backward_filter(wn_backend *be, const wn_conv_desc *d, const wn_bf16 *x,
                                      const wn_bf16 *dy, float *dw, float *db,
                                      const char *layer) {
    BF16_OPS(be);
    if (wn_dispatch_check_conv(d, who(layer, "conv2d_backward_filter")) != WN_OK) return WN_ERR;
    return t->conv2d_backward_filter(be, d, x, dy, dw, db, layer);
}

int wn_op_bf16_affine_act_forward(wn_backend *be, size_t count, int c, const wn_bf16 *x,
                                  const float *scale, const float *shift, wn_activation act,
                                  wn_bf16 *y, const char *layer) {
    BF16_OPS(be);
    if (wn_dispatch_check_affine(count, c, act, who(layer, "affine_act_forward")) != WN_OK)
        return WN_ERR;
    return t->affine_act_forward(be, count, c, x, scale, shift, act, y, layer);
}

int wn_op_bf16_affine_act_backward(wn_backend *be, size_t count, int c, const wn_bf16 *y,
                                   const wn_bf16 *dy, const float *scale, wn_activation act,
                                   wn_bf16 *dx, int accumulate, float *dshift,
                                   const char *layer) {
    BF16_OPS(be);
    if (wn_dispatch_check_affine(count, c, act, who(layer, "affine_act_backward")) != WN_OK)
        return WN_ERR;
    return t->affine_act_backward(be, count, c, y, dy, scale, act, dx, accumulate, dshift, layer);
}

int wn_op_bf16_bn_gamma_backward(wn_backend *be, size_t count, int c, const wn_bf16 *x,
                                 const wn_bf16 *y, const wn_bf16 *dy, const float *mean,
                                 const float *inv_std, wn_activation act, float *dgamma,
                                 const char *layer) {
    BF16_OPS(be);
    if (wn_dispatch_check_affine(count, c, act, who(layer, "bn_gamma_backward")) != WN_OK)
        return WN_ERR;
    return t->bn_gamma_backward(be, count, c, x, y, dy, mean, inv_std, act, dgamma, layer);
}

int wn_op_bf16_pool_forward(wn_backend *be, const wn_window *win, wn_pool_kind kind,
                            const wn_bf16 *x, wn_bf16 *y, const char *layer) {
    BF16_OPS(be);
    if (wn_dispatch_check_pool(win, kind, who(layer, "pool_forward")) != WN_OK) return WN_ERR;
    return t->pool_forward(be, win, kind, x, y, layer);
}

int wn_op_bf16_pool_backward(wn_backend *be, const wn_window *win, wn_pool_kind kind,
                             const wn_bf16 *x, const wn_bf16 *y, const wn_bf16 *dy,
                             wn_bf16 *dx, int accumulate, const char *layer) {
    BF16_OPS(be);
    if (wn_dispatch_check_pool(win, kind, who(layer, "pool_backward")) != WN_OK) return WN_ERR;
    return t->pool_backward(be, win, kind, x, y, dy, dx, accumulate, layer);
}

int wn_op_bf16_concat_forward(wn_backend *be, size_t pixels, int n_in,
                              const wn_bf16 *const *x, const int *channels, wn_bf16 *y,
                              const char *layer) {
    BF16_OPS(be);
    if (wn_dispatch_check_concat(n_in, channels, who(layer, "concat_forward")) != WN_OK)
        return WN_ERR;
    return t->concat_forward(be, pixels, n_in, x, channels, y, layer);
}

int wn_op_bf16_concat_backward(wn_backend *be, size_t pixels, int n_in, const wn_bf16 *dy,
                               const int *channels, wn_bf16 *const *dx, int accumulate,
                               const char *layer) {
    BF16_OPS(be);
    if (wn_dispatch_check_concat(n_in, channels, who(layer, "concat_backward")) != WN_OK)
        return WN_ERR;
    return t->concat_backward(be, pixels, n_in, dy, channels, dx, accumulate, layer);
}

int wn_op_bf16_scaled_add(wn_backend *be, size_t count, const wn_bf16 *x, const wn_bf16 *r,
                          float scale, wn_bf16 *y, const char *layer) {
    BF16_OPS(be);
    return t->scaled_add(be, count, x, r, scale, y, layer);
}

int wn_op_bf16_scaled_add_backward(wn_backend *be, size_t count, const wn_bf16 *dy,
                                   float scale, wn_bf16 *dx, wn_bf16 *dr, int accumulate,
                                   const char *layer) {
    BF16_OPS(be);
    return t->scaled_add_backward(be, count, dy, scale, dx, dr, accumulate, layer);
}

int wn_op_bf16_gap_forward(wn_backend *be, int n, int hw, int c, const wn_bf16 *x, float *y,
                           const char *layer) {
    BF16_OPS(be);
    if (n < 1 || hw < 1 || c < 1)
        return wn_fail("%s: invalid shape %dx%dx%d", who(layer, "gap_forward"), n, hw, c);
    return t->gap_forward(be, n, hw, c, x, y, layer);
}

int wn_op_bf16_gap_backward(wn_backend *be, int n, int hw, int c, const float *dy,
                            wn_bf16 *dx, int accumulate, const char *layer) {
    BF16_OPS(be);
    if (n < 1 || hw < 1 || c < 1)
        return wn_fail("%s: invalid shape %dx%dx%d", who(layer, "gap_backward"), n, hw, c);
    return t->gap_backward(be, n, hw, c, dy, dx, accumulate, layer);
}
