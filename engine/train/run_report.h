/* engine/train/run_report.h — what a run leaves in its folder, runs/<timestamp>-<name>/.
 *
 * Every file goes through host/base/atomic_file.h (temporary file, fsync, rename), so a
 * crash leaves the previous version or the new one, never half of one.
 *
 *   history.json / history.csv   one row per epoch of every phase: phase, epoch
 *                                (1-based), loss, accuracy, val_loss, val_accuracy,
 *                                learning rate, seconds
 *   <phase>_test.json            test loss and accuracy after a phase
 *   <phase>_per_class.txt        the notebook's per-class analysis, as printed
 *   <phase>_per_class.csv        class, correct, total, accuracy, precision, recall, F1
 *   <phase>_confusion.csv        confusion matrix (rows truth, columns prediction)
 *   <phase>_predictions.csv      each test file: path, true class, predicted class,
 *                                correct, one probability column per class
 * (`wastenet run` writes the phases "transfer" and "finetune"; `wastenet train` one.)
 * Numbers are printed with 17 significant digits ("%.17g") so they read back exactly.
 */
#ifndef WN_RUN_REPORT_H
#define WN_RUN_REPORT_H

#include <stdio.h>
#include <time.h>

#include "engine/train/metrics.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WN_PHASE_NAME_MAX 32

typedef struct wn_epoch_record {
    char phase[WN_PHASE_NAME_MAX]; /* "transfer", "finetune", ... */
    int epoch;                     /* 1-based within its phase */
    double loss, accuracy;         /* training means over the epoch */
    double val_loss, val_accuracy; /* validation after the epoch */
    double lr;                     /* learning rate used */
    double seconds;                /* wall time of the epoch (training + validation) */
} wn_epoch_record;

typedef struct wn_history {
    int n, cap;
    wn_epoch_record *rows; /* [n] */
} wn_history;

int wn_history_append(wn_history *h, const wn_epoch_record *r);
/* Drops the rows of `phase` from epoch `from_epoch` (1-based) on: a resumed phase
 * rewrites the epochs after its checkpoint. */
void wn_history_truncate(wn_history *h, const char *phase, int from_epoch);
void wn_history_free(wn_history *h);
/* Reads a history.csv written by wn_report_write_history (for --resume). A missing
 * file gives an empty history. */
int wn_history_read_csv(wn_history *h, const char *path);

/* Creates root (if needed) and root/<YYYYmmdd-HHMMSS>-<name> (local time of `when`),
 * adding "-2", "-3", ... if it exists; writes its path into dir. `name` may contain
 * only letters, digits, '-', '_' and '.'. */
int wn_run_dir_create(char *dir, size_t size, const char *root, const char *name, time_t when);

/* Joins dir/file into out (fails when it does not fit). */
int wn_path_join(char *out, size_t size, const char *dir, const char *file);

/* history.json + history.csv in dir. */
int wn_report_write_history(const char *dir, const wn_history *h);

/* <phase>_test.json: {"phase", "loss", "accuracy", "samples"}. */
int wn_report_write_test(const char *dir, const char *phase, double loss, double accuracy,
                         long samples);

/* The notebook's per-class analysis (correct per class, targets per class, ratios,
 * means without the weakest), followed by precision / recall / F1 and the confusion
 * matrix, to `out` (e.g. stdout). */
void wn_report_print_classes(FILE *out, const char *const *class_names,
                             const wn_confusion *cm, const wn_class_report *rep);

/* <phase>_per_class.txt (what print_classes prints), <phase>_per_class.csv and
 * <phase>_confusion.csv. */
int wn_report_write_classes(const char *dir, const char *phase, const char *const *class_names,
                            const wn_confusion *cm, const wn_class_report *rep);

/* <phase>_predictions.csv; probs is [n, k] (softmax outputs), labels [n] the truth. */
int wn_report_write_predictions(const char *dir, const char *phase, int n, int k,
                                const char *const *paths, const int *labels,
                                const float *probs, const char *const *class_names);

/* Writes `s` as a JSON string literal (quotes and escapes included); bytes that are
 * not UTF-8 are written as \ufffd, so the document is valid for any file name. */
void wn_json_write_string(FILE *f, const char *s);
/* Writes `s` as a CSV field (quoted when it holds a comma, quote or newline); bytes
 * that are not UTF-8 become U+FFFD, so the file reads as UTF-8. */
void wn_csv_write_field(FILE *f, const char *s);

#ifdef __cplusplus
}
#endif
#endif
