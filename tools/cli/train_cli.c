/* tools/cli/train_cli.c — the shared body of `wastenet train` and `wastenet run` (see
 * train_cli.h): set-up (data, model, weights, backend), the run folder, the phases
 * (train, export weights, evaluate on the test set, per-class report) and the
 * pictures. Options: tools/train_options.c; signals: tools/train_signals.c. */
#include "tools/cli/train_cli.h"

#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/train/augment_preview.h"
#include "engine/runtime/backend.h"
#include "engine/backends/cpu/backend_cpu.h"
#include "host/base/error.h"
#include "engine/runtime/backend_bf16.h"
#include "engine/runtime/executor.h"
#include "engine/train/metrics.h"
#include "engine/model/model.h"
#include "engine/train/progress.h"
#include "engine/train/run_report.h"
#include "engine/train/train_loop.h"
#include "host/base/atomic_file.h"
#include "engine/backends/cuda/backend_cuda.h"
#include "engine/train/checkpoint.h"
#include "host/dataset.h"
#include "host/image_cache.h"
#include "host/loader.h"
#include "engine/train/model_weights.h"
#include "tools/cli/train_signals.h"
#include "host/regular_file.h"
#include "engine/train/checkpoint.h"
#include "tools/cli/run_lock.h"
#include "tools/cli/train_signals.h"
#include "tools/cli/train_ranks.h"
#include "engine/train/distributed.h"

/* ------------------------------------------------------------------ helpers */

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int dir_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
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

/* The pid of a temporary name "<name>.tmp.<pid>" (host/base/atomic_file.h), or 0. */
static long temporary_pid(const char *name) {
    const char *t = strstr(name, ".tmp.");
    if (!t || !t[5]) return 0;
    const char *p = t + 5;
    while (*p >= '0' && *p <= '9') p++;
    return *p ? 0 : atol(t + 5);
}

/* Temporary files left by a process killed while writing: the real files beside
 * them are intact (the rename never happened); remove the leftovers of processes
 * that are gone. A live process (kill(pid, 0) succeeds, or fails with EPERM: it
 * exists but is someone else's) may still be writing its file: keep it. */
static void remove_stale_temporaries(const char *run_dir) {
    DIR *d = opendir(run_dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        long pid = temporary_pid(e->d_name);
        if (pid <= 0 || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno == EPERM) continue;
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

/* ------------------------------------------------------------------ resume checks */

static const char *const train_phases[] = {"train", NULL};
static const char *const run_phases[] = {"transfer", "finetune", NULL};

/* Which checkpoints of `phases` the folder holds: names into buf ("transfer.ckpt"). */
static int folder_checkpoints(const char *dir, const char *const *phases, char *buf, size_t size) {
    int n = 0;
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; phases[i]; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s.ckpt", dir, phases[i]);
        if (!file_exists(path)) continue;
        int w = snprintf(buf + used, size - used, "%s%s.ckpt", n ? ", " : "", phases[i]);
        if (w > 0 && (size_t)w < size - used) used += (size_t)w;
        n++;
    }
    return n;
}

/* --resume, before any data is read: the folder must be one of this command, and
 * each of its checkpoints must have been written with this model, image size, seed
 * and batch (version 2 files record the command and batch too). Returns 0 or the
 * exit status (2) after the message. */
static int check_resume_folder(const wn_train_cli *cli) {
    const char *dir = cli->resume, *cmd = cli->command;
    const char *const *mine = cli->is_run ? run_phases : train_phases;
    const char *const *theirs = cli->is_run ? train_phases : run_phases;
    const char *other = cli->is_run ? "train" : "run";
    char found[256], others[256];
    int n_mine = folder_checkpoints(dir, mine, found, sizeof found);
    if (!n_mine && folder_checkpoints(dir, theirs, others, sizeof others)) {
        fprintf(stderr, "wastenet %s: --resume %s: a run folder of 'wastenet %s' (it holds %s), "
                        "not of 'wastenet %s': resume it with 'wastenet %s --resume %s', or "
                        "start a new run\n",
                cmd, dir, other, others, cmd, other, dir);
        return 2;
    }
    for (int i = 0; mine[i]; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s.ckpt", dir, mine[i]);
        struct stat st;
        if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
            /* it would be taken for "no checkpoint yet" and its phase started over */
            fprintf(stderr, "wastenet %s: --resume %s: %s is not a regular file (a folder, "
                            "pipe or device): move it away or start a new run\n",
                    cmd, dir, path);
            return 2;
        }
        wn_checkpoint ck;
        if (!file_exists(path) || wn_checkpoint_read_info(&ck, path) != WN_OK)
            continue; /* a damaged file: the phase's full read says what is wrong */
        char what[512] = "";
        if (strcmp(ck.arch, cli->model))
            snprintf(what, sizeof what, "--model %s, this run uses --model %s", ck.arch, cli->model);
        else if (ck.image_h != cli->image_size || ck.image_w != cli->image_size)
            snprintf(what, sizeof what, "--image-size %d, this run uses --image-size %d",
                     ck.image_h, cli->image_size);
        else if (ck.seed != cli->seed)
            snprintf(what, sizeof what, "--seed %llu, this run uses --seed %llu",
                     (unsigned long long)ck.seed, (unsigned long long)cli->seed);
        else if (ck.command[0] && strcmp(ck.command, cmd))
            snprintf(what, sizeof what, "'wastenet %s', this is 'wastenet %s'", ck.command, cmd);
        else if (ck.batch && ck.batch != cli->batch)
            snprintf(what, sizeof what, "--batch %d, this run uses --batch %d", ck.batch, cli->batch);
        wn_checkpoint_free(&ck);
        if (what[0]) {
            fprintf(stderr, "wastenet %s: --resume %s: %s was written with %s; resume with the "
                            "run's own options (leave them out: they are read from "
                            "command.txt), or start a new run\n",
                    cmd, dir, path, what);
            return 2;
        }
    }
    return 0;
}

