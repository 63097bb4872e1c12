/* tools/cli/cmd_evaluate.c — `wastenet evaluate --weights W [--weights W2 ...] --data DIR`:
 * Keras's model.evaluate (loss, categorical accuracy) plus the notebook's per-class
 * analysis (per-class accuracy, precision, recall, F1, the means without the weakest
 * classes, the confusion matrix) and every file's prediction, on any labeled folder:
 * DIR holds one sub-folder per class (a split such as dataset_images/test).
 *
 * Several --weights evaluate the ensemble (the mean of the models' probabilities),
 * --tta flip each image with its mirror; the loss rules are in
 * engine/ensemble_eval.h. Images are decoded and resized as the training loader does
 * (host/loader.h, streamed: nothing is cached), each member at its own input size.
 * Output: text (or --json) on stdout, a Keras-like progress bar per member on stderr,
 * and with --out DIR the run folder's report files (engine/train/run_report.h) under the
 * phase name "evaluate".
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/train/ensemble_eval.h"
#include "host/base/error.h"
#include "engine/train/metrics.h"
#include "engine/train/progress.h"
#include "engine/train/run_report.h"
#include "host/dataset.h"
#include "tools/cli/commands.h"
#include "tools/cli/inference.h"
#include "tools/cli/evaluate_folder.h"
#include "tools/cli/member_options.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: wastenet evaluate --weights FILE [--weights FILE2 ...] --data DIR [options]\n\n"
            "Keras's model.evaluate (loss, accuracy) and the notebook's per-class analysis\n"
            "(per-class accuracy, precision, recall, F1, confusion matrix, every file's\n"
            "prediction) on a labeled folder. Several --weights evaluate the ensemble (the\n"
            "mean of the models' probabilities).\n\n"
            "options:\n"
            "  --weights FILE      a wastenet checkpoint (runs/<run>/<phase>.ckpt) or a .h5\n"
            "                      of the whole model; repeat for an ensemble\n"
            "  --data DIR          a folder with one sub-folder of images per class, e.g.\n"
            "                      dataset_images/test (not the data set root)\n"
            "  --model NAME        backbone of an .h5 file (default irv2); once for every\n"
            "                      .h5, or once per --weights\n"
            "  --image-size N      input size of an .h5 file's model (default: a .keras\n"
            "                      archive's own input shape, else 320); once, or once\n"
            "                      per --weights\n"
            "  --classes A,B,...   class names in label order (default: classes.txt beside\n"
            "                      the weights, else the folder names)\n"
            "  --tta flip          average each image with its left-right mirror\n"
            "  --json              one JSON document on stdout instead of text\n"
            "  --out DIR           also write evaluate_test.json, evaluate_per_class.{txt,csv},\n"
            "                      evaluate_confusion.csv and evaluate_predictions.csv there\n"
            "  --backend NAME      auto (default), cpu or cuda\n"
            "  --batch N           images per forward pass (default 32, Keras's)\n"
            "  --progress MODE     auto (default: a bar on a terminal), bar, lines or none;\n"
            "                      on stderr\n"
            "  --skip-bad          skip unreadable images with a warning (default: stop)\n"
            "  --max-pixels N      refuse images larger than N pixels (default %zu)\n"
            "  -h, --help          this help\n\n"
            "example:\n"
            "  wastenet evaluate --weights runs/R/finetune.ckpt --data dataset_images/test\n",
            (size_t)WN_DEFAULT_MAX_PIXELS);
}

/* A data set root (train/, validation/, test/ as its only sub-folders) is not a
 * labeled folder: its "classes" would be the splits. */
static int looks_like_root(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int splits = 0, others = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[4400];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &st) || !S_ISDIR(st.st_mode)) continue;
        if (!strcmp(e->d_name, "train") || !strcmp(e->d_name, "validation") ||
            !strcmp(e->d_name, "test"))
            splits++;
        else
            others++;
    }
    closedir(d);
    return splits >= 2 && others == 0;
}

