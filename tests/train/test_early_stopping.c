/* tests/train/test_early_stopping.c — EarlyStopping decisions on scripted histories.
 *
 * Without arguments: hand-reasoned cases (an improvement smaller than min_delta,
 * patience running out, best weights restored, epochs running out, the epoch > 0
 * rule, every restore mode). With `--trace` it reads scripted histories from stdin
 * and prints the loop's outcome for each, so that
 * es_parity.py can compare them with tf_keras's own EarlyStopping. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/train/early_stopping.h"
#include "tests/common/check.h"

/* What a run ends with: the model's "weights" are the index of the epoch that
 * produced them, so a restore is visible as an earlier index. */
typedef struct outcome {
    int epochs_run;   /* epochs trained */
    int stopped;      /* early stopping fired */
    int final_weights;/* epoch whose weights the model holds at the end */
    int best_epoch;
} outcome;

/* The training loop's use of the callback, as train_loop.c does it. */
static outcome simulate(wn_early_stopping *es, const double *history, int max_epochs) {
    outcome o = {0, 0, -1, -1};
    int weights = -1, snapshot = -1;
    wn_early_stopping_begin(es);
    for (int epoch = 0; epoch < max_epochs; epoch++) {
        weights = epoch; /* training this epoch changes the weights */
        o.epochs_run++;
        wn_es_action a = wn_early_stopping_epoch_end(es, epoch, history[epoch]);
        if (a.snapshot) snapshot = weights;
        if (a.restore) weights = snapshot;
        if (a.stop) {
            o.stopped = 1;
            break;
        }
    }
    if (wn_early_stopping_end(es)) weights = snapshot;
    o.final_weights = weights;
    o.best_epoch = es->best_epoch;
    return o;
}

static void test_small_improvement_does_not_count(void) {
    wn_early_stopping es;
    wn_early_stopping_init(&es, 0.001, 2, 1, WN_RESTORE_AT_END);
    /* +0.0005 and +0.0009 are below min_delta: no improvement, wait reaches 2. */
    const double h[] = {0.5, 0.5005, 0.5009, 0.9, 0.9};
    outcome o = simulate(&es, h, 5);
    CHECK(o.stopped && o.epochs_run == 3, "stop after epoch 3 (ran %d, stopped %d)",
          o.epochs_run, o.stopped);
    CHECK(es.best == 0.5, "best must not move on a sub-min_delta gain (best %.17g)", es.best);
    CHECK(o.final_weights == 0, "weights of epoch 1 restored (got %d)", o.final_weights);
    CHECK(es.stopped_epoch == 2, "stopped_epoch 2 (got %d)", es.stopped_epoch);
    /* A gain just above min_delta counts. */
    const double h2[] = {0.5, 0.5011, 0.4, 0.4};
    o = simulate(&es, h2, 4);
    CHECK(o.stopped && o.epochs_run == 4 && o.best_epoch == 1 && o.final_weights == 1,
          "gain of 0.0011 counts (ran %d, best epoch %d, weights %d)", o.epochs_run,
          o.best_epoch, o.final_weights);
}

static void test_patience_runs_out(void) {
    wn_early_stopping es;
    wn_early_stopping_init(&es, 0.001, 2, 1, WN_RESTORE_AT_END);
    /* The notebook's transfer-learning run stopped at epoch 5 this way. */
    const double h[] = {0.60, 0.70, 0.78, 0.75, 0.77, 0.99, 0.99};
    outcome o = simulate(&es, h, 7);
    CHECK(o.stopped && o.epochs_run == 5, "stop at the end of epoch 5 (ran %d)", o.epochs_run);
    CHECK(o.final_weights == 2 && o.best_epoch == 2, "best epoch 3 restored (weights %d)",
          o.final_weights);
    /* An improvement resets wait: 1 bad, 1 good, 1 bad, 1 bad -> stops at the 2nd bad. */
    const double h2[] = {0.5, 0.4, 0.6, 0.5, 0.5, 0.9};
    o = simulate(&es, h2, 6);
    CHECK(o.stopped && o.epochs_run == 5 && o.final_weights == 2,
          "reset by improvement (ran %d, weights %d)", o.epochs_run, o.final_weights);
    /* Patience 1 stops at the first non-improving epoch after epoch 0. */
    wn_early_stopping_init(&es, 0.001, 1, 1, WN_RESTORE_AT_END);
    const double h3[] = {0.5, 0.6, 0.6, 0.9};
    o = simulate(&es, h3, 4);
    CHECK(o.stopped && o.epochs_run == 3 && o.final_weights == 1, "patience 1 (ran %d)",
          o.epochs_run);
}

