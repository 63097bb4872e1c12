/* engine/train/early_stopping.c — Keras's EarlyStopping rule (see early_stopping.h). */
#include "engine/train/early_stopping.h"

#include <math.h>
#include <string.h>

#include "host/base/error.h"

void wn_early_stopping_init(wn_early_stopping *es, double min_delta, int patience,
                            int mode_max, wn_restore_mode restore) {
    memset(es, 0, sizeof *es);
    es->min_delta = fabs(min_delta); /* Keras: self.min_delta = abs(min_delta) */
    es->patience = patience;
    es->mode_max = mode_max;
    es->restore = restore;
    wn_early_stopping_begin(es);
}

void wn_early_stopping_begin(wn_early_stopping *es) {
    es->wait = 0;
    es->stopped_epoch = 0;
    es->best = es->mode_max ? -INFINITY : INFINITY;
    es->best_epoch = 0;
    es->has_snapshot = 0;
}

/* Keras's _is_improvement: monitor_op(current - min_delta, best), where min_delta
 * carries the sign of the mode (negated for 'min'). All in float64. */
static int is_improvement(const wn_early_stopping *es, double current) {
    if (es->mode_max) return current - es->min_delta > es->best;
    return current + es->min_delta < es->best;
}

wn_es_action wn_early_stopping_epoch_end(wn_early_stopping *es, int epoch, double current) {
    wn_es_action act = {0, 0, 0};
    int keep_best = es->restore != WN_RESTORE_NEVER;
    /* "Restore the weights after first epoch if no progress is ever made." */
    if (keep_best && !es->has_snapshot) {
        act.snapshot = 1;
        es->has_snapshot = 1;
        es->best_epoch = epoch;
    }
    es->wait += 1;
    if (is_improvement(es, current)) {
        es->best = current;
        es->best_epoch = epoch;
        if (keep_best) act.snapshot = 1;
        es->wait = 0;
        return act; /* tf-keras >= 2.12: no patience check after an improvement */
    }
    /* "Only check after the first epoch." */
    if (es->wait >= es->patience && epoch > 0) {
        es->stopped_epoch = epoch;
        act.stop = 1;
        if (es->restore == WN_RESTORE_ON_STOP && es->has_snapshot) act.restore = 1;
    }
    return act;
}

int wn_early_stopping_end(const wn_early_stopping *es) {
    return es->restore == WN_RESTORE_AT_END && es->has_snapshot;
}

const char *wn_restore_mode_name(wn_restore_mode mode) {
    switch (mode) {
    case WN_RESTORE_AT_END: return "at-end";
    case WN_RESTORE_ON_STOP: return "on-stop";
    case WN_RESTORE_NEVER: return "never";
    }
    return "?";
}

int wn_restore_mode_parse(const char *name, wn_restore_mode *mode) {
    if (!strcmp(name, "at-end")) *mode = WN_RESTORE_AT_END;
    else if (!strcmp(name, "on-stop")) *mode = WN_RESTORE_ON_STOP;
    else if (!strcmp(name, "never")) *mode = WN_RESTORE_NEVER;
    else
        return wn_fail("unknown restore mode '%s': use at-end (tf-keras >= 2.16, the default), "
                       "on-stop (TF <= 2.15) or never",
                       name);
    return WN_OK;
}
