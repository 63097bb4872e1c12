/* tools/train_cli.c — the shared body of `wastenet train` and `wastenet run`
 * (see train_cli.h). */
#include "tools/train_cli.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/augment_preview.h"
#include "engine/backend.h"
#include "engine/error.h"
#include "engine/executor.h"
#include "engine/metrics.h"
#include "engine/model.h"
#include "engine/progress.h"
#include "engine/run_report.h"
#include "engine/train_loop.h"
#include "host/atomic_file.h"
#include "host/dataset.h"
#include "host/loader.h"
#include "host/model_weights.h"

/* ------------------------------------------------------------------ options */

static void usage(FILE *out, int is_run) {
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
            "  --model NAME          backbone: irv2 (default), efficientnet_lite0..2, tiny_cnn\n"
            "  --weights FILE|auto|none  starting weights: a Keras .h5 (backbone-only notop\n"
            "                        or whole model); auto (default) = the official ImageNet\n"
            "                        file in weights/ for irv2 (weights/README.md), the\n"
            "                        converted one for efficientnet_lite*, none otherwise;\n"
            "                        none = Keras's random initialisation\n"
            "  --image-size N        images are resized to N x N (default 320)\n"
            "  --skip-bad            skip unreadable images (one warning each) instead of stopping\n"
            "training:\n"
            "  --epochs N            maximum epochs per phase (default 20)\n"
            "  --lr X                Adam learning rate%s (default 1e-3)\n"
            "%s"
            "  --fine-tune-at none|all|N  freeze backbone layers [0, N) (Keras layers[:N]);%s\n"
            "  --batch N             batch size (default 64)\n"
            "  --seed N              seed of the initialisation, shuffling, augmentation and\n"
            "                        dropout (default 42)\n"
            "  --no-augment          no random flip/rotation (preprocess only)\n"
            "  --rotation F          RandomRotation factor: angles in [-F*2pi, F*2pi) (default 0.2)\n"
            "  --no-early-stopping   run every epoch\n"
            "  --patience N          early stopping patience (default 2)\n"
            "  --min-delta X         smallest improvement that counts (default 0.001)\n"
            "  --restore MODE        best weights: at-end (default; tf-keras >= 2.16 restores\n"
            "                        them whenever training ends), on-stop (TF <= 2.15: only\n"
            "                        when early stopping fires), never\n"
            "  --backend NAME        auto (default: cuda when a GPU is usable), cpu, cuda\n"
            "  --precision P         CUDA math: tf32 (default), fp32, bf16\n"
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
            "Ctrl-C (or SIGTERM) finishes the current step, writes a checkpoint and exits\n"
            "with status 130; a second Ctrl-C exits at once (the last checkpoint is intact).\n\n"
            "example:\n"
            "  wastenet %s --data dataset_images%s\n"
            "  wastenet %s --resume runs/20250101-120000-%s\n",
            is_run ? " of transfer learning" : "",
            is_run ? "  --fine-tune-lr X      Adam learning rate of fine-tuning (default 1e-5)\n" : "",
            is_run ? " fine-tuning's\n                        boundary (default 500)"
                   : " default none\n                        (backbone frozen: transfer learning)",
            is_run ? "run" : "train", is_run ? "run" : "train",
            is_run ? " --epochs 20 --fine-tune-at 500" : " --model tiny_cnn --weights none",
            is_run ? "run" : "train", is_run ? "run" : "train");
}

enum {
    OPT_DATA = 256, OPT_MODEL, OPT_WEIGHTS, OPT_IMAGE_SIZE, OPT_SKIP_BAD, OPT_EPOCHS, OPT_LR,
    OPT_FT_LR, OPT_FT_AT, OPT_BATCH, OPT_SEED, OPT_NO_AUGMENT, OPT_ROTATION, OPT_NO_ES,
    OPT_PATIENCE, OPT_MIN_DELTA, OPT_RESTORE, OPT_BACKEND, OPT_PRECISION, OPT_RUNS, OPT_NAME,
    OPT_RESUME, OPT_PROGRESS, OPT_NO_PLOTS, OPT_GRID_CLASS
};

