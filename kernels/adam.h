/* kernels/adam.h — Keras's Adam update, one parameter per call (KERAS_SEMANTICS §6).
 *
 *   m <- m + (g - m)(1 - b1);  v <- v + (g^2 - v)(1 - b2)
 *   alpha = lr * sqrt(1 - b2^t) / (1 - b1^t)        (t = 1-based step)
 *   p <- p - (m * alpha) / (sqrt(v) + eps)          (eps outside the bias correction)
 *
 * alpha is a scalar: compute it once per step on the host with wn_adam_alpha, in
 * float32 like Keras's graph, and pass it to every element (on any backend), so the
 * CPU and the GPU use the same bits for it.
 */
#ifndef WN_KERNELS_ADAM_H
#define WN_KERNELS_ADAM_H

#include <math.h>

#include "kernels/hd.h"

/* Host side, once per step: lr * sqrt(1 - b2^t) / (1 - b1^t) in float32. */
static inline float wn_adam_alpha(float lr, float beta1, float beta2, long t) {
    float b1t = powf(beta1, (float)t), b2t = powf(beta2, (float)t);
    return lr * sqrtf(1.0f - b2t) / (1.0f - b1t);
}

/* One parameter: updates *p, *m, *v in place from gradient g. */
WN_HD static inline void wn_adam_step(float *p, float g, float *m, float *v, float alpha,
                                      float beta1, float beta2, float eps) {
    float mm = *m + (g - *m) * (1.0f - beta1);
    float vv = *v + (g * g - *v) * (1.0f - beta2);
    *m = mm;
    *v = vv;
    *p = *p - (mm * alpha) / (sqrtf(vv) + eps);
}

#endif
