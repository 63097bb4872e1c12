/* tools/cli/train_options.c — the options of `wastenet train` and `wastenet run`: their
 * --help, parsing (with the saved options of a run being resumed underneath), and the
 * checks that need the chosen model, done before any data is read
 * (tools/train_cli.h). */
#include "tools/cli/train_cli.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/runtime/backend.h"
#include "engine/backends/cuda/backend_cuda.h"
#include "host/base/error.h"
#include "engine/model/graph.h"
#include "engine/model/model.h"
#include "engine/train/run_report.h"
#include "engine/train/lr_schedule.h"
#include "host/image_decode.h"
#include "host/loader.h"
#include "host/regular_file.h"
#include "tools/cli/option_bounds.h"

/* The registered backbones, one line each: the name, the smallest --image-size and,
 * for `run`, the fine-tuning boundary it takes without --fine-tune-at. */
static const char *backbone_table(char *buf, size_t size, int is_run) {
    size_t at = (size_t)snprintf(buf, size, "backbones (--model; smallest --image-size%s):\n",
                                 is_run ? "; fine-tuning's default --fine-tune-at" : "");
    for (int i = 0; i < wn_backbone_count() && at < size; i++) {
        const wn_backbone_def *d = wn_backbone_at(i);
        if (is_run)
            at += (size_t)snprintf(buf + at, size - at, "  %-20s %4d   %s%s\n", d->name,
                                   d->min_size, d->fine_tune_default ? d->fine_tune_default : "-",
                                   !strcmp(d->name, "irv2") ? " (the notebook's)" : "");
        else
            at += (size_t)snprintf(buf + at, size - at, "  %-20s %4d\n", d->name, d->min_size);
    }
    if (at < size) snprintf(buf + at, size - at, "\n");
    return buf;
}