static const struct option long_options[] = {
    {"data", required_argument, 0, OPT_DATA},
    {"model", required_argument, 0, OPT_MODEL},
    {"weights", required_argument, 0, OPT_WEIGHTS},
    {"image-size", required_argument, 0, OPT_IMAGE_SIZE},
    {"skip-bad", no_argument, 0, OPT_SKIP_BAD},
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
    {"runs", required_argument, 0, OPT_RUNS},
    {"name", required_argument, 0, OPT_NAME},
    {"resume", required_argument, 0, OPT_RESUME},
    {"progress", required_argument, 0, OPT_PROGRESS},
    {"no-plots", no_argument, 0, OPT_NO_PLOTS},
    {"grid-class", required_argument, 0, OPT_GRID_CLASS},
    {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0}};

static void set_defaults(wn_train_cli *c, int is_run) {
    memset(c, 0, sizeof *c);
    c->is_run = is_run;
    c->command = is_run ? "run" : "train";
    c->data = "dataset_images";
    c->model = "irv2";
    c->weights = "auto";
    c->image_size = 320;
    c->batch = 64;
    c->epochs = 20;
    c->lr = 1e-3f;
    c->finetune_lr = 1e-5f;
    c->fine_tune_at = is_run ? 500 : WN_FINE_TUNE_NONE;
    c->seed = 42;
    c->augment = 1;
    c->rotation = 0.2f;
    c->early_stopping = 1;
    c->patience = 2;
    c->min_delta = 0.001;
    c->restore = WN_RESTORE_AT_END;
    c->backend = "auto";
    c->precision = "tf32";
    c->runs_root = "runs";
    c->name = is_run ? "run" : "train";
    c->progress = "auto";
    c->plots = 1;
}

static int bad(const char *cmd, const char *fmt, const char *arg) {
    fprintf(stderr, "wastenet %s: ", cmd);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see 'wastenet %s --help')\n", cmd);
    return 2;
}

static int parse_int(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v)) return -1;
    *out = v;
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
        case OPT_DATA: c->data = optarg; break;
        case OPT_MODEL: c->model = optarg; break;
        case OPT_WEIGHTS: c->weights = optarg; break;
        case OPT_IMAGE_SIZE:
            if (parse_int(optarg, 1, 8192, &n)) return bad(cmd, "--image-size %s: expected 1..8192", optarg);
            c->image_size = (int)n;
            break;
        case OPT_SKIP_BAD: c->skip_bad = 1; break;
        case OPT_EPOCHS:
            if (parse_int(optarg, 1, 100000, &n)) return bad(cmd, "--epochs %s: expected a positive integer", optarg);
            c->epochs = (int)n;
            break;
        case OPT_LR:
            if (parse_double(optarg, &x) || !(x > 0)) return bad(cmd, "--lr %s: expected a positive number", optarg);
            c->lr = (float)x;
            break;
        case OPT_FT_LR:
            if (!c->is_run) return bad(cmd, "--fine-tune-lr%s: only for 'wastenet run' (use --lr)", "");
            if (parse_double(optarg, &x) || !(x > 0)) return bad(cmd, "--fine-tune-lr %s: expected a positive number", optarg);
            c->finetune_lr = (float)x;
            break;
        case OPT_FT_AT: {
            int v;
            if (wn_fine_tune_parse(optarg, &v) != WN_OK)
                return bad(cmd, "--fine-tune-at %s: expected none, all or a layer index", optarg);
            c->fine_tune_at = v;
            break;
        }
        case OPT_BATCH:
            if (parse_int(optarg, 1, 65536, &n)) return bad(cmd, "--batch %s: expected a positive integer", optarg);
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
            if (parse_double(optarg, &x) || x < 0 || x > 1)
                return bad(cmd, "--rotation %s: expected a factor in [0, 1] (0.2 = +-72 degrees)", optarg);
            c->rotation = (float)x;
            break;
        case OPT_NO_ES: c->early_stopping = 0; break;
        case OPT_PATIENCE:
            if (parse_int(optarg, 0, 100000, &n)) return bad(cmd, "--patience %s: expected an integer >= 0", optarg);
            c->patience = (int)n;
            break;
        case OPT_MIN_DELTA:
            if (parse_double(optarg, &x) || x < 0) return bad(cmd, "--min-delta %s: expected a number >= 0", optarg);
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
        case OPT_RUNS: c->runs_root = optarg; break;
        case OPT_NAME: c->name = optarg; break;
        case OPT_RESUME: c->resume = optarg; break;
        case OPT_PROGRESS:
            if (strcmp(optarg, "auto") && strcmp(optarg, "bar") && strcmp(optarg, "lines") &&
                strcmp(optarg, "none"))
                return bad(cmd, "--progress %s: expected auto, bar, lines or none", optarg);
            c->progress = optarg;
            break;
        case OPT_NO_PLOTS: c->plots = 0; break;
        case OPT_GRID_CLASS: c->grid_class = optarg; break;
        case 'h': *help = 1; return 0;
        case ':': return bad(cmd, "%s needs a value", argv[optind - 1]);
        default: return bad(cmd, "unknown option '%s'", argv[optind - 1]);
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
    FILE *f = fopen(path, "r");
    if (!f)
        return wn_fail("cannot resume %s: %s: %s (is it a run folder of wastenet train/run?)",
                       run_dir, path, strerror(errno));
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

