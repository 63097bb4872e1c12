/* kernels/softmax_xent/softmax_xent.h — fused softmax + categorical cross-entropy on logits
 * + correct count, one row (one sample) per call (KERAS_SEMANTICS §8).
 *
 * Inside Keras's fit/evaluate the loss is computed from the Dense layer's logits z:
 *   loss = logsumexp(z) - z[label]   (no clipping), dloss/dz = softmax(z) - onehot.
 * With label smoothing s (Keras's CategoricalCrossentropy(label_smoothing=s)) the
 * target is y = onehot * (1 - s) + s / K, formed in float32 as Keras forms it:
 *   loss = logsumexp(z) - sum_j y_j z_j,   dloss/dz = softmax(z) - y;
 * s = 0 takes the plain form, bit for bit.
 * Accuracy: argmax(z) == label, the first maximum winning ties like tf.argmax
 * (argmax of z and of softmax(z) agree). Rows are short (K classes), so one thread
 * per row is the GPU mapping too.
 */
#ifndef WN_KERNELS_SOFTMAX_XENT_H
#define WN_KERNELS_SOFTMAX_XENT_H

#include <math.h>
#include <stdint.h>

#include "kernels/common/backend_ops.h"
#include "kernels/common/hd.h"

/* Index of the first maximum of z[0..k). */
WN_HD static inline int wn_argmax_first(const float *z, int k) {
    int best = 0;
    for (int j = 1; j < k; j++)
        if (z[j] > z[best]) best = j;
    return best;
}

/* Target j of a row with label smoothing s: onehot * (1 - s) + s / K. */
WN_HD static inline float wn_smoothed_target(int j, int32_t label, float s, int k) {
    return (j == label ? 1.0f : 0.0f) * (1.0f - s) + s / (float)k;
}

/* One row: returns the loss; writes probs[k] and dz[k] = (softmax - target) * inv_n
 * when they are not NULL; *correct = 1 when the first argmax equals label.
 * smoothing: Keras's label_smoothing (0 = none). Uses the max-shifted form so exp
 * never overflows. */
WN_HD static inline float wn_softmax_xent_row(const float *z, int k, int32_t label,
                                              float smoothing, float inv_n, float *probs,
                                              float *dz, int *correct) {
    int am = wn_argmax_first(z, k);
    float m = z[am];
    float s = 0.0f;
    for (int j = 0; j < k; j++) s += expf(z[j] - m);
    float log_s = logf(s);
    float shifted = 0.0f; /* sum_j y_j (m - z_j) with smoothing */
    for (int j = 0; j < k; j++) {
        float p = expf(z[j] - m) / s;
        float y = smoothing != 0.0f ? wn_smoothed_target(j, label, smoothing, k)
                                    : (j == label ? 1.0f : 0.0f);
        if (probs) probs[j] = p;
        if (dz) dz[j] = (p - y) * inv_n;
        if (smoothing != 0.0f) shifted += y * (m - z[j]);
    }
    *correct = am == label;
    return log_s + (smoothing != 0.0f ? shifted : m - z[label]);
}


#ifdef __cplusplus
extern "C" {
#endif
/* ---- entry points: softmax_xent_cpu.c (CPU backend), softmax_xent.cu (CUDA backend) ---- */
int wn_cpu_softmax_xent(wn_backend *be, int n, int k, const float *logits,
                        const int32_t *labels, float label_smoothing, float n_mean,
                        float *probs, float *dlogits, float *stats);
int wn_cuda_softmax_xent(wn_backend *be, int n, int k, const float *logits,
                         const int32_t *labels, float label_smoothing, float n_mean,
                         float *probs, float *dlogits, float *stats);
#ifdef __cplusplus
}
#endif

#endif
