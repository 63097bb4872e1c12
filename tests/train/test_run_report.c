/* tests/train/test_run_report.c — the run folder's files: history round trip, JSON
 * and CSV escaping, per-class and prediction files, run folder naming.
 *
 * With `--fake-run DIR` it instead writes a complete fake run folder (two phases,
 * per-class files, predictions, an augmentation preview) for test_plots.py. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/train/augment_preview.h"
#include "host/base/error.h"
#include "engine/train/run_report.h"
#include "tests/common/check.h"


static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *s = calloc((size_t)n + 1, 1);
    if (fread(s, 1, (size_t)n, f) != (size_t)n) s[0] = '\0';
    fclose(f);
    return s;
}

static const char *const classes[3] = {"circle", "square", "tri,angle"};

static void fill_history(wn_history *h) {
    /* Values with no short decimal form, to check the exact round trip. */
    for (int phase = 0; phase < 2; phase++)
        for (int e = 1; e <= 4; e++) {
            wn_epoch_record r;
            memset(&r, 0, sizeof r);
            snprintf(r.phase, sizeof r.phase, "%s", phase ? "finetune" : "transfer");
            r.epoch = e;
            r.loss = 1.0 / (3.0 * e + phase);
            r.accuracy = 1.0 - r.loss / 7.0;
            r.val_loss = r.loss * 1.1 + 0.01;
            r.val_accuracy = (float)(1.0 - r.val_loss / 5.0);
            r.lr = phase ? 1e-5 : 1e-3;
            r.seconds = 12.345678901234 * e;
            wn_history_append(h, &r);
        }
}

static void make_report(wn_confusion *cm, wn_class_report *rep) {
    wn_confusion_init(cm, 3);
    int m[3][3] = {{8, 1, 1}, {0, 9, 1}, {2, 0, 6}};
    for (int t = 0; t < 3; t++)
        for (int p = 0; p < 3; p++)
            for (int i = 0; i < m[t][p]; i++) wn_confusion_add(cm, t, p);
    wn_class_report_compute(cm, rep);
}

/* Writes every file of a two-phase run into dir. */
static int write_fake_run(const char *dir) {
    wn_history h = {0};
    fill_history(&h);
    if (h.n) h.rows[5].val_loss = NAN; /* a diverged epoch: null in JSON, nan in CSV */
    int rc = wn_report_write_history(dir, &h);
    wn_history_free(&h);
    wn_confusion cm;
    wn_class_report rep;
    make_report(&cm, &rep);
    const char *phases[2] = {"transfer", "finetune"};
    for (int i = 0; i < 2 && rc == 0; i++) {
        rc |= wn_report_write_test(dir, phases[i], 0.5 - 0.1 * i, rep.accuracy, rep.samples);
        rc |= wn_report_write_classes(dir, phases[i], classes, &cm, &rep);
    }
    /* 28 predictions whose files are tiny PPM images made here. */
    enum { N = 28 };
    char *paths[N];
    int labels[N];
    float probs[N * 3];
    int k = 0;
    for (int t = 0; t < 3; t++)
        for (int p = 0; p < 3; p++) {
            long count = cm.counts[t * 3 + p];
            for (long j = 0; j < count && k < N; j++, k++) {
                paths[k] = malloc(4200);
                snprintf(paths[k], 4200, "%s/img_%02d.ppm", dir, k);
                FILE *f = fopen(paths[k], "wb");
                if (f) {
                    fprintf(f, "P6\n8 8\n255\n");
                    for (int px = 0; px < 64; px++)
                        fputc(t == 0 ? 255 : 0, f), fputc(t == 1 ? 255 : 0, f),
                            fputc(t == 2 ? 255 : 0, f);
                    fclose(f);
                }
                labels[k] = t;
                for (int c = 0; c < 3; c++) probs[k * 3 + c] = c == p ? 0.8f : 0.1f;
            }
        }
    rc |= wn_report_write_predictions(dir, "finetune", k, 3, (const char *const *)paths, labels,
                                      probs, classes);
    for (int i = 0; i < k; i++) free(paths[i]);
    /* The augmentation preview: a 16x16 gradient and 4 augmented versions, written
     * by the engine's .npy writer (test_plots.py reads it back with NumPy). */
    uint8_t img[16 * 16 * 3], prev[5 * 16 * 16 * 3];
    for (int i = 0; i < 16 * 16 * 3; i++) img[i] = (uint8_t)((i * 7) & 255);
    wn_rng rng;
    wn_rng_seed(&rng, 3, 0);
    wn_augment_preview_make(img, 16, 16, 4, &rng, 0.2f, prev);
    char path[4096];
    wn_path_join(path, sizeof path, dir, "augment_preview.npy");
    rc |= wn_npy_write_images(path, prev, 5, 16, 16);
    wn_class_report_free(&rep);
    wn_confusion_free(&cm);
    return rc;
}