/* ------------------------------------------------------------------ signals */

static volatile sig_atomic_t g_interrupt = 0;

static void on_signal(int sig) {
    static const char again[] =
        "\nwastenet: stopped at once; the last checkpoint is intact (resume with --resume)\n";
    static const char first[] =
        "\nwastenet: stopping after this step and writing a checkpoint "
        "(press Ctrl-C again to quit at once)\n";
    if (g_interrupt) {
        ssize_t w = write(STDERR_FILENO, again, sizeof again - 1);
        (void)w;
        _exit(128 + sig);
    }
    g_interrupt = 1;
    ssize_t w = write(STDERR_FILENO, first, sizeof first - 1);
    (void)w;
}

static void install_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    /* One handler at a time: a second signal waits until the first has set the flag. */
    sigaddset(&sa.sa_mask, SIGINT);
    sigaddset(&sa.sa_mask, SIGTERM);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* ------------------------------------------------------------------ helpers */

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int dir_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* --weights auto: the pretrained file this project documents for the backbone. */
static const char *auto_weights(const char *model, char *buf, size_t size) {
    if (!strcmp(model, "irv2"))
        snprintf(buf, size, "weights/inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5");
    else if (!strncmp(model, "efficientnet_lite", 17))
        snprintf(buf, size, "weights/%s_imagenet_notop.h5", model);
    else
        return NULL;
    return buf;
}

static int write_command(const char *run_dir, int argc, char **argv) {
    char path[4096];
    if (wn_path_join(path, sizeof path, run_dir, "command.txt") != WN_OK) return WN_ERR;
    wn_atomic_file af;
    if (wn_atomic_open(&af, path) != WN_OK) return WN_ERR;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--resume")) { i++; continue; }
        if (!strncmp(argv[i], "--resume=", 9)) continue;
        if (strchr(argv[i], '\n')) {
            wn_atomic_abort(&af);
            return wn_fail("an argument contains a newline: %s", argv[i]);
        }
        fprintf(af.fp, "%s\n", argv[i]);
    }
    return wn_atomic_commit(&af);
}

/* Temporary files "<name>.tmp.<pid>" left by a process killed while writing
 * (host/atomic_file.h): the real files beside them are intact; remove the leftovers. */
static void remove_stale_temporaries(const char *run_dir) {
    DIR *d = opendir(run_dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *t = strstr(e->d_name, ".tmp.");
        if (!t || !t[5]) continue;
        const char *p = t + 5;
        while (*p >= '0' && *p <= '9') p++;
        if (*p) continue;
        long pid = atol(t + 5);
        if (pid == (long)getpid() || (kill((pid_t)pid, 0) == 0)) continue; /* still alive */
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", run_dir, e->d_name);
        if (unlink(path) == 0) printf("removed %s (left by an interrupted write)\n", path);
    }
    closedir(d);
}