/* --resume, after the training split is scanned: its classes, in label order, must be
 * those the run started with (classes.txt; the checkpoint checks them again). */
static int check_resume_classes(const char *run_dir, const char *data, const wn_dataset *train) {
    char path[4200];
    snprintf(path, sizeof path, "%s/classes.txt", run_dir);
    FILE *f = wn_fopen_regular(path, "r", NULL);
    if (!f) return WN_OK; /* a folder interrupted before it was written */
    char line[4200];
    int n = 0, same = 1;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (n >= train->n_classes || strcmp(line, train->class_names[n])) same = 0;
        n++;
    }
    fclose(f);
    if (same && n == train->n_classes) return WN_OK;
    /* Read again for the message: "'a', 'b'" then and now. */
    char was[1024] = "", now[1024] = "";
    size_t u = 0;
    if ((f = wn_fopen_regular(path, "r", NULL))) {
        while (fgets(line, sizeof line, f) && u + 8 < sizeof was) {
            line[strcspn(line, "\n")] = '\0';
            int w = snprintf(was + u, sizeof was - u, "%s'%s'", u ? ", " : "", line);
            if (w < 0 || (size_t)w >= sizeof was - u) break;
            u += (size_t)w;
        }
        fclose(f);
    }
    u = 0;
    for (int c = 0; c < train->n_classes; c++) {
        int w = snprintf(now + u, sizeof now - u, "%s'%s'", u ? ", " : "", train->class_names[c]);
        if (w < 0 || (size_t)w >= sizeof now - u) break;
        u += (size_t)w;
    }
    return wn_fail("--resume %s: the run was trained on the classes %s (classes.txt, in label "
                   "order); %s/train now has %s: class folders were renamed, added or "
                   "removed, and resuming would relabel them; restore the folders or start a "
                   "new run",
                   run_dir, was, data, now);
}

/* ------------------------------------------------------------------ test hook */

/* WN_TEST_SIGNAL_AT (only in the test build, wastenet-testhooks) makes the process
 * send itself SIGINT (or SIGTERM with a ":TERM" suffix, SIGHUP with ":HUP"; SIGKILL
 * with ":KILL" and SIGSTOP with ":STOP", only on rank $WN_TEST_SIGNAL_RANK when set, for
 * the rank faults of tests/mpi) at an exact point, so the tests can check what a signal
 * does there without racing: "setup" (the training data just loaded), "folder" (the
 * new run folder just created), "train:E:B", "validation:E:B" (after batch B of
 * epoch E) or "test:P:B" (after batch B of the P-th test evaluation: 1 transfer or
 * train, 2 fine-tuning). */
typedef struct test_signal {
    char pass[16];
    int n, batch, sig, armed;
} test_signal;

static test_signal g_test_signal;

