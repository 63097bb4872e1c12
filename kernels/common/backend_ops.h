/* kernels/common/backend_ops.h — the contract every backend (CPU, CUDA) implements:
 * a backend is a const table of operations, a context, a name and a kind, in the
 * spirit of ggml's ggml-backend-impl.h. The runtime (engine/runtime/backend.h) calls
 * the table only through its dispatch layer, which checks arguments and shapes once;
 * an implementation may assume valid input.
 *
 * Conventions, shared by every op:
 *  - Tensors are float32, NHWC, contiguous. Letters: N batch, H height, W width,
 *    C input channels, K output channels (filters), P = N*H*W pixels.
 *  - Convolution kernels are HWIO (kh, kw, C/groups, K), Dense kernels (in, out):
 *    Keras's own layouts, so weight files load without transposes.
 *  - Every pointer is backend memory (host memory for the CPU backend, device
 *    memory for CUDA); move data with copy_to_backend / copy_to_host.
 *  - Gradient outputs named d<x> take `accumulate`: 0 overwrites, 1 adds to what is
 *    there (a tensor read by several layers sums the gradients of its readers).
 *    Weight gradients (dw, db, dshift) always overwrite: each weight has one user.
 *  - Every op returns WN_OK or WN_ERR with a reason (host/base/error.h); the `layer`
 *    argument names the Keras layer in such reasons and may be NULL.
 *  - Ops are asynchronous on backends that can be (CUDA): results are visible to
 *    the host only after copy_to_host or synchronize.
 *
 * Every backend fills every entry: what is trivial on one backend (pinned host
 * memory, asynchronous uploads, free memory) has a plain implementation there, so the
 * runtime never asks "is this CUDA?" and CPU tests take every path the GPU takes.
 */
#ifndef WN_BACKEND_OPS_H
#define WN_BACKEND_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/common/op_types.h"
#include "kernels/common/rank_group.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { WN_BACKEND_CPU = 0, WN_BACKEND_CUDA = 1 } wn_backend_kind;

/* The convolution calls whose scratch memory the planner asks about. */
typedef enum {
    WN_CONV_CALL_FORWARD = 0,
    WN_CONV_CALL_BACKWARD_DATA = 1,
    WN_CONV_CALL_BACKWARD_FILTER = 2
} wn_conv_call;

typedef struct wn_backend wn_backend;

/* One batch's augmentation draws (host arrays of n entries; NULL = that layer is
 * off for the batch). */
typedef struct wn_augment_batch {
    const uint8_t *flip;    /* RandomFlip('horizontal'): mirrored when non-zero */
    const float *angle;     /* RandomRotation: radians, counter-clockwise */
    const float *zoom;      /* RandomZoom: [2n], (width zoom, height zoom) per image */
    const float *shift;     /* RandomTranslation: [2n], (dx, dy) in pixels per image */
    const float *contrast;  /* RandomContrast: the factor per image */
} wn_augment_batch;