static int write_classes(const char *run_dir, const wn_dataset *ds) {
    char path[4096];
    if (wn_path_join(path, sizeof path, run_dir, "classes.txt") != WN_OK) return WN_ERR;
    wn_atomic_file af;
    if (wn_atomic_open(&af, path) != WN_OK) return WN_ERR;
    for (int c = 0; c < ds->n_classes; c++) fprintf(af.fp, "%s\n", ds->class_names[c]);
    return wn_atomic_commit(&af);
}

static void on_bad_file(void *user, const char *path, const char *reason) {
    (void)user;
    fprintf(stderr, "warning: skipping %s: %s\n", path, reason);
}

/* tools/plots.py: $WN_PLOTS_SCRIPT, else beside the binary's source tree. */
static int find_plots_script(char *out, size_t size) {
    const char *env = getenv("WN_PLOTS_SCRIPT");
    if (env && *env) {
        snprintf(out, size, "%s", env);
        return file_exists(out);
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return 0;
    exe[n] = '\0';
    char *dir = dirname(exe);
    const char *rel[] = {"/../tools/plots.py", "/../../tools/plots.py", "/tools/plots.py",
                         "/../share/wastenet/plots.py"};
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
        snprintf(out, size, "%s%s", dir, rel[i]);
        if (file_exists(out)) return 1;
    }
    return 0;
}

/* Runs plots.py on the run folder; any failure is a warning, never an error. */
static void make_plots(const wn_train_cli *cli, const char *run_dir) {
    char script[PATH_MAX + 64];
    if (!find_plots_script(script, sizeof script)) {
        fprintf(stderr, "warning: tools/plots.py not found (set WN_PLOTS_SCRIPT): no pictures\n");
        return;
    }
    const char *python = getenv("WN_PLOT_PYTHON");
    if (!python || !*python) python = file_exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
    char *args[8];
    int k = 0;
    args[k++] = (char *)python;
    args[k++] = script;
    args[k++] = (char *)run_dir;
    if (cli->grid_class) args[k++] = "--grid-class", args[k++] = (char *)cli->grid_class;
    args[k] = NULL;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        execvp(python, args);
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0) {
        fprintf(stderr, "warning: could not run %s: %s: no pictures\n", python, strerror(errno));
        return;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 3)
        fprintf(stderr, "warning: matplotlib is not available to %s (Debian: apt-get install "
                        "python3-matplotlib): the run succeeded without pictures\n", python);
    else if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
        fprintf(stderr, "warning: %s not found (set WN_PLOT_PYTHON): no pictures\n", python);
    else
        fprintf(stderr, "warning: %s %s failed: the run succeeded without (some) pictures\n",
                python, script);
}

/* ------------------------------------------------------------------ the command */

typedef struct session {
    wn_train_cli *cli;
    char run_dir[4096];
    wn_dataset train_ds, val_ds, test_ds;
    int have_test;
    wn_loader *train, *val, *test;
    wn_model model;
    int have_model;
    wn_backend *be;
    wn_executor *ex;
    wn_progress progress;
    wn_history history;
} session;

static int open_split(session *s, wn_dataset *ds, wn_loader **ld, const char *split, int shuffle,
                      const wn_dataset *classes_from) {
    char dir[4096];
    if (wn_path_join(dir, sizeof dir, s->cli->data, split) != WN_OK) return WN_ERR;
    wn_scan_options so = {s->cli->skip_bad, on_bad_file, NULL};
    if (wn_dataset_scan(ds, dir, classes_from ? (const char *const *)classes_from->class_names : NULL,
                        classes_from ? classes_from->n_classes : 0, &so) != WN_OK)
        return WN_ERR;
    wn_dataset_print_found(ds, stdout);
    wn_loader_options lo;
    wn_loader_options_default(&lo);
    lo.height = lo.width = s->cli->image_size;
    lo.batch = s->cli->batch;
    lo.shuffle = shuffle;
    lo.seed = s->cli->seed;
    lo.skip_bad = s->cli->skip_bad;
    lo.on_bad_file = on_bad_file;
    if (wn_loader_open(ld, ds, &lo) != WN_OK) return wn_fail_context("%s: ", dir);
    if (wn_loader_size(*ld) == 0) return wn_fail("%s: no usable images", dir);
    return WN_OK;
}

