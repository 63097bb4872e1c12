/* tools/cli/cmd_cv.c — `wastenet cv --folds K train|run OPTIONS...`: k-fold
 * cross-validation over train/ + validation/ of a data set, for choosing a recipe
 * without looking at test/.
 *
 * The images of DATA/train and DATA/validation are pooled and split into K folds,
 * seeded and stratified (host/folds.h; --fold-seed, default 0, independent of the
 * training --seed so that candidate recipes see the same folds). Fold f trains on
 * the other K-1 folds and validates on fold f (early stopping watches it, as the
 * notebook watches validation/): the fold's images are linked (symbolic links to the
 * original files) into CV/fold<f>/data/{train,validation}/<class>/, and the fold runs
 * exactly `wastenet train|run OPTIONS --data CV/fold<f>/data --runs CV/fold<f>
 * --name <train|run> --no-plots` (its command.txt says so; a fold can be resumed with
 * `wastenet train|run --resume`). test/ is never read. After training, the fold's
 * final weights (the last phase's checkpoint) are evaluated on its validation fold
 * (tools/evaluate_folder.h, optionally --tta flip).
 *
 * The cv folder, runs/<timestamp>-cv-<name>/, holds:
 *   folds.csv         path, class, fold (1-based) of every image
 *   cv.json, cv.txt   per fold: images, validation loss and accuracy; the mean and
 *                     the sample standard deviation (n - 1) of the fold accuracies
 *                     and losses; rewritten after every fold
 *   cv_per_class.*, cv_confusion.csv  the out-of-fold per-class analysis: every
 *                     image predicted once, by the model that did not train on it
 * Exit status: 0, 1 (a fold failed: the folds done so far are reported), 2 (usage),
 * 130 (interrupted: the fold's own message says how to resume it).
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "host/base/error.h"
#include "engine/train/metrics.h"
#include "engine/train/run_report.h"
#include "host/base/atomic_file.h"
#include "host/dataset.h"
#include "engine/train/folds.h"
#include "tools/cli/commands.h"
#include "tools/cli/evaluate_folder.h"
#include "tools/cli/train_cli.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: wastenet cv [--folds K] [--fold-seed N] [--tta flip] train|run OPTIONS...\n\n"
            "k-fold cross-validation over DATA/train + DATA/validation (never DATA/test):\n"
            "each fold trains with `wastenet train|run OPTIONS` on the other folds and is\n"
            "validated on its own; reports each fold's validation accuracy and loss, their\n"
            "mean and standard deviation, and the out-of-fold per-class analysis, in\n"
            "<runs>/<timestamp>-cv-<name>/.\n\n"
            "options (before train|run):\n"
            "  --folds K           number of folds (default 5; 2..50)\n"
            "  --fold-seed N       seed of the stratified split (default 0; the same for\n"
            "                      every candidate recipe, whatever its --seed)\n"
            "  --tta flip          evaluate each fold with flip test-time augmentation\n"
            "  -h, --help          this help\n"
            "OPTIONS are those of `wastenet train --help` / `wastenet run --help`, except\n"
            "--resume; --data names the data set root (train/ and validation/ are pooled).\n\n"
            "example:\n"
            "  wastenet cv --folds 5 run --data dataset_images --model efficientnet_lite2 \\\n"
            "      --weights weights/efficientnet_lite2_imagenet_notop.h5 --image-size 260 \\\n"
            "      --batch 32 --epochs 12 --fine-tune-at 96 --fine-tune-lr 3e-5 --name lite2\n");
}

typedef struct fold_result {
    int train_images, val_images;
    double loss, accuracy;
    long correct;
    char run_dir[4400];
} fold_result;

typedef struct cv_state {
    char dir[4096];
    int k, done;
    uint64_t fold_seed;
    const char *tta;
    const wn_train_cli *cli;
    int n, n_classes;
    char **paths;          /* pooled train + validation files */
    int32_t *labels;
    char **class_names;    /* borrowed from the train scan */
    int *fold;
    fold_result *res;
    wn_confusion pooled;   /* out-of-fold confusion matrix */
} cv_state;

/* Mean and sample standard deviation (n - 1; 0 for one value). */
static void mean_std(const double *v, int n, double *mean, double *std) {
    double s = 0, q = 0;
    for (int i = 0; i < n; i++) s += v[i];
    *mean = n ? s / n : NAN;
    for (int i = 0; i < n; i++) q += (v[i] - *mean) * (v[i] - *mean);
    *std = n > 1 ? sqrt(q / (n - 1)) : 0.0;
}

