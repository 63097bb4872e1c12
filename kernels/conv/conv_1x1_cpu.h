/* kernels/conv/conv_1x1_cpu.h — 1x1 convolutions as matrix products on the CPU
 * (kernels/conv/conv_1x1_cpu.c), used by conv_cpu.c with WN_CONV_1X1_GEMM=1. */
#ifndef WN_KERNELS_CONV_1X1_CPU_H
#define WN_KERNELS_CONV_1X1_CPU_H

#include "kernels/common/op_types.h"

/* Whether `d` is a 1x1, stride-1, unpadded, ungrouped convolution: in NHWC a dense
 * layer applied at every pixel. */
int wn_cpu_conv_is_pointwise(const wn_conv_desc *d);

/* Backward-filter of such a convolution: dw[C,K] = x^T . dy (Keras's HWIO (1,1,C,K)
 * order), db[K] = the column sums of dy (db may be NULL); both overwritten. */
void wn_cpu_conv_pointwise_backward_filter(const wn_conv_desc *d, const float *x,
                                           const float *dy, float *dw, float *db);

#endif
