/* tools/cli/cmd_data.c — `wastenet data DIR`: what is in a data set, per split and class
 * (file counts, image sizes and formats, bad files), checked the way training will
 * read it: every file is decoded (all cores), so truncated or mislabelled files show
 * up here rather than in the middle of a run. */
#include <getopt.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "host/base/error.h"
#include "host/dataset.h"
#include "host/image_decode.h"
#include "tools/cli/commands.h"
#include "tools/cli/option_bounds.h"

static const char *const split_names[] = {"train", "validation", "test"};
enum { N_SPLITS = 3, MAX_SIZES_SHOWN = 3 };

static void usage(FILE *out) {
    fprintf(out,
            "usage: wastenet data DIR [options]\n\n"
            "Reports a data set: per split and class, the number of images, their sizes and\n"
            "formats, and every file that cannot be read (each one decoded, as training\n"
            "would). DIR is a data-set folder holding train/, validation/ and test/ (each\n"
            "<split>/<class>/<images>), or a single split folder.\n\n"
            "options:\n"
            "  --skip-bad         report bad files as warnings and exit 0 (default: exit 1)\n"
            "  --max-pixels N     refuse images over N pixels (default %zu)\n"
            "  --threads N        decode threads, 1..1024 (default: all cores)\n"
            "  -h, --help         this help\n\n"
            "example:\n  wastenet data dataset_images\n",
            (size_t)WN_DEFAULT_MAX_PIXELS);
}

static void warn_bad(void *user, const char *path, const char *reason) {
    (void)user;
    fprintf(stderr, "warning: skipping %s: %s\n", path, reason);
}

typedef struct file_info {
    int width, height;  /* 0 when bad */
    int format;         /* wn_image_format */
    char *error;        /* malloc'd message, NULL when good */
} file_info;

/* Decodes every file of ds on all cores; fills info[ds->n_files]. */
static int decode_all(const wn_dataset *ds, file_info *info, int threads, size_t max_pixels) {
    int nt = threads > 0 ? threads : omp_get_num_procs();
    wn_image_decoder **dec = calloc((size_t)nt, sizeof *dec);
    if (!dec) return wn_fail("out of memory");
    int rc = WN_OK;
    for (int t = 0; t < nt; t++)
        if (!(dec[t] = wn_image_decoder_new())) rc = WN_ERR;
    if (rc == WN_OK) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
        for (int i = 0; i < ds->n_files; i++) {
            wn_image img;
            file_info *f = &info[i];
            if (wn_image_decode_file(dec[omp_get_thread_num()], ds->paths[i], max_pixels, &img) ==
                WN_OK) {
                f->width = img.width, f->height = img.height, f->format = img.format;
            } else {
                f->error = strdup(wn_last_error());
            }
        }
    }
    for (int t = 0; t < nt; t++) wn_image_decoder_free(dec[t]);
    free(dec);
    return rc;
}

/* "384x288 (160), 512x384 (3), +2 other sizes" for the files of one class. */
static void describe_sizes(const file_info *info, const int32_t *labels, int n, int label,
                           char *buf, size_t size) {
    int (*seen)[3] = calloc((size_t)n + 1, sizeof *seen); /* width, height, count */
    int distinct = 0;
    for (int i = 0; seen && i < n; i++) {
        if (labels[i] != label || info[i].error) continue;
        int k = 0;
        while (k < distinct && (seen[k][0] != info[i].width || seen[k][1] != info[i].height)) k++;
        if (k == distinct) seen[distinct][0] = info[i].width, seen[distinct][1] = info[i].height,
                           seen[distinct][2] = 0, distinct++;
        seen[k][2]++;
    }
    buf[0] = '\0';
    size_t used = 0;
    for (int shown = 0; seen && shown < distinct && shown < MAX_SIZES_SHOWN; shown++) {
        int best = 0; /* the most common remaining size */
        for (int k = 1; k < distinct; k++)
            if (seen[k][2] > seen[best][2]) best = k;
        if (seen[best][2] == 0) break;
        used += (size_t)snprintf(buf + used, size - used, "%s%dx%d (%d)", shown ? ", " : "",
                                 seen[best][0], seen[best][1], seen[best][2]);
        seen[best][2] = 0;
        if (used >= size) break;
    }
    if (distinct > MAX_SIZES_SHOWN && used < size)
        snprintf(buf + used, size - used, ", +%d other sizes", distinct - MAX_SIZES_SHOWN);
    if (distinct == 0) snprintf(buf, size, "-");
    free(seen);
}