static void usage(FILE *out, int is_run) {
    char table[2048];
    if (is_run)
        fprintf(out,
                "usage: wastenet run [options]\n\n"
                "The notebook, end to end: transfer learning (backbone frozen, --lr), then\n"
                "fine-tuning from layer --fine-tune-at (--fine-tune-lr), each with early stopping\n"
                "on the validation accuracy; after each phase the test accuracy, the per-class\n"
                "analysis and the weights; at the end the pictures. Everything goes to\n"
                "runs/<timestamp>-<name>/; each phase is checkpointed after every epoch and\n"
                "resumable (--resume).\n\n");
    else
        fprintf(out,
                "usage: wastenet train [options]\n\n"
                "One training phase (the notebook's train_and_test_model): fit with early\n"
                "stopping on the validation accuracy, then the test accuracy, the per-class\n"
                "analysis, the weights and the pictures, in runs/<timestamp>-<name>/.\n"
                "Checkpointed after every epoch; resumable (--resume).\n\n");
    fprintf(out,
            "data and model:\n"
            "  --data DIR            data set with train/, validation/ and test/ (default\n"
            "                        dataset_images); classes are the sub-folders of train/\n"
            "  --model NAME          backbone: irv2 (default) or another of the table below\n"
            "  --weights FILE|auto|none  starting weights: a Keras .h5 (backbone-only notop\n"
            "                        or whole model); auto (default) = the official ImageNet\n"
            "                        file in weights/ for irv2 (weights/README.md), the\n"
            "                        converted one for efficientnet_lite*, none otherwise;\n"
            "                        none = Keras's random initialisation\n"
            "  --image-size N        images are resized to N x N (default 320; at least the\n"
            "                        model's minimum: irv2 75, efficientnet_lite* 32, tiny_cnn 8)\n"
            "  --skip-bad            skip unreadable images (one warning each) instead of stopping\n"
            "  --max-pixels N        refuse (or with --skip-bad skip) images larger than N pixels\n"
            "                        (width x height; default %zu), checked from the header\n"
            "  --cache MODE          how images reach the batches: auto (default: decode each\n"
            "                        split once into RAM when it fits --cache-budget, else\n"
            "                        stream), ram (always cache), stream (decode every batch\n"
            "                        from the files, every epoch: for data larger than memory)\n"
            "  --cache-budget SIZE   RAM that auto may use for the decoded images of all splits\n"
            "                        together (train first, then validation, then test), in\n"
            "                        bytes or with K, M, G, T (binary: 8G = 8GiB = 8 x 2^30\n"
            "                        bytes); default half the RAM\n"
            "training:\n"
            "  --epochs N            maximum epochs per phase (default 20)\n"
            "  --lr X                Adam learning rate%s, 1e-10..1e6 (default 1e-3)\n"
            "%s"
            "  --fine-tune-at none|all|N|BLOCK  freeze backbone layers [0, N) (Keras layers[:N]);\n"
            "                       BLOCK: a layer or block name (block14, conv5_block1): the\n"
            "                       first layer whose name starts with it;%s\n"
            "  --batch N             batch size, 1..65536 (default 64; a batch that does not fit\n"
            "                        in the GPU memory or the RAM is refused at start-up)\n"
            "  --seed N              seed of the initialisation, shuffling, augmentation and\n"
            "                        dropout (default 42)\n"
            "  --no-augment          no random augmentation at all (preprocess only)\n"
            "  --rotation F          RandomRotation factor: angles in [-F*2pi, F*2pi) (default 0.2)\n"
            "  --zoom F              then RandomZoom(F): zoom U[1-F, 1+F) per image, both axes\n"
            "                        (above 1 zooms out), reflect fill, bilinear (default 0: off)\n"
            "  --translate F         then RandomTranslation(F, F): shifts U[-F, F) of the height\n"
            "                        and of the width, reflect fill, bilinear (default 0: off)\n"
            "  --contrast F          then RandomContrast: per image and channel (v - mean) * c +\n"
            "                        mean, c ~ U[1-F, 1+F) per image, clipped to [0, 255]\n"
            "                        (Keras 3's RandomContrast(factor=(F, F)); default 0: off)\n"
            "  --no-early-stopping   run every epoch\n"
            "  --patience N          early stopping patience (default 2)\n"
            "  --min-delta X         smallest improvement that counts (default 0.001)\n"
            "  --restore MODE        best weights: at-end (default; tf-keras >= 2.16 restores\n"
            "                        them whenever training ends), on-stop (TF <= 2.15: only\n"
            "                        when early stopping fires), never\n"
            "  --label-smoothing S   Keras's CategoricalCrossentropy(label_smoothing=S): targets\n"
            "                        onehot*(1-S) + S/classes (default 0)\n"
            "  --weight-decay W      Keras's Adam(weight_decay=W): before each update every\n"
            "                        trainable weight p -= p*W*lr (decoupled; default 0)\n"
            "  --lr-schedule KIND    constant (default); cosine: Keras's CosineDecay from the\n"
            "                        phase's lr over epochs x steps; step: the lr times\n"
            "                        --lr-step-factor (0.1) every --lr-step-epochs (5) epochs\n"
            "                        (ExponentialDecay, staircase)\n"
            "  --recipe notebook     the notebook's exact recipe (model, size, batch, epochs,\n"
            "                        learning rates, boundary, augmentation, early stopping,\n"
            "                        no smoothing or schedule); options after it override\n"
            "  --backend NAME        auto (default: cuda when a GPU is usable), cpu, cuda\n"
            "  --precision P         tf32 (default; CUDA's float32 math, fp32 on the CPU), fp32,\n"
            "                        or bf16: bf16 activations and convolutions with float32\n"
            "                        accumulation, master weights, Adam state and loss\n"
            "  --deterministic       CUDA: deterministic cuDNN algorithms only (the same\n"
            "                        bits run to run; may be slower; the CPU always is)\n"
            "output:\n"
            "  --runs DIR            parent of run folders (default runs)\n"
            "  --name NAME           run folder suffix (default %s)\n"
            "  --resume RUN_DIR      continue an interrupted run with its saved options\n"
            "                        (options given again override them)\n"
            "  --progress MODE       auto (bar on a terminal, one line per epoch otherwise),\n"
            "                        bar, lines, none\n"
            "  --no-plots            do not call tools/plots.py\n"
            "  --grid-class NAME     class of the true/false positive grid (default trash,\n"
            "                        else the weakest class)\n"
            "  -h, --help            this help\n\n"
            "%s"
            "Ctrl-C (or SIGTERM) while the data, model and weights load stops at once (exit\n"
            "status 130, nothing written). During training it finishes the current step or\n"
            "validation batch, writes a checkpoint and exits with status 130 and the command\n"
            "that resumes; a second Ctrl-C exits at once (the last checkpoint is intact).\n"
            "SIGHUP (the terminal or ssh session closed) does the same, with exit status 129.\n"
            "Exit status: 0 done, 1 failed, 2 bad usage (options, including values the chosen\n"
            "model cannot take), 130 interrupted (129 by SIGHUP).\n\n"
            "example:\n"
            "  wastenet %s --data dataset_images%s\n"
            "  wastenet %s --resume runs/20250101-120000-%s\n"
            "Data parallel (docs/TRAINING.md): mpirun -np N wastenet %s ... (or srun): N\n"
            "processes, one GPU each, the same results as one process at the same --batch\n",
            (size_t)WN_DEFAULT_MAX_PIXELS, is_run ? " of transfer learning" : "",
            is_run ? "  --fine-tune-lr X      Adam learning rate of fine-tuning (default 1e-5)\n" : "",
            is_run ? " fine-tuning's\n                        boundary (default: the model's own, in the table below)"
                   : " default none\n                        (backbone frozen: transfer learning)",
            is_run ? "run" : "train", backbone_table(table, sizeof table, is_run),
            is_run ? "run" : "train",
            is_run ? " --epochs 20 --fine-tune-at 500" : " --model tiny_cnn --weights none",
            is_run ? "run" : "train", is_run ? "run" : "train", is_run ? "run" : "train");
}

