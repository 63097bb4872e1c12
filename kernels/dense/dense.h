/* kernels/dense/dense.h — the dense family's entry points: dense_cpu.c for the CPU
 * backend, dense.cu for the CUDA backend (see kernels/common/backend_ops.h for what each
 * op computes). */
#ifndef WN_KERNELS_DENSE_H
#define WN_KERNELS_DENSE_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/common/backend_ops.h"

#ifdef __cplusplus
extern "C" {
#endif
/* ---- entry points: dense_cpu.c (CPU backend), dense.cu (CUDA backend) ---- */
int wn_cpu_dense_forward(wn_backend *be, int n, int in, int out, const float *x,
                         const float *w, const float *b, float *y, const char *layer);
int wn_cpu_dense_backward(wn_backend *be, int n, int in, int out, const float *x,
                          const float *w, const float *dy, float *dx, float *dw, float *db,
                          const char *layer);
int wn_cuda_dense_forward(wn_backend *be, int n, int in, int out, const float *x,
                          const float *w, const float *b, float *y, const char *layer);
int wn_cuda_dense_backward(wn_backend *be, int n, int in, int out, const float *x,
                           const float *w, const float *dy, float *dx, float *dw, float *db,
                           const char *layer);
#ifdef __cplusplus
}
#endif

#endif