static void json_number(double v) {
    if (isfinite(v)) printf("%.17g", v);
    else fputs("null", stdout);
}

static void print_json(const wn_dataset *ds, const wn_members *mem, wn_tta tta,
                       const wn_set_result *r, const wn_confusion *cm, const wn_class_report *rep) {
    int k = ds->n_classes;
    const char *const *names = (const char *const *)ds->class_names;
    printf("{\"data\": ");
    wn_json_write_string(stdout, ds->dir);
    printf(", \"weights\": [");
    for (int i = 0; i < mem->n; i++) printf("%s", i ? ", " : ""), wn_json_write_string(stdout, mem->weights[i]);
    printf("], \"tta\": \"%s\", \"samples\": %ld, \"correct\": %ld, \"loss\": ", wn_tta_name(tta),
           r->samples, r->correct);
    json_number(r->loss);
    printf(", \"accuracy\": ");
    json_number(r->accuracy);
    printf(",\n  \"classes\": [");
    for (int c = 0; c < k; c++) printf("%s", c ? ", " : ""), wn_json_write_string(stdout, names[c]);
    printf("],\n  \"per_class\": [");
    for (int c = 0; c < k; c++) {
        const wn_class_metrics *m = &rep->cls[c];
        printf("%s\n    {\"class\": ", c ? "," : "");
        wn_json_write_string(stdout, names[c]);
        printf(", \"correct\": %ld, \"total\": %ld, \"predicted\": %ld, \"accuracy\": %.17g, "
               "\"precision\": %.17g, \"recall\": %.17g, \"f1\": %.17g}",
               m->correct, m->total, m->predicted, m->accuracy, m->precision, m->recall, m->f1);
    }
    printf("\n  ],\n  \"mean_class_accuracy\": ");
    json_number(rep->n_present ? rep->mean_without[0] : NAN);
    printf(", \"macro_precision\": %.17g, \"macro_recall\": %.17g, \"macro_f1\": %.17g,\n",
           rep->macro_precision, rep->macro_recall, rep->macro_f1);
    printf("  \"confusion\": [");
    for (int t = 0; t < k; t++) {
        printf("%s[", t ? ", " : "");
        for (int p = 0; p < k; p++) printf("%s%ld", p ? ", " : "", cm->counts[(size_t)t * k + p]);
        printf("]");
    }
    printf("],\n  \"predictions\": [");
    int first = 1;
    for (int i = 0; i < ds->n_files; i++) {
        if (r->pred[i] < 0) continue;
        printf("%s\n    {\"path\": ", first ? "" : ",");
        first = 0;
        wn_json_write_string(stdout, ds->paths[i]);
        printf(", \"true\": ");
        wn_json_write_string(stdout, names[ds->labels[i]]);
        printf(", \"predicted\": ");
        wn_json_write_string(stdout, names[r->pred[i]]);
        printf(", \"correct\": %s, \"probabilities\": [", r->pred[i] == ds->labels[i] ? "true" : "false");
        for (int c = 0; c < k; c++) printf("%s%.9g", c ? ", " : "", r->probs[(size_t)i * k + c]);
        printf("]}");
    }
    printf("\n  ]\n}\n");
}