enum {
    OPT_DATA = 256, OPT_MODEL, OPT_WEIGHTS, OPT_IMAGE_SIZE, OPT_SKIP_BAD, OPT_EPOCHS, OPT_LR,
    OPT_FT_LR, OPT_FT_AT, OPT_BATCH, OPT_SEED, OPT_NO_AUGMENT, OPT_ROTATION, OPT_NO_ES,
    OPT_PATIENCE, OPT_MIN_DELTA, OPT_RESTORE, OPT_BACKEND, OPT_PRECISION, OPT_DETERMINISTIC, OPT_RUNS, OPT_NAME,
    OPT_RESUME, OPT_PROGRESS, OPT_NO_PLOTS, OPT_GRID_CLASS, OPT_MAX_PIXELS, OPT_CACHE,
    OPT_CACHE_BUDGET, OPT_LABEL_SMOOTHING, OPT_LR_SCHEDULE, OPT_LR_STEP_EPOCHS,
    OPT_LR_STEP_FACTOR, OPT_RECIPE, OPT_WEIGHT_DECAY, OPT_ZOOM, OPT_TRANSLATE, OPT_CONTRAST
};

static const struct option long_options[] = {
    {"data", required_argument, 0, OPT_DATA},
    {"model", required_argument, 0, OPT_MODEL},
    {"weights", required_argument, 0, OPT_WEIGHTS},
    {"image-size", required_argument, 0, OPT_IMAGE_SIZE},
    {"skip-bad", no_argument, 0, OPT_SKIP_BAD},
    {"max-pixels", required_argument, 0, OPT_MAX_PIXELS},
    {"cache", required_argument, 0, OPT_CACHE},
    {"cache-budget", required_argument, 0, OPT_CACHE_BUDGET},
    {"epochs", required_argument, 0, OPT_EPOCHS},
    {"lr", required_argument, 0, OPT_LR},
    {"fine-tune-lr", required_argument, 0, OPT_FT_LR},
    {"fine-tune-at", required_argument, 0, OPT_FT_AT},
    {"batch", required_argument, 0, OPT_BATCH},
    {"seed", required_argument, 0, OPT_SEED},
    {"no-augment", no_argument, 0, OPT_NO_AUGMENT},
    {"rotation", required_argument, 0, OPT_ROTATION},
    {"no-early-stopping", no_argument, 0, OPT_NO_ES},
    {"patience", required_argument, 0, OPT_PATIENCE},
    {"min-delta", required_argument, 0, OPT_MIN_DELTA},
    {"restore", required_argument, 0, OPT_RESTORE},
    {"backend", required_argument, 0, OPT_BACKEND},
    {"precision", required_argument, 0, OPT_PRECISION},
    {"deterministic", no_argument, 0, OPT_DETERMINISTIC},
    {"runs", required_argument, 0, OPT_RUNS},
    {"name", required_argument, 0, OPT_NAME},
    {"resume", required_argument, 0, OPT_RESUME},
    {"progress", required_argument, 0, OPT_PROGRESS},
    {"no-plots", no_argument, 0, OPT_NO_PLOTS},
    {"grid-class", required_argument, 0, OPT_GRID_CLASS},
    {"label-smoothing", required_argument, 0, OPT_LABEL_SMOOTHING},
    {"lr-schedule", required_argument, 0, OPT_LR_SCHEDULE},
    {"lr-step-epochs", required_argument, 0, OPT_LR_STEP_EPOCHS},
    {"lr-step-factor", required_argument, 0, OPT_LR_STEP_FACTOR},
    {"recipe", required_argument, 0, OPT_RECIPE},
    {"weight-decay", required_argument, 0, OPT_WEIGHT_DECAY},
    {"zoom", required_argument, 0, OPT_ZOOM},
    {"translate", required_argument, 0, OPT_TRANSLATE},
    {"contrast", required_argument, 0, OPT_CONTRAST},
    {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0}};