static int make_dir(const char *path) {
    if (mkdir(path, 0777) == 0 || errno == EEXIST) return WN_OK;
    return wn_fail("cannot create folder %s: %s", path, strerror(errno));
}

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* CV/fold<f>/data/{train,validation}/<class>/<file> -> the original file. */
static int link_fold(const cv_state *s, int f, char *data_dir, size_t size) {
    char fold_dir[4200], path[4600], target[PATH_MAX];
    snprintf(fold_dir, sizeof fold_dir, "%s/fold%d", s->dir, f + 1);
    snprintf(data_dir, size, "%s/data", fold_dir);
    if (make_dir(fold_dir) != WN_OK || make_dir(data_dir) != WN_OK) return WN_ERR;
    static const char *const splits[2] = {"train", "validation"};
    for (int sp = 0; sp < 2; sp++) {
        snprintf(path, sizeof path, "%s/%s", data_dir, splits[sp]);
        if (make_dir(path) != WN_OK) return WN_ERR;
        for (int c = 0; c < s->n_classes; c++) {
            snprintf(path, sizeof path, "%s/%s/%s", data_dir, splits[sp], s->class_names[c]);
            if (make_dir(path) != WN_OK) return WN_ERR;
        }
    }
    for (int i = 0; i < s->n; i++) {
        const char *split = s->fold[i] == f ? "validation" : "train";
        if (!realpath(s->paths[i], target))
            return wn_fail("%s: %s", s->paths[i], strerror(errno));
        snprintf(path, sizeof path, "%s/%s/%s/%s", data_dir, split, s->class_names[s->labels[i]],
                 base_name(s->paths[i]));
        if (symlink(target, path) == 0) continue;
        /* The same file name in train/ and validation/: keep both, the second
         * prefixed by its position. */
        snprintf(path, sizeof path, "%s/%s/%s/%d_%s", data_dir, split,
                 s->class_names[s->labels[i]], i, base_name(s->paths[i]));
        if (symlink(target, path) != 0)
            return wn_fail("cannot link %s to %s: %s", path, target, strerror(errno));
    }
    return WN_OK;
}

static int write_folds_csv(const cv_state *s) {
    char path[4200];
    snprintf(path, sizeof path, "%s/folds.csv", s->dir);
    wn_atomic_file af;
    if (wn_atomic_open(&af, path) != WN_OK) return WN_ERR;
    fputs("path,class,fold\n", af.fp);
    for (int i = 0; i < s->n; i++) {
        wn_csv_write_field(af.fp, s->paths[i]);
        fputc(',', af.fp);
        wn_csv_write_field(af.fp, s->class_names[s->labels[i]]);
        fprintf(af.fp, ",%d\n", s->fold[i] + 1);
    }
    return wn_atomic_commit(&af);
}

static void summary(const cv_state *s, double *acc_mean, double *acc_std, double *loss_mean,
                    double *loss_std) {
    double acc[64], loss[64];
    for (int f = 0; f < s->done; f++) acc[f] = s->res[f].accuracy, loss[f] = s->res[f].loss;
    mean_std(acc, s->done, acc_mean, acc_std);
    mean_std(loss, s->done, loss_mean, loss_std);
}

static void json_num(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, "%.17g", v);
    else fputs("null", f);
}

static void print_text(FILE *out, const cv_state *s) {
    double am, as, lm, ls;
    summary(s, &am, &as, &lm, &ls);
    fprintf(out, "cross-validation: %d of %d folds over %d images (train + validation of %s), "
                 "fold seed %llu, %s\n", s->done, s->k, s->n, s->cli->data,
            (unsigned long long)s->fold_seed, s->cli->command);
    fprintf(out, "%-6s %8s %8s %10s %10s\n", "fold", "train", "val", "val_loss", "val_acc");
    for (int f = 0; f < s->done; f++)
        fprintf(out, "%-6d %8d %8d %10.4f %10.4f\n", f + 1, s->res[f].train_images,
                s->res[f].val_images, s->res[f].loss, s->res[f].accuracy);
    fprintf(out, "validation accuracy: mean %.4f, standard deviation %.4f (%d folds)\n", am, as,
            s->done);
    fprintf(out, "validation loss: mean %.4f, standard deviation %.4f\n", lm, ls);
}