static void print_text(const wn_dataset *ds, const wn_members *mem, wn_tta tta,
                       const wn_set_result *r, const wn_confusion *cm, const wn_class_report *rep) {
    const char *const *names = (const char *const *)ds->class_names;
    int k = ds->n_classes;
    printf("%s: %ld images, %d classes; %s%d model%s, tta %s\n", ds->dir, r->samples, k,
           mem->n > 1 ? "ensemble of " : "", mem->n, mem->n == 1 ? "" : "s", wn_tta_name(tta));
    printf("loss: %.4f - categorical_accuracy: %.4f (%ld / %ld)\n", r->loss, r->accuracy,
           r->correct, r->samples);
    wn_report_print_classes(stdout, names, cm, rep);
    long wrong = r->samples - r->correct;
    printf("misclassified: %ld\n", wrong);
    for (int i = 0; i < ds->n_files; i++) {
        int p = r->pred[i];
        if (p < 0 || p == ds->labels[i]) continue;
        printf("  %s: %s predicted as %s (%.4f; %s %.4f)\n", ds->paths[i], names[ds->labels[i]],
               names[p], r->probs[(size_t)i * k + p], names[ds->labels[i]],
               r->probs[(size_t)i * k + ds->labels[i]]);
    }
}

static int write_reports(const char *dir, const wn_dataset *ds, const wn_set_result *r,
                         const wn_confusion *cm, const wn_class_report *rep) {
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return wn_fail("--out %s: cannot create the folder: %s", dir, strerror(errno));
    const char *const *names = (const char *const *)ds->class_names;
    int k = ds->n_classes, n = 0;
    const char **paths = malloc((size_t)(ds->n_files ? ds->n_files : 1) * sizeof *paths);
    int *labels = malloc((size_t)(ds->n_files ? ds->n_files : 1) * sizeof *labels);
    float *probs = malloc((size_t)(ds->n_files ? ds->n_files : 1) * (size_t)k * sizeof *probs);
    int rc = WN_ERR;
    if (!paths || !labels || !probs) {
        wn_fail("out of memory");
        goto out;
    }
    for (int i = 0; i < ds->n_files; i++) {
        if (r->pred[i] < 0) continue;
        paths[n] = ds->paths[i], labels[n] = ds->labels[i];
        memcpy(probs + (size_t)n * k, r->probs + (size_t)i * k, (size_t)k * sizeof *probs);
        n++;
    }
    if (wn_report_write_test(dir, "evaluate", r->loss, r->accuracy, r->samples) != WN_OK ||
        wn_report_write_classes(dir, "evaluate", names, cm, rep) != WN_OK ||
        wn_report_write_predictions(dir, "evaluate", n, k, paths, labels, probs, names) != WN_OK)
        goto out;
    rc = WN_OK;
out:
    free(paths), free(labels), free(probs);
    return rc;
}