/* The notebook's recipe (../shared/docs/SEED.md): what --recipe notebook restores
 * and, today, the defaults. Data, output and machine options are not part of it. */
static void set_notebook_recipe(wn_train_cli *c, int is_run) {
    c->model = "irv2";
    c->weights = "auto";
    c->image_size = 320;
    c->batch = 64;
    c->epochs = 20;
    c->lr = 1e-3f;
    c->finetune_lr = 1e-5f;
    /* run: the model's own boundary, 500 for irv2 (the notebook's) */
    c->fine_tune_at = WN_FINE_TUNE_NONE;
    c->fine_tune_name = NULL;
    c->fine_tune_model_default = is_run;
    c->augment = 1;
    c->rotation = 0.2f;
    c->zoom = c->translate = c->contrast = 0.0f;
    c->early_stopping = 1;
    c->patience = 2;
    c->min_delta = 0.001;
    c->restore = WN_RESTORE_AT_END;
    c->label_smoothing = 0.0f;
    c->weight_decay = 0.0f;
    c->lr_schedule = WN_LR_CONSTANT;
    c->lr_step_epochs = 5;
    c->lr_step_factor = 0.1f;
}

static void set_defaults(wn_train_cli *c, int is_run) {
    memset(c, 0, sizeof *c);
    c->is_run = is_run;
    c->command = is_run ? "run" : "train";
    c->data = "dataset_images";
    set_notebook_recipe(c, is_run);
    c->seed = 42;
    c->backend = "auto";
    c->precision = "tf32";
    c->runs_root = "runs";
    c->name = is_run ? "run" : "train";
    c->progress = "auto";
    c->plots = 1;
    c->max_pixels = WN_DEFAULT_MAX_PIXELS;
    c->cache_mode = WN_LOADER_AUTO;
    c->cache_budget = 0;
}

static int bad(const char *cmd, const char *fmt, const char *arg) {
    fprintf(stderr, "wastenet %s: ", cmd);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see 'wastenet %s --help')\n", cmd);
    return 2;
}

/* A byte count: digits (a fraction allowed with a unit), then optionally K, M, G or
 * T, each optionally followed by "iB" or "B"; all units binary (1K = 1024). */
int wn_parse_bytes(const char *s, size_t *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !isfinite(v) || v <= 0 || *s == '-' || *s == '+') return -1;
    double unit = 1;
    switch (*end) {
    case 'k': case 'K': unit = 1024.0, end++; break;
    case 'm': case 'M': unit = 1024.0 * 1024, end++; break;
    case 'g': case 'G': unit = 1024.0 * 1024 * 1024, end++; break;
    case 't': case 'T': unit = 1024.0 * 1024 * 1024 * 1024, end++; break;
    default: break;
    }
    if (unit > 1 && (!strcmp(end, "iB") || !strcmp(end, "B"))) end += strlen(end);
    else if (unit == 1 && !strcmp(end, "B")) end++;
    if (*end) return -1;
    if (unit == 1 && v != floor(v)) return -1; /* a fraction of a byte */
    double bytes = floor(v * unit);
    if (bytes < 1 || bytes > 1e18) return -1;
    *out = (size_t)bytes;
    return 0;
}

