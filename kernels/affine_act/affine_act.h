/* kernels/affine_act/affine_act.h — element functions of the per-channel affine + activation
 * (inference BatchNormalization folded to scale/shift, ReLU, ReLU6).
 *
 * Forward:  y = act(x * scale + shift)       (scale = 1, shift = 0 for a bare Activation)
 * Backward: g = dy masked where the activation is flat, dx = g * scale, dshift = sum g.
 * The mask is taken from the forward output y, as TensorFlow's ReluGrad/Relu6Grad do
 * (y > 0 iff x > 0; 0 < y < 6 iff 0 < x < 6), so the pre-activation need not be kept.
 */
#ifndef WN_KERNELS_AFFINE_ACT_H
#define WN_KERNELS_AFFINE_ACT_H

#include "kernels/common/backend_ops.h"
#include "kernels/common/bf16.h"
#include "kernels/common/hd.h"

/* act(v) for one element; ReLU6 is min(max(v, 0), 6). NaN passes through ReLU as 0
 * is not guaranteed: the comparisons are written like TF's (v > 0 ? v : 0). */
WN_HD static inline float wn_act_apply(float v, int act) {
    if (act == WN_ACT_RELU) return v > 0.0f ? v : 0.0f;
    if (act == WN_ACT_RELU6) return v > 0.0f ? (v < 6.0f ? v : 6.0f) : 0.0f;
    return v;
}

/* 1 where the activation passes the gradient (from the forward output y), else 0. */
WN_HD static inline int wn_act_passes(float y, int act) {
    if (act == WN_ACT_RELU) return y > 0.0f;
    if (act == WN_ACT_RELU6) return y > 0.0f && y < 6.0f;
    return 1;
}

/* The activation's derivative applied to dy: dy where it passes, else +0. */
WN_HD static inline float wn_act_grad(float y, float dy, int act) {
    return wn_act_passes(y, act) ? dy : 0.0f;
}

/* y = act(x * scale + shift) for one element. */
WN_HD static inline float wn_affine_act_forward(float x, float scale, float shift, int act) {
    return wn_act_apply(x * scale + shift, act);
}

/* dx for one element given the post-activation gradient g = wn_act_grad(y, dy, act). */
WN_HD static inline float wn_affine_act_dx(float g, float scale) { return g * scale; }

/* One pixel's term of the BN gamma gradient: g * x_hat, x_hat = (x - mean) * inv_std
 * (g from wn_act_grad). */
WN_HD static inline float wn_bn_gamma_term(float g, float x, float mean, float inv_std) {
    return g * ((x - mean) * inv_std);
}


#ifdef __cplusplus
extern "C" {
#endif
/* ---- entry points: affine_act_cpu.c (CPU backend), affine_act.cu (CUDA backend) ---- */
int wn_cpu_affine_act_forward(wn_backend *be, size_t count, int c, const float *x,
                              const float *scale, const float *shift, wn_activation act,
                              float *y, const char *layer);
int wn_cpu_affine_act_backward(wn_backend *be, size_t count, int c, const float *y,
                               const float *dy, const float *scale, wn_activation act,
                               float *dx, int accumulate, float *dshift, const char *layer);
int wn_cpu_bn_gamma_backward(wn_backend *be, size_t count, int c, const float *x,
                             const float *y, const float *dy, const float *mean,
                             const float *inv_std, wn_activation act, float *dgamma,
                             const char *layer);
int wn_cuda_affine_act_forward(wn_backend *be, size_t count, int c, const float *x,
                               const float *scale, const float *shift, wn_activation act,
                               float *y, const char *layer);
int wn_cuda_affine_act_backward(wn_backend *be, size_t count, int c, const float *y,
                                const float *dy, const float *scale, wn_activation act,
                                float *dx, int accumulate, float *dshift, const char *layer);
int wn_cuda_bn_gamma_backward(wn_backend *be, size_t count, int c, const float *x,
                              const float *y, const float *dy, const float *mean,
                              const float *inv_std, wn_activation act, float *dgamma,
                              const char *layer);
/* ---- bf16 (kernels/common/backend_bf16_ops.h): affine_act_cpu.c and bn_gamma_cpu.c, affine_act.cu ---- */
int wn_cpu_affine_act_forward_bf16(wn_backend *be, size_t count, int c, const wn_bf16 *x,
        const float *scale, const float *shift, wn_activation act, wn_bf16 *y,
        const char *layer);
int wn_cpu_affine_act_backward_bf16(wn_backend *be, size_t count, int c, const wn_bf16 *y,
        const wn_bf16 *dy, const float *scale, wn_activation act, wn_bf16 *dx,
        int accumulate, float *dshift, const char *layer);
int wn_cpu_bn_gamma_backward_bf16(wn_backend *be, size_t count, int c, const wn_bf16 *x,
        const wn_bf16 *y, const wn_bf16 *dy, const float *mean, const float *inv_std,
        wn_activation act, float *dgamma, const char *layer);
int wn_cuda_affine_act_forward_bf16(wn_backend *be, size_t count, int c, const wn_bf16 *x,
        const float *scale, const float *shift, wn_activation act, wn_bf16 *y,
        const char *layer);
int wn_cuda_affine_act_backward_bf16(wn_backend *be, size_t count, int c, const wn_bf16 *y,
        const wn_bf16 *dy, const float *scale, wn_activation act, wn_bf16 *dx,
        int accumulate, float *dshift, const char *layer);
int wn_cuda_bn_gamma_backward_bf16(wn_backend *be, size_t count, int c, const wn_bf16 *x,
        const wn_bf16 *y, const wn_bf16 *dy, const float *mean, const float *inv_std,
        wn_activation act, float *dgamma, const char *layer);
#ifdef __cplusplus
}
#endif

#endif