static wn_backend *make_backend(const wn_train_cli *cli) {
    wn_precision p = !strcmp(cli->precision, "fp32")   ? WN_PRECISION_FP32
                     : !strcmp(cli->precision, "bf16") ? WN_PRECISION_BF16
                                                       : WN_PRECISION_TF32;
    if (!strcmp(cli->backend, "cuda") || (!strcmp(cli->backend, "auto") && wn_cuda_available()))
        return wn_backend_cuda(0, p);
    return wn_backend_cpu();
}

static int load_start_weights(session *s) {
    const char *w = s->cli->weights;
    char buf[512];
    if (!strcmp(w, "none")) {
        printf("weights: Keras's random initialisation (seed %llu)\n",
               (unsigned long long)s->cli->seed);
        return WN_OK;
    }
    if (!strcmp(w, "auto")) {
        w = auto_weights(s->cli->model, buf, sizeof buf);
        if (!w) {
            printf("weights: no pretrained file for %s: random initialisation (seed %llu)\n",
                   s->cli->model, (unsigned long long)s->cli->seed);
            return WN_OK;
        }
        if (!file_exists(w))
            return wn_fail("the pretrained weights %s are missing: see weights/README.md for how "
                           "to get them, pass --weights FILE, or --weights none to start from "
                           "random weights",
                           w);
    }
    wn_weights_info info;
    if (wn_model_weights_load(&s->model, w, &info) != WN_OK) return WN_ERR;
    printf("weights: %s (%s, %d layers matched by %s)\n", w,
           info.scope == WN_WEIGHTS_BACKBONE_ONLY ? "backbone only" : "whole model", info.layers,
           info.by_name ? "name" : "position");
    return WN_OK;
}

static int write_preview(session *s) {
    char path[4096];
    if (wn_path_join(path, sizeof path, s->run_dir, "augment_preview.npy") != WN_OK) return WN_ERR;
    if (file_exists(path)) return WN_OK;
    wn_batch b;
    /* One training image: the first of an epoch no phase uses. */
    if (wn_loader_begin_epoch(s->train, 999999) != WN_OK || wn_loader_next(s->train, &b) != 1)
        return WN_ERR;
    int h = b.height, w = b.width;
    uint8_t *out = malloc((size_t)5 * h * w * 3);
    if (!out) return wn_fail("augmentation preview: out of memory");
    wn_rng rng;
    wn_rng_seed(&rng, s->cli->seed, 999);
    wn_augment_preview_make(b.pixels, h, w, 4, &rng, s->cli->augment ? s->cli->rotation : 0.0f, out);
    int rc = wn_npy_write_images(path, out, 5, h, w);
    free(out);
    return rc;
}