/* One pass of getopt over argv into c. */
static int parse_pass(wn_train_cli *c, int argc, char **argv, int *help) {
    const char *cmd = c->command;
    long n;
    double x;
    int opt;
    optind = 0; /* glibc: full re-initialisation, so several passes work */
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", long_options, NULL)) != -1) {
        switch (opt) {
        case OPT_DATA:
            if (wn_opt_path(cmd, "--data", optarg)) return 2;
            c->data = optarg;
            break;
        case OPT_MODEL:
            if (wn_opt_path(cmd, "--model", optarg)) return 2;
            c->model = optarg;
            break;
        case OPT_WEIGHTS:
            if (wn_opt_path(cmd, "--weights", optarg)) return 2;
            c->weights = optarg;
            break;
        case OPT_IMAGE_SIZE:
            if (wn_opt_int(cmd, "--image-size", optarg, 1, 8192, "(pixels per side)", &n)) return 2;
            c->image_size = (int)n;
            break;
        case OPT_SKIP_BAD: c->skip_bad = 1; break;
        case OPT_MAX_PIXELS:
            if (wn_opt_int(cmd, "--max-pixels", optarg, 1, 1L << 40, "(width x height)", &n))
                return 2;
            c->max_pixels = (size_t)n;
            break;
        case OPT_CACHE:
            if (!strcmp(optarg, "auto")) c->cache_mode = WN_LOADER_AUTO;
            else if (!strcmp(optarg, "ram")) c->cache_mode = WN_LOADER_CACHE;
            else if (!strcmp(optarg, "stream")) c->cache_mode = WN_LOADER_STREAM;
            else return bad(cmd, "--cache %s: expected auto, ram or stream", optarg);
            break;
        case OPT_CACHE_BUDGET: {
            size_t bytes;
            if (wn_parse_bytes(optarg, &bytes))
                return bad(cmd, "--cache-budget %s: expected a positive size in bytes, or with "
                                "K, M, G or T (e.g. 8G or 8GiB)", optarg);
            c->cache_budget = bytes;
            break;
        }
        case OPT_EPOCHS:
            if (wn_opt_int(cmd, "--epochs", optarg, 1, 100000, NULL, &n)) return 2;
            c->epochs = (int)n;
            break;
        case OPT_LR:
            if (wn_opt_real(cmd, "--lr", optarg, WN_MIN_LR, WN_MAX_LR, &x)) return 2;
            c->lr = (float)x;
            break;
        case OPT_FT_LR:
            if (!c->is_run) return bad(cmd, "--fine-tune-lr%s: only for 'wastenet run' (use --lr)", "");
            if (wn_opt_real(cmd, "--fine-tune-lr", optarg, WN_MIN_LR, WN_MAX_LR, &x)) return 2;
            c->finetune_lr = (float)x;
            break;
        case OPT_FT_AT: {
            int v;
            c->fine_tune_name = NULL;
            c->fine_tune_model_default = 0;
            if (optarg[0] >= '0' && optarg[0] <= '9') {
                if (wn_fine_tune_parse(optarg, &v) != WN_OK)
                    return bad(cmd, "--fine-tune-at %s: expected none, all, a layer index or "
                               "a layer/block name", optarg);
                c->fine_tune_at = v;
            } else if (wn_fine_tune_parse(optarg, &v) == WN_OK) {
                c->fine_tune_at = v; /* none, all */
            } else {
                c->fine_tune_name = optarg; /* resolved against the model in the checks */
            }
            break;
        }
        case OPT_BATCH:
            if (wn_opt_int(cmd, "--batch", optarg, 1, WN_MAX_BATCH, "(images per step)", &n)) return 2;
            c->batch = (int)n;
            break;
        case OPT_SEED: {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(optarg, &end, 0);
            if (errno || end == optarg || *end || optarg[0] == '-')
                return bad(cmd, "--seed %s: expected a non-negative integer", optarg);
            c->seed = v;
            break;
        }
        case OPT_NO_AUGMENT: c->augment = 0; break;
        case OPT_ROTATION:
            if (wn_opt_real(cmd, "--rotation", optarg, 0, 1, &x)) return 2; /* 0.2 = +-72 degrees */
            c->rotation = (float)x;
            break;
        case OPT_NO_ES: c->early_stopping = 0; break;
        case OPT_PATIENCE:
            if (wn_opt_int(cmd, "--patience", optarg, 0, 100000, "(epochs)", &n)) return 2;
            c->patience = (int)n;
            break;
        case OPT_MIN_DELTA:
            if (wn_opt_real(cmd, "--min-delta", optarg, 0, 1, &x)) return 2;
            c->min_delta = x;
            break;
        case OPT_RESTORE:
            if (wn_restore_mode_parse(optarg, &c->restore) != WN_OK)
                return bad(cmd, "--restore %s: expected at-end, on-stop or never", optarg);
            break;
        case OPT_BACKEND:
            if (strcmp(optarg, "auto") && strcmp(optarg, "cpu") && strcmp(optarg, "cuda"))
                return bad(cmd, "--backend %s: expected auto, cpu or cuda", optarg);
            c->backend = optarg;
            break;
        case OPT_PRECISION:
            if (strcmp(optarg, "tf32") && strcmp(optarg, "fp32") && strcmp(optarg, "bf16"))
                return bad(cmd, "--precision %s: expected tf32, fp32 or bf16", optarg);
            c->precision = optarg;
            break;
        case OPT_DETERMINISTIC: c->deterministic = 1; break;
        case OPT_RUNS:
            if (wn_opt_path(cmd, "--runs", optarg)) return 2;
            c->runs_root = optarg;
            break;
        case OPT_NAME: c->name = optarg; break;
        case OPT_RESUME:
            if (wn_opt_path(cmd, "--resume", optarg)) return 2;
            c->resume = optarg;
            break;
        case OPT_PROGRESS:
            if (strcmp(optarg, "auto") && strcmp(optarg, "bar") && strcmp(optarg, "lines") &&
                strcmp(optarg, "none"))
                return bad(cmd, "--progress %s: expected auto, bar, lines or none", optarg);
            c->progress = optarg;
            break;
        case OPT_NO_PLOTS: c->plots = 0; break;
        case OPT_LABEL_SMOOTHING:
            if (wn_opt_real(cmd, "--label-smoothing", optarg, 0.0, 0.999, &x)) return 2;
            c->label_smoothing = (float)x;
            break;
        case OPT_ZOOM:
            if (wn_opt_real(cmd, "--zoom", optarg, 0.0, 1.0, &x)) return 2;
            c->zoom = (float)x;
            break;
        case OPT_TRANSLATE:
            if (wn_opt_real(cmd, "--translate", optarg, 0.0, 1.0, &x)) return 2;
            c->translate = (float)x;
            break;
        case OPT_CONTRAST:
            if (wn_opt_real(cmd, "--contrast", optarg, 0.0, 1.0, &x)) return 2;
            c->contrast = (float)x;
            break;
        case OPT_WEIGHT_DECAY:
            if (wn_opt_real(cmd, "--weight-decay", optarg, 0.0, 100.0, &x)) return 2;
            c->weight_decay = (float)x;
            break;
        case OPT_LR_SCHEDULE: {
            wn_lr_kind kind;
            if (wn_lr_kind_parse(optarg, &kind) != WN_OK)
                return bad(cmd, "--lr-schedule %s: expected constant, cosine or step", optarg);
            c->lr_schedule = kind;
            break;
        }
        case OPT_LR_STEP_EPOCHS:
            if (wn_opt_int(cmd, "--lr-step-epochs", optarg, 1, 100000, "(epochs)", &n)) return 2;
            c->lr_step_epochs = (int)n;
            break;
        case OPT_LR_STEP_FACTOR:
            if (wn_opt_real(cmd, "--lr-step-factor", optarg, 1e-6, 1.0, &x)) return 2;
            c->lr_step_factor = (float)x;
            break;
        case OPT_RECIPE:
            if (strcmp(optarg, "notebook"))
                return bad(cmd, "--recipe %s: expected notebook", optarg);
            set_notebook_recipe(c, c->is_run);
            break;
        case OPT_GRID_CLASS:
            if (wn_opt_path(cmd, "--grid-class", optarg)) return 2;
            c->grid_class = optarg;
            break;
        case 'h': *help = 1; return 0;
        case ':': return bad(cmd, "%s needs a value", argv[optind - 1]);
        default: return wn_opt_unknown(cmd, argc, argv, optind, optopt);
        }
    }
    if (optind < argc) return bad(cmd, "unexpected argument '%s'", argv[optind]);
    return 0;
}