/* Reports one split; returns the number of bad files, or -1 when it cannot be read. */
static int report_split(const char *dir, const char *label, const wn_dataset *train,
                        int skip_bad, int threads, size_t max_pixels) {
    wn_dataset ds;
    wn_scan_options so = {.skip_bad = skip_bad, .report = warn_bad, .report_user = NULL};
    if (wn_dataset_scan(&ds, dir, train ? (const char *const *)train->class_names : NULL,
                        train ? train->n_classes : 0, &so) != WN_OK) {
        fprintf(stderr, "wastenet data: %s\n", wn_last_error());
        return -1;
    }
    printf("%s (%s): ", label, dir);
    wn_dataset_print_found(&ds, stdout);
    file_info *info = calloc((size_t)ds.n_files + 1, sizeof *info);
    int *counts = calloc((size_t)ds.n_classes, sizeof *counts);
    if (!info || !counts || decode_all(&ds, info, threads, max_pixels) != WN_OK) {
        fprintf(stderr, "wastenet data: %s: %s\n", dir, wn_last_error());
        free(info), free(counts);
        wn_dataset_free(&ds);
        return -1;
    }
    wn_dataset_class_counts(&ds, counts);
    printf("  %-16s %6s %6s %5s  %s\n", "class", "label", "files", "bad", "sizes (count)");
    int bad_total = 0, png = 0, jpeg = 0;
    for (int c = 0; c < ds.n_classes; c++) {
        int bad = ds.n_skipped_class[c]; /* entries the scan skipped (--skip-bad) */
        for (int i = 0; i < ds.n_files; i++)
            if (ds.labels[i] == c && info[i].error) bad++;
        char sizes[256];
        describe_sizes(info, ds.labels, ds.n_files, c, sizes, sizeof sizes);
        printf("  %-16s %6d %6d %5d  %s\n", ds.class_names[c], c, counts[c], bad, sizes);
        bad_total += bad;
    }
    int in_classes = 0; /* skipped entries beside the class folders count in the total */
    for (int c = 0; c < ds.n_classes; c++) in_classes += ds.n_skipped_class[c];
    bad_total += ds.n_skipped - in_classes;
    for (int i = 0; i < ds.n_files; i++) {
        if (info[i].error) continue;
        png += info[i].format == WN_IMAGE_PNG, jpeg += info[i].format == WN_IMAGE_JPEG;
    }
    printf("  %-16s %6s %6d %5d  %d JPEG, %d PNG\n", "total", "", ds.n_files, bad_total, jpeg,
           png);
    for (int i = 0; i < ds.n_files; i++) {
        if (!info[i].error) continue;
        fprintf(stderr, "%s: %s\n", skip_bad ? "warning: skipping" : "error", info[i].error);
        free(info[i].error);
    }
    free(info), free(counts);
    wn_dataset_free(&ds);
    return bad_total;
}

int cmd_data(int argc, char **argv) {
    static const struct option longopts[] = {{"skip-bad", no_argument, NULL, 's'},
                                             {"max-pixels", required_argument, NULL, 'p'},
                                             {"threads", required_argument, NULL, 't'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int skip_bad = 0, threads = 0, c;
    size_t max_pixels = WN_DEFAULT_MAX_PIXELS;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        long v;
        switch (c) {
        case 's': skip_bad = 1; break;
        case 'p':
            if (wn_opt_int("data", "--max-pixels", optarg, 1, 1L << 40, "(width x height)", &v))
                return 2;
            max_pixels = (size_t)v;
            break;
        case 't':
            if (wn_opt_int("data", "--threads", optarg, 1, WN_MAX_THREADS, "(decode threads)", &v))
                return 2;
            threads = (int)v;
            break;
        case 'h': usage(stdout); return 0;
        case ':':
            fprintf(stderr, "wastenet data: %s needs a value (see 'wastenet data --help')\n",
                    argv[optind - 1]);
            return 2;
        default: return wn_opt_unknown("data", argc, argv, optind, optopt);
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    const char *root = argv[optind];
    if (wn_opt_path("data", "DIR", root)) return 2;

    /* A data-set folder holds at least one of the split folders; otherwise DIR is a split. */
    char paths[N_SPLITS][4096];
    int is_root = 0;
    for (int s = 0; s < N_SPLITS; s++) {
        struct stat st;
        snprintf(paths[s], sizeof paths[s], "%s/%s", root, split_names[s]);
        if (stat(paths[s], &st) == 0 && S_ISDIR(st.st_mode)) is_root = 1;
    }
    if (!is_root) {
        int bad = report_split(root, "split", NULL, skip_bad, threads, max_pixels);
        if (bad < 0) return 1;
        if (bad > 0) fprintf(stderr, "%d bad file%s%s\n", bad, bad == 1 ? "" : "s",
                             skip_bad ? " skipped" : " (use --skip-bad to train without them)");
        return bad > 0 && !skip_bad ? 1 : 0;
    }

    /* The training split fixes the classes the other splits must have. */
    wn_dataset train;
    int have_train = 0, bad_total = 0, failed = 0;
    wn_scan_options quiet = {.skip_bad = 1, .report = NULL};
    if (wn_dataset_scan(&train, paths[0], NULL, 0, &quiet) == WN_OK) have_train = 1;
    for (int s = 0; s < N_SPLITS; s++) {
        struct stat st;
        if (stat(paths[s], &st) != 0) {
            fprintf(stderr, "%s: split folder %s is missing (expected %s/{train,validation,test})\n",
                    skip_bad ? "warning" : "error", paths[s], root);
            failed |= !skip_bad;
            continue;
        }
        int bad = report_split(paths[s], split_names[s], s > 0 && have_train ? &train : NULL,
                               skip_bad, threads, max_pixels);
        if (bad < 0) failed = 1;
        else bad_total += bad;
    }
    if (have_train) wn_dataset_free(&train);
    if (bad_total > 0)
        fprintf(stderr, "%d bad file%s%s\n", bad_total, bad_total == 1 ? "" : "s",
                skip_bad ? " skipped" : " (use --skip-bad to train without them)");
    return failed || (bad_total > 0 && !skip_bad) ? 1 : 0;
}
