/* engine/train/train_loop.h — one training phase as Keras's model.fit runs it, and
 * evaluation as model.evaluate / predict run it.
 *
 * wn_train_phase is `fit(train, epochs, validation_data=val, callbacks=[EarlyStopping])`
 * after a fresh `compile(Adam(lr, beta_1, beta_2, epsilon))`, on an executor
 * (engine/runtime/executor.h) and the host loader (host/loader.h):
 *  - each epoch: the loader's seeded permutation of the training images; per image
 *    a flip and an angle, per batch a dropout seed, drawn from the phase's RNG
 *    (engine/train/augment_draws.h) at the start of the epoch; one train step per batch
 *    (augmentation, forward, loss, backward, Adam); the epoch's loss and accuracy
 *    are the per-sample means, as Keras's metrics are;
 *  - validation after every epoch (inference mode); the accuracy Keras compares
 *    is the float32 ratio, widened to double (engine/train/early_stopping.h);
 *  - EarlyStopping(val_categorical_accuracy, min_delta, patience, mode max,
 *    restore) with snapshots of the trainable weights;
 *  - history rows (and the run folder's history files rewritten after every epoch);
 *  - a checkpoint after every epoch (engine/train/checkpoint.h) and on interruption.
 *
 * Faults:
 *  - interruption (*interrupt set, e.g. by a SIGINT/SIGTERM handler): the current
 *    training step, or the current validation batch, finishes, a checkpoint of the
 *    partly done epoch is written, and the call returns WN_OK with
 *    result.interrupted = 1; resuming from that checkpoint ends with the same
 *    weights as a run that was never interrupted. An interrupted validation pass is
 *    discarded: the checkpoint records every training step of the epoch as done
 *    (step = steps per epoch, with the epoch's training totals), and the resumed
 *    run validates the epoch again from its first batch;
 *  - a NaN or Inf training or validation loss stops the phase at once: the best
 *    weights so far (or, before the first epoch ends, the phase's starting
 *    weights) are put back, the checkpoint records WN_PHASE_DIVERGED, and the call
 *    returns WN_OK with result.status = WN_PHASE_DIVERGED and a reason in
 *    result.message.
 * On return the model's host weights (m->params) hold the phase's final weights.
 *
 * Several ranks (engine/train/distributed.h): the loaders are sharded; every rank
 * calls wn_train_phase and wn_evaluate* alike, each training step sums the
 * gradients over the ranks, the figures are the ranks' sums, and only rank 0 writes
 * checkpoints (o->checkpoint is read by every rank to resume).
 */
#ifndef WN_TRAIN_LOOP_H
#define WN_TRAIN_LOOP_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "engine/train/checkpoint.h"
#include "engine/train/early_stopping.h"
#include "engine/runtime/executor.h"
#include "engine/train/metrics.h"
#include "engine/model/model.h"
#include "engine/train/progress.h"
#include "engine/train/run_report.h"
#include "host/loader.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Tests: called after each training step (pass "train") and each validation or
 * test batch ("validation", "test") with the 1-based epoch (the pass's own number
 * for "test") and the 1-based batch; e.g. to send the process a signal at an exact
 * point. */
typedef void (*wn_batch_hook)(void *user, const char *pass, int epoch, int batch);

typedef struct wn_train_options {
    const char *phase;        /* name in history and checkpoint: "transfer", "finetune" */
    int phase_index;          /* 0, 1, ...: selects the RNG stream and loader epochs */
    int epochs;               /* maximum epochs (20) */
    float lr;                 /* Adam learning rate */
    float beta_1, beta_2;     /* Adam's decay rates of the moment estimates (0.9, 0.999) */
    float epsilon;            /* Adam's epsilon (1e-7, Keras's; not PyTorch's 1e-8) */
    float weight_decay;       /* Adam(weight_decay=...): p -= p*wd*lr before each update,
                                 on every trainable weight (0: none) */
    uint64_t seed;            /* the run's seed */
    int augment;              /* 1: random flip + rotation; 0: preprocess only */
    float rotation;           /* RandomRotation factor (0.2 = +-72 degrees) */
    float zoom;               /* RandomZoom factor: zoom in U[1-f, 1+f) (0: off) */
    float translate;          /* RandomTranslation(f, f): shifts up to f of the size (0: off) */
    float contrast;           /* RandomContrast: factor U[1-f, 1+f) per image (0: off) */
    float label_smoothing;    /* CategoricalCrossentropy(label_smoothing) (0: none) */
    int lr_schedule;          /* wn_lr_kind (engine/lr_schedule.h): constant (default),
                                 cosine over epochs * steps, or step */
    int lr_step_epochs;       /* step: epochs between decays */
    float lr_step_factor;     /* step: multiplier per decay */
    int early_stopping;       /* 1: the notebook's EarlyStopping */
    double min_delta;         /* 0.001 */
    int patience;             /* 2 */
    wn_restore_mode restore;  /* WN_RESTORE_AT_END by default (tf-keras >= 2.16) */
    const char *checkpoint;   /* checkpoint path, or NULL for none */
    int resume;               /* 1: continue from `checkpoint` when it exists */
    volatile sig_atomic_t *interrupt; /* non-zero: stop after the current step or
                                         validation batch */
    long interrupt_after_steps; /* tests: act as if interrupted after this many steps
                                   of this call (0: never) */
    wn_batch_hook after_batch;  /* tests: see wn_batch_hook (NULL: none) */
    FILE *step_log;             /* tests: one line "epoch step loss accuracy" per training
                                   step, the whole batch's figures (rank 0 writes;
                                   NULL: none) */
    void *hook_user;
    wn_progress *progress;    /* NULL: quiet */
    wn_history *history;      /* rows appended per epoch (NULL: none kept) */
    const char *report_dir;   /* rewrite history.json/csv here after each epoch (NULL: no) */
    /* Recorded in the checkpoint and compared on resume (NULL/0: not checked). */
    const char *command;      /* "train" or "run" */
    int batch;                /* --batch */
    const char *const *class_names; /* [n_class_names], label order */
    int n_class_names;
} wn_train_options;