/* The options a run was started with: <run>/command.txt, one argument per line. */
static char **volatile saved_argv; /* volatile: a store the optimiser would drop (never read) */


static int saved_args_read(const char *run_dir, int *argc_out, char ***argv_out) {
    char path[4096];
    if (wn_path_join(path, sizeof path, run_dir, "command.txt") != WN_OK) return WN_ERR;
    const char *why;
    FILE *f = wn_fopen_regular(path, "r", &why);
    if (!f)
        return wn_fail("cannot resume %s: %s: %s (is it a run folder of wastenet train/run?)",
                       run_dir, path, why);
    int cap = 16, n = 1;
    char **argv = malloc((size_t)cap * sizeof *argv), line[4200];
    if (!argv) {
        fclose(f);
        return wn_fail("out of memory");
    }
    argv[0] = strdup("resume");
    while (fgets(line, sizeof line, f)) {
        size_t len = strlen(line);
        if (len && line[len - 1] == '\n') line[--len] = '\0';
        if (n + 1 >= cap) {
            char **grown = realloc(argv, (size_t)(cap *= 2) * sizeof *argv);
            if (!grown) {
                fclose(f);
                return wn_fail("out of memory");
            }
            argv = grown;
        }
        argv[n++] = strdup(line);
    }
    fclose(f);
    argv[n] = NULL;
    *argc_out = n;
    *argv_out = argv;
    saved_argv = argv; /* kept for the life of the process: options point into it */
    return WN_OK;
}