static void test_signal_parse(void) {
    memset(&g_test_signal, 0, sizeof g_test_signal);
#ifdef WN_TEST_HOOKS
    const char *v = getenv("WN_TEST_SIGNAL_AT");
    if (!v || !*v) return;
    char pass[16] = "", term[8] = "";
    int n = 0, batch = 0;
    if (sscanf(v, "%15[a-z]:%d:%d:%7s", pass, &n, &batch, term) < 1) return;
    snprintf(g_test_signal.pass, sizeof g_test_signal.pass, "%s", pass);
    g_test_signal.n = n, g_test_signal.batch = batch;
    g_test_signal.sig = strstr(v, ":TERM")   ? SIGTERM
                        : strstr(v, ":HUP")  ? SIGHUP
                        : strstr(v, ":KILL") ? SIGKILL /* tests/mpi: a rank dies */
                        : strstr(v, ":STOP") ? SIGSTOP /* tests/mpi: a rank hangs */
                                             : SIGINT;
    /* WN_TEST_SIGNAL_RANK=R: only rank R signals itself (tests/mpi) */
    const char *rank = getenv("WN_TEST_SIGNAL_RANK");
    g_test_signal.armed = !rank || !*rank || atoi(rank) == wn_dist_rank();
#endif
}

static void test_signal_at(const char *pass, int n, int batch) {
    test_signal *t = &g_test_signal;
    if (!t->armed || strcmp(t->pass, pass) || t->n != n || t->batch != batch) return;
    t->armed = 0;
    raise(t->sig);
}

static void test_signal_hook(void *user, const char *pass, int epoch, int batch) {
    (void)user;
    test_signal_at(pass, epoch, batch);
}

/* ------------------------------------------------------------------ the command */

typedef struct session {
    wn_train_cli *cli;
    char run_dir[4096];
    int new_run_dir;            /* 1: this process created run_dir (not a resume) */
    wn_dataset train_ds, val_ds, test_ds;
    int have_test;
    wn_loader *train, *val, *test;
    size_t cache_left;          /* --cache auto: bytes of the budget not yet used */
    wn_model model;
    int have_model;
    wn_backend *be;
    wn_host_allocator staging;  /* the backend's host memory for the loaders' buffers */
    wn_executor *ex;
    wn_progress progress;
    wn_history history;
    int lock_fd;                /* tools/run_lock.h; -1 before the folder is locked */
    int lock_recorded;          /* <run>/lock written by this process */
} session;

static size_t default_cache_budget(void) { /* host/loader.c's default: half the RAM */
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0) return (size_t)1 << 30;
    return (size_t)pages * (size_t)page / 2;
}

/* Lists a split's files (no image is read yet). */
static int scan_split(session *s, wn_dataset *ds, const char *split, const wn_dataset *classes_from) {
    char dir[4096];
    if (wn_path_join(dir, sizeof dir, s->cli->data, split) != WN_OK) return WN_ERR;
    wn_scan_options so = {s->cli->skip_bad, on_bad_file, NULL};
    if (wn_dataset_scan(ds, dir, classes_from ? (const char *const *)classes_from->class_names : NULL,
                        classes_from ? classes_from->n_classes : 0, &so) != WN_OK)
        return WN_ERR;
    wn_dataset_print_found(ds, stdout);
    return WN_OK;
}

/* Files of class c the loader found bad (0 without a loader). */
static int count_bad_in_class(const wn_dataset *ds, const wn_loader *ld, int c) {
    int n = 0;
    for (int i = 0; ld && i < ds->n_files; i++) n += ds->labels[i] == c && wn_loader_file_is_bad(ld, i);
    return n;
}

/* Usable images of class c: scanned files not (yet) found bad by the loader. */
static int usable_in_class(const wn_dataset *ds, const wn_loader *ld, int c) {
    int n = 0;
    for (int i = 0; i < ds->n_files; i++)
        n += ds->labels[i] == c && !(ld && wn_loader_file_is_bad(ld, i));
    return n;
}

/* --skip-bad must not leave a class of the training split without images: the model
 * would be trained on fewer classes than its head has, silently. Checked after the
 * scan and again once the training images are decoded (cache mode). */
static int check_no_empty_train_class(const session *s, const wn_loader *ld) {
    for (int c = 0; c < s->train_ds.n_classes; c++)
        if (usable_in_class(&s->train_ds, ld, c) == 0)
            return wn_fail("%s/train/%s: class '%s' has no usable image left (%d skipped as "
                           "bad): every training class needs images; fix or replace its "
                           "files, or remove the class folder from every split",
                           s->cli->data, s->train_ds.class_names[c], s->train_ds.class_names[c],
                           s->train_ds.n_skipped_class[c] + count_bad_in_class(&s->train_ds, ld, c));
    return WN_OK;
}

/* With --skip-bad, what was left out, per split and class (printed at the end: in
 * stream mode bad files are found while training). */
