/* engine/runtime/executor.h — runs a wn_model on a backend: forward, backward, Adam.
 *
 * An executor is planned once per (model, backend, max batch, fine-tune boundary):
 * every buffer it will ever use is allocated at creation, so a training step does
 * no allocation. The plan:
 *  - params: one backend buffer [n_params], stats [n_stats], plus per-BN derived
 *    scale/shift; grads, Adam m and v: one buffer each for the trainable suffix
 *    of params only ([trainable_first, n_params), see engine/model/model.h);
 *  - activations and their gradients: one arena, with offsets packed by lifetime
 *    (forward and backward together). Layers that backward does not reach (below
 *    the boundary, or on no path from a trainable layer) run in inference mode
 *    and keep nothing: their buffers are reused as soon as their readers are done;
 *  - BatchNormalization followed only by an Activation runs as one affine_act
 *    call; no data gradient is computed below the lowest trainable layer, and
 *    frozen layers get no weight gradient.
 *
 * Training mode: augmentation (the caller's flips and angles) and dropout (a
 * counter-based RNG from the caller's seed) are on; the backbone's BatchNorm is
 * always in inference mode, as the notebook's `base(x, training=False)` makes it.
 * Inference mode (predict/eval): no augmentation (preprocess only), no dropout.
 *
 * Images are uint8 NHWC host arrays of n <= batch images at the model's size;
 * labels are class indices. A smaller last batch is fine (the loss is the mean
 * over its n images, as Keras does).
 *
 * Threading: one executor is used by one thread at a time.
 */
#ifndef WN_EXECUTOR_H
#define WN_EXECUTOR_H

#include <stddef.h>
#include <stdint.h>

#include "engine/runtime/backend.h"
#include "engine/model/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wn_executor wn_executor;

enum {
    WN_EXEC_INFERENCE_ONLY = 1, /* no backward, grads or Adam state (predict/eval) */
    WN_EXEC_KEEP_ALL = 2,       /* every layer's output keeps its own buffer, for
                                   tests that read intermediate values */
    WN_EXEC_BF16 = 4            /* --precision bf16: bf16 activations and convolution
                                   operands, float32 accumulation, float32 master
                                   weights, Adam state, BN terms, head and loss
                                   (engine/runtime/exec_internal.h has the rules) */
};

/* Plans for `batch` images with the model's current boundary, allocates
 * everything on `be`, and uploads the model's weights. The model and backend must
 * outlive the executor. A plan that does not fit in the backend's free memory is
 * refused before anything is allocated, with a message that gives the largest batch
 * that fits. */
int wn_executor_create(wn_executor **out, wn_model *model, wn_backend *be, int batch,
                       unsigned flags);
void wn_executor_destroy(wn_executor *ex);

/* Data-parallel steps (wn_executor_train_step_part) sum the weight gradients over the
 * ranks in buckets of about `bytes`, each begun as soon as backward has written it,
 * so that on a backend whose sums overlap compute (wn_backend_allreduce_overlaps:
 * CUDA with NCCL) they travel while backward goes on; 0 (the default): one sum of the
 * whole buffer after backward. The results are the same either way (each bucket is
 * summed once, after its last write). Kept through new boundaries. */
int wn_executor_set_grad_buckets(wn_executor *ex, size_t bytes);
/* The buckets of the current plan (0: one sum after backward). */
int wn_executor_grad_buckets(const wn_executor *ex);

/* Label smoothing of the training and evaluation loss (Keras's
 * CategoricalCrossentropy(label_smoothing=s)); 0 (the default) is none. Predictions
 * are not affected. */
int wn_executor_set_label_smoothing(wn_executor *ex, float smoothing);
float wn_executor_label_smoothing(const wn_executor *ex);

/* Applies a new fine-tune boundary to the model and re-plans: the trainable suffix
 * changes, so gradients and Adam state are re-allocated and Adam restarts (step 0,
 * m = v = 0), as a Keras re-compile does. Weights on the backend are kept. */
int wn_executor_set_fine_tune(wn_executor *ex, int fine_tune_at);

/* Weights: host model arrays <-> backend. Upload also recomputes the BN affine
 * terms; call it after changing model->params/stats on the host. */
int wn_executor_upload_weights(wn_executor *ex);
int wn_executor_download_weights(wn_executor *ex);

/* One training step: augment_preprocess -> forward (training mode) -> softmax
 * cross-entropy on the logits -> backward to the boundary -> Adam (step t+1).
 * flips[n] (0/1) and angles[n] (radians) may be NULL (no flip / no rotation).
 * The batch's loss sum and correct count are added to the executor's running
 * totals on the backend (read them with wn_executor_take_totals); when `loss` or
 * `correct` is non-NULL this step's mean loss and correct count are also returned
 * (this waits for the backend's forward and loss, once per step).
 *
 * Asynchronous backends (CUDA): backward and Adam may still be running when this
 * returns; every call that reads results back (take_totals, read_grads,
 * download_weights, ...) waits for them. The images are uploaded on a copy stream
 * that overlaps the previous step's queued work: pass the loader's pinned staging
 * buffer to make that copy asynchronous. In every case `images` has been read when
 * a call of this API returns, and the caller may refill it at once. */