typedef struct wn_backend_ops {
    /* ---- backend memory ---- */
    void *(*alloc)(wn_backend *be, size_t bytes); /* NULL + reason on failure */
    void (*free)(wn_backend *be, void *p);
    int (*copy_to_backend)(wn_backend *be, void *dst, const void *src_host, size_t bytes);
    int (*copy_to_host)(wn_backend *be, void *dst_host, const void *src, size_t bytes);
    int (*copy)(wn_backend *be, void *dst, const void *src, size_t bytes);
    int (*fill)(wn_backend *be, float *x, size_t count, float value);
    int (*synchronize)(wn_backend *be);
    /* Bytes a new plan may still allocate (free memory plus the allocator's unused
     * reserve) and the memory in all. */
    int (*memory)(wn_backend *be, size_t *available, size_t *total);

    /* ---- host staging buffers the uploads read: pinned on CUDA (a true DMA),
     * 64-byte aligned ordinary memory on the CPU. NULL + reason on failure. ---- */
    void *(*host_alloc)(wn_backend *be, size_t bytes);
    void (*host_free)(wn_backend *be, void *p);

    /* ---- batch uploads into be->upload_slots alternating buffers:
     *   upload_async(slot, dst, src)  the copy waits until the slot was released
     *                                 (its last reader ran), and the ops queued after
     *                                 it wait for the copy;
     *   upload_release(slot)          the slot's last reader has been queued;
     *   upload_wait(slot)             the host waits for the copy (src may be refilled).
     * Synchronous on the CPU (a copy; release and wait return at once). ---- */
    int (*upload_async)(wn_backend *be, int slot, void *dst, const void *src_host,
                        size_t bytes);
    int (*upload_release)(wn_backend *be, int slot);
    int (*upload_wait)(wn_backend *be, int slot);

    /* ---- planning: the most temporary memory one convolution call takes from the
     * backend's allocator (transposed weights, padded copies, accumulation buffers),
     * so the planner can tell whether a plan fits before allocating it. ---- */
    size_t (*conv_scratch_bytes)(wn_backend *be, wn_conv_call call, const wn_conv_desc *d,
                                 int accumulate);

    /* ---- only deterministic algorithms from now on (same inputs, same bits run to
     * run; may cost speed). The CPU backend always is (static schedules, a fixed
     * thread count); CUDA restricts cuDNN's choices. ---- */
    int (*set_deterministic)(wn_backend *be, int on);

    /* ---- convolution (cross-correlation), y[N,OH,OW,K] ---- */
    int (*conv2d_forward)(wn_backend *be, const wn_conv_desc *d, const float *x,
                          const float *w, const float *bias /* K or NULL */, float *y,
                          const char *layer);
    int (*conv2d_backward_data)(wn_backend *be, const wn_conv_desc *d, const float *dy,
                                const float *w, float *dx, int accumulate,
                                const char *layer);
    int (*conv2d_backward_filter)(wn_backend *be, const wn_conv_desc *d, const float *x,
                                  const float *dy, float *dw, float *db /* or NULL */,
                                  const char *layer);
    /* The forward with its epilogue applied before the store (one pass over y instead
     * of two). Optional: NULL makes the dispatcher run conv2d_forward, then
     * affine_act_forward in place, which gives the same numbers. */
    int (*conv2d_forward_epilogue)(wn_backend *be, const wn_conv_desc *d, const float *x,
                                   const float *w, const float *bias,
                                   const wn_conv_epilogue *e, float *y, const char *layer);

    /* ---- per-channel affine + activation: y = act(x * scale[c] + shift[c]) ----
     * Inference BatchNormalization is scale = gamma/sqrt(var+eps) (gamma = 1 when
     * absent), shift = beta - mean*scale; a bare Activation passes scale = shift =
     * NULL. `count` = P*C elements, `c` channels. */
    int (*affine_act_forward)(wn_backend *be, size_t count, int c, const float *x,
                              const float *scale, const float *shift, wn_activation act,
                              float *y, const char *layer);
    /* Uses y (the forward output) for the activation mask. dshift[c] = sum of the
     * post-activation gradient (dbeta), NULL when beta is frozen; dx may be NULL
     * when no data gradient is needed. */
    int (*affine_act_backward)(wn_backend *be, size_t count, int c, const float *y,
                               const float *dy, const float *scale, wn_activation act,
                               float *dx, int accumulate, float *dshift,
                               const char *layer);

    /* ---- BatchNormalization gamma gradient (scale=True, inference mode), for
     * models whose BN has gamma (EfficientNet-Lite): with g = dy masked by the
     * activation at the forward output y (exactly as affine_act_backward masks it),
     * dgamma[c] = sum over the count/c pixels of g * (x - mean[c]) * inv_std[c],
     * x the BN's input, inv_std = 1/sqrt(moving_variance + epsilon). Overwrites
     * dgamma. NULL in a backend that cannot train gamma (the executor then refuses a
     * boundary that makes a gamma trainable). ---- */
    int (*bn_gamma_backward)(wn_backend *be, size_t count, int c, const float *x,
                             const float *y, const float *dy, const float *mean,
                             const float *inv_std, wn_activation act, float *dgamma,
                             const char *layer);

    /* ---- pooling (avg excludes padded cells from the divisor, as TF does) ---- */
    int (*pool_forward)(wn_backend *be, const wn_window *win, wn_pool_kind kind,
                        const float *x, float *y, const char *layer);
    int (*pool_backward)(wn_backend *be, const wn_window *win, wn_pool_kind kind,
                         const float *x, const float *y, const float *dy, float *dx,
                         int accumulate, const char *layer);

    /* ---- channel concatenation of n_in tensors with P pixels each ---- */
    int (*concat_forward)(wn_backend *be, size_t pixels, int n_in, const float *const *x,
                          const int *channels, float *y, const char *layer);
    int (*concat_backward)(wn_backend *be, size_t pixels, int n_in, const float *dy,
                           const int *channels, float *const *dx /* entries may be NULL */,
                           int accumulate, const char *layer);

    /* ---- element-wise arithmetic: y = x + scale * r (InceptionResNetV2's residual,
     * Add layers, running loss totals; y may alias x), and y = a * b ---- */
    int (*scaled_add)(wn_backend *be, size_t count, const float *x, const float *r,
                      float scale, float *y, const char *layer);
    /* dx += dy (or =), dr = scale*dy (or +=); either output may be NULL. */
    int (*scaled_add_backward)(wn_backend *be, size_t count, const float *dy, float scale,
                               float *dx, float *dr, int accumulate, const char *layer);
    int (*mul)(wn_backend *be, size_t count, const float *a, const float *b, float *y,
               const char *layer);

    /* ---- GlobalAveragePooling2D: x[N,H*W,C] -> y[N,C] ---- */
    int (*gap_forward)(wn_backend *be, int n, int hw, int c, const float *x, float *y,
                       const char *layer);
    int (*gap_backward)(wn_backend *be, int n, int hw, int c, const float *dy, float *dx,
                        int accumulate, const char *layer);

    /* ---- inverted dropout with a counter-based RNG: element i of a call keeps
     * its value (times 1/(1-rate)) iff uniform(seed, offset + i) >= rate, so the
     * same (seed, offset) gives the same mask on every backend. ---- */
    int (*dropout_forward)(wn_backend *be, size_t count, float rate, uint64_t seed,
                           uint64_t offset, const float *x, float *y, const char *layer);
    int (*dropout_backward)(wn_backend *be, size_t count, float rate, uint64_t seed,
                            uint64_t offset, const float *dy, float *dx, int accumulate,
                            const char *layer);

    /* ---- Dense: y[N,out] = x[N,in] . w[in,out] + b[out] ---- */
    int (*dense_forward)(wn_backend *be, int n, int in, int out, const float *x,
                         const float *w, const float *b, float *y, const char *layer);
    /* dx may be NULL (no data gradient below); dx, dw and db all overwrite (a
     * Dense input has a single reader). */
    int (*dense_backward)(wn_backend *be, int n, int in, int out, const float *x,
                          const float *w, const float *dy, float *dx, float *dw,
                          float *db, const char *layer);

    /* ---- fused softmax + categorical cross-entropy on logits (Keras's fit path:
     * loss = logsumexp(z) - z[label], no clipping) + correct count; with
     * label_smoothing s the target is onehot * (1 - s) + s / K (kernels/softmax_xent.h).
     * probs[N,K] may be NULL; dlogits[N,K] = (softmax - target) / n_mean may be NULL
     * (n_mean is the batch size the loss is averaged over). stats[0] += sum of losses,
     * stats[1] += number of argmax(z) == label (first maximum wins ties); stats
     * stays in backend memory. ---- */
    int (*softmax_xent)(wn_backend *be, int n, int k, const float *logits,
                        const int32_t *labels, float label_smoothing, float n_mean,
                        float *probs, float *dlogits, float *stats /* [2] */);

    /* ---- Keras Adam over one flat buffer (t = 1-based step):
     * m += (g-m)(1-b1); v += (g*g-v)(1-b2);
     * p -= lr*sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps)
     * (1-b1) and (1-b2) are float32 of the decimal differences (0.001f for 0.999),
     * as tf_keras forms them from Python floats; weight_decay > 0 first decays
     * every parameter, p -= p*wd*lr (Keras's decoupled weight decay); see
     * kernels/adam/adam.h. ---- */
    int (*adam_update)(wn_backend *be, size_t count, float *p, const float *g, float *m,
                       float *v, float lr, float beta1, float beta2, float eps,
                       float weight_decay, long t);

    /* ---- augmentation + preprocess: uint8 x[N,H,W,C] -> float y, per image the
     * layers of `aug` in Keras's order (an optional horizontal flip, a rotation by
     * angle[i] radians about the pixel-index centre, a zoom, a translation, each a
     * reflect-fill bilinear resampling of the previous layer's output, then a
     * contrast change), then preprocess_input of `mode` (kernels/augment/augment.h:
     * WN_AUG_PRE_TF y = v/127.5 - 1, _CAFFE, _TORCH). aug may be NULL (none). ---- */
    int (*augment_preprocess)(wn_backend *be, int n, int h, int w, int c,
                              const uint8_t *x, const wn_augment_batch *aug, float *y,
                              int mode);

    /* ---- data-parallel training (kernels/common/rank_group.h): join_group makes
     * the backend's communicator for `group` (which must outlive the backend): CPU,
     * the group's host sum; CUDA, an NCCL communicator whose id rank 0 broadcasts
     * (without NCCL: the host sum through a host copy). allreduce_sum then sums count
     * floats of backend memory in place over the ranks, in stream order after the
     * ops queued before it; without a group (or a group of one) it leaves x as is. */
    int (*join_group)(wn_backend *be, const wn_rank_group *group);
    int (*allreduce_sum)(wn_backend *be, float *x, size_t count);
    /* Optional, both or neither (NULL: the dispatcher's allreduce_begin runs
     * allreduce_sum at once, and allreduce_end does nothing). allreduce_begin queues
     * the sum of x after the ops queued before it, off the compute order, so that it
     * overlaps the ops queued after it, which must leave x alone; allreduce_end puts
     * every op queued after it behind every sum begun. A data-parallel step begins one
     * per gradient bucket during backward (engine/runtime/grad_buckets.c). */
    int (*allreduce_begin)(wn_backend *be, float *x, size_t count);
    int (*allreduce_end)(wn_backend *be);

    void (*destroy)(wn_backend *be);
} wn_backend_ops;

struct wn_backend {
    const wn_backend_ops *ops;
    void *ctx;             /* backend state (handles, streams, caches) */
    const char *name;      /* "cpu" or "cuda" */
    wn_backend_kind kind;
    int upload_slots;      /* image buffers uploads alternate between: 1 CPU, 2 CUDA */
    size_t alloc_align;    /* the allocator rounds every buffer up to this many bytes */
    size_t reserve_bytes;  /* kept free beyond a plan (CUDA: the cuDNN workspace) */
    /* bf16 ops (kernels/common/backend_bf16_ops.h), NULL when the backend has none */
    const struct wn_backend_bf16_ops *bf16;
};

#ifdef __cplusplus
}
#endif
#endif
