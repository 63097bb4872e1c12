/* engine/train/early_stopping.h — Keras's EarlyStopping callback, decision for decision.
 *
 * The notebook uses EarlyStopping(monitor='val_categorical_accuracy', mode='max',
 * min_delta=0.001, patience=2, restore_best_weights=True). This module reproduces
 * tf_keras/callbacks.py::EarlyStopping (docs/KERAS_SEMANTICS.md §7) without touching
 * weights itself: each call returns what the training loop must do (snapshot the
 * weights, stop, restore the snapshot), so the rule can be tested on scripted
 * histories and its state saved in a checkpoint.
 *
 * At each epoch end, with `current` the epoch's monitored value:
 *   - if no snapshot exists yet, snapshot (best_epoch = epoch);
 *   - wait += 1;
 *   - improvement is `current - min_delta > best` for mode max (`current + min_delta
 *     < best` for mode min), computed in float64: best = current, best_epoch = epoch,
 *     snapshot, wait = 0, and nothing else this epoch;
 *   - otherwise, if wait >= patience and epoch > 0: stop.
 *
 * Weight restore — the one place where Keras versions differ:
 *   WN_RESTORE_AT_END  (default; tf-keras >= 2.16 and Keras 3): the best snapshot is
 *                      restored when training ends, whether early stopping fired or
 *                      the epochs ran out. This is the notebook's intent ("keep the
 *                      best epoch's weights") and the maintained Keras 2 line.
 *   WN_RESTORE_ON_STOP (TF 2.12-2.15): restored only when early stopping fires; if
 *                      the epochs run out the last epoch's weights are kept.
 *   WN_RESTORE_NEVER   (restore_best_weights=False): never restored, no snapshots.
 *
 * `current` should be what Keras compares: the float32 accuracy widened to double
 * ((double)(float)correct/total), since Keras's metric result is a float32 tensor
 * converted to a Python float.
 */
#ifndef WN_EARLY_STOPPING_H
#define WN_EARLY_STOPPING_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    WN_RESTORE_AT_END = 0,  /* tf-keras >= 2.16: always restore the best at the end */
    WN_RESTORE_ON_STOP = 1, /* TF <= 2.15: restore only when early stopping fires */
    WN_RESTORE_NEVER = 2    /* restore_best_weights=False */
} wn_restore_mode;

typedef struct wn_early_stopping {
    /* configuration */
    double min_delta;       /* >= 0; 0.001 in the notebook */
    int patience;           /* 2 in the notebook */
    int mode_max;           /* 1: higher is better (accuracy); 0: lower (loss) */
    wn_restore_mode restore;
    /* state (reset by wn_early_stopping_begin, saved in checkpoints) */
    double best;            /* -inf (max) or +inf (min) before the first epoch */
    int best_epoch;         /* 0-based epoch of the snapshot */
    int wait;               /* epochs since the last improvement */
    int stopped_epoch;      /* 0-based epoch at which it fired; 0 if it did not */
    int has_snapshot;       /* a best-weights snapshot exists */
} wn_early_stopping;

/* What the training loop must do after one epoch. */
typedef struct wn_es_action {
    int snapshot; /* copy the current weights into the best-weights snapshot */
    int stop;     /* stop training after this epoch */
    int restore;  /* copy the snapshot back now (WN_RESTORE_ON_STOP when stopping) */
} wn_es_action;

/* The notebook's configuration: max, min_delta 0.001, patience 2, given restore. */
void wn_early_stopping_init(wn_early_stopping *es, double min_delta, int patience,
                            int mode_max, wn_restore_mode restore);

/* on_train_begin: wait 0, best -inf/+inf, no snapshot, stopped_epoch 0. Keras calls
 * it at every fit(), so each training phase starts afresh. */
void wn_early_stopping_begin(wn_early_stopping *es);

/* on_epoch_end for 0-based `epoch` and monitored value `current`. */
wn_es_action wn_early_stopping_epoch_end(wn_early_stopping *es, int epoch, double current);

/* on_train_end: 1 when the loop must restore the snapshot now. */
int wn_early_stopping_end(const wn_early_stopping *es);

/* "at-end" / "on-stop" / "never", and back (WN_ERR for an unknown name). */
const char *wn_restore_mode_name(wn_restore_mode mode);
int wn_restore_mode_parse(const char *name, wn_restore_mode *mode);

#ifdef __cplusplus
}
#endif
#endif