int cmd_evaluate(int argc, char **argv) {
    static const struct option opts[] = {
        {"weights", required_argument, 0, 'w'}, {"model", required_argument, 0, 'm'},
        {"image-size", required_argument, 0, 's'}, {"data", required_argument, 0, 'd'},
        {"classes", required_argument, 0, 'c'}, {"tta", required_argument, 0, 't'},
        {"json", no_argument, 0, 'j'}, {"out", required_argument, 0, 'o'},
        {"backend", required_argument, 0, 'b'}, {"batch", required_argument, 0, 'B'},
        {"progress", required_argument, 0, 'P'}, {"skip-bad", no_argument, 0, 'S'},
        {"max-pixels", required_argument, 0, 'p'}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *data = NULL, *class_list = NULL, *backend = "auto", *out_dir = NULL;
    const char *progress = "auto";
    int json = 0, batch = 32, skip_bad = 0, opt, rc;
    size_t max_pixels = WN_DEFAULT_MAX_PIXELS;
    wn_tta tta = WN_TTA_NONE;
    wn_members mem;
    memset(&mem, 0, sizeof mem);
    optind = 0;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        char *end = NULL;
        switch (opt) {
        case 'w': if ((rc = wn_members_add_weights(&mem, "evaluate", optarg))) return rc; break;
        case 'm': if ((rc = wn_members_add_model(&mem, "evaluate", optarg))) return rc; break;
        case 's': if ((rc = wn_members_add_size(&mem, "evaluate", optarg))) return rc; break;
        case 'd': data = optarg; break;
        case 'c': class_list = optarg; break;
        case 't':
            if (wn_tta_parse(optarg, &tta) != WN_OK) {
                fprintf(stderr, "wastenet evaluate: %s\n", wn_last_error());
                return 2;
            }
            break;
        case 'j': json = 1; break;
        case 'o': out_dir = optarg; break;
        case 'b':
            if (strcmp(optarg, "auto") && strcmp(optarg, "cpu") && strcmp(optarg, "cuda")) {
                fprintf(stderr, "wastenet evaluate: --backend %s: expected auto, cpu or cuda\n", optarg);
                return 2;
            }
            backend = optarg;
            break;
        case 'B':
            batch = (int)strtol(optarg, &end, 10);
            if (*end || end == optarg || batch < 1 || batch > 4096) {
                fprintf(stderr, "wastenet evaluate: --batch %s: expected 1..4096\n", optarg);
                return 2;
            }
            break;
        case 'P':
            if (strcmp(optarg, "auto") && strcmp(optarg, "bar") && strcmp(optarg, "lines") &&
                strcmp(optarg, "none")) {
                fprintf(stderr, "wastenet evaluate: --progress %s: expected auto, bar, lines or "
                                "none\n", optarg);
                return 2;
            }
            progress = optarg;
            break;
        case 'S': skip_bad = 1; break;
        case 'p': {
            long long v = strtoll(optarg, &end, 10);
            if (*end || end == optarg || v < 1 || v > (1LL << 40)) {
                fprintf(stderr, "wastenet evaluate: --max-pixels %s: expected a positive number "
                                "of pixels (width x height, at most 2^40)\n", optarg);
                return 2;
            }
            max_pixels = (size_t)v;
            break;
        }
        case 'h': usage(stdout); return 0;
        case ':':
            fprintf(stderr, "wastenet evaluate: %s needs a value\n", argv[optind - 1]);
            return 2;
        default:
            fprintf(stderr, "wastenet evaluate: unknown option '%s' (see 'wastenet evaluate --help')\n",
                    argv[optind - 1]);
            return 2;
        }
    }
    if ((rc = wn_members_check(&mem, "evaluate"))) return rc;
    if (!data) {
        fprintf(stderr, "wastenet evaluate: --data DIR is required (see 'wastenet evaluate --help')\n");
        return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "wastenet evaluate: unexpected argument '%s' (images come from --data)\n",
                argv[optind]);
        return 2;
    }
    struct stat st;
    if (stat(data, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "wastenet evaluate: --data %s: no such folder\n", data);
        return 2;
    }
    if (looks_like_root(data)) {
        fprintf(stderr, "wastenet evaluate: --data %s holds the splits (train, validation, test), "
                        "not classes: pass one split, e.g. --data %s/test\n", data, data);
        return 2;
    }

    wn_folder_eval_request rq = {&mem, data, class_list, tta, backend, batch, skip_bad,
                                 max_pixels, NULL};
    wn_folder_eval ev;
    wn_progress pr;
    wn_progress_mode pm = !strcmp(progress, "bar")     ? WN_PROGRESS_BAR
                          : !strcmp(progress, "lines") ? WN_PROGRESS_LINES
                                                       : WN_PROGRESS_AUTO;
    wn_progress_init(&pr, stderr, pm, !strcmp(progress, "none"));
    rq.progress = &pr;
    int status = 0;
    if (wn_evaluate_folder(&rq, &ev) == WN_OK) {
        if (json) print_json(&ev.ds, &mem, tta, &ev.res, &ev.cm, &ev.rep);
        else print_text(&ev.ds, &mem, tta, &ev.res, &ev.cm, &ev.rep);
        if (out_dir && write_reports(out_dir, &ev.ds, &ev.res, &ev.cm, &ev.rep) != WN_OK) status = 1;
    } else {
        status = 1;
    }
    if (status) fprintf(stderr, "wastenet evaluate: %s\n", wn_last_error());
    wn_folder_eval_free(&ev);
    return status;
}
