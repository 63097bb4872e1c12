/* kernels/elementwise/elementwise.h — element-wise arithmetic: y = x + scale * r
 * (InceptionResNetV2's residual scale layer, Keras Add layers, running loss totals)
 * with its backward, and the product y = a * b (BatchNormalization terms).
 *
 * Backward of the scaled add: dx = dy, dr = scale * dy. The product is written as in
 * Keras (inputs[0] + inputs[1] * scale) so float results match TensorFlow bit for bit.
 */
#ifndef WN_KERNELS_ELEMENTWISE_H
#define WN_KERNELS_ELEMENTWISE_H

#include "kernels/common/backend_ops.h"
#include "kernels/common/bf16.h"
#include "kernels/common/hd.h"

WN_HD static inline float wn_scaled_add(float x, float r, float scale) { return x + r * scale; }

/* Gradient reaching r (the up-projection); x's gradient is dy itself. */
WN_HD static inline float wn_scaled_add_dr(float dy, float scale) { return dy * scale; }

#ifdef __cplusplus
extern "C" {
#endif
/* elementwise_cpu.c */
int wn_cpu_scaled_add(wn_backend *be, size_t count, const float *x, const float *r,
                      float scale, float *y, const char *layer);
int wn_cpu_scaled_add_backward(wn_backend *be, size_t count, const float *dy, float scale,
                               float *dx, float *dr, int accumulate, const char *layer);
int wn_cpu_mul(wn_backend *be, size_t count, const float *a, const float *b, float *y,
               const char *layer);
/* elementwise.cu */
int wn_cuda_scaled_add(wn_backend *be, size_t count, const float *x, const float *r,
                       float scale, float *y, const char *layer);
int wn_cuda_scaled_add_backward(wn_backend *be, size_t count, const float *dy, float scale,
                                float *dx, float *dr, int accumulate, const char *layer);
int wn_cuda_mul(wn_backend *be, size_t count, const float *a, const float *b, float *y,
                const char *layer);
/* bf16 (kernels/common/backend_bf16_ops.h): elementwise_cpu.c, elementwise.cu */
int wn_cpu_scaled_add_bf16(wn_backend *be, size_t count, const wn_bf16 *x, const wn_bf16 *r,
                           float scale, wn_bf16 *y, const char *layer);
int wn_cpu_scaled_add_backward_bf16(wn_backend *be, size_t count, const wn_bf16 *dy,
                                    float scale, wn_bf16 *dx, wn_bf16 *dr, int accumulate,
                                    const char *layer);
int wn_cuda_scaled_add_bf16(wn_backend *be, size_t count, const wn_bf16 *x, const wn_bf16 *r,
                            float scale, wn_bf16 *y, const char *layer);
int wn_cuda_scaled_add_backward_bf16(wn_backend *be, size_t count, const wn_bf16 *dy,
                                     float scale, wn_bf16 *dx, wn_bf16 *dr, int accumulate,
                                     const char *layer);
#ifdef __cplusplus
}
#endif
#endif
