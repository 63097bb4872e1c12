/* kernels/gap/gap.h — the gap family's entry points: gap_cpu.c for the CPU
 * backend, gap.cu for the CUDA backend (see kernels/common/backend_ops.h for what each
 * op computes). */
#ifndef WN_KERNELS_GAP_H
#define WN_KERNELS_GAP_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/common/backend_ops.h"
#include "kernels/common/bf16.h"

#ifdef __cplusplus
extern "C" {
#endif
/* ---- entry points: gap_cpu.c (CPU backend), gap.cu (CUDA backend) ---- */
int wn_cpu_gap_forward(wn_backend *be, int n, int hw, int c, const float *x, float *y,
                       const char *layer);
int wn_cpu_gap_backward(wn_backend *be, int n, int hw, int c, const float *dy, float *dx,
                        int accumulate, const char *layer);
int wn_cuda_gap_forward(wn_backend *be, int n, int hw, int c, const float *x, float *y,
                        const char *layer);
int wn_cuda_gap_backward(wn_backend *be, int n, int hw, int c, const float *dy, float *dx,
                         int accumulate, const char *layer);
/* ---- bf16 (kernels/common/backend_bf16_ops.h): gap_cpu.c, gap.cu ---- */
int wn_cpu_gap_forward_bf16(wn_backend *be, int n, int hw, int c, const wn_bf16 *x, float *y,
                            const char *layer);
int wn_cpu_gap_backward_bf16(wn_backend *be, int n, int hw, int c, const float *dy,
                             wn_bf16 *dx, int accumulate, const char *layer);
int wn_cuda_gap_forward_bf16(wn_backend *be, int n, int hw, int c, const wn_bf16 *x, float *y,
                             const char *layer);
int wn_cuda_gap_backward_bf16(wn_backend *be, int n, int hw, int c, const float *dy,
                              wn_bf16 *dx, int accumulate, const char *layer);
#ifdef __cplusplus
}
#endif

#endif