int wn_train_cli_parse(wn_train_cli *cli, int is_run, int argc, char **argv, int *help) {
    *help = 0;
    set_defaults(cli, is_run);
    int rc = parse_pass(cli, argc, argv, help);
    if (rc || *help) {
        if (*help) usage(stdout, is_run);
        return rc;
    }
    if (!cli->resume) return 0;
    /* Resume: the saved options first, then this command line over them. */
    const char *resume = cli->resume;
    int sargc;
    char **sargv;
    if (saved_args_read(resume, &sargc, &sargv) != WN_OK) {
        fprintf(stderr, "wastenet %s: %s\n", cli->command, wn_last_error());
        return 2;
    }
    set_defaults(cli, is_run);
    if ((rc = parse_pass(cli, sargc, sargv, help)) != 0) return rc;
    rc = parse_pass(cli, argc, argv, help);
    cli->resume = resume;
    return rc;
}


/* ------------------------------------------------------------------ checks before data */

const char *wn_train_cli_auto_weights(const char *model, char *buf, size_t size) {
    if (!strcmp(model, "irv2"))
        snprintf(buf, size, "weights/inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5");
    else if (!strcmp(model, "xception") || !strcmp(model, "resnet50") ||
             !strcmp(model, "densenet121"))
        snprintf(buf, size, "weights/%s_weights_tf_dim_ordering_tf_kernels_notop.h5", model);
    else if (!strcmp(model, "mobilenet_v2"))
        /* one file per size Keras publishes; every one holds the same shapes */
        snprintf(buf, size, "weights/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5");
    else if (!strncmp(model, "efficientnet_lite", 17))
        snprintf(buf, size, "weights/%s_imagenet_notop.h5", model);
    else
        return NULL;
    return buf;
}

static int fail_check(const wn_train_cli *c, int status, const char *what) {
    if (status == 2) fprintf(stderr, "wastenet %s: %s (see 'wastenet %s --help')\n", c->command,
                             what, c->command);
    else fprintf(stderr, "wastenet %s: %s\n", c->command, what);
    return status;
}

/* The --runs folder, or its nearest existing parent, must let us create folders. */
static int check_runs_root(const wn_train_cli *c) {
    char path[4096];
    snprintf(path, sizeof path, "%s", c->runs_root);
    for (;;) {
        struct stat st;
        if (stat(path, &st) == 0) {
            char real[PATH_MAX];
            if (realpath(path, real) &&
                (!strcmp(real, "/dev") || !strcmp(real, "/proc") || !strcmp(real, "/sys") ||
                 !strncmp(real, "/dev/", 5) || !strncmp(real, "/proc/", 6) ||
                 !strncmp(real, "/sys/", 5))) {
                wn_fail("--runs %s: %s is a system folder (/dev, /proc or /sys): choose "
                        "another folder with --runs",
                        c->runs_root, real);
                return fail_check(c, 1, wn_last_error());
            }
            if (!S_ISDIR(st.st_mode)) {
                wn_fail("--runs %s: %s is not a folder", c->runs_root, path);
                return fail_check(c, 1, wn_last_error());
            }
            if (access(path, W_OK | X_OK) != 0) {
                wn_fail("cannot create the run folder under %s: %s is not writable (%s); "
                        "choose another folder with --runs",
                        c->runs_root, path, strerror(errno));
                return fail_check(c, 1, wn_last_error());
            }
            return 0;
        }
        char *slash = strrchr(path, '/');
        if (!slash) { /* a relative path with no existing part: the current folder */
            snprintf(path, sizeof path, ".");
            continue;
        }
        if (slash == path) { /* "/x": the root */
            path[1] = '\0';
            continue;
        }
        *slash = '\0';
    }
}

