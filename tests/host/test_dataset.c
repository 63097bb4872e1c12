/* tests/host/test_dataset.c — the split-folder scan against Keras's rules
 * (KERAS_SEMANTICS.md §3): class order, recursive file order (walk roots sorted by
 * full path, then names), extensions, labels, a fixed class order, the split
 * mismatch error, and the folder problems of issue 2 item 6. test_host_tf.py checks
 * the same tree against Keras itself. */
#define _DEFAULT_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "host/base/error.h"
#include "fixtures.h"
#include "host/dataset.h"

static void touch(const char *root, const char *rel) {
    char path[4096], dir[4096];
    PATH_PRINTF(path, "%s/%s", root, rel);
    PATH_PRINTF(dir, "%s", path);
    *strrchr(dir, '/') = '\0';
    fx_mkdirs(dir);
    fx_write_bytes(path, "x", 1);
}

/* In Keras's order (see the header comment of the test). */
static const char *const tree[] = {
    "A_class/IMG3.JPG",       "A_class/img10.jpg",  "A_class/img2.jpg",
    "A_class/x.Png",          "A_class/sub/z.jpg",  "A_class/sub-1/y.jpeg",
    "A_class/sub/deeper/v.png", "A_class/sub0/w.gif", "b_class/a.jpeg",
    "b_class/b.bmp",
};
enum { TREE_FILES = sizeof tree / sizeof tree[0], TREE_A = 8 };

static int reports;
static char last_report[4096];
static void on_report(void *user, const char *path, const char *reason) {
    (void)user;
    reports++;
    PATH_PRINTF(last_report, "%s: %s", path, reason);
}

static void test_order(const char *split) {
    /* Files that must not be listed. */
    touch(split, "A_class/notes.txt");
    touch(split, "A_class/jpg");
    touch(split, ".hidden/skip.jpg");
    touch(split, "top_level.jpg");
    for (int i = TREE_FILES - 1; i >= 0; i--) touch(split, tree[i]);

    wn_dataset ds;
    int rc = wn_dataset_scan(&ds, split, NULL, 0, NULL);
    CHECK(rc == WN_OK, "scan: %s", wn_last_error());
    if (rc != WN_OK) return;
    CHECK(ds.n_classes == 2 && !strcmp(ds.class_names[0], "A_class") &&
              !strcmp(ds.class_names[1], "b_class"),
          "classes: %d", ds.n_classes);
    CHECK(ds.n_files == TREE_FILES, "files: %d want %d", ds.n_files, TREE_FILES);
    for (int i = 0; i < ds.n_files && i < TREE_FILES; i++) {
        char want[4096];
        PATH_PRINTF(want, "%s/%s", split, tree[i]);
        CHECK(!strcmp(ds.paths[i], want), "file %d: %s want %s", i, ds.paths[i], want);
        CHECK(ds.labels[i] == (i < TREE_A ? 0 : 1), "label %d: %d", i, ds.labels[i]);
    }
    int counts[2];
    wn_dataset_class_counts(&ds, counts);
    CHECK(counts[0] == TREE_A && counts[1] == TREE_FILES - TREE_A, "counts %d %d", counts[0], counts[1]);
    char *line = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&line, &len);
    wn_dataset_print_found(&ds, mem);
    fclose(mem);
    CHECK(!strcmp(line, "Found 10 files belonging to 2 classes.\n"), "found line: %s", line);
    free(line);
    wn_dataset_free(&ds);

    /* A fixed class order changes the labels, not the file order (Keras walks the
     * folders in sorted order either way). */
    const char *const order[] = {"b_class", "A_class"};
    rc = wn_dataset_scan(&ds, split, order, 2, NULL);
    CHECK(rc == WN_OK, "scan with class names: %s", wn_last_error());
    if (rc == WN_OK) {
        CHECK(!strcmp(ds.class_names[0], "b_class") && !strcmp(ds.class_names[1], "A_class"),
              "fixed order not kept");
        char want[4096];
        PATH_PRINTF(want, "%s/%s", split, tree[0]);
        CHECK(!strcmp(ds.paths[0], want), "fixed order: first file %s", ds.paths[0]);
        CHECK(ds.labels[0] == 1 && ds.labels[TREE_FILES - 1] == 0, "fixed order labels %d %d",
              ds.labels[0], ds.labels[TREE_FILES - 1]);
        wn_dataset_free(&ds);
    }

    /* Classes that differ from the training classes: an error naming the split and
     * both differences. */
    const char *const other[] = {"A_class", "c_class"};
    rc = wn_dataset_scan(&ds, split, other, 2, NULL);
    const char *msg = wn_last_error();
    CHECK(rc == WN_ERR && strstr(msg, split) && strstr(msg, "'b_class'") && strstr(msg, "'c_class'"),
          "class mismatch: %s", msg);
    CHECK(ds.n_files == 0 && ds.paths == NULL, "failed scan must leave an empty dataset");
    wn_dataset_free(&ds);
}

