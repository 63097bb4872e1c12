/* engine/cpu_internal.h — state and op entry points shared by the CPU backend's
 * files (backend_cpu.c fills the table; cpu_conv.c, cpu_ops.c, cpu_head.c hold
 * the ops). Not a public interface: the engine only sees engine/backend.h.
 */
#ifndef WN_CPU_INTERNAL_H
#define WN_CPU_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "engine/backend.h"

typedef struct wn_cpu_conv_cache wn_cpu_conv_cache; /* cpu_conv.c */

/* Reusable host buffer, grown when an op first needs more (never inside a steady
 * training step: every shape is seen in the first step). */
typedef struct wn_cpu_buffer {
    void *p;
    size_t bytes;
} wn_cpu_buffer;

typedef struct wn_cpu_ctx {
    wn_cpu_conv_cache *conv;   /* oneDNN engine, stream and per-shape primitives */
    wn_cpu_buffer accum;       /* conv backward-data result when accumulating */
    wn_cpu_buffer partial;     /* per-thread partial sums (doubles) of reductions */
} wn_cpu_ctx;

/* Makes `buf` at least `bytes` long (64-byte aligned); WN_ERR with a reason. */
int wn_cpu_buffer_reserve(wn_cpu_buffer *buf, size_t bytes, const char *what);
void wn_cpu_buffer_release(wn_cpu_buffer *buf);

/* ---- cpu_conv.c ---- */
int wn_cpu_conv_cache_create(wn_cpu_conv_cache **cache);
void wn_cpu_conv_cache_destroy(wn_cpu_conv_cache *cache);
int wn_cpu_conv2d_forward(wn_backend *be, const wn_conv_desc *d, const float *x,
                          const float *w, const float *bias, float *y, const char *layer);
int wn_cpu_conv2d_backward_data(wn_backend *be, const wn_conv_desc *d, const float *dy,
                                const float *w, float *dx, int accumulate, const char *layer);
int wn_cpu_conv2d_backward_filter(wn_backend *be, const wn_conv_desc *d, const float *x,
                                  const float *dy, float *dw, float *db, const char *layer);

/* ---- cpu_ops.c: element-wise, pooling, concatenation, residual, GAP, dropout ---- */
int wn_cpu_affine_act_forward(wn_backend *be, size_t count, int c, const float *x,
                              const float *scale, const float *shift, wn_activation act,
                              float *y, const char *layer);
int wn_cpu_affine_act_backward(wn_backend *be, size_t count, int c, const float *y,
                               const float *dy, const float *scale, wn_activation act,
                               float *dx, int accumulate, float *dshift, const char *layer);
/* cpu_bn_gamma.c */
int wn_cpu_bn_gamma_backward(wn_backend *be, size_t count, int c, const float *x,
                             const float *y, const float *dy, const float *mean,
                             const float *inv_std, wn_activation act, float *dgamma,
                             const char *layer);
int wn_cpu_pool_forward(wn_backend *be, const wn_window *win, wn_pool_kind kind,
                        const float *x, float *y, const char *layer);
int wn_cpu_pool_backward(wn_backend *be, const wn_window *win, wn_pool_kind kind,
                         const float *x, const float *y, const float *dy, float *dx,
                         int accumulate, const char *layer);
int wn_cpu_concat_forward(wn_backend *be, size_t pixels, int n_in, const float *const *x,
                          const int *channels, float *y, const char *layer);
int wn_cpu_concat_backward(wn_backend *be, size_t pixels, int n_in, const float *dy,
                           const int *channels, float *const *dx, int accumulate,
                           const char *layer);
int wn_cpu_residual_forward(wn_backend *be, size_t count, const float *x, const float *r,
                            float scale, float *y, const char *layer);
int wn_cpu_residual_backward(wn_backend *be, size_t count, const float *dy, float scale,
                             float *dx, float *dr, int accumulate, const char *layer);
int wn_cpu_gap_forward(wn_backend *be, int n, int hw, int c, const float *x, float *y,
                       const char *layer);
int wn_cpu_gap_backward(wn_backend *be, int n, int hw, int c, const float *dy, float *dx,
                        int accumulate, const char *layer);
int wn_cpu_dropout_forward(wn_backend *be, size_t count, float rate, uint64_t seed,
                           uint64_t offset, const float *x, float *y, const char *layer);
int wn_cpu_dropout_backward(wn_backend *be, size_t count, float rate, uint64_t seed,
                            uint64_t offset, const float *dy, float *dx, int accumulate,
                            const char *layer);

/* ---- cpu_head.c: Dense, loss, Adam, augmentation ---- */
int wn_cpu_dense_forward(wn_backend *be, int n, int in, int out, const float *x,
                         const float *w, const float *b, float *y, const char *layer);
int wn_cpu_dense_backward(wn_backend *be, int n, int in, int out, const float *x,
                          const float *w, const float *dy, float *dx, float *dw, float *db,
                          const char *layer);
int wn_cpu_softmax_xent(wn_backend *be, int n, int k, const float *logits,
                        const int32_t *labels, float label_smoothing, float n_mean,
                        float *probs, float *dlogits, float *stats);
int wn_cpu_adam_update(wn_backend *be, size_t count, float *p, const float *g, float *m,
                       float *v, float lr, float beta1, float beta2, float eps, long t);
int wn_cpu_augment_preprocess(wn_backend *be, int n, int h, int w, int c, const uint8_t *x,
                              const uint8_t *flip, const float *angle, float *y);

#endif
