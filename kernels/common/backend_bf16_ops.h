/* kernels/common/backend_bf16_ops.h — the optional bf16 half of the backend contract
 * (kernels/common/backend_ops.h): the ops an executor runs with `--precision bf16`.
 *
 * A backend that has them points wn_backend.bf16 at such a table; one without leaves
 * it NULL and the executor refuses bf16 with a message naming the backend.
 *
 * Conventions (everything else as in backend_ops.h):
 *  - Activations and their gradients are bf16 (kernels/common/bf16.h): wn_bf16
 *    pointers. Weights that a convolution multiplies are a bf16 copy of the float32
 *    master weights (the executor casts them once per weight update); bias, BN
 *    scale/shift/mean/inv_std and every weight gradient (dw, db, dshift, dgamma) are
 *    float32.
 *  - Arithmetic is float32: a bf16 load is exact, products of bf16 values are exact
 *    in float, sums accumulate in float (or double, as the float ops do), and each
 *    output element is rounded to bf16 once, to nearest even. An accumulating bf16
 *    gradient is y = bf16(float(y) + v).
 *  - GlobalAveragePooling is where the bf16 backbone meets the float32 head: it reads
 *    bf16 and writes float32 (and back in backward).
 */
#ifndef WN_BACKEND_BF16_OPS_H
#define WN_BACKEND_BF16_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/common/backend_ops.h"
#include "kernels/common/bf16.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wn_backend_bf16_ops {
    /* How this backend runs bf16 convolutions, for bench and the run log: e.g.
     * "oneDNN bf16 primitives" or "bf16 storage, float32 oneDNN arithmetic (this CPU
     * has no AVX-512 BF16)". */
    const char *(*describe)(wn_backend *be);

    /* ---- casts: y = bf16(x) and y = float(x), either adding to y ---- */
    int (*cast_to_bf16)(wn_backend *be, size_t count, const float *x, wn_bf16 *y,
                        int accumulate);
    int (*cast_to_f32)(wn_backend *be, size_t count, const wn_bf16 *x, float *y,
                       int accumulate);

    /* The most temporary memory one bf16 convolution call takes (as
     * wn_backend_ops.conv_scratch_bytes). */
    size_t (*conv_scratch_bytes)(wn_backend *be, wn_conv_call call, const wn_conv_desc *d,
                                 int accumulate);

    /* ---- convolution: x, y, dy, dx and w bf16; bias, dw, db float32 ---- */
    int (*conv2d_forward)(wn_backend *be, const wn_conv_desc *d, const wn_bf16 *x,
                          const wn_bf16 *w, const float *bias, wn_bf16 *y, const char *layer);
    int (*conv2d_backward_data)(wn_backend *be, const wn_conv_desc *d, const wn_bf16 *dy,
                                const wn_bf16 *w, wn_bf16 *dx, int accumulate,
                                const char *layer);
    int (*conv2d_backward_filter)(wn_backend *be, const wn_conv_desc *d, const wn_bf16 *x,
                                  const wn_bf16 *dy, float *dw, float *db, const char *layer);
    /* The forward with its epilogue (float32, one rounding to bf16 at the store).
     * Optional: NULL makes the dispatcher run conv2d_forward, then affine_act_forward in
     * place (two roundings). */
    int (*conv2d_forward_epilogue)(wn_backend *be, const wn_conv_desc *d, const wn_bf16 *x,
                                   const wn_bf16 *w, const float *bias,
                                   const wn_conv_epilogue *e, wn_bf16 *y, const char *layer);

    /* ---- affine + activation, BN gamma gradient (float32 terms) ---- */
    int (*affine_act_forward)(wn_backend *be, size_t count, int c, const wn_bf16 *x,
                              const float *scale, const float *shift, wn_activation act,
                              wn_bf16 *y, const char *layer);
    int (*affine_act_backward)(wn_backend *be, size_t count, int c, const wn_bf16 *y,
                               const wn_bf16 *dy, const float *scale, wn_activation act,
                               wn_bf16 *dx, int accumulate, float *dshift, const char *layer);
    int (*bn_gamma_backward)(wn_backend *be, size_t count, int c, const wn_bf16 *x,
                             const wn_bf16 *y, const wn_bf16 *dy, const float *mean,
                             const float *inv_std, wn_activation act, float *dgamma,
                             const char *layer);

    /* ---- pooling, concatenation, scaled add ---- */
    int (*pool_forward)(wn_backend *be, const wn_window *win, wn_pool_kind kind,
                        const wn_bf16 *x, wn_bf16 *y, const char *layer);
    int (*pool_backward)(wn_backend *be, const wn_window *win, wn_pool_kind kind,
                         const wn_bf16 *x, const wn_bf16 *y, const wn_bf16 *dy, wn_bf16 *dx,
                         int accumulate, const char *layer);
    int (*concat_forward)(wn_backend *be, size_t pixels, int n_in, const wn_bf16 *const *x,
                          const int *channels, wn_bf16 *y, const char *layer);
    int (*concat_backward)(wn_backend *be, size_t pixels, int n_in, const wn_bf16 *dy,
                           const int *channels, wn_bf16 *const *dx, int accumulate,
                           const char *layer);
    int (*scaled_add)(wn_backend *be, size_t count, const wn_bf16 *x, const wn_bf16 *r,
                      float scale, wn_bf16 *y, const char *layer);
    int (*scaled_add_backward)(wn_backend *be, size_t count, const wn_bf16 *dy, float scale,
                               wn_bf16 *dx, wn_bf16 *dr, int accumulate, const char *layer);

    /* ---- GlobalAveragePooling2D: bf16 x[N,H*W,C] -> float32 y[N,C], and back ---- */
    int (*gap_forward)(wn_backend *be, int n, int hw, int c, const wn_bf16 *x, float *y,
                       const char *layer);
    int (*gap_backward)(wn_backend *be, int n, int hw, int c, const float *dy, wn_bf16 *dx,
                        int accumulate, const char *layer);
} wn_backend_bf16_ops;

#ifdef __cplusplus
}
#endif
#endif
