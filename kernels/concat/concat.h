/* kernels/concat/concat.h — the concat family's entry points: concat_cpu.c for the CPU
 * backend, concat.cu for the CUDA backend (see kernels/common/backend_ops.h for what each
 * op computes). */
#ifndef WN_KERNELS_CONCAT_H
#define WN_KERNELS_CONCAT_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/common/backend_ops.h"
#include "kernels/common/bf16.h"

#ifdef __cplusplus
extern "C" {
#endif
/* ---- entry points: concat_cpu.c (CPU backend), concat.cu (CUDA backend) ---- */
int wn_cpu_concat_forward(wn_backend *be, size_t pixels, int n_in, const float *const *x,
                          const int *channels, float *y, const char *layer);
int wn_cpu_concat_backward(wn_backend *be, size_t pixels, int n_in, const float *dy,
                           const int *channels, float *const *dx, int accumulate,
                           const char *layer);
int wn_cuda_concat_forward(wn_backend *be, size_t pixels, int n_in, const float *const *x,
                           const int *channels, float *y, const char *layer);
int wn_cuda_concat_backward(wn_backend *be, size_t pixels, int n_in, const float *dy,
                            const int *channels, float *const *dx, int accumulate,
                            const char *layer);
/* ---- bf16 (kernels/common/backend_bf16_ops.h): concat_cpu.c, concat.cu ---- */
int wn_cpu_concat_forward_bf16(wn_backend *be, size_t pixels, int n_in,
                               const wn_bf16 *const *x, const int *channels, wn_bf16 *y,
                               const char *layer);
int wn_cpu_concat_backward_bf16(wn_backend *be, size_t pixels, int n_in, const wn_bf16 *dy,
                                const int *channels, wn_bf16 *const *dx, int accumulate,
                                const char *layer);
int wn_cuda_concat_forward_bf16(wn_backend *be, size_t pixels, int n_in,
                                const wn_bf16 *const *x, const int *channels, wn_bf16 *y,
                                const char *layer);
int wn_cuda_concat_backward_bf16(wn_backend *be, size_t pixels, int n_in, const wn_bf16 *dy,
                                 const int *channels, wn_bf16 *const *dx, int accumulate,
                                 const char *layer);
#ifdef __cplusplus
}
#endif

#endif