static int write_reports(const cv_state *s) {
    char path[4200];
    double am, as, lm, ls;
    summary(s, &am, &as, &lm, &ls);
    wn_atomic_file af;
    snprintf(path, sizeof path, "%s/cv.json", s->dir);
    if (wn_atomic_open(&af, path) != WN_OK) return WN_ERR;
    fprintf(af.fp, "{\"command\": \"%s\", \"data\": ", s->cli->command);
    wn_json_write_string(af.fp, s->cli->data);
    fprintf(af.fp, ", \"folds\": %d, \"folds_done\": %d, \"fold_seed\": %llu, \"images\": %d, "
                   "\"tta\": \"%s\",\n  \"per_fold\": [", s->k, s->done,
            (unsigned long long)s->fold_seed, s->n, s->tta);
    for (int f = 0; f < s->done; f++) {
        const fold_result *r = &s->res[f];
        fprintf(af.fp, "%s\n    {\"fold\": %d, \"train_images\": %d, \"val_images\": %d, "
                       "\"val_correct\": %ld, \"val_loss\": ", f ? "," : "", f + 1,
                r->train_images, r->val_images, r->correct);
        json_num(af.fp, r->loss);
        fputs(", \"val_accuracy\": ", af.fp);
        json_num(af.fp, r->accuracy);
        fputs(", \"run\": ", af.fp);
        wn_json_write_string(af.fp, r->run_dir);
        fputc('}', af.fp);
    }
    fputs("\n  ],\n  \"val_accuracy_mean\": ", af.fp);
    json_num(af.fp, am);
    fputs(", \"val_accuracy_std\": ", af.fp);
    json_num(af.fp, as);
    fputs(", \"val_loss_mean\": ", af.fp);
    json_num(af.fp, lm);
    fputs(", \"val_loss_std\": ", af.fp);
    json_num(af.fp, ls);
    fputs(",\n  \"std\": \"sample standard deviation (n - 1) over the folds\"}\n", af.fp);
    if (wn_atomic_commit(&af) != WN_OK) return WN_ERR;

    snprintf(path, sizeof path, "%s/cv.txt", s->dir);
    if (wn_atomic_open(&af, path) != WN_OK) return WN_ERR;
    print_text(af.fp, s);
    if (wn_atomic_commit(&af) != WN_OK) return WN_ERR;
    if (s->done < s->k) return WN_OK;
    wn_class_report rep;
    if (wn_class_report_compute(&s->pooled, &rep) != WN_OK) return WN_ERR;
    int rc = wn_report_write_classes(s->dir, "cv", (const char *const *)s->class_names,
                                     &s->pooled, &rep);
    wn_class_report_free(&rep);
    return rc;
}

/* The run folder `wastenet train|run --runs fold_dir --name name` made. */
static int find_run_dir(const char *fold_dir, const char *name, char *out, size_t size) {
    DIR *d = opendir(fold_dir);
    if (!d) return wn_fail("cannot read %s: %s", fold_dir, strerror(errno));
    struct dirent *e;
    char suffix[128];
    snprintf(suffix, sizeof suffix, "-%s", name);
    int found = 0;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name), m = strlen(suffix);
        if (n > m && !strcmp(e->d_name + n - m, suffix)) {
            snprintf(out, size, "%s/%s", fold_dir, e->d_name);
            found++;
        }
    }
    closedir(d);
    if (found != 1) return wn_fail("%s: expected one run folder *%s, found %d", fold_dir, suffix, found);
    return WN_OK;
}