static void test_epochs_run_out(void) {
    const double h[] = {0.5, 0.7, 0.65};
    wn_early_stopping es;
    /* tf-keras >= 2.16: best restored even though early stopping never fired. */
    wn_early_stopping_init(&es, 0.001, 2, 1, WN_RESTORE_AT_END);
    outcome o = simulate(&es, h, 3);
    CHECK(!o.stopped && o.epochs_run == 3, "all 3 epochs run");
    CHECK(o.final_weights == 1, "at-end: best (epoch 2) restored, got %d", o.final_weights);
    /* TF <= 2.15: the last epoch's weights are kept. */
    wn_early_stopping_init(&es, 0.001, 2, 1, WN_RESTORE_ON_STOP);
    o = simulate(&es, h, 3);
    CHECK(!o.stopped && o.final_weights == 2, "on-stop: last weights kept, got %d",
          o.final_weights);
    /* ... but restored when it does fire. */
    const double h2[] = {0.5, 0.7, 0.65, 0.6, 0.9};
    o = simulate(&es, h2, 5);
    CHECK(o.stopped && o.epochs_run == 4 && o.final_weights == 1,
          "on-stop: restored when firing (ran %d, weights %d)", o.epochs_run, o.final_weights);
    /* restore_best_weights=False: stops but never restores. */
    wn_early_stopping_init(&es, 0.001, 2, 1, WN_RESTORE_NEVER);
    o = simulate(&es, h2, 5);
    CHECK(o.stopped && o.epochs_run == 4 && o.final_weights == 3 && !es.has_snapshot,
          "never: last weights (ran %d, weights %d)", o.epochs_run, o.final_weights);
}

static void test_first_epoch_rules(void) {
    wn_early_stopping es;
    /* A value that cannot beat -inf (NaN, -inf) at epoch 0: wait becomes 1 >= patience 1,
     * but Keras never stops at epoch 0. The epoch-0 weights are still snapshotted. */
    wn_early_stopping_init(&es, 0.001, 1, 1, WN_RESTORE_AT_END);
    wn_early_stopping_begin(&es);
    wn_es_action a = wn_early_stopping_epoch_end(&es, 0, NAN);
    CHECK(!a.stop && a.snapshot && es.wait == 1, "epoch 0 never stops (stop %d wait %d)",
          a.stop, es.wait);
    a = wn_early_stopping_epoch_end(&es, 1, NAN);
    CHECK(a.stop && !a.snapshot, "epoch 1 stops with patience 1");
    /* Patience 0 still needs epoch > 0. */
    wn_early_stopping_init(&es, 0.0, 0, 1, WN_RESTORE_AT_END);
    a = wn_early_stopping_epoch_end(&es, 0, -INFINITY);
    CHECK(!a.stop, "patience 0, epoch 0: no stop");
    /* Mode min (val_loss): lower by more than min_delta is better. */
    wn_early_stopping_init(&es, 0.01, 2, 0, WN_RESTORE_AT_END);
    const double h[] = {1.0, 0.995, 0.98, 0.985, 0.975, 0.5};
    outcome o = simulate(&es, h, 6);
    CHECK(o.stopped && o.epochs_run == 5 && o.final_weights == 2,
          "mode min (ran %d, weights %d)", o.epochs_run, o.final_weights);
    /* begin() resets everything for the next phase. */
    wn_early_stopping_begin(&es);
    CHECK(es.wait == 0 && !es.has_snapshot && es.best == INFINITY && es.stopped_epoch == 0,
          "begin resets the state");
    wn_restore_mode m;
    CHECK(wn_restore_mode_parse("on-stop", &m) == 0 && m == WN_RESTORE_ON_STOP, "parse");
    CHECK(wn_restore_mode_parse("sometimes", &m) != 0, "parse rejects unknown modes");
}

/* --trace: reads cases from stdin, one per line,
 *   "MODE PATIENCE MIN_DELTA RESTORE N v_0 ... v_{N-1}"
 * and prints for each "epochs_run stopped final_weights best_epoch". */
static int trace(void) {
    char mode[16], restore[16];
    int patience, n;
    double min_delta;
    while (scanf("%15s %d %lf %15s %d", mode, &patience, &min_delta, restore, &n) == 5) {
        wn_early_stopping es;
        wn_restore_mode rm;
        if (wn_restore_mode_parse(restore, &rm) != 0 || n < 1) return 2;
        wn_early_stopping_init(&es, min_delta, patience, !strcmp(mode, "max"), rm);
        double *h = calloc((size_t)n, sizeof *h);
        for (int i = 0; i < n; i++)
            if (scanf("%lf", &h[i]) != 1) return 2;
        outcome o = simulate(&es, h, n);
        printf("%d %d %d %d\n", o.epochs_run, o.stopped, o.final_weights, o.best_epoch);
        free(h);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[1], "--trace")) return trace();
    test_small_improvement_does_not_count();
    test_patience_runs_out();
    test_epochs_run_out();
    test_first_epoch_rules();
    return test_finish("test_early_stopping");
}