static void print_skipped(const session *s) {
    const struct { const char *split; const wn_dataset *ds; const wn_loader *ld; } sp[] = {
        {"train", &s->train_ds, s->train}, {"validation", &s->val_ds, s->val},
        {"test", &s->test_ds, s->test}};
    for (size_t k = 0; k < sizeof sp / sizeof sp[0]; k++) {
        const wn_dataset *ds = sp[k].ds;
        if (!ds->n_classes) continue;
        int total = ds->n_skipped;
        for (int c = 0; c < ds->n_classes; c++) total += count_bad_in_class(ds, sp[k].ld, c);
        printf("skipped (--skip-bad) in %s: %d", sp[k].split, total);
        if (total) {
            printf(" (");
            for (int c = 0; c < ds->n_classes; c++)
                printf("%s%s %d of %d", c ? ", " : "", ds->class_names[c],
                       ds->n_skipped_class[c] + count_bad_in_class(ds, sp[k].ld, c),
                       ds->n_skipped_class[c] + usable_in_class(ds, NULL, c));
            printf(")");
        }
        printf("\n");
    }
}

/* The loader of a scanned split: where the images are decoded (cache mode) or the
 * decoding set up (stream mode). */
static int open_loader(session *s, const wn_dataset *ds, wn_loader **ld, const char *split,
                       int shuffle) {
    const wn_train_cli *cli = s->cli;
    char dir[4096];
    if (wn_path_join(dir, sizeof dir, cli->data, split) != WN_OK) return WN_ERR;
    wn_loader_options lo;
    wn_loader_options_default(&lo);
    lo.height = lo.width = cli->image_size;
    lo.batch = cli->batch;
    lo.shuffle = shuffle;
    lo.seed = cli->seed;
    lo.skip_bad = cli->skip_bad;
    lo.on_bad_file = on_bad_file;
    lo.max_pixels = cli->max_pixels;
    lo.staging = &s->staging;
    lo.shard_rank = wn_dist_rank(), lo.shard_count = wn_dist_size(); /* 1: whole batches */
    /* auto: the budget covers every split together, the training split first. */
    size_t need = wn_image_cache_bytes(ds, cli->image_size, cli->image_size);
    lo.mode = cli->cache_mode;
    if (lo.mode == WN_LOADER_AUTO) {
        lo.mode = need <= s->cache_left ? WN_LOADER_CACHE : WN_LOADER_STREAM;
        if (lo.mode == WN_LOADER_CACHE) s->cache_left -= need;
    }
    if (lo.mode == WN_LOADER_CACHE)
        printf("%s: decoding into RAM (%.1f MiB)\n", split, (double)need / (1 << 20));
    else
        printf("%s: streamed from the files every epoch%s\n", split,
               cli->cache_mode == WN_LOADER_AUTO ? " (over the --cache-budget left)" : "");
    if (wn_loader_open(ld, ds, &lo) != WN_OK) return wn_fail_context("%s: ", dir);
    if (wn_loader_size(*ld) == 0) return wn_fail("%s: no usable images", dir);
    return WN_OK;
}

static wn_backend *make_backend(const wn_train_cli *cli) {
    wn_precision p = !strcmp(cli->precision, "fp32") ? WN_PRECISION_FP32 : WN_PRECISION_TF32;
    wn_backend *be = !strcmp(cli->backend, "cuda") ||
                             (!strcmp(cli->backend, "auto") && wn_cuda_available())
                         ? wn_backend_cuda(wn_train_ranks_gpu(), p) /* one GPU per rank */
                         : wn_backend_cpu();
    if (be && cli->deterministic && wn_backend_set_deterministic(be, 1) != WN_OK) {
        wn_backend_destroy(be);
        return NULL;
    }
    return be;
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
        w = wn_train_cli_auto_weights(s->cli->model, buf, sizeof buf);
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
    const wn_train_cli *c = s->cli;
    wn_augment_factors f = {c->augment ? c->rotation : 0.0f, c->augment ? c->zoom : 0.0f,
                            c->augment ? c->translate : 0.0f, c->augment ? c->contrast : 0.0f, h, w};
    wn_augment_preview_layers(b.pixels, h, w, 4, &rng, &f, out);
    int rc = wn_npy_write_images(path, out, 5, h, w);
    free(out);
    return rc;
}

/* Set-up, before anything is written: the file lists, the model with its starting
 * weights, the backend and the executor, then the images (decoded now in cache
 * mode). A signal meanwhile ends the process at once (train_signals.h). */