/* Test evaluation and the per-class analysis of a phase. */
static int evaluate_test(session *s, const char *phase) {
    int n = wn_loader_size(s->test), k = s->model.num_classes;
    float *probs = malloc((size_t)n * (size_t)k * sizeof *probs);
    int32_t *labels = malloc((size_t)n * sizeof *labels), *indices = malloc((size_t)n * sizeof *indices);
    const char **paths = malloc((size_t)n * sizeof *paths);
    int *lab = malloc((size_t)n * sizeof *lab);
    wn_confusion cm;
    wn_class_report rep;
    int rc = WN_ERR, have_rep = 0;
    memset(&cm, 0, sizeof cm);
    if (!probs || !labels || !indices || !paths || !lab) {
        wn_fail("test evaluation: out of memory");
        goto out;
    }
    if (wn_confusion_init(&cm, k) != WN_OK) goto out;
    wn_eval_result r;
    printf("evaluating on the test set (%d images)...\n", n);
    if (wn_evaluate(s->ex, &s->model, s->test, &r, &cm, probs, labels, indices) != WN_OK) goto out;
    printf("%s: test loss %.4f, accuracy on test set = %.2f %%\n", phase, r.loss, r.accuracy * 100);
    if (wn_report_write_test(s->run_dir, phase, r.loss, r.accuracy, r.samples) != WN_OK) goto out;
    if (wn_class_report_compute(&cm, &rep) != WN_OK) goto out;
    have_rep = 1;
    printf("per-class analysis (%s, test set):\n", phase);
    wn_report_print_classes(stdout, (const char *const *)s->test_ds.class_names, &cm, &rep);
    if (wn_report_write_classes(s->run_dir, phase, (const char *const *)s->test_ds.class_names,
                                &cm, &rep) != WN_OK)
        goto out;
    for (int i = 0; i < (int)r.samples; i++) paths[i] = s->test_ds.paths[indices[i]], lab[i] = labels[i];
    rc = wn_report_write_predictions(s->run_dir, phase, (int)r.samples, k, paths, lab, probs,
                                     (const char *const *)s->test_ds.class_names);
out:
    if (have_rep) wn_class_report_free(&rep);
    wn_confusion_free(&cm);
    free(probs), free(labels), free(indices), free(paths), free(lab);
    return rc;
}

static const char *status_words(wn_phase_status st) {
    switch (st) {
    case WN_PHASE_DONE: return "ran all its epochs";
    case WN_PHASE_STOPPED: return "stopped early";
    case WN_PHASE_DIVERGED: return "diverged";
    default: return "running";
    }
}

/* One phase: train (or resume), export weights, evaluate. Returns an exit status. */
static int run_phase(session *s, const char *phase, const char *title, int index, float lr,
                     int fine_tune_at) {
    wn_train_cli *cli = s->cli;
    if (s->model.fine_tune_at != fine_tune_at &&
        wn_executor_set_fine_tune(s->ex, fine_tune_at) != WN_OK)
        return fprintf(stderr, "wastenet %s: %s\n", cli->command, wn_last_error()), 1;
    printf("\n== %s: %s, lr %g, %zu trainable parameters (backbone: %zu) ==\n", phase, title, lr,
           wn_model_trainable_count(&s->model), wn_model_backbone_trainable(&s->model));
    char ckpt[4096], test_json[4096], weights[4096], name[128];
    snprintf(name, sizeof name, "%s.ckpt", phase);
    wn_path_join(ckpt, sizeof ckpt, s->run_dir, name);
    snprintf(name, sizeof name, "%s_test.json", phase);
    wn_path_join(test_json, sizeof test_json, s->run_dir, name);
    snprintf(name, sizeof name, "%s_weights.h5", phase);
    wn_path_join(weights, sizeof weights, s->run_dir, name);

    wn_train_options o;
    wn_train_options_default(&o);
    o.phase = phase, o.phase_index = index, o.epochs = cli->epochs, o.lr = lr;
    o.seed = cli->seed, o.augment = cli->augment, o.rotation = cli->rotation;
    o.early_stopping = cli->early_stopping, o.min_delta = cli->min_delta;
    o.patience = cli->patience, o.restore = cli->restore;
    o.checkpoint = ckpt, o.resume = cli->resume != NULL, o.interrupt = &g_interrupt;
    const char *stop_after = getenv("WN_TEST_INTERRUPT_AFTER_STEPS"); /* tests only */
    if (stop_after) o.interrupt_after_steps = atol(stop_after);
    o.progress = &s->progress, o.history = &s->history, o.report_dir = s->run_dir;
    wn_train_result res;
    if (wn_train_phase(s->ex, &s->model, s->train, s->val, &o, &res) != WN_OK) {
        fprintf(stderr, "wastenet %s: %s\n", cli->command, wn_last_error());
        if (file_exists(ckpt))
            fprintf(stderr, "The last checkpoint (%s) is intact: after fixing the cause, resume "
                            "with: wastenet %s --resume %s\n", ckpt, cli->command, s->run_dir);
        return 1;
    }
    if (res.resumed)
        printf("%s: resumed from %s at epoch %d, step %d\n", phase, ckpt, res.resumed_epoch + 1,
               res.resumed_step);
    if (res.interrupted) {
        fprintf(stderr, "%s\nResume with: wastenet %s --resume %s\n", res.message, cli->command,
                s->run_dir);
        return WN_EXIT_INTERRUPTED;
    }
    int already_done = res.resumed && res.resumed_epoch == res.epochs_done &&
                       res.status != WN_PHASE_RUNNING && file_exists(test_json);
    if (res.status == WN_PHASE_DIVERGED) fprintf(stderr, "wastenet %s: %s\n", cli->command, res.message);
    printf("%s: %s after %d epoch%s", phase, status_words(res.status), res.epochs_done,
           res.epochs_done == 1 ? "" : "s");
    if (res.best_epoch)
        printf("; best epoch %d (val_categorical_accuracy %.4f)%s", res.best_epoch,
               res.best_val_accuracy, res.restored ? ", its weights restored" : "");
    printf("\n");
    if (already_done) {
        printf("%s: finished before this resume; its weights, test results and reports are in %s\n",
               phase, s->run_dir);
        return 0;
    }
    if (wn_model_weights_save(&s->model, weights, WN_WEIGHTS_WHOLE_MODEL) != WN_OK) {
        fprintf(stderr, "wastenet %s: saving weights: %s\n", cli->command, wn_last_error());
        return 1;
    }
    printf("%s: weights saved to %s (Keras layout: model.load_weights)\n", phase, weights);
    if (s->have_test && evaluate_test(s, phase) != WN_OK) {
        fprintf(stderr, "wastenet %s: %s\n", cli->command, wn_last_error());
        return 1;
    }
    return res.status == WN_PHASE_DIVERGED ? 1 : 0;
}