int wn_train_cli_check(wn_train_cli *c) {
    char msg[1024];
    const wn_backbone_def *def = wn_backbone_find(c->model);
    if (!def) {
        snprintf(msg, sizeof msg, "--model %s: %s", c->model, wn_last_error());
        return fail_check(c, 2, msg);
    }
    if (c->image_size < def->min_size) {
        snprintf(msg, sizeof msg, "--image-size %d: the %s model needs images of at least "
                 "%dx%d; use %d..8192", c->image_size, def->name, def->min_size,
                 def->min_size, def->min_size);
        return fail_check(c, 2, msg);
    }
    if (c->fine_tune_model_default) {
        if (!def->fine_tune_default) {
            snprintf(msg, sizeof msg, "--model %s has no default fine-tuning boundary; give "
                     "--fine-tune-at none|all|N|BLOCK", def->name);
            return fail_check(c, 2, msg);
        }
        c->fine_tune_name = def->fine_tune_default; /* an index or a block name */
    }
    if (c->fine_tune_at > 0 || c->fine_tune_name) { /* none and all (0) fit every model */
        /* The layer count: the backbone's graph alone (no weights allocated). */
        wn_graph g;
        if (wn_backbone_build_graph(&g, c->model, c->image_size, c->image_size) != WN_OK) {
            snprintf(msg, sizeof msg, "--model %s --image-size %d: %s", c->model, c->image_size,
                     wn_last_error());
            return fail_check(c, 1, msg);
        }
        int layers = g.n_layers;
        if (c->fine_tune_name &&
            wn_fine_tune_resolve(&g, 0, g.n_layers, c->fine_tune_name, &c->fine_tune_at) != WN_OK) {
            snprintf(msg, sizeof msg, "%s", wn_last_error());
            wn_graph_free(&g);
            return fail_check(c, 2, msg);
        }
        wn_graph_free(&g);
        if (c->fine_tune_at > layers) {
            snprintf(msg, sizeof msg, "--fine-tune-at %d: the %s backbone has %d layers; use "
                     "none, all or 0..%d", c->fine_tune_at, def->name, layers, layers);
            return fail_check(c, 2, msg);
        }
    }
    for (const char *p = c->name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.')) {
            snprintf(msg, sizeof msg, "--name %s: use only letters, digits, '-', '_' and '.'",
                     c->name);
            return fail_check(c, 2, msg);
        }
    if (!*c->name) return fail_check(c, 2, "--name: expected a non-empty name");

    /* The weights file: the reader's own message (model_weights.c) when it is missing. */
    char buf[512];
    const char *w = c->weights;
    if (!strcmp(w, "auto")) w = wn_train_cli_auto_weights(c->model, buf, sizeof buf);
    else if (!strcmp(w, "none")) w = NULL;
    if (w && access(w, F_OK) != 0) {
        if (!strcmp(c->weights, "auto"))
            snprintf(msg, sizeof msg, "the pretrained weights %s are missing: see "
                     "weights/README.md for how to get them, pass --weights FILE, or "
                     "--weights none to start from random weights", w);
        else
            snprintf(msg, sizeof msg, "%s: no such weight file; wastenet never downloads "
                     "weights: see weights/README.md for where to get them", w);
        return fail_check(c, 1, msg);
    }
    if (!c->resume && check_runs_root(c)) return 1;
    if (!strcmp(c->backend, "cuda") && !wn_cuda_available()) {
        wn_cuda_device_info info;
        if (wn_cuda_device_query(0, &info) != WN_OK) /* its reason says what to do */
            snprintf(msg, sizeof msg, "--backend cuda: %s", wn_last_error());
        else
            snprintf(msg, sizeof msg, "--backend cuda: GPU 0 (%s) is not usable here; use "
                     "--backend cpu or auto", info.name);
        return fail_check(c, 1, msg);
    }
    return 0;
}
