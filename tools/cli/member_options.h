/* tools/cli/member_options.h — the members of an ensemble as `predict` and `evaluate`
 * take them: --weights FILE (repeatable), with --model NAME and --image-size N
 * either once (for every .h5 member) or once per --weights, in order. A checkpoint
 * names its own model and size and ignores both. */
#ifndef WN_TOOLS_MEMBER_OPTIONS_H
#define WN_TOOLS_MEMBER_OPTIONS_H

#include "tools/cli/inference.h"

typedef struct wn_members {
    int n;                                  /* --weights given */
    const char *weights[WN_MAX_ENSEMBLE];
    int n_models, n_sizes;                  /* --model / --image-size given */
    const char *models[WN_MAX_ENSEMBLE];
    int sizes[WN_MAX_ENSEMBLE];
} wn_members;

/* Records one option; returns 0, or 2 after printing a usage error naming it. */
int wn_members_add_weights(wn_members *m, const char *cmd, const char *value);
int wn_members_add_model(wn_members *m, const char *cmd, const char *value);
int wn_members_add_size(wn_members *m, const char *cmd, const char *value);

/* After parsing: at least one --weights, and --model/--image-size counts of 0, 1
 * or one per --weights. Returns 0 or 2 (message printed). */
int wn_members_check(const wn_members *m, const char *cmd);

/* Member i's backbone and input size for an .h5 file (defaults irv2, and 0: the
 * file's own size, wn_inference_default_size). */
const char *wn_members_model(const wn_members *m, int i);
int wn_members_size(const wn_members *m, int i);

#endif