static void session_close(session *s) {
    if (s->ex) wn_executor_destroy(s->ex);
    if (s->be && s->be->destroy) s->be->destroy(s->be);
    if (s->have_model) wn_model_free(&s->model);
    if (s->train) wn_loader_close(s->train);
    if (s->val) wn_loader_close(s->val);
    if (s->test) wn_loader_close(s->test);
    wn_dataset_free(&s->train_ds);
    wn_dataset_free(&s->val_ds);
    wn_dataset_free(&s->test_ds);
    wn_history_free(&s->history);
}

int wn_train_cli_main(wn_train_cli *cli, int argc, char **argv) {
    session s;
    memset(&s, 0, sizeof s);
    s.cli = cli;
    const char *cmd = cli->command;
    int status = 1;
    double t0 = wn_clock_seconds();
    /* Line-buffered even into a log file, so messages on stderr land in order. */
    setvbuf(stdout, NULL, _IOLBF, 0);

    /* The run folder: a new one, or the one being resumed. */
    if (cli->resume) {
        if (!dir_exists(cli->resume)) {
            fprintf(stderr, "wastenet %s: --resume %s: no such run folder\n", cmd, cli->resume);
            return 2;
        }
        snprintf(s.run_dir, sizeof s.run_dir, "%s", cli->resume);
        char hist[4200];
        wn_path_join(hist, sizeof hist, s.run_dir, "history.csv");
        if (wn_history_read_csv(&s.history, hist) != WN_OK) goto fail;
        printf("resuming %s\n", s.run_dir);
        remove_stale_temporaries(s.run_dir);
    } else {
        if (wn_run_dir_create(s.run_dir, sizeof s.run_dir, cli->runs_root, cli->name, time(NULL)) != WN_OK ||
            write_command(s.run_dir, argc, argv) != WN_OK)
            goto fail;
        printf("run folder: %s\n", s.run_dir);
    }
    install_signals();

    /* Data: classes from train/, the same classes required of validation/ and test/. */
    if (open_split(&s, &s.train_ds, &s.train, "train", 1, NULL) != WN_OK ||
        open_split(&s, &s.val_ds, &s.val, "validation", 0, &s.train_ds) != WN_OK)
        goto fail;
    char test_dir[4096];
    wn_path_join(test_dir, sizeof test_dir, cli->data, "test");
    if (dir_exists(test_dir)) {
        if (open_split(&s, &s.test_ds, &s.test, "test", 0, &s.train_ds) != WN_OK) goto fail;
        s.have_test = 1;
    } else {
        printf("no %s folder: no test evaluation\n", test_dir);
    }
    if (s.train_ds.n_classes < 2) {
        wn_fail("%s/train has %d class folder%s: a classifier needs at least 2", cli->data,
                s.train_ds.n_classes, s.train_ds.n_classes == 1 ? "" : "s");
        goto fail;
    }
    if (write_classes(s.run_dir, &s.train_ds) != WN_OK) goto fail;

    /* The model, its starting weights, the backend and the executor. */
    if (wn_model_create(&s.model, cli->model, cli->image_size, cli->image_size,
                        s.train_ds.n_classes, cli->seed) != WN_OK)
        goto fail;
    s.have_model = 1;
    if (load_start_weights(&s) != WN_OK) goto fail;
    int first_boundary = cli->is_run ? WN_FINE_TUNE_NONE : cli->fine_tune_at;
    if (cli->is_run && wn_model_set_fine_tune(&s.model, cli->fine_tune_at) != WN_OK)
        goto fail; /* check the fine-tune boundary now, not after transfer learning */
    if (wn_model_set_fine_tune(&s.model, first_boundary) != WN_OK) goto fail;
    if (!(s.be = make_backend(cli))) goto fail;
    printf("backend: %s, batch %d, %dx%d images, %d classes, seed %llu\n", s.be->name, cli->batch,
           cli->image_size, cli->image_size, s.train_ds.n_classes, (unsigned long long)cli->seed);
    if (wn_executor_create(&s.ex, &s.model, s.be, cli->batch, 0) != WN_OK) goto fail;
    if (cli->augment && write_preview(&s) != WN_OK) goto fail;

    wn_progress_mode pm = !strcmp(cli->progress, "bar")     ? WN_PROGRESS_BAR
                          : !strcmp(cli->progress, "lines") ? WN_PROGRESS_LINES
                                                            : WN_PROGRESS_AUTO;
    wn_progress_init(&s.progress, stdout, pm, !strcmp(cli->progress, "none"));

    if (cli->is_run) {
        status = run_phase(&s, "transfer", "transfer learning (backbone frozen)", 0, cli->lr,
                           WN_FINE_TUNE_NONE);
        if (status == 0 && g_interrupt) { /* Ctrl-C during the test evaluation */
            fprintf(stderr, "transfer learning is finished and saved; fine-tuning has not "
                            "started.\nResume with: wastenet %s --resume %s\n",
                    cmd, s.run_dir);
            status = WN_EXIT_INTERRUPTED;
        }
        if (status == 0) {
            char title[96];
            snprintf(title, sizeof title, "fine-tuning from backbone layer %d", cli->fine_tune_at);
            status = run_phase(&s, "finetune", title, 1, cli->finetune_lr, cli->fine_tune_at);
        }
    } else {
        char title[96];
        if (cli->fine_tune_at == WN_FINE_TUNE_NONE) snprintf(title, sizeof title, "backbone frozen");
        else snprintf(title, sizeof title, "backbone trainable from layer %d", cli->fine_tune_at);
        status = run_phase(&s, "train", title, 0, cli->lr, cli->fine_tune_at);
    }
    if (status != WN_EXIT_INTERRUPTED && cli->plots) make_plots(cli, s.run_dir);
    printf("%s: %s in %.1f minutes; everything is in %s\n", cmd,
           status == 0 ? "done" : status == WN_EXIT_INTERRUPTED ? "interrupted" : "failed",
           (wn_clock_seconds() - t0) / 60, s.run_dir);
    session_close(&s);
    return status;
fail:
    fprintf(stderr, "wastenet %s: %s\n", cmd, wn_last_error());
    session_close(&s);
    return 1;
}