static int session_setup(session *s) {
    wn_train_cli *cli = s->cli;
    /* The file lists: classes from train/, the same classes required of validation/
     * and test/. */
    if (scan_split(s, &s->train_ds, "train", NULL) != WN_OK ||
        scan_split(s, &s->val_ds, "validation", &s->train_ds) != WN_OK)
        return WN_ERR;
    char test_dir[4096];
    wn_path_join(test_dir, sizeof test_dir, cli->data, "test");
    s->have_test = dir_exists(test_dir);
    if (s->have_test && scan_split(s, &s->test_ds, "test", &s->train_ds) != WN_OK) return WN_ERR;
    if (!s->have_test) printf("no %s folder: no test evaluation\n", test_dir);
    if (s->train_ds.n_classes < 2)
        return wn_fail("%s/train has %d class folder%s: a classifier needs at least 2", cli->data,
                       s->train_ds.n_classes, s->train_ds.n_classes == 1 ? "" : "s");
    if (check_no_empty_train_class(s, NULL) != WN_OK) return WN_ERR;
    if (cli->resume && check_resume_classes(s->run_dir, cli->data, &s->train_ds) != WN_OK) return WN_ERR;

    /* The model, its starting weights, the backend and the executor, before the
     * images are decoded: a bad weight file or a batch the GPU cannot hold is found
     * in seconds, not after loading the data. */
    if (wn_model_create(&s->model, cli->model, cli->image_size, cli->image_size,
                        s->train_ds.n_classes, cli->seed) != WN_OK)
        return WN_ERR;
    s->have_model = 1;
    if (load_start_weights(s) != WN_OK) return WN_ERR;
    int first_boundary = cli->is_run ? WN_FINE_TUNE_NONE : cli->fine_tune_at;
    if (cli->is_run && wn_model_set_fine_tune(&s->model, cli->fine_tune_at) != WN_OK)
        return WN_ERR; /* wn_train_cli_check has checked it already; kept as the backstop */
    if (wn_model_set_fine_tune(&s->model, first_boundary) != WN_OK) return WN_ERR;
    if (!(s->be = make_backend(cli))) return WN_ERR;
    if (wn_dist_active() && wn_backend_join_group(s->be, wn_dist_group()) != WN_OK)
        return wn_fail_context("rank %d of %d: ", wn_dist_rank(), wn_dist_size());
    s->staging = wn_backend_staging_allocator(s->be);
    printf("backend: %s, batch %d, %dx%d images, %d classes, seed %llu\n", s->be->name, cli->batch,
           cli->image_size, cli->image_size, s->train_ds.n_classes, (unsigned long long)cli->seed);
    /* Several ranks: each holds at most its share of a batch. */
    int ranks = wn_dist_size(), rank_batch = (cli->batch + ranks - 1) / ranks;
    unsigned flags = !strcmp(cli->precision, "bf16") ? WN_EXEC_BF16 : 0;
    if (wn_executor_create(&s->ex, &s->model, s->be, rank_batch, flags) != WN_OK) return WN_ERR;
    if (wn_dist_active()) {
        size_t bucket = 0;
        if (wn_dist_bucket_bytes(wn_backend_allreduce_overlaps(s->be), &bucket) != WN_OK ||
            wn_executor_set_grad_buckets(s->ex, bucket) != WN_OK)
            return WN_ERR;
        if (wn_dist_is_root()) {
            if (bucket)
                printf("data parallel: %d ranks, gradients summed in buckets of %.3g MiB as "
                       "backward writes them (%s)\n",
                       wn_dist_size(), bucket / 1048576.0,
                       wn_backend_allreduce_overlaps(s->be) ? "overlapping backward"
                                                            : "each at once: this backend "
                                                              "cannot overlap them");
            else
                printf("data parallel: %d ranks, gradients summed once after backward\n",
                       wn_dist_size());
        }
    }
    if (flags & WN_EXEC_BF16) printf("precision: bf16 (%s)\n", wn_backend_bf16_describe(s->be));

    /* The images; with several ranks on a machine the default budget is shared. */
    s->cache_left = cli->cache_budget ? cli->cache_budget
                                      : default_cache_budget() / (size_t)wn_dist_local_size();
    if (open_loader(s, &s->train_ds, &s->train, "train", 1) != WN_OK) return WN_ERR;
    if (check_no_empty_train_class(s, s->train) != WN_OK) return WN_ERR;
    test_signal_at("setup", 0, 0);
    if (open_loader(s, &s->val_ds, &s->val, "validation", 0) != WN_OK) return WN_ERR;
    if (s->have_test && open_loader(s, &s->test_ds, &s->test, "test", 0) != WN_OK) return WN_ERR;
    return WN_OK;
}

/* Removes a run folder this process created during start-up, with what start-up
 * wrote into it. A folder holding a checkpoint is never touched; anything else
 * unexpected in it makes rmdir fail and the folder stays. */