int wn_executor_train_step(wn_executor *ex, const uint8_t *images, const int32_t *labels,
                           int n, const uint8_t *flips, const float *angles,
                           uint64_t dropout_seed, const wn_adam_params *adam, float *loss,
                           int *correct);
/* A rank's part of a data-parallel step (engine/train/distributed.h): its n images
 * are places [first, first + n) of a whole batch of `global` images spread over the
 * ranks of the backend's group (wn_backend_join_group). The loss is averaged over
 * `global` and the weight gradients are summed over the ranks (allreduce_sum) before
 * Adam, so every rank takes the step one process takes on the whole batch; dropout
 * draws each element's mask at its place in the whole batch. n may be 0 (a short
 * last batch leaves some rank nothing): the rank then adds a zero gradient. The
 * totals and `loss` (the mean over this rank's n images) stay this rank's. */
typedef struct wn_step_part {
    int global; /* images of the whole batch, over all ranks */
    int first;  /* place of this rank's first image in it */
} wn_step_part;

/* wn_executor_train_step with every augmentation layer's draws (kernels/common/
 * backend_ops.h wn_augment_batch, indexed from this call's first image; NULL: none):
 * flip, rotation, zoom, translation, contrast; for one rank's part of a batch (part
 * NULL: the whole batch, no reduction). */
int wn_executor_train_step_part(wn_executor *ex, const uint8_t *images, const int32_t *labels,
                                int n, const wn_augment_batch *aug, uint64_t dropout_seed,
                                const wn_step_part *part,
                                const wn_adam_params *adam, float *loss, int *correct);

/* Inference on a labelled batch: adds the loss sum and correct count to the
 * running totals; per-batch values as in train_step. */
int wn_executor_eval_batch(wn_executor *ex, const uint8_t *images, const int32_t *labels,
                           int n, float *loss, int *correct);

/* Inference: softmax probabilities, host probs[n * num_classes]. */
int wn_executor_predict(wn_executor *ex, const uint8_t *images, int n, float *probs);

/* Forward only, for tests: runs inference (training = 0) or training mode (flips,
 * angles, dropout seed as in train_step) and stops. Read outputs with
 * wn_executor_read_output. */
int wn_executor_forward(wn_executor *ex, const uint8_t *images, int n, int training,
                        const uint8_t *flips, const float *angles, uint64_t dropout_seed);

/* Copies the output of graph layer `layer` for the last forward's n images
 * ([n, out_h, out_w, out_c] floats) to host `dst`. Available for the backbone
 * output and the logits always, for any layer with WN_EXEC_KEEP_ALL; fails with a
 * reason otherwise. */
int wn_executor_read_output(wn_executor *ex, int layer, float *dst);

/* Copies the weight gradients of the last train step or wn_executor_backward
 * ([trainable count] floats, aligned with params[trainable_first..]) to host. */
int wn_executor_read_grads(wn_executor *ex, float *dst);

/* Running totals since the last take: summed loss and correct count over `seen`
 * images; resets them. */
int wn_executor_take_totals(wn_executor *ex, double *loss_sum, long *correct, long *seen);

/* Adam state for checkpoints: m and v are host arrays of wn_model_trainable_count
 * floats; t is the number of steps taken (Keras's `iterations`). */
long wn_executor_adam_step(const wn_executor *ex);
int wn_executor_get_adam(wn_executor *ex, float *m, float *v, long *t);
int wn_executor_set_adam(wn_executor *ex, const float *m, const float *v, long t);

/* Planning facts, for `bench` and `summary`. */
typedef struct wn_plan_info {
    int batch;
    size_t arena_bytes;       /* activations + activation gradients (peak) */
    size_t weight_bytes;      /* params + stats + BN affine terms */
    size_t optimizer_bytes;   /* grads + Adam m + v */
    size_t total_bytes;       /* everything the executor allocated on the backend */
    int steps;                /* forward steps (after fusion) */
    int backward_steps;       /* steps that run backward */
    int lowest_backward_layer; /* graph id of the lowest layer backward reaches, -1 */
    double forward_flops;     /* per image: convolutions and Dense, 2 per multiply-add */
    double train_flops;       /* per image: forward + the weight and data gradients that
                                 backward computes under the current boundary */
    size_t needed_bytes;      /* what the plan needs free on its backend before it is
                                 allocated: every buffer as the backend rounds it, the
                                 largest per-op scratch and the backend's reserve (the
                                 out-of-memory check compares this) */
} wn_plan_info;
void wn_executor_plan_info(const wn_executor *ex, wn_plan_info *info);

/* 1 when the last training step computed a data gradient for the output of graph
 * layer `layer` (tests check that none is computed below the boundary). */
int wn_executor_has_data_grad(const wn_executor *ex, int layer);

#ifdef __cplusplus
}
#endif
#endif
