/* kernels/conv/conv_gemm_cpu.h — Conv2D's float32 backward-filter as matrix products on
 * the CPU (kernels/conv/conv_gemm_cpu.c), used by conv_cpu.c for ungrouped
 * convolutions unless WN_CONV_BWD_FILTER=onednn. */
#ifndef WN_KERNELS_CONV_GEMM_CPU_H
#define WN_KERNELS_CONV_GEMM_CPU_H

#include "kernels/common/backend_ops.h"
#include "kernels/common/op_types.h"

/* dw [kh, kw, C, K] (Keras's HWIO) = the weight gradient of an ungrouped convolution,
 * db [K] = the column sums of dy (db may be NULL); both overwritten. WN_ERR naming
 * `who` when oneDNN's sgemm fails, scratch cannot be had or d is grouped. */
int wn_cpu_conv_gemm_backward_filter(wn_backend *be, const wn_conv_desc *d, const float *x,
                                     const float *dy, float *dw, float *db, const char *who);

/* Whether oneDNN's own backward-weights is unsafe for `d`: a strided 1x1 convolution
 * on an NHWC input with fewer than 16 channels, where jit_1x1 writes past its
 * "reduce to unit stride" workspace (uxlfoundation/oneDNN issue 6035, open; 2.6.3 and
 * 3.2 alike): silently wrong weight gradients on AVX2 with 2 threads
 * (tests/ops/test_conv.c's 1x1 s2 case failed 6 runs in 60), crashes on AVX-512.
 * Such convolutions always take the GEMM form (bf16 ones staged to float32 first). */
int wn_cpu_conv_onednn_filter_broken(const wn_conv_desc *d);

#endif
