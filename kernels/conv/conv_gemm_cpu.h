/* kernels/conv/conv_gemm_cpu.h — Conv2D's float32 backward-filter as matrix products on
 * the CPU (kernels/conv/conv_gemm_cpu.c), used by conv_cpu.c for ungrouped
 * convolutions on CPUs without AVX-512, or with WN_CONV_BWD_FILTER=gemm. */
#ifndef WN_KERNELS_CONV_GEMM_CPU_H
#define WN_KERNELS_CONV_GEMM_CPU_H

#include "kernels/common/backend_ops.h"
#include "kernels/common/op_types.h"

/* dw [kh, kw, C, K] (Keras's HWIO) = the weight gradient of an ungrouped convolution,
 * db [K] = the column sums of dy (db may be NULL); both overwritten. WN_ERR naming
 * `who` when oneDNN's sgemm fails, scratch cannot be had or d is grouped. */
int wn_cpu_conv_gemm_backward_filter(wn_backend *be, const wn_conv_desc *d, const float *x,
                                     const float *dy, float *dw, float *db, const char *who);

#endif
