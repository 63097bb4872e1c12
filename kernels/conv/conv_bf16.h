/* kernels/conv/conv_bf16.h — the bf16 convolutions' entry points (the contract is
 * kernels/common/backend_bf16_ops.h): conv_bf16_cpu.c for the CPU backend (oneDNN
 * bf16 primitives, or float32 primitives on widened operands where the CPU has no
 * bf16 convolutions), conv.cu for the CUDA backend (cuDNN with bf16 tensors and float32
 * compute, the float32 path's plan with the data type as a parameter). */
#ifndef WN_KERNELS_CONV_BF16_H
#define WN_KERNELS_CONV_BF16_H

#include <stddef.h>

#include "kernels/common/backend_ops.h"
#include "kernels/common/bf16.h"

#ifdef __cplusplus
extern "C" {
#endif
/* 1 when this CPU backend runs oneDNN bf16 primitives, 0 when it stages through float32
 * (no bf16 convolutions in oneDNN here, or WN_CPU_BF16=staged). */
int wn_cpu_conv_bf16_is_native(wn_backend *be);
size_t wn_cpu_conv_bf16_scratch_bytes(wn_backend *be, wn_conv_call call,
                                      const wn_conv_desc *d, int accumulate);
int wn_cpu_conv2d_forward_epilogue_bf16(wn_backend *be, const wn_conv_desc *d,
                                        const wn_bf16 *x, const wn_bf16 *w, const float *bias,
                                        const wn_conv_epilogue *e, wn_bf16 *y,
                                        const char *layer);
int wn_cpu_conv2d_forward_bf16(wn_backend *be, const wn_conv_desc *d, const wn_bf16 *x,
                               const wn_bf16 *w, const float *bias, wn_bf16 *y,
                               const char *layer);
int wn_cpu_conv2d_backward_data_bf16(wn_backend *be, const wn_conv_desc *d,
                                     const wn_bf16 *dy, const wn_bf16 *w, wn_bf16 *dx,
                                     int accumulate, const char *layer);
int wn_cpu_conv2d_backward_filter_bf16(wn_backend *be, const wn_conv_desc *d,
                                       const wn_bf16 *x, const wn_bf16 *dy, float *dw,
                                       float *db, const char *layer);
size_t wn_cuda_conv_bf16_scratch_bytes(wn_backend *be, wn_conv_call call, const wn_conv_desc *d,
                                       int accumulate);
int wn_cuda_conv2d_forward_bf16(wn_backend *be, const wn_conv_desc *d, const wn_bf16 *x,
                                const wn_bf16 *w, const float *bias, wn_bf16 *y,
                                const char *layer);
int wn_cuda_conv2d_backward_data_bf16(wn_backend *be, const wn_conv_desc *d, const wn_bf16 *dy,
                                      const wn_bf16 *w, wn_bf16 *dx, int accumulate,
                                      const char *layer);
int wn_cuda_conv2d_backward_filter_bf16(wn_backend *be, const wn_conv_desc *d, const wn_bf16 *x,
                                        const wn_bf16 *dy, float *dw, float *db,
                                        const char *layer);
#ifdef __cplusplus
}
#endif
#endif