static int run_fold(cv_state *s, int f, int sub_argc, char **sub_argv) {
    char data_dir[4300], fold_dir[4200], val_dir[4400], ckpt[8300];
    if (link_fold(s, f, data_dir, sizeof data_dir) != WN_OK) return 1;
    snprintf(fold_dir, sizeof fold_dir, "%s/fold%d", s->dir, f + 1);
    const char *name = s->cli->command;
    /* The fold's own command line: the recipe, then where its data and run go. */
    int argc = sub_argc + 7;
    char **argv = calloc((size_t)argc + 1, sizeof *argv);
    if (!argv) return wn_fail("out of memory"), 1;
    for (int i = 0; i < sub_argc; i++) argv[i] = sub_argv[i];
    argv[sub_argc] = "--data", argv[sub_argc + 1] = data_dir;
    argv[sub_argc + 2] = "--runs", argv[sub_argc + 3] = fold_dir;
    argv[sub_argc + 4] = "--name", argv[sub_argc + 5] = (char *)name;
    argv[sub_argc + 6] = "--no-plots";
    wn_train_cli cli;
    int help = 0;
    int status = wn_train_cli_parse(&cli, s->cli->is_run, argc, argv, &help);
    printf("\n==== cv fold %d/%d: %d training, %d validation images ====\n", f + 1, s->k,
           s->res[f].train_images, s->res[f].val_images);
    fflush(stdout);
    if (status == 0) status = wn_train_cli_main(&cli, argc, argv);
    free(argv);
    if (status) return status;

    fold_result *r = &s->res[f];
    if (find_run_dir(fold_dir, name, r->run_dir, sizeof r->run_dir) != WN_OK) return 1;
    snprintf(ckpt, sizeof ckpt, "%s/%s.ckpt", r->run_dir, s->cli->is_run ? "finetune" : "train");
    snprintf(val_dir, sizeof val_dir, "%s/validation", data_dir);
    wn_members mem;
    memset(&mem, 0, sizeof mem);
    mem.n = 1, mem.weights[0] = ckpt;
    wn_tta tta = WN_TTA_NONE;
    wn_tta_parse(s->tta, &tta);
    wn_folder_eval_request rq = {&mem, val_dir, NULL, tta, s->cli->backend, s->cli->batch,
                                 s->cli->skip_bad, s->cli->max_pixels, NULL};
    wn_folder_eval ev;
    if (wn_evaluate_folder(&rq, &ev) != WN_OK) {
        wn_folder_eval_free(&ev);
        return 1;
    }
    r->loss = ev.res.loss, r->accuracy = ev.res.accuracy, r->correct = ev.res.correct;
    for (int t = 0; t < s->n_classes; t++)
        for (int p = 0; p < s->n_classes; p++)
            s->pooled.counts[(size_t)t * s->n_classes + p] += ev.cm.counts[(size_t)t * s->n_classes + p];
    printf("cv fold %d/%d: validation loss %.4f, accuracy %.4f (%ld / %ld)\n", f + 1, s->k, r->loss,
           r->accuracy, ev.res.correct, ev.res.samples);
    wn_folder_eval_free(&ev);
    return 0;
}

static int pool_splits(cv_state *s, wn_dataset *train, wn_dataset *val) {
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/train", s->cli->data);
    wn_scan_options so = {s->cli->skip_bad, NULL, NULL};
    if (wn_dataset_scan(train, dir, NULL, 0, &so) != WN_OK) return WN_ERR;
    snprintf(dir, sizeof dir, "%s/validation", s->cli->data);
    if (wn_dataset_scan(val, dir, (const char *const *)train->class_names, train->n_classes,
                        &so) != WN_OK)
        return WN_ERR;
    s->n = train->n_files + val->n_files;
    s->n_classes = train->n_classes;
    s->class_names = train->class_names;
    s->paths = malloc((size_t)s->n * sizeof *s->paths);
    s->labels = malloc((size_t)s->n * sizeof *s->labels);
    s->fold = malloc((size_t)s->n * sizeof *s->fold);
    if (!s->paths || !s->labels || !s->fold) return wn_fail("out of memory");
    for (int i = 0; i < train->n_files; i++) s->paths[i] = train->paths[i], s->labels[i] = train->labels[i];
    for (int i = 0; i < val->n_files; i++)
        s->paths[train->n_files + i] = val->paths[i], s->labels[train->n_files + i] = val->labels[i];
    return WN_OK;
}