static void test_history_round_trip(const char *dir) {
    wn_history h = {0}, back = {0};
    fill_history(&h);
    h.rows[2].val_loss = INFINITY;
    CHECK(wn_report_write_history(dir, &h) == 0, "write history");
    char path[4096];
    wn_path_join(path, sizeof path, dir, "history.csv");
    CHECK(wn_history_read_csv(&back, path) == 0, "read history");
    CHECK(back.n == h.n, "%d rows back, wrote %d", back.n, h.n);
    for (int i = 0; i < h.n && i < back.n; i++) {
        const wn_epoch_record *a = &h.rows[i], *b = &back.rows[i];
        CHECK(!strcmp(a->phase, b->phase) && a->epoch == b->epoch && a->loss == b->loss &&
                  a->accuracy == b->accuracy && a->val_loss == b->val_loss &&
                  a->val_accuracy == b->val_accuracy && a->lr == b->lr &&
                  a->seconds == b->seconds,
              "row %d differs after the round trip", i);
    }
    /* A resumed phase drops its epochs from the checkpoint on. */
    wn_history_truncate(&back, "finetune", 3);
    CHECK(back.n == 6 && !strcmp(back.rows[5].phase, "finetune") && back.rows[5].epoch == 2,
          "truncate keeps transfer 1-4 and finetune 1-2 (n %d)", back.n);
    wn_history_free(&back);
    wn_path_join(path, sizeof path, dir, "history.json");
    char *json = slurp(path);
    CHECK(json && strstr(json, "\"val_loss\": null"), "infinite values are null in JSON");
    CHECK(json && strstr(json, "{\"phase\": \"transfer\", \"epoch\": 1, \"loss\": 0.33333333333333331,"),
          "first JSON record");
    free(json);
    /* Missing file: empty history. */
    wn_path_join(path, sizeof path, dir, "nothing.csv");
    CHECK(wn_history_read_csv(&back, path) == 0 && back.n == 0, "missing history is empty");
    /* Not a history. */
    wn_path_join(path, sizeof path, dir, "history.json");
    CHECK(wn_history_read_csv(&back, path) != 0, "a JSON file is not a history CSV");
    wn_history_free(&back);
    wn_history_free(&h);
}

static void test_class_files(const char *dir) {
    wn_confusion cm;
    wn_class_report rep;
    make_report(&cm, &rep);
    CHECK(wn_report_write_classes(dir, "transfer", classes, &cm, &rep) == 0, "write classes");
    char path[4096];
    wn_path_join(path, sizeof path, dir, "transfer_per_class.txt");
    char *txt = slurp(path);
    /* accuracies 0.8, 0.9, 0.75: mean 0.8167; without tri,angle 0.85; without it and circle 0.9 */
    CHECK(txt && strstr(txt, "mean over the 3 classes: 81.67%\n"), "mean line");
    CHECK(txt && strstr(txt, "mean without tri,angle: 85.00%\n"), "without the weakest");
    CHECK(txt && strstr(txt, "mean without tri,angle and circle: 90.00%\n"), "without two");
    CHECK(txt && strstr(txt, "accuracy: 23 / 28 = 82.14%\n"), "overall accuracy");
    free(txt);
    wn_path_join(path, sizeof path, dir, "transfer_confusion.csv");
    char *csv = slurp(path);
    CHECK(csv && !strcmp(csv, "true\\predicted,circle,square,\"tri,angle\"\n"
                              "circle,8,1,1\nsquare,0,9,1\n\"tri,angle\",2,0,6\n"),
          "confusion CSV with a quoted class name: %s", csv ? csv : "(none)");
    free(csv);
    wn_path_join(path, sizeof path, dir, "transfer_per_class.csv");
    csv = slurp(path);
    CHECK(csv && strstr(csv, "\nsquare,9,10,0.90000000000000002,0.90000000000000002,"),
          "per-class CSV row");
    free(csv);
    wn_class_report_free(&rep);
    wn_confusion_free(&cm);
}

