/* tools/cli/member_options.c — ensemble members on the command line (see
 * member_options.h). */
#include "tools/cli/member_options.h"

#include "tools/cli/option_bounds.h"

#include <stdio.h>
#include <stdlib.h>

int wn_members_add_weights(wn_members *m, const char *cmd, const char *value) {
    if (wn_opt_path(cmd, "--weights", value)) return 2;
    if (m->n == WN_MAX_ENSEMBLE) {
        fprintf(stderr, "wastenet %s: --weights %s: at most %d models in an ensemble\n", cmd,
                value, WN_MAX_ENSEMBLE);
        return 2;
    }
    m->weights[m->n++] = value;
    return 0;
}

int wn_members_add_model(wn_members *m, const char *cmd, const char *value) {
    if (m->n_models == WN_MAX_ENSEMBLE) {
        fprintf(stderr, "wastenet %s: --model %s: given more than %d times\n", cmd, value,
                WN_MAX_ENSEMBLE);
        return 2;
    }
    m->models[m->n_models++] = value;
    return 0;
}

int wn_members_add_size(wn_members *m, const char *cmd, const char *value) {
    char *end = NULL;
    long v = strtol(value, &end, 10);
    if (*end || end == value || v < 1 || v > 8192) {
        fprintf(stderr, "wastenet %s: --image-size %s: expected 1..8192\n", cmd, value);
        return 2;
    }
    if (m->n_sizes == WN_MAX_ENSEMBLE) {
        fprintf(stderr, "wastenet %s: --image-size given more than %d times\n", cmd,
                WN_MAX_ENSEMBLE);
        return 2;
    }
    m->sizes[m->n_sizes++] = (int)v;
    return 0;
}

int wn_members_check(const wn_members *m, const char *cmd) {
    if (m->n == 0) {
        fprintf(stderr, "wastenet %s: --weights FILE is required (see 'wastenet %s --help')\n",
                cmd, cmd);
        return 2;
    }
    if (m->n_models > 1 && m->n_models != m->n) {
        fprintf(stderr, "wastenet %s: %d --model for %d --weights: give --model once (for "
                        "every .h5) or once per --weights, in the same order\n",
                cmd, m->n_models, m->n);
        return 2;
    }
    if (m->n_sizes > 1 && m->n_sizes != m->n) {
        fprintf(stderr, "wastenet %s: %d --image-size for %d --weights: give --image-size "
                        "once (for every .h5) or once per --weights, in the same order\n",
                cmd, m->n_sizes, m->n);
        return 2;
    }
    return 0;
}

const char *wn_members_model(const wn_members *m, int i) {
    if (m->n_models == 0) return "irv2";
    return m->models[m->n_models == 1 ? 0 : i];
}

int wn_members_size(const wn_members *m, int i) {
    if (m->n_sizes == 0) return 0; /* the file's own (tools/cli/inference.h) */
    return m->sizes[m->n_sizes == 1 ? 0 : i];
}
