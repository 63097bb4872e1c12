/* kernels/adam/adam.h — Keras's Adam update, one parameter per call (KERAS_SEMANTICS §6),
 * as tf_keras's optimizers/adam.py computes it in float32:
 *
 *   m <- m + (g - m) * (1 - b1);  v <- v + (g^2 - v) * (1 - b2)
 *   alpha = lr * sqrt(1 - b2^t) / (1 - b1^t)        (t = 1-based step)
 *   p <- p - (m * alpha) / (sqrt(v) + eps)          (eps outside the bias correction)
 *
 * Keras holds beta1/beta2 as Python doubles: (1 - beta) is computed in double and
 * rounded to float32 once (0.001f for 0.999), while beta^t uses float32(beta). The
 * backend interface carries the betas as float, so wn_adam_coeffs_make recovers the
 * decimal the user wrote (the shortest decimal that rounds to the float, e.g. 0.999)
 * and forms 1 - beta from it in double. All scalars are computed once per step on
 * the host and passed by value to every element on any backend, so the CPU and the
 * GPU use the same bits.
 */
#ifndef WN_KERNELS_ADAM_H
#define WN_KERNELS_ADAM_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernels/common/backend_ops.h"
#include "kernels/common/hd.h"

/* The per-step scalars of the update. */
typedef struct wn_adam_coeffs {
    float alpha;        /* lr * sqrt(1 - b2^t) / (1 - b1^t), float32 */
    float one_minus_b1; /* float32(1 - b1), 1 - b1 formed in double */
    float one_minus_b2; /* float32(1 - b2) */
    float eps;
    float lr, weight_decay; /* the decay's factors, float32 (0: no decay) */
} wn_adam_coeffs;

/* Host side: the shortest decimal (up to 9 digits) that rounds to f, as a double:
 * the value a Keras user typed, e.g. 0.999 for 0.999f. */
static inline double wn_adam_decimal(float f) {
    char buf[32];
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, (double)f);
        double d = strtod(buf, NULL);
        if ((float)d == f) return d;
    }
    return (double)f;
}

/* Host side, once per step. */
static inline wn_adam_coeffs wn_adam_coeffs_make(float lr, float beta1, float beta2, float eps,
                                                 float weight_decay, long t) {
    wn_adam_coeffs k;
    float b1t = powf(beta1, (float)t), b2t = powf(beta2, (float)t);
    k.alpha = lr * sqrtf(1.0f - b2t) / (1.0f - b1t);
    k.one_minus_b1 = (float)(1.0 - wn_adam_decimal(beta1));
    k.one_minus_b2 = (float)(1.0 - wn_adam_decimal(beta2));
    k.eps = eps;
    k.lr = lr;
    k.weight_decay = weight_decay;
    return k;
}

/* Keras's decoupled weight decay of one parameter: p - (p * wd) * lr, each operation
 * rounded on its own (no fused multiply-add on the GPU), as TensorFlow computes
 * `variable.assign_sub(variable * wd * lr)`. */
WN_HD static inline float wn_adam_decay(float p, wn_adam_coeffs k) {
#ifdef __CUDA_ARCH__
    return __fsub_rn(p, __fmul_rn(__fmul_rn(p, k.weight_decay), k.lr));
#else
    return p - (p * k.weight_decay) * k.lr;
#endif
}

/* One parameter: updates *p, *m, *v in place from gradient g (after the weight
 * decay, when there is one). */
WN_HD static inline void wn_adam_step(float *p, float g, float *m, float *v, wn_adam_coeffs k) {
    if (k.weight_decay != 0.0f) *p = wn_adam_decay(*p, k);
    float mm = *m + (g - *m) * k.one_minus_b1;
    float vv = *v + (g * g - *v) * k.one_minus_b2;
    *m = mm;
    *v = vv;
    *p = *p - (mm * k.alpha) / (sqrtf(vv) + k.eps);
}


#ifdef __cplusplus
extern "C" {
#endif
/* ---- entry points: adam_cpu.c (CPU backend), adam.cu (CUDA backend) ---- */
int wn_cpu_adam_update(wn_backend *be, size_t count, float *p, const float *g, float *m,
                       float *v, float lr, float beta1, float beta2, float eps, float weight_decay,
                       long t);
int wn_cuda_adam_update(wn_backend *be, size_t count, float *p, const float *g, float *m,
                        float *v, float lr, float beta1, float beta2, float eps,
                        float weight_decay, long t);
#ifdef __cplusplus
}
#endif

#endif
