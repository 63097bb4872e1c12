/* kernels/softmax_xent/softmax_xent_cpu.c — the CPU backend's fused softmax + cross-entropy + accuracy count: an OpenMP loop over the
 * element functions of kernels/softmax_xent/softmax_xent.h, the formulas the CUDA kernel runs too. */
#include <math.h>
#include <string.h>

#include "host/base/error.h"
#include "kernels/common/cpu_ctx.h"
#include "kernels/softmax_xent/softmax_xent.h"

int wn_cpu_softmax_xent(wn_backend *be, int n, int k, const float *logits,
                        const int32_t *labels, float label_smoothing, float n_mean,
                        float *probs, float *dlogits, float *stats) {
    (void)be;
    for (int r = 0; r < n; r++)
        if (labels[r] < 0 || labels[r] >= k)
            return wn_fail("softmax_xent: label %d of sample %d is outside [0, %d)", (int)labels[r],
                           r, k);
    float inv_n = 1.0f / n_mean;
    double loss = 0.0;
    long correct = 0;
    for (int r = 0; r < n; r++) {
        int ok = 0;
        size_t o = (size_t)r * k;
        loss += wn_softmax_xent_row(logits + o, k, labels[r], label_smoothing, inv_n, probs ? probs + o : NULL,
                                    dlogits ? dlogits + o : NULL, &ok);
        correct += ok;
    }
    stats[0] += (float)loss;
    stats[1] += (float)correct;
    return WN_OK;
}

