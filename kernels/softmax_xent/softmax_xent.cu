/* kernels/softmax_xent/softmax_xent.cu — the fused softmax + cross-entropy on logits + correct
 * count (kernels/softmax_xent.h), one row per thread.
 *
 * Rows are short (K classes) and few (one batch), so the whole batch is one block of
 * 256 threads: each thread takes rows t, t+256, ..., sums its losses and correct
 * counts in double, and a shared-memory tree combines them in a fixed order before
 * thread 0 adds them to stats — deterministic, and no atomics. The labels live on
 * the device, so they are checked there: an out-of-range label makes that row's
 * loss, probabilities and gradient NaN (the host sees a NaN loss) instead of
 * reading out of bounds.
 */
#include <math.h>

#include "kernels/common/cuda_ctx.h"
#include "kernels/softmax_xent/softmax_xent.h"

#define XENT_THREADS 256

static __global__ void softmax_xent_kernel(int n, int k, const float *__restrict__ logits,
                                           const int32_t *__restrict__ labels, float smoothing,
                                           float inv_n,
                                           float *__restrict__ probs, float *__restrict__ dz,
                                           float *__restrict__ stats) {
    __shared__ double loss_sum[XENT_THREADS];
    __shared__ double correct_sum[XENT_THREADS];
    double loss = 0.0, correct = 0.0;
    for (int r = threadIdx.x; r < n; r += XENT_THREADS) {
        size_t o = (size_t)r * k;
        int32_t label = labels[r];
        if (label < 0 || label >= k) {
            loss += (double)NAN;
            for (int j = 0; j < k; j++) {
                if (probs) probs[o + j] = NAN;
                if (dz) dz[o + j] = NAN;
            }
            continue;
        }
        int ok = 0;
        loss += wn_softmax_xent_row(logits + o, k, label, smoothing, inv_n, probs ? probs + o : NULL,
                                    dz ? dz + o : NULL, &ok);
        correct += ok;
    }
    loss_sum[threadIdx.x] = loss;
    correct_sum[threadIdx.x] = correct;
    __syncthreads();
    for (int s = XENT_THREADS / 2; s > 0; s /= 2) {
        if ((int)threadIdx.x < s) {
            loss_sum[threadIdx.x] += loss_sum[threadIdx.x + s];
            correct_sum[threadIdx.x] += correct_sum[threadIdx.x + s];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        stats[0] += (float)loss_sum[0];
        stats[1] += (float)correct_sum[0];
    }
}

int wn_cuda_softmax_xent(wn_backend *be, int n, int k, const float *logits,
                         const int32_t *labels, float label_smoothing, float n_mean,
                         float *probs, float *dlogits, float *stats) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    softmax_xent_kernel<<<1, XENT_THREADS, 0, ctx->stream>>>(n, k, logits, labels, label_smoothing,
                                                             1.0f / n_mean,
                                                             probs, dlogits, stats);
    return wn_cuda_op_done(be, "softmax_xent kernel", "loss");
}