static void test_problems(const char *root) {
    wn_dataset ds;
    char split[4096], path[4096];
    /* A missing split folder. */
    PATH_PRINTF(split, "%s/validation", root);
    CHECK(wn_dataset_scan(&ds, split, NULL, 0, NULL) == WN_ERR &&
              strstr(wn_last_error(), split) && strstr(wn_last_error(), "not found"),
          "missing split: %s", wn_last_error());
    /* A split with no class folders. */
    PATH_PRINTF(split, "%s/flat", root);
    touch(split, "a.jpg");
    CHECK(wn_dataset_scan(&ds, split, NULL, 0, NULL) == WN_ERR &&
              strstr(wn_last_error(), "no class folders"),
          "no class folders: %s", wn_last_error());
    /* An empty class folder: an error by default; with skip_bad one report. */
    PATH_PRINTF(split, "%s/with_empty", root);
    touch(split, "full/a.jpg");
    PATH_PRINTF(path, "%s/empty", split);
    fx_mkdirs(path);
    CHECK(wn_dataset_scan(&ds, split, NULL, 0, NULL) == WN_ERR &&
              strstr(wn_last_error(), path) && strstr(wn_last_error(), "no images"),
          "empty class: %s", wn_last_error());
    wn_scan_options skip = {.skip_bad = 1, .report = on_report};
    reports = 0;
    int rc = wn_dataset_scan(&ds, split, NULL, 0, &skip);
    CHECK(rc == WN_OK && ds.n_classes == 2 && ds.n_files == 1 && ds.n_skipped == 1 && reports == 1 &&
              strstr(last_report, path),
          "empty class with skip_bad: rc %d classes %d files %d reports %d: %s", rc, ds.n_classes,
          ds.n_files, reports, rc == WN_OK ? last_report : wn_last_error());
    wn_dataset_free(&ds);

    /* An unreadable sub-folder. Root ignores permissions: check as `nobody`. */
    PATH_PRINTF(split, "%s/locked", root);
    touch(split, "cls/a.jpg");
    touch(split, "cls/private/b.jpg");
    PATH_PRINTF(path, "%s/cls/private", split);
    chmod(path, 0);
    pid_t pid = fork();
    if (pid == 0) {
        if (geteuid() == 0 && setuid(65534) != 0) _exit(3);
        int ok = wn_dataset_scan(&ds, split, NULL, 0, NULL) == WN_ERR &&
                 strstr(wn_last_error(), path) && strstr(wn_last_error(), "cannot read");
        if (!ok) fprintf(stderr, "unreadable folder: %s\n", wn_last_error());
        reports = 0;
        int rc2 = wn_dataset_scan(&ds, split, NULL, 0, &skip);
        ok &= rc2 == WN_OK && ds.n_files == 1 && reports == 1 && strstr(last_report, path);
        if (rc2 == WN_OK) wn_dataset_free(&ds);
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "unreadable folder: child status %d", status);
    chmod(path, 0755);
}

int main(void) {
    char root[4096], split[4200];
    if (fx_temp_dir(root, sizeof root, "dataset") != 0) return 1;
    PATH_PRINTF(split, "%s/train", root);
    test_order(split);
    test_problems(root);
    fx_remove_tree(root);
    return CHECK_DONE("test_dataset");
}
