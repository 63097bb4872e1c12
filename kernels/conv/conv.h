/* kernels/conv/conv.h — the conv family's entry points: conv_cpu.c for the CPU
 * backend, conv.cu for the CUDA backend (see kernels/common/backend_ops.h for what each
 * op computes). */
#ifndef WN_KERNELS_CONV_H
#define WN_KERNELS_CONV_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/common/backend_ops.h"
#include "kernels/common/bf16.h"

#ifdef __cplusplus
extern "C" {
#endif
/* ---- entry points: conv_cpu.c (CPU backend), conv.cu (CUDA backend) ---- */
/* The CPU backend's oneDNN engine, stream and per-shape primitives (kernels/common/cpu_ctx.h). */
typedef struct wn_cpu_conv_cache wn_cpu_conv_cache;
int wn_cpu_conv_cache_create(wn_cpu_conv_cache **cache);
void wn_cpu_conv_cache_destroy(wn_cpu_conv_cache *cache);
int wn_cpu_conv2d_forward(wn_backend *be, const wn_conv_desc *d, const float *x,
                          const float *w, const float *bias, float *y, const char *layer);
/* The forward with an epilogue as oneDNN post-ops (op_types.h: wn_conv_epilogue). */
int wn_cpu_conv2d_forward_epilogue(wn_backend *be, const wn_conv_desc *d, const float *x,
                                   const float *w, const float *bias,
                                   const wn_conv_epilogue *e, float *y, const char *layer);
int wn_cpu_conv2d_backward_data(wn_backend *be, const wn_conv_desc *d, const float *dy,
                                const float *w, float *dx, int accumulate, const char *layer);
int wn_cpu_conv2d_backward_filter(wn_backend *be, const wn_conv_desc *d, const float *x,
                                  const float *dy, float *dw, float *db, const char *layer);
/* The same three calls with activations (and weights) of type dt, for the bf16 ops
 * (kernels/conv/conv_bf16_cpu.c); weight gradients are float32 either way. */
int wn_cpu_conv2d_forward_dt(wn_backend *be, const wn_conv_desc *d, wn_dtype dt, const void *x,
                             const void *w, const float *bias, const wn_conv_epilogue *post,
                             void *y, const char *layer);
int wn_cpu_conv2d_backward_data_dt(wn_backend *be, const wn_conv_desc *d, wn_dtype dt,
                                   const void *dy, const void *w, void *dx, int accumulate,
                                   const char *layer);
int wn_cpu_conv2d_backward_filter_dt(wn_backend *be, const wn_conv_desc *d, wn_dtype dt,
                                     const void *x, const void *dy, float *dw, float *db,
                                     const char *layer);
/* 1 when oneDNN has bf16 convolutions on this CPU (asked once, then remembered). */
int wn_cpu_conv_bf16_native(wn_backend *be);
int wn_cuda_conv2d_forward(wn_backend *be, const wn_conv_desc *d, const float *x,
                           const float *w, const float *bias, float *y, const char *layer);
int wn_cuda_conv2d_backward_data(wn_backend *be, const wn_conv_desc *d, const float *dy,
                                 const float *w, float *dx, int accumulate, const char *layer);
int wn_cuda_conv2d_backward_filter(wn_backend *be, const wn_conv_desc *d, const float *x,
                                   const float *dy, float *dw, float *db, const char *layer);
/* kernels/conv/depthwise.cu: our depthwise convolutions, the fallback where cuDNN has no
 * algorithm for grouped NHWC (HWIO weights, TensorFlow's padding; see
 * kernels/conv/depthwise.h); bias and db stay with the caller. */
int wn_cuda_depthwise_forward(wn_backend *be, const wn_conv_desc *d, const float *x,
                              const float *w, float *y, const char *layer);
int wn_cuda_depthwise_backward_data(wn_backend *be, const wn_conv_desc *d, const float *dy,
                                    const float *w, float *dx, int accumulate,
                                    const char *layer);
int wn_cuda_depthwise_backward_filter(wn_backend *be, const wn_conv_desc *d, const float *x,
                                      const float *dy, float *dw, const char *layer);
#ifdef __cplusplus
}
#endif

#endif