static void test_predictions(const char *dir) {
    const char *paths[2] = {"a \"quoted\".jpg", "b.jpg"};
    int labels[2] = {0, 2};
    float probs[6] = {0.5f, 0.25f, 0.25f, 0.2f, 0.7f, 0.1f};
    CHECK(wn_report_write_predictions(dir, "finetune", 2, 3, paths, labels, probs, classes) == 0,
          "write predictions");
    char path[4096];
    wn_path_join(path, sizeof path, dir, "finetune_predictions.csv");
    char *csv = slurp(path);
    CHECK(csv && !strcmp(csv, "path,true,predicted,correct,p_circle,p_square,\"p_tri,angle\"\n"
                              "\"a \"\"quoted\"\".jpg\",circle,circle,1,0.5,0.25,0.25\n"
                              "b.jpg,\"tri,angle\",square,0,0.200000003,0.699999988,0.100000001\n"),
          "predictions CSV: %s", csv ? csv : "(none)");
    free(csv);
    CHECK(wn_report_write_test(dir, "finetune", 0.25, 0.875, 8) == 0, "write test");
    wn_path_join(path, sizeof path, dir, "finetune_test.json");
    char *json = slurp(path);
    CHECK(json && !strcmp(json, "{\"phase\": \"finetune\", \"loss\": 0.25, \"accuracy\": 0.875, "
                                "\"samples\": 8}\n"),
          "test JSON: %s", json ? json : "(none)");
    free(json);
}

static void test_run_dir(const char *dir) {
    char root[4096], a[4096], b[4096];
    snprintf(root, sizeof root, "%s/runs/nested", dir);
    time_t when = 1700000000;
    CHECK(wn_run_dir_create(a, sizeof a, root, "demo", when) == 0, "create run folder");
    CHECK(wn_run_dir_create(b, sizeof b, root, "demo", when) == 0, "create a second one");
    CHECK(strcmp(a, b) && strlen(b) == strlen(a) + 2 && !strcmp(b + strlen(a), "-2"),
          "same second gets -2 (%s, %s)", a, b);
    struct stat st;
    CHECK(stat(a, &st) == 0 && S_ISDIR(st.st_mode), "folder exists");
    CHECK(wn_run_dir_create(a, sizeof a, root, "bad/name", when) != 0, "slash refused");
    /* An unwritable target: the error names the file. */
    CHECK(wn_report_write_test("/nonexistent-folder", "x", 1, 1, 1) != 0 &&
              strstr(wn_last_error(), "/nonexistent-folder/x_test.json"),
          "unwritable folder named");
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--fake-run")) {
        if (write_fake_run(argv[2]) != 0) {
            fprintf(stderr, "fake run: %s\n", wn_last_error());
            return 1;
        }
        return 0;
    }
    char dir[] = "/tmp/wn_test_report_XXXXXX";
    if (!mkdtemp(dir)) return perror("mkdtemp"), 1;
    test_history_round_trip(dir);
    test_class_files(dir);
    test_predictions(dir);
    test_run_dir(dir);
    if (!test_failures) {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) fprintf(stderr, "note: could not remove %s\n", dir);
    }
    if (test_failures) {
        fprintf(stderr, "test_run_report: %d failure(s) (files in %s)\n", test_failures, dir);
        return 1;
    }
    printf("test_run_report: all checks passed\n");
    return 0;
}
