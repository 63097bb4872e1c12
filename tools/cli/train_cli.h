/* tools/cli/train_cli.h — what `wastenet train` and `wastenet run` share: their options,
 * the run folder, data/model/backend set-up, the Ctrl-C handling, the phase driver
 * (train, export weights, evaluate on the test set, per-class report) and the
 * pictures (tools/plots.py).
 *
 * Exit statuses of both commands: 0 done; 1 failed (a message on stderr; for a
 * diverged phase the best weights are kept and reported); 2 bad usage, including a
 * value the chosen model cannot take (found before any data is read); 130
 * interrupted by Ctrl-C/SIGTERM: during set-up at once (nothing written), during
 * training after writing a checkpoint (the message says how to resume); 129 the same
 * after SIGHUP.
 *
 * The run folder (runs/<timestamp>-<name>/) is created only once set-up has
 * succeeded (data, model, weights, backend): a run that cannot start leaves nothing
 * behind. Signals: tools/train_signals.h.
 */
#ifndef WN_TOOLS_TRAIN_CLI_H
#define WN_TOOLS_TRAIN_CLI_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/train/early_stopping.h"

#define WN_EXIT_INTERRUPTED 130
#define WN_EXIT_HANGUP 129 /* the same after SIGHUP (128 + 1) */

typedef struct wn_train_cli {
    int is_run;              /* 1: `wastenet run` (transfer + fine-tune); 0: `train` */
    const char *command;     /* "train" or "run" */
    const char *data;        /* data set root holding train/, validation/, test/ */
    const char *model;       /* backbone name (engine/models/registry.c) */
    const char *weights;     /* "auto", "none" or a .h5 file */
    int image_size, batch;
    int epochs;              /* per phase */
    float lr;                /* train: the phase's; run: transfer learning's */
    float finetune_lr;       /* run: fine-tuning's (1e-5) */
    int fine_tune_at;        /* train: the phase's boundary; run: fine-tuning's */
    const char *fine_tune_name; /* --fine-tune-at given as a layer or block name; the
                                   checks resolve it into fine_tune_at */
    int fine_tune_model_default; /* run without --fine-tune-at: the model's own boundary
                                    (wn_backbone_def.fine_tune_default), resolved by the
                                    checks */
    uint64_t seed;
    int augment;
    float rotation;
    float zoom, translate, contrast; /* RandomZoom, RandomTranslation, RandomContrast (0: off) */
    float label_smoothing;   /* CategoricalCrossentropy(label_smoothing) (0) */
    float weight_decay;      /* Adam(weight_decay=...) (0) */
    int lr_schedule;         /* wn_lr_kind: constant (default), cosine, step */
    int lr_step_epochs;      /* step schedule: epochs between decays (5) */
    float lr_step_factor;    /* step schedule: multiplier per decay (0.1) */
    int early_stopping, patience;
    double min_delta;
    wn_restore_mode restore;
    const char *backend;     /* auto, cpu, cuda */
    const char *precision;   /* CUDA: tf32, fp32, bf16 */
    int deterministic;       /* CUDA: deterministic cuDNN algorithms only */
    const char *runs_root;   /* runs */
    const char *name;        /* run folder suffix */
    const char *resume;      /* run folder to continue, or NULL */
    const char *progress;    /* auto, bar, lines, none */
    int skip_bad;
    size_t max_pixels;       /* decoder limit per image, width x height (host/image_decode.h) */
    int cache_mode;          /* WN_LOADER_AUTO, _CACHE (--cache ram) or _STREAM (host/loader.h) */
    size_t cache_budget;     /* auto: bytes for the decoded images of all splits; 0 = half the RAM */
    int plots;
    const char *grid_class;  /* class of the TP/FN/FP grid (plots.py default) */
} wn_train_cli;

/* Parses argv (argv[0] = the command name) into cli, after filling the defaults.
 * Returns 0, or 2 after printing a usage error (or 1 with --help printed: the
 * caller then exits 0 — see *help). */
int wn_train_cli_parse(wn_train_cli *cli, int is_run, int argc, char **argv, int *help);

/* What can be checked before any data is read, so that a mistake costs no scan or
 * load: the model name, --image-size against the model's minimum, --fine-tune-at
 * against its backbone's layer count (a layer or block name is resolved here into
 * cli->fine_tune_at) and --name (exit status 2: the option and the valid range
 * named); the --weights file, the --runs folder and --backend cuda (1).
 * Returns 0, or the exit status after printing the message. */
int wn_train_cli_check(wn_train_cli *cli);

/* --weights auto: the pretrained file this project documents for the backbone
 * (weights/README.md) into buf, or NULL when there is none (random initialisation). */
const char *wn_train_cli_auto_weights(const char *model, char *buf, size_t size);

/* A byte count: "8589934592", "512M", "8G", "8GiB", "1.5T" (binary units). 0 or -1. */
int wn_parse_bytes(const char *s, size_t *out);

/* The whole command: set-up, phases, reports, pictures. Returns the exit status. */
int wn_train_cli_main(wn_train_cli *cli, int argc, char **argv);

#endif