static void remove_new_run_dir(session *s) {
    if (!s->new_run_dir) return;
    DIR *d = opendir(s->run_dir);
    if (!d) return;
    static const char *const ours[] = {"command.txt", "classes.txt", "augment_preview.npy",
                                       WN_RUN_LOCK_NAME};
    wn_run_unlock(s->run_dir, s->lock_fd, s->lock_recorded);
    s->lock_fd = -1, s->lock_recorded = 0;
    struct dirent *e;
    int has_checkpoint = 0;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n > 5 && !strcmp(e->d_name + n - 5, ".ckpt")) has_checkpoint = 1;
    }
    if (has_checkpoint) {
        closedir(d);
        return;
    }
    rewinddir(d);
    char path[4400];
    while ((e = readdir(d))) {
        int remove = temporary_pid(e->d_name) == (long)getpid();
        for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++) remove |= !strcmp(e->d_name, ours[i]);
        if (!remove) continue;
        snprintf(path, sizeof path, "%s/%s", s->run_dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    if (rmdir(s->run_dir) == 0) s->new_run_dir = 0;
}

/* After set-up: the run folder and what it holds before the first epoch (command,
 * classes, augmentation preview). A new folder is made only now, so a run that
 * cannot start leaves none behind; signals are held meanwhile (train_signals.h).
 * Returns 0, 1 (failed: the new folder removed) or 130 (interrupted: the same). */
static int make_run_folder_here(session *s, int argc, char **argv);

/* Rank 0 makes the folder and tells the other ranks its name (they write nothing). */
static int make_run_folder(session *s, int argc, char **argv) {
    int status = 0;
    if (wn_dist_is_root()) {
        status = make_run_folder_here(s, argc, argv);
    } else { /* from here on a signal stops this rank with the others, after a step */
        wn_train_signals_enter_hold();
        if (wn_train_signals_leave_hold()) status = WN_EXIT_INTERRUPTED;
    }
    if (!wn_dist_active() || status) return status;
    if (wn_dist_broadcast(s->run_dir, sizeof s->run_dir, "the run folder's name") != WN_OK) {
        fprintf(stderr, "wastenet %s: %s\n", s->cli->command, wn_last_error());
        return 1;
    }
    return 0;
}

static int make_run_folder_here(session *s, int argc, char **argv) {
    wn_train_cli *cli = s->cli;
    wn_train_signals_enter_hold();
    int rc = WN_OK;
    if (cli->resume) {
        remove_stale_temporaries(s->run_dir);
    } else {
        rc = wn_run_dir_create(s->run_dir, sizeof s->run_dir, cli->runs_root, cli->name, time(NULL));
        if (rc == WN_OK) {
            s->new_run_dir = 1;
            s->lock_fd = wn_run_lock(s->run_dir);
            if (s->lock_fd < 0) rc = WN_ERR;
        }
        if (rc == WN_OK) rc = write_command(s->run_dir, argc, argv);
        if (rc == WN_OK) printf("run folder: %s\n", s->run_dir);
        test_signal_at("folder", 0, 0);
    }
    if (rc == WN_OK && (rc = wn_run_lock_record(s->run_dir, stdout)) == WN_OK) s->lock_recorded = 1;
    if (rc == WN_OK) rc = write_classes(s->run_dir, &s->train_ds);
    if (rc == WN_OK && cli->augment) rc = write_preview(s);
    if (rc != WN_OK) {
        fprintf(stderr, "wastenet %s: %s\n", cli->command, wn_last_error());
        remove_new_run_dir(s);
        return 1;
    }
    if (wn_train_signals_leave_hold()) {
        remove_new_run_dir(s);
        fputs(wn_train_signals_setup_message(), stderr);
        return WN_EXIT_INTERRUPTED;
    }
    return 0;
}

/* Test evaluation and the per-class analysis of a phase. *interrupted is set when a
 * signal stopped the pass (nothing written then: a resume evaluates again). */