/* The notebook's values: 20 epochs, Adam(lr 1e-3) with Keras's beta_1 0.9, beta_2
 * 0.999 and epsilon 1e-7, augmentation with rotation 0.2, early stopping (0.001,
 * patience 2, restore at end), seed 0, no checkpoint. */
void wn_train_options_default(wn_train_options *o);

typedef struct wn_train_result {
    wn_phase_status status;   /* RUNNING when interrupted, else how the phase ended */
    int interrupted;          /* stopped by *interrupt; a checkpoint was written */
    int resumed;              /* started from a checkpoint */
    int resumed_epoch, resumed_step; /* where it resumed (0-based epoch, steps done) */
    int epochs_done;          /* epochs completed in this phase (including resumed ones) */
    int best_epoch;           /* 1-based epoch of the best validation accuracy, 0 if none */
    double best_val_accuracy;
    int restored;             /* the best weights were put back at the end */
    double seconds;           /* wall time of this call */
    char message[512];        /* why it diverged, or how to resume */
} wn_train_result;

struct wn_checkpoint;
/* The checkpoint's run identity (command, batch, class names; absent in a version 1
 * file) against this run's: WN_OK, or a message naming what differs. */
int wn_train_check_identity(const struct wn_checkpoint *ck, const wn_train_options *o,
                            const char *path);

/* Runs (or resumes) one phase. `ex` must be planned for the model's current
 * fine-tune boundary and a batch at least the loaders' batch size. */
int wn_train_phase(wn_executor *ex, wn_model *m, wn_loader *train, wn_loader *val,
                   const wn_train_options *o, wn_train_result *res);

typedef struct wn_eval_result {
    double loss;      /* per-sample mean of logsumexp(z) - z[label] (Keras's evaluate) */
    double accuracy;  /* float32 correct / samples, as Keras reports it */
    long samples;
    long correct;
    int interrupted;  /* stopped early by wn_eval_control.interrupt: the figures
                         cover only the first `samples` images */
} wn_eval_result;

/* Keras's loss on the logits path for one sample, in double: logsumexp(z) - z[label],
 * or with label smoothing s logsumexp(z) - sum_j y_j z_j, y = onehot*(1-s) + s/K
 * (what wn_evaluate sums, with the executor's smoothing; engine/ensemble_eval.c too). */
double wn_sample_loss_logits(const float *z, int k, int label, float smoothing);

/* Evaluates every image of `ld` (inference mode, no augmentation). Optional outputs
 * (NULL to skip): the confusion matrix (counted into, not reset), softmax
 * probabilities probs[size * num_classes], labels[size] and dataset file indices
 * indices[size], in the loader's order. */
int wn_evaluate(wn_executor *ex, const wn_model *m, wn_loader *ld, wn_eval_result *r,
                wn_confusion *cm, float *probs, int32_t *labels, int32_t *indices);

/* How an evaluation may be stopped part way (Ctrl-C during a validation or test
 * pass takes effect after the current batch). */
typedef struct wn_eval_control {
    volatile sig_atomic_t *interrupt; /* non-zero: stop before the next batch */
    wn_batch_hook after_batch;        /* tests (NULL: none) */
    void *hook_user;
    const char *pass;                 /* the hook's pass name: "validation", "test" */
    int epoch;                        /* the hook's epoch number */
} wn_eval_control;

/* wn_evaluate, stoppable: with ctl->interrupt set before or during the pass it
 * returns WN_OK with r->interrupted = 1 after the batch in progress (the outputs hold
 * the batches done). ctl may be NULL (= wn_evaluate). */
int wn_evaluate_ctl(wn_executor *ex, const wn_model *m, wn_loader *ld,
                    const wn_eval_control *ctl, wn_eval_result *r, wn_confusion *cm,
                    float *probs, int32_t *labels, int32_t *indices);

/* Reads a finished (or interrupted) phase's checkpoint into the model's host weights
 * (checking that it belongs to this model), for `wastenet run --resume` to skip a
 * finished phase. *status gets the phase's status, *epochs its epochs done. */
int wn_train_load_weights_from_checkpoint(wn_model *m, const char *path, int *status,
                                          int *epochs);

#ifdef __cplusplus
}
#endif
#endif
