/* engine/runtime/backend.h — the runtime's side of the backend contract
 * (kernels/common/backend_ops.h): making and destroying backends, and the dispatch
 * layer through which everything above the backends calls an op. The runtime knows
 * no backend by name: the application makes one with the constructors of
 * engine/backends/cpu/backend_cpu.h or engine/backends/cuda/backend_cuda.h.
 *
 * Each wn_op_* checks its arguments and shapes once (engine/runtime/dispatch.c),
 * naming the layer in the reason, and then calls the backend's table; the backends
 * themselves assume valid input. The memory wrappers forward to the table.
 */
#ifndef WN_BACKEND_H
#define WN_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "host/staging.h"
#include "kernels/common/backend_ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Destroys any backend; NULL is ignored. */
void wn_backend_destroy(wn_backend *be);

/* The backend's host memory (pinned on CUDA) as an allocator for host/'s staging
 * buffers; be must outlive the buffers. */
wn_host_allocator wn_backend_staging_allocator(wn_backend *be);

/* Only deterministic algorithms from now on (see backend_ops.h); WN_ERR with a reason. */
int wn_backend_set_deterministic(wn_backend *be, int on);

/* Data parallel: the backend joins the ranks of `group` (which must outlive it), then
 * sums backend buffers over them (see backend_ops.h). */
int wn_backend_join_group(wn_backend *be, const wn_rank_group *group);
int wn_backend_allreduce_sum(wn_backend *be, float *x, size_t count);
/* A sum that overlaps the ops queued after it (allreduce_begin of backend_ops.h; a
 * backend without the entry sums at once), and the point after which every sum begun
 * is done; 1 when the backend really overlaps them. */
int wn_backend_allreduce_begin(wn_backend *be, float *x, size_t count);
int wn_backend_allreduce_end(wn_backend *be);
int wn_backend_allreduce_overlaps(const wn_backend *be);

/* ---- memory: forwards to the table ---- */
void *wn_backend_alloc(wn_backend *be, size_t bytes);
void wn_backend_free(wn_backend *be, void *p);
int wn_backend_copy_to_backend(wn_backend *be, void *dst, const void *src_host, size_t bytes);
int wn_backend_copy_to_host(wn_backend *be, void *dst_host, const void *src, size_t bytes);
int wn_backend_copy(wn_backend *be, void *dst, const void *src, size_t bytes);
int wn_backend_fill(wn_backend *be, float *x, size_t count, float value);
int wn_backend_synchronize(wn_backend *be);

/* ---- ops, checked (see backend_ops.h for each op's meaning) ---- */
int wn_op_conv2d_forward(wn_backend *be, const wn_conv_desc *d, const float *x,
                         const float *w, const float *bias, float *y, const char *layer);
/* y = act(conv(x) * scale + shift) (kernels/common/op_types.h: wn_conv_epilogue), in the
 * convolution's epilogue where the backend has one, else as conv then affine_act. */
int wn_op_conv2d_forward_epilogue(wn_backend *be, const wn_conv_desc *d, const float *x,
                                  const float *w, const float *bias, const wn_conv_epilogue *e,
                                  float *y, const char *layer);
int wn_op_conv2d_backward_data(wn_backend *be, const wn_conv_desc *d, const float *dy,
                               const float *w, float *dx, int accumulate, const char *layer);
int wn_op_conv2d_backward_filter(wn_backend *be, const wn_conv_desc *d, const float *x,
                                 const float *dy, float *dw, float *db, const char *layer);
int wn_op_affine_act_forward(wn_backend *be, size_t count, int c, const float *x,
                             const float *scale, const float *shift, wn_activation act,
                             float *y, const char *layer);
int wn_op_affine_act_backward(wn_backend *be, size_t count, int c, const float *y,
                              const float *dy, const float *scale, wn_activation act,
                              float *dx, int accumulate, float *dshift, const char *layer);
int wn_op_bn_gamma_backward(wn_backend *be, size_t count, int c, const float *x,
                            const float *y, const float *dy, const float *mean,
                            const float *inv_std, wn_activation act, float *dgamma,
                            const char *layer);
int wn_op_pool_forward(wn_backend *be, const wn_window *win, wn_pool_kind kind,
                       const float *x, float *y, const char *layer);
int wn_op_pool_backward(wn_backend *be, const wn_window *win, wn_pool_kind kind,
                        const float *x, const float *y, const float *dy, float *dx,
                        int accumulate, const char *layer);
int wn_op_concat_forward(wn_backend *be, size_t pixels, int n_in, const float *const *x,
                         const int *channels, float *y, const char *layer);
int wn_op_concat_backward(wn_backend *be, size_t pixels, int n_in, const float *dy,
                          const int *channels, float *const *dx, int accumulate,
                          const char *layer);
int wn_op_scaled_add(wn_backend *be, size_t count, const float *x, const float *r,
                     float scale, float *y, const char *layer);
int wn_op_scaled_add_backward(wn_backend *be, size_t count, const float *dy, float scale,
                              float *dx, float *dr, int accumulate, const char *layer);
int wn_op_mul(wn_backend *be, size_t count, const float *a, const float *b, float *y,
              const char *layer);
int wn_op_gap_forward(wn_backend *be, int n, int hw, int c, const float *x, float *y,
                      const char *layer);
int wn_op_gap_backward(wn_backend *be, int n, int hw, int c, const float *dy, float *dx,
                       int accumulate, const char *layer);
int wn_op_dropout_forward(wn_backend *be, size_t count, float rate, uint64_t seed,
                          uint64_t offset, const float *x, float *y, const char *layer);
int wn_op_dropout_backward(wn_backend *be, size_t count, float rate, uint64_t seed,
                           uint64_t offset, const float *dy, float *dx, int accumulate,
                           const char *layer);
int wn_op_dense_forward(wn_backend *be, int n, int in, int out, const float *x,
                        const float *w, const float *b, float *y, const char *layer);
int wn_op_dense_backward(wn_backend *be, int n, int in, int out, const float *x,
                         const float *w, const float *dy, float *dx, float *dw, float *db,
                         const char *layer);
int wn_op_softmax_xent(wn_backend *be, int n, int k, const float *logits,
                       const int32_t *labels, float label_smoothing, float n_mean,
                       float *probs, float *dlogits, float *stats);
/* Keras Adam's coefficients, as the training options give them; weight_decay is
 * Adam(weight_decay=...) (0: none; kernels/adam/adam.h). */
typedef struct wn_adam_params {
    float lr, beta1, beta2, epsilon;
    float weight_decay;
} wn_adam_params;
/* Keras's Adam defaults (beta_1 0.9, beta_2 0.999, epsilon 1e-7, no weight decay) at
 * learning rate lr. */
#define WN_ADAM_KERAS(lr) ((wn_adam_params){(lr), 0.9f, 0.999f, 1e-7f, 0.0f})
int wn_op_adam_update(wn_backend *be, size_t count, float *p, const float *g, float *m,
                      float *v, const wn_adam_params *adam, long t);
/* The augmentation layers of `aug` (NULL: none) then preprocess_input `mode`. */
int wn_op_augment(wn_backend *be, int n, int h, int w, int c, const uint8_t *x,
                  const wn_augment_batch *aug, float *y, int mode);
/* Flip and rotation only (either may be NULL). */
int wn_op_augment_preprocess(wn_backend *be, int n, int h, int w, int c, const uint8_t *x,
                             const uint8_t *flip, const float *angle, float *y, int mode);

#ifdef __cplusplus
}
#endif
#endif
