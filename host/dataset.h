/* host/dataset.h — list the images of one split folder the way Keras's
 * image_dataset_from_directory does (KERAS_SEMANTICS.md §3).
 *
 *   dir/<class>/[sub/...]<file>.{bmp,gif,jpeg,jpg,png}   (extension case-insensitive)
 *
 * - Class names: the sub-folders of dir, sorted by byte value (Python's sorted(), so
 *   "B" < "a"); names starting with '.' are skipped (Keras 2.14+). A class's label is
 *   its index in that list. Passing class_names fixes the order instead; then the set
 *   of folders must equal the set of names, else the scan fails naming the split and
 *   the differing classes (this is how validation/test are checked against training).
 * - Files: each class folder is walked recursively, following symbolic links to
 *   folders and files like tf-keras (its default follow_links=False walks with
 *   tf.io.gfile.walk, whose isdir() follows links; Keras 3 walks with os.walk and
 *   does not: docs/DATA.md); a folder reached a second time (a link loop, two links
 *   to one folder) is a problem, not walked again; folders are visited in sorted path order and
 *   the files of one folder in sorted name order ("img10" < "img2"); the lists are
 *   concatenated class by class. Only the extension is looked at here: content is
 *   sniffed later by the decoder (host/image_decode.h).
 * - Class folder names with a control character (newline, tab, ...) fail the scan
 *   always: they would break classes.txt and the reports.
 * - Problems found while scanning (an unreadable sub-folder, a class folder with no
 *   images, a dangling symbolic link, a path longer than the system allows, a pipe,
 *   device or socket named like an image, a folder seen twice) fail the scan with a
 *   message naming the entry, unless skip_bad is set:
 *   then each one is reported once through the `report` callback and the scan goes on.
 *   A missing or unreadable split folder always fails.
 *
 * Library code: never prints; errors through wn_fail() (host/base/error.h).
 */
#ifndef WN_DATASET_H
#define WN_DATASET_H

#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Called once per bad file or folder that was skipped (skip_bad). `path` names the
 * file or folder, `reason` says what is wrong. Loader threads may call it; calls are
 * serialised by the caller of the callback, never concurrent. */
typedef void (*wn_bad_file_fn)(void *user, const char *path, const char *reason);

typedef struct wn_dataset {
    char *dir;           /* the split folder as given */
    int n_classes;
    char **class_names;  /* [n_classes] label i is class_names[i] */
    int n_files;
    char **paths;        /* [n_files] "dir/<class>/.../<file>", in Keras's order */
    int32_t *labels;     /* [n_files] class index of each file */
    int n_skipped;       /* entries skipped while scanning (skip_bad) */
    int *n_skipped_class;/* [n_classes] of them, per class (split-level ones in none) */
} wn_dataset;

typedef struct wn_scan_options {
    int skip_bad;             /* 0: stop at the first problem; 1: report and go on */
    wn_bad_file_fn report;    /* may be NULL */
    void *report_user;
} wn_scan_options;

/* Scans `dir`. class_names == NULL: classes from the folders; otherwise the
 * n_class_names names fix the label order and the folders must match them exactly.
 * opt may be NULL (stop at the first problem). On failure *ds is left empty (safe
 * to free) and wn_last_error() says why. */
int wn_dataset_scan(wn_dataset *ds, const char *dir, const char *const *class_names,
                    int n_class_names, const wn_scan_options *opt);

void wn_dataset_free(wn_dataset *ds);

/* Writes Keras's line "Found N files belonging to K classes." (with newline). */
void wn_dataset_print_found(const wn_dataset *ds, FILE *out);

/* Files per class: counts[c] for c < ds->n_classes. */
void wn_dataset_class_counts(const wn_dataset *ds, int *counts);

#ifdef __cplusplus
}
#endif
#endif
