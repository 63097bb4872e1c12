/* engine/train/progress.h — Keras-like training progress on the terminal.
 *
 * On a terminal (verbose 1, Keras's default in a notebook), one line per epoch
 * redrawn after every step:
 *   Epoch 1/20
 *    3/15 [=====>........................] - ETA: 25s - 3s/step - loss: 1.2345 - categorical_accuracy: 0.5000
 * and finished with the validation figures:
 *   15/15 [==============================] - 39s 3s/step - loss: 0.6822 - categorical_accuracy: 0.7657 - val_loss: 0.4102 - val_categorical_accuracy: 0.8618
 * Not on a terminal (a log file, CI), it stays quiet during the epoch and writes one
 * line at its end, as Keras's verbose=2 does:
 *   15/15 - 39s - loss: 0.6822 - categorical_accuracy: 0.7657 - val_loss: ... - 39s/epoch - 3s/step
 * The bar, the ETA and the time formats follow tf_keras/utils/generic_utils.py's
 * Progbar (30 characters, "%.4f" values, "ms/step" under a second). Step time is
 * the mean over the steps after the first one shown (which includes warm-up), as
 * Progbar estimates it; an epoch resumed at step k starts counting there.
 */
#ifndef WN_PROGRESS_H
#define WN_PROGRESS_H

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { WN_PROGRESS_AUTO = -1, WN_PROGRESS_LINES = 0, WN_PROGRESS_BAR = 1 } wn_progress_mode;

typedef struct wn_progress {
    FILE *out;
    int bar;             /* 1: redraw a bar per step; 0: one line per epoch */
    int silent;          /* 1: print nothing at all */
    int target;          /* steps in this epoch */
    int current;         /* steps done */
    double t_start;      /* clock at epoch start */
    double t_first_step; /* clock after the first step shown (0 before) */
    int first_current;   /* step number of that first step (> 1 when an epoch is resumed) */
    double t_phase;      /* clock at phase start */
    int last_width;      /* characters of the previous redraw (to blank leftovers) */
    double (*clock)(void); /* seconds; monotonic by default, replaceable by tests */
} wn_progress;

/* AUTO picks the bar when `out` is a terminal. silent: print nothing. */
void wn_progress_init(wn_progress *p, FILE *out, wn_progress_mode mode, int silent);

/* Starts timing a phase (wn_progress_phase_end prints its elapsed time). */
void wn_progress_phase_begin(wn_progress *p);

/* "Epoch e/E" (1-based e) and starts timing an epoch of `steps` steps. */
void wn_progress_epoch_begin(wn_progress *p, int epoch, int epochs, int steps);

/* After step `current` (1-based): loss and accuracy are the epoch's running means. */
void wn_progress_step(wn_progress *p, int current, double loss, double accuracy);

/* 1 when the bar shows every step's running loss and accuracy (a bar that is not
 * silent), so the caller computes them only then (each costs a device
 * synchronisation); 0 otherwise, and for p NULL. */
int wn_progress_shows_steps(const wn_progress *p);

/* An epoch stopped part way (interruption): ends the bar's open line, so what is
 * printed next starts on a line of its own. Lines mode has no open line. p may be NULL. */
void wn_progress_interrupted(wn_progress *p);

/* Ends the epoch's line with the training and validation figures; returns the
 * epoch's seconds (training and validation). */
double wn_progress_epoch_end(wn_progress *p, double loss, double accuracy, double val_loss,
                             double val_accuracy);

/* An evaluation pass (Keras's model.evaluate / predict): the same bar as an epoch,
 * without the "Epoch e/E" line; ended by one line
 *   4/4 [==============================] - 1s 250ms/step - loss: 0.4102 - categorical_accuracy: 0.8618
 * (bar mode) or "4/4 - 1s - loss: ... - 250ms/step" (lines mode). Returns its seconds. */
void wn_progress_pass_begin(wn_progress *p, int steps);
double wn_progress_pass_end(wn_progress *p, double loss, double accuracy);

/* "<label>: N epochs in X.X minutes" and returns the phase's seconds. */
double wn_progress_phase_end(wn_progress *p, const char *label, int epochs);

/* Formatting helpers, exposed for tests. Each returns the number of characters
 * written (snprintf rules). */
int wn_progress_format_bar(char *buf, size_t size, int current, int target);
/* Keras's _format_time: " 3s/step", " 120ms/step", " 5us/step" (leading space). */
int wn_progress_format_rate(char *buf, size_t size, double seconds, const char *unit);
/* Keras's ETA: "25s", "1:05", "1:02:03". */
int wn_progress_format_eta(char *buf, size_t size, double seconds);
/* " - name: 0.1234" (or %.4e when |v| <= 1e-3, as Keras). */
int wn_progress_format_value(char *buf, size_t size, const char *name, double v);

/* Monotonic clock in seconds. */
double wn_clock_seconds(void);

#ifdef __cplusplus
}
#endif
#endif
