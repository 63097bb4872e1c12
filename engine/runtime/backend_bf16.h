/* engine/runtime/backend_bf16.h — the runtime's side of the bf16 ops
 * (kernels/common/backend_bf16_ops.h): checked calls, as engine/runtime/backend.h's
 * wn_op_* are for the float ops (same checks, engine/runtime/dispatch_bf16.c). Each
 * fails with a reason naming the backend when it has no bf16 ops (be->bf16 NULL). */
#ifndef WN_BACKEND_BF16_H
#define WN_BACKEND_BF16_H

#include "engine/runtime/backend.h"
#include "kernels/common/backend_bf16_ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* WN_OK when be runs bf16; otherwise WN_ERR with what to do instead. */
int wn_backend_bf16_check(wn_backend *be);
/* How be runs bf16 convolutions ("" when it has no bf16 ops). */
const char *wn_backend_bf16_describe(wn_backend *be);

int wn_op_cast_to_bf16(wn_backend *be, size_t count, const float *x, wn_bf16 *y,
                       int accumulate);
int wn_op_cast_to_f32(wn_backend *be, size_t count, const wn_bf16 *x, float *y, int accumulate);
int wn_op_bf16_conv2d_forward(wn_backend *be, const wn_conv_desc *d, const wn_bf16 *x,
                              const wn_bf16 *w, const float *bias, wn_bf16 *y,
                              const char *layer);
int wn_op_bf16_conv2d_forward_epilogue(wn_backend *be, const wn_conv_desc *d, const wn_bf16 *x,
                                       const wn_bf16 *w, const float *bias,
                                       const wn_conv_epilogue *e, wn_bf16 *y, const char *layer);
int wn_op_bf16_conv2d_backward_data(wn_backend *be, const wn_conv_desc *d, const wn_bf16 *dy,
                                    const wn_bf16 *w, wn_bf16 *dx, int accumulate,
                                    const char *layer);
int wn_op_bf16_conv2d_backward_filter(wn_backend *be, const wn_conv_desc *d, const wn_bf16 *x,
                                      const wn_bf16 *dy, float *dw, float *db,
                                      const char *layer);
int wn_op_bf16_affine_act_forward(wn_backend *be, size_t count, int c, const wn_bf16 *x,
                                  const float *scale, const float *shift, wn_activation act,
                                  wn_bf16 *y, const char *layer);
int wn_op_bf16_affine_act_backward(wn_backend *be, size_t count, int c, const wn_bf16 *y,
                                   const wn_bf16 *dy, const float *scale, wn_activation act,
                                   wn_bf16 *dx, int accumulate, float *dshift,
                                   const char *layer);
int wn_op_bf16_bn_gamma_backward(wn_backend *be, size_t count, int c, const wn_bf16 *x,
                                 const wn_bf16 *y, const wn_bf16 *dy, const float *mean,
                                 const float *inv_std, wn_activation act, float *dgamma,
                                 const char *layer);
int wn_op_bf16_pool_forward(wn_backend *be, const wn_window *win, wn_pool_kind kind,
                            const wn_bf16 *x, wn_bf16 *y, const char *layer);
int wn_op_bf16_pool_backward(wn_backend *be, const wn_window *win, wn_pool_kind kind,
                             const wn_bf16 *x, const wn_bf16 *y, const wn_bf16 *dy,
                             wn_bf16 *dx, int accumulate, const char *layer);
int wn_op_bf16_concat_forward(wn_backend *be, size_t pixels, int n_in,
                              const wn_bf16 *const *x, const int *channels, wn_bf16 *y,
                              const char *layer);
int wn_op_bf16_concat_backward(wn_backend *be, size_t pixels, int n_in, const wn_bf16 *dy,
                               const int *channels, wn_bf16 *const *dx, int accumulate,
                               const char *layer);
int wn_op_bf16_scaled_add(wn_backend *be, size_t count, const wn_bf16 *x, const wn_bf16 *r,
                          float scale, wn_bf16 *y, const char *layer);
int wn_op_bf16_scaled_add_backward(wn_backend *be, size_t count, const wn_bf16 *dy,
                                   float scale, wn_bf16 *dx, wn_bf16 *dr, int accumulate,
                                   const char *layer);
int wn_op_bf16_gap_forward(wn_backend *be, int n, int hw, int c, const wn_bf16 *x, float *y,
                           const char *layer);
int wn_op_bf16_gap_backward(wn_backend *be, int n, int hw, int c, const float *dy,
                            wn_bf16 *dx, int accumulate, const char *layer);

#ifdef __cplusplus
}
#endif
#endif