int cmd_cv(int argc, char **argv) {
    static const struct option opts[] = {{"folds", required_argument, 0, 'k'},
                                         {"fold-seed", required_argument, 0, 's'},
                                         {"tta", required_argument, 0, 't'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    cv_state s;
    memset(&s, 0, sizeof s);
    s.k = 5, s.tta = "none";
    int opt;
    optind = 0;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
        char *end = NULL;
        switch (opt) {
        case 'k':
            s.k = (int)strtol(optarg, &end, 10);
            if (*end || end == optarg || s.k < 2 || s.k > 50) {
                fprintf(stderr, "wastenet cv: --folds %s: expected 2..50\n", optarg);
                return 2;
            }
            break;
        case 's': {
            unsigned long long v = strtoull(optarg, &end, 10);
            if (*end || end == optarg || optarg[0] == '-') {
                fprintf(stderr, "wastenet cv: --fold-seed %s: expected a non-negative integer\n", optarg);
                return 2;
            }
            s.fold_seed = v;
            break;
        }
        case 't': {
            wn_tta t;
            if (wn_tta_parse(optarg, &t) != WN_OK) {
                fprintf(stderr, "wastenet cv: %s\n", wn_last_error());
                return 2;
            }
            s.tta = wn_tta_name(t);
            break;
        }
        case 'h': usage(stdout); return 0;
        case ':': fprintf(stderr, "wastenet cv: %s needs a value\n", argv[optind - 1]); return 2;
        default:
            fprintf(stderr, "wastenet cv: unknown option '%s' (see 'wastenet cv --help'; the "
                            "training options come after train or run)\n", argv[optind - 1]);
            return 2;
        }
    }
    if (optind >= argc || (strcmp(argv[optind], "train") && strcmp(argv[optind], "run"))) {
        fprintf(stderr, "wastenet cv: expected train or run, then its options (see 'wastenet cv "
                        "--help')\n");
        return 2;
    }
    int is_run = !strcmp(argv[optind], "run"), sub_argc = argc - optind, help = 0;
    char **sub_argv = argv + optind;
    for (int i = 1; i < sub_argc; i++)
        if (!strcmp(sub_argv[i], "--resume") || !strncmp(sub_argv[i], "--resume=", 9)) {
            fprintf(stderr, "wastenet cv: --resume continues one fold, not a cross-validation: "
                            "run `wastenet %s --resume CV/fold<N>/<run>` on it\n", sub_argv[0]);
            return 2;
        }
    wn_train_cli cli;
    int status = wn_train_cli_parse(&cli, is_run, sub_argc, sub_argv, &help);
    if (status || help) return status;
    if ((status = wn_train_cli_check(&cli))) return status;
    s.cli = &cli;
    setvbuf(stdout, NULL, _IOLBF, 0);

    wn_dataset train, val;
    memset(&train, 0, sizeof train), memset(&val, 0, sizeof val);
    char name[160];
    snprintf(name, sizeof name, "cv-%s", cli.name);
    status = 1;
    s.res = calloc((size_t)s.k, sizeof *s.res);
    if (!s.res) wn_fail("out of memory");
    if (!s.res || pool_splits(&s, &train, &val) != WN_OK ||
        wn_stratified_folds(s.labels, s.n, s.n_classes, s.k, s.fold_seed, s.fold) != WN_OK ||
        wn_confusion_init(&s.pooled, s.n_classes) != WN_OK ||
        wn_run_dir_create(s.dir, sizeof s.dir, cli.runs_root, name, time(NULL)) != WN_OK ||
        write_folds_csv(&s) != WN_OK) {
        fprintf(stderr, "wastenet cv: %s\n", wn_last_error());
        goto out;
    }
    printf("cv folder: %s\n", s.dir);
    for (int f = 0; f < s.k; f++)
        for (int i = 0; i < s.n; i++) {
            if (s.fold[i] == f) s.res[f].val_images++;
            else s.res[f].train_images++;
        }
    for (int f = 0; f < s.k; f++) {
        int rc = run_fold(&s, f, sub_argc, sub_argv);
        if (rc) {
            fprintf(stderr, "wastenet cv: fold %d failed%s%s; the %d fold(s) before it are in %s\n",
                    f + 1, rc == 1 ? ": " : "", rc == 1 ? wn_last_error() : "", f, s.dir);
            if (s.done) write_reports(&s);
            status = rc;
            goto out;
        }
        s.done = f + 1;
        if (write_reports(&s) != WN_OK) {
            fprintf(stderr, "wastenet cv: %s\n", wn_last_error());
            goto out;
        }
    }
    printf("\n");
    print_text(stdout, &s);
    printf("everything is in %s\n", s.dir);
    status = 0;
out:
    wn_confusion_free(&s.pooled);
    free(s.paths), free(s.labels), free(s.fold), free(s.res);
    wn_dataset_free(&train);
    wn_dataset_free(&val);
    return status;
}