static int evaluate_test(session *s, const char *phase, int index, int *interrupted) {
    int n = wn_loader_size(s->test), k = s->model.num_classes;
    float *probs = malloc((size_t)n * (size_t)k * sizeof *probs);
    int32_t *labels = malloc((size_t)n * sizeof *labels), *indices = malloc((size_t)n * sizeof *indices);
    const char **paths = malloc((size_t)n * sizeof *paths);
    int *lab = malloc((size_t)n * sizeof *lab);
    wn_confusion cm;
    wn_class_report rep;
    int rc = WN_ERR, have_rep = 0;
    memset(&cm, 0, sizeof cm);
    *interrupted = 0;
    if (!probs || !labels || !indices || !paths || !lab) {
        wn_fail("test evaluation: out of memory");
        goto out;
    }
    if (wn_confusion_init(&cm, k) != WN_OK) goto out;
    wn_eval_result r;
    wn_eval_control ctl = {&wn_train_interrupt, test_signal_hook, NULL, "test", index + 1};
    printf("evaluating on the test set (%d images)...\n", n);
    if (wn_evaluate_ctl(s->ex, &s->model, s->test, &ctl, &r, &cm, probs, labels, indices) != WN_OK)
        goto out;
    if (r.interrupted) {
        *interrupted = 1;
        rc = WN_OK;
        goto out;
    }
    printf("%s: test loss %.4f, accuracy on test set = %.2f %%\n", phase, r.loss, r.accuracy * 100);
    if (!wn_dist_is_root()) { /* rank 0 writes the reports */
        rc = WN_OK;
        goto out;
    }
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
    o.label_smoothing = cli->label_smoothing, o.lr_schedule = cli->lr_schedule;
    o.weight_decay = cli->weight_decay;
    o.zoom = cli->zoom, o.translate = cli->translate, o.contrast = cli->contrast;
    o.lr_step_epochs = cli->lr_step_epochs, o.lr_step_factor = cli->lr_step_factor;
    o.early_stopping = cli->early_stopping, o.min_delta = cli->min_delta;
    o.patience = cli->patience, o.restore = cli->restore;
    o.checkpoint = ckpt, o.resume = cli->resume != NULL, o.interrupt = &wn_train_interrupt;
    o.after_batch = test_signal_hook;
    o.command = cli->command, o.batch = cli->batch;
    o.class_names = (const char *const *)s->train_ds.class_names;
    o.n_class_names = s->train_ds.n_classes;
#ifdef WN_TEST_HOOKS
    const char *stop_after = getenv("WN_TEST_INTERRUPT_AFTER_STEPS");
    if (stop_after) o.interrupt_after_steps = atol(stop_after);
#endif
    o.progress = &s->progress, o.history = &s->history, o.report_dir = s->run_dir;
    if (!wn_dist_is_root()) o.history = NULL, o.report_dir = NULL; /* rank 0 writes */
#ifdef WN_TEST_HOOKS
    /* WN_TEST_STEP_LOG=FILE: each training step's loss and accuracy (tests/mpi) */
    const char *step_log = getenv("WN_TEST_STEP_LOG");
    if (step_log && *step_log && wn_dist_is_root() && !(o.step_log = fopen(step_log, "a")))
        return fprintf(stderr, "wastenet %s: WN_TEST_STEP_LOG %s: cannot open\n", cli->command,
                       step_log), 1;
#endif
    wn_train_result res;
    int trained = wn_train_phase(s->ex, &s->model, s->train, s->val, &o, &res);
    if (o.step_log) fclose(o.step_log);
    if (trained != WN_OK) {
        fprintf(stderr, "wastenet %s: %s\n", cli->command, wn_last_error());
        /* Only said when it is true: the failure may be the checkpoint itself (a
         * checksum mismatch), or a resume it refused. */
        wn_checkpoint ck;
        if (file_exists(ckpt) && wn_checkpoint_load(&ck, ckpt) == WN_OK) {
            int fits = wn_train_check_identity(&ck, &o, ckpt) == WN_OK;
            wn_checkpoint_free(&ck);
            if (fits)
                fprintf(stderr, "The last checkpoint (%s) is intact: after fixing the cause, "
                                "resume with: wastenet %s --resume %s\n",
                        ckpt, cli->command, s->run_dir);
        }
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
    /* rank 0's view of the folder decides for every rank (the test pass is shared) */
    if (wn_dist_broadcast(&already_done, sizeof already_done, "the phase's state") != WN_OK)
        return fprintf(stderr, "wastenet %s: %s\n", cli->command, wn_last_error()), 1;
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
    if (wn_dist_is_root() &&
        wn_model_weights_save(&s->model, weights, WN_WEIGHTS_WHOLE_MODEL) != WN_OK) {
        fprintf(stderr, "wastenet %s: saving weights: %s\n", cli->command, wn_last_error());
        return 1;
    }
    printf("%s: weights saved to %s (Keras layout: model.load_weights)\n", phase, weights);
    int interrupted = 0;
    if (s->have_test && evaluate_test(s, phase, index, &interrupted) != WN_OK) {
        fprintf(stderr, "wastenet %s: %s\n", cli->command, wn_last_error());
        return 1;
    }
    if (interrupted) {
        fprintf(stderr, "%s: interrupted during the test evaluation; the phase's training is "
                        "finished and saved (%s).\nResume with: wastenet %s --resume %s\n",
                phase, ckpt, cli->command, s->run_dir);
        return WN_EXIT_INTERRUPTED;
    }
    return res.status == WN_PHASE_DIVERGED ? 1 : 0;
}

static void session_close(session *s) {
    wn_run_unlock(s->run_dir, s->lock_fd, s->lock_recorded);
    s->lock_fd = -1, s->lock_recorded = 0;
    if (s->ex) wn_executor_destroy(s->ex);
    if (s->have_model) wn_model_free(&s->model);
    /* The loaders first: their staging buffers came from the backend's host_alloc. */
    if (s->train) wn_loader_close(s->train);
    if (s->val) wn_loader_close(s->val);
    if (s->test) wn_loader_close(s->test);
    wn_backend_destroy(s->be);
    wn_dataset_free(&s->train_ds);
    wn_dataset_free(&s->val_ds);
    wn_dataset_free(&s->test_ds);
    wn_history_free(&s->history);
}

int wn_train_cli_main(wn_train_cli *cli, int argc, char **argv) {
    session s;
    memset(&s, 0, sizeof s);
    s.cli = cli;
    s.lock_fd = -1;
    const char *cmd = cli->command;
    int status = 1;
    double t0 = wn_clock_seconds();
    /* Line-buffered even into a log file, so messages on stderr land in order. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    test_signal_parse();

    /* Everything the options alone can tell, before any data is read; first whether
     * a --resume folder belongs to this command (its saved options may not even fit
     * this command's defaults). */
    int rc = cli->resume ? check_resume_folder(cli) : 0;
    if (!rc) rc = wn_train_cli_check(cli);
    if (rc) return rc;
    char setup_message[1024];
    if (cli->resume)
        snprintf(setup_message, sizeof setup_message,
                 "wastenet %s: interrupted during set-up; %s is unchanged. Resume with: "
                 "wastenet %s --resume %s", cmd, cli->resume, cmd, cli->resume);
    else
        snprintf(setup_message, sizeof setup_message,
                 "wastenet %s: interrupted during set-up (loading data, model and weights): "
                 "nothing was trained or written, there is nothing to resume", cmd);
    wn_train_signals_install(setup_message);

    if (cli->resume) {
        if (!dir_exists(cli->resume)) {
            fprintf(stderr, "wastenet %s: --resume %s: no such run folder\n", cmd, cli->resume);
            return 2;
        }
        snprintf(s.run_dir, sizeof s.run_dir, "%s", cli->resume);
        if (wn_dist_is_root()) { /* rank 0 holds the folder for all ranks */
            if ((s.lock_fd = wn_run_lock(s.run_dir)) < 0) goto fail;
            char hist[4200];
            wn_path_join(hist, sizeof hist, s.run_dir, "history.csv");
            if (wn_history_read_csv(&s.history, hist) != WN_OK) goto fail;
        }
        printf("resuming %s\n", s.run_dir);
    }
    if (session_setup(&s) != WN_OK) goto fail;
    if ((status = make_run_folder(&s, argc, argv)) != 0) {
        session_close(&s);
        return status == WN_EXIT_INTERRUPTED ? wn_train_signals_exit_status() : status;
    }

    wn_progress_mode pm = !strcmp(cli->progress, "bar")     ? WN_PROGRESS_BAR
                          : !strcmp(cli->progress, "lines") ? WN_PROGRESS_LINES
                                                            : WN_PROGRESS_AUTO;
    wn_progress_init(&s.progress, stdout, pm, !strcmp(cli->progress, "none"));

    if (cli->is_run) {
        status = run_phase(&s, "transfer", "transfer learning (backbone frozen)", 0, cli->lr,
                           WN_FINE_TUNE_NONE);
        int stop = wn_train_interrupt != 0; /* Ctrl-C while writing the reports */
        if (status == 0 && wn_dist_any(&stop, "the stop flag between the phases") != WN_OK)
            status = 1;
        if (status == 0 && stop) {
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
    if (cli->skip_bad) print_skipped(&s);
    if (status != WN_EXIT_INTERRUPTED && cli->plots && wn_dist_is_root()) make_plots(cli, s.run_dir);
    printf("%s: %s in %.1f minutes; everything is in %s\n", cmd,
           status == 0 ? "done" : status == WN_EXIT_INTERRUPTED ? "interrupted" : "failed",
           (wn_clock_seconds() - t0) / 60, s.run_dir);
    session_close(&s);
    return status == WN_EXIT_INTERRUPTED ? wn_train_signals_exit_status() : status;
fail:
    fprintf(stderr, "wastenet %s: %s\n", cmd, wn_last_error());
    session_close(&s);
    return 1;
}
