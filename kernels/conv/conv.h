/* kernels/conv/conv.h — the conv family's entry points: conv_cpu.c for the CPU
 * backend, conv.cu for the CUDA backend (see kernels/common/backend_ops.h for what each
 * op computes). */
#ifndef WN_KERNELS_CONV_H
#define WN_KERNELS_CONV_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/common/backend_ops.h"

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
int wn_cpu_conv2d_backward_data(wn_backend *be, const wn_conv_desc *d, const float *dy,
                                const float *w, float *dx, int accumulate, const char *layer);
int wn_cpu_conv2d_backward_filter(wn_backend *be, const wn_conv_desc *d, const float *x,
                                  const float *dy, float *dw, float *db, const char *layer);
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
