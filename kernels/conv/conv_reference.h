/* kernels/conv/conv_reference.h — a plain, obvious Conv2D in double precision, the answer
 * key for the oneDNN (CPU) and cuDNN (CUDA) convolutions in the tests.
 *
 * Same conventions as kernels/common/backend_ops.h: NHWC activations, HWIO kernels
 * (kh, kw, C/groups, K), TF 'same'/'valid' geometry from wn_window (pad_top and
 * pad_left cells before, the rest after), cross-correlation. Every sum is
 * accumulated in double and rounded to float once. Slow: tests only.
 */
#ifndef WN_CONV_REFERENCE_H
#define WN_CONV_REFERENCE_H

#include "kernels/common/backend_ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* y[N,OH,OW,K] = conv(x, w) + bias (bias may be NULL). */
void wn_conv_reference_forward(const wn_conv_desc *d, const float *x, const float *w,
                               const float *bias, float *y);

/* dx[N,H,W,C] = the gradient of sum(dy * y) with respect to x (overwrites). */
void wn_conv_reference_backward_data(const wn_conv_desc *d, const float *dy, const float *w,
                                     float *dx);

/* dw[kh,kw,C/G,K] and db[K] (db may be NULL) for the same loss (overwrite). */
void wn_conv_reference_backward_filter(const wn_conv_desc *d, const float *x, const float *dy,
                                       float *dw, float *db);

#ifdef __cplusplus
}
#endif
#endif
