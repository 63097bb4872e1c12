/* engine/train/metrics.h — evaluation metrics on a confusion matrix: what the notebook's
 * per-class analysis prints, plus precision, recall and F1.
 *
 * The confusion matrix counts[t*K + p] holds the number of samples of true class t
 * predicted as class p (rows: truth, columns: prediction), with the first maximum
 * winning ties in the argmax as tf.argmax does.
 *
 * The notebook's analysis (SEED.md, "Analysis per class"): per class the correct
 * predictions and the targets, their ratio (the per-class accuracy, which is the
 * recall), the mean of the per-class ratios over the classes, and that mean again
 * after leaving out the weakest class, then the two weakest ("moyenne sans trash",
 * "sans trash ni paper"). Classes without a test sample have no ratio and are left
 * out of every mean (the notebook would have divided by zero).
 */
#ifndef WN_METRICS_H
#define WN_METRICS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wn_confusion {
    int k;         /* number of classes */
    long *counts;  /* [K, K]: counts[t*K + p] */
} wn_confusion;

/* Allocates a zeroed K x K matrix. */
int wn_confusion_init(wn_confusion *cm, int k);
void wn_confusion_free(wn_confusion *cm);
void wn_confusion_reset(wn_confusion *cm);
/* Counts one sample; out-of-range classes fail naming the values. */
int wn_confusion_add(wn_confusion *cm, int truth, int pred);

/* Index of the first maximum of probs[k] (tf.argmax's tie rule). */
int wn_argmax(const float *probs, int k);

typedef struct wn_class_metrics {
    long correct;     /* counts[c][c] */
    long total;       /* samples whose truth is c (row sum) */
    long predicted;   /* samples predicted as c (column sum) */
    double accuracy;  /* correct / total: the notebook's per-class ratio (= recall); 0 when total is 0 */
    double precision; /* correct / predicted; 0 when nothing was predicted as c */
    double recall;    /* = accuracy */
    double f1;        /* 2PR / (P + R); 0 when P + R is 0 */
} wn_class_metrics;

typedef struct wn_class_report {
    int k;
    wn_class_metrics *cls;  /* [K] */
    long samples;           /* all samples */
    long correct;           /* trace of the matrix */
    double accuracy;        /* correct / samples (overall, = categorical accuracy) */
    int n_present;          /* classes with at least one sample */
    int *weakest;           /* [n_present]: present classes by ascending accuracy,
                               ties by class index */
    double *mean_without;   /* [n_present]: mean_without[m] = mean per-class accuracy
                               over the present classes minus the m weakest;
                               mean_without[0] is the mean over all classes */
    double macro_precision, macro_recall, macro_f1; /* means over present classes */
} wn_class_report;

/* Computes every metric from the matrix; free with wn_class_report_free. */
int wn_class_report_compute(const wn_confusion *cm, wn_class_report *rep);
void wn_class_report_free(wn_class_report *rep);

#ifdef __cplusplus
}
#endif
#endif
