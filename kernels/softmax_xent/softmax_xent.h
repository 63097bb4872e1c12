/* kernels/softmax_xent/softmax_xent.h — fused softmax + categorical cross-entropy on logits
 * + correct count, one row (one sample) per call (KERAS_SEMANTICS §8).
 *
 * Inside Keras's fit/evaluate the loss is computed from the Dense layer's logits z:
 *   loss = logsumexp(z) - z[label]   (no clipping), dloss/dz = softmax(z) - onehot.
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

/* One row: returns the loss; writes probs[k] and dz[k] = (softmax - onehot) * inv_n
 * when they are not NULL; *correct = 1 when the first argmax equals label.
 * Uses the max-shifted form so exp never overflows. */
WN_HD static inline float wn_softmax_xent_row(const float *z, int k, int32_t label,
                                              float inv_n, float *probs, float *dz,
                                              int *correct) {
    int am = wn_argmax_first(z, k);
    float m = z[am];
    float s = 0.0f;
    for (int j = 0; j < k; j++) s += expf(z[j] - m);
    float log_s = logf(s);
    for (int j = 0; j < k; j++) {
        float p = expf(z[j] - m) / s;
        if (probs) probs[j] = p;
        if (dz) dz[j] = (p - (j == label ? 1.0f : 0.0f)) * inv_n;
    }
    *correct = am == label;
    return log_s + (m - z[label]);
}


#ifdef __cplusplus
extern "C" {
#endif
/* ---- entry points: softmax_xent_cpu.c (CPU backend), softmax_xent.cu (CUDA backend) ---- */
int wn_cpu_softmax_xent(wn_backend *be, int n, int k, const float *logits,
                        const int32_t *labels, float n_mean, float *probs, float *dlogits,
                        float *stats);
int wn_cuda_softmax_xent(wn_backend *be, int n, int k, const float *logits,
                         const int32_t *labels, float n_mean, float *probs, float *dlogits,
                         float *stats);
#ifdef __cplusplus
}
#endif

#endif
