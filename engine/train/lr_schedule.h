/* engine/train/lr_schedule.h — learning-rate schedules with Keras's semantics, evaluated
 * per optimizer step (the step count of the phase, 0-based, as Keras's
 * optimizer.iterations when the update is applied), in float32 as Keras computes:
 *
 *   constant  lr
 *   cosine    tf_keras.optimizers.schedules.CosineDecay(lr, decay_steps, alpha=0):
 *             lr * ((1 - alpha) * 0.5 * (1 + cos(pi * min(step, D) / D)) + alpha)
 *   step      tf_keras.optimizers.schedules.ExponentialDecay(lr, every, factor,
 *             staircase=True): lr * factor ^ floor(step / every)
 *
 * wastenet's phases use decay_steps = epochs * steps per epoch (the phase's maximum,
 * so early stopping may end a phase before the rate reaches alpha*lr) and, for step,
 * every = --lr-step-epochs * steps per epoch.
 */
#ifndef WN_LR_SCHEDULE_H
#define WN_LR_SCHEDULE_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { WN_LR_CONSTANT = 0, WN_LR_COSINE = 1, WN_LR_STEP = 2 } wn_lr_kind;

typedef struct wn_lr_schedule {
    wn_lr_kind kind;
    float initial;     /* the learning rate at step 0 */
    long decay_steps;  /* cosine: D (>= 1) */
    float alpha;       /* cosine: the floor as a fraction of initial (Keras default 0) */
    long every;        /* step: steps between decays (>= 1) */
    float factor;      /* step: multiplier per decay (0 < factor <= 1) */
} wn_lr_schedule;

/* "constant", "cosine" or "step" (fails naming the value). */
int wn_lr_kind_parse(const char *s, wn_lr_kind *out);
const char *wn_lr_kind_name(wn_lr_kind k);

/* The learning rate of optimizer step `step` (0-based). */
float wn_lr_at(const wn_lr_schedule *s, long step);

#ifdef __cplusplus
}
#endif
#endif
