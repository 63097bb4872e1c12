/* engine/train/metrics.c — confusion matrix and per-class report (see metrics.h). */
#include "engine/train/metrics.h"

#include <stdlib.h>
#include <string.h>

#include "host/base/error.h"

int wn_confusion_init(wn_confusion *cm, int k) {
    memset(cm, 0, sizeof *cm);
    if (k < 1) return wn_fail("confusion matrix: %d classes (need at least 1)", k);
    cm->counts = calloc((size_t)k * (size_t)k, sizeof *cm->counts);
    if (!cm->counts) return wn_fail("confusion matrix: out of memory for %d classes", k);
    cm->k = k;
    return WN_OK;
}

void wn_confusion_free(wn_confusion *cm) {
    free(cm->counts);
    memset(cm, 0, sizeof *cm);
}

void wn_confusion_reset(wn_confusion *cm) {
    memset(cm->counts, 0, (size_t)cm->k * (size_t)cm->k * sizeof *cm->counts);
}

int wn_confusion_add(wn_confusion *cm, int truth, int pred) {
    if (truth < 0 || truth >= cm->k || pred < 0 || pred >= cm->k)
        return wn_fail("confusion matrix: class %d predicted as %d, outside 0..%d", truth, pred,
                       cm->k - 1);
    cm->counts[(size_t)truth * (size_t)cm->k + (size_t)pred]++;
    return WN_OK;
}

int wn_argmax(const float *probs, int k) {
    int best = 0;
    for (int i = 1; i < k; i++)
        if (probs[i] > probs[best]) best = i; /* strict: the first maximum wins */
    return best;
}

void wn_class_report_free(wn_class_report *rep) {
    free(rep->cls);
    free(rep->weakest);
    free(rep->mean_without);
    memset(rep, 0, sizeof *rep);
}

int wn_class_report_compute(const wn_confusion *cm, wn_class_report *rep) {
    int k = cm->k;
    memset(rep, 0, sizeof *rep);
    rep->k = k;
    rep->cls = calloc((size_t)k, sizeof *rep->cls);
    rep->weakest = calloc((size_t)k, sizeof *rep->weakest);
    rep->mean_without = calloc((size_t)k, sizeof *rep->mean_without);
    if (!rep->cls || !rep->weakest || !rep->mean_without) {
        wn_class_report_free(rep);
        return wn_fail("class report: out of memory");
    }
    for (int t = 0; t < k; t++)
        for (int p = 0; p < k; p++) {
            long n = cm->counts[(size_t)t * (size_t)k + (size_t)p];
            rep->cls[t].total += n;
            rep->cls[p].predicted += n;
            rep->samples += n;
            if (t == p) rep->cls[t].correct += n, rep->correct += n;
        }
    rep->accuracy = rep->samples ? (double)rep->correct / (double)rep->samples : 0.0;
    for (int c = 0; c < k; c++) {
        wn_class_metrics *m = &rep->cls[c];
        m->accuracy = m->total ? (double)m->correct / (double)m->total : 0.0;
        m->recall = m->accuracy;
        m->precision = m->predicted ? (double)m->correct / (double)m->predicted : 0.0;
        m->f1 = m->precision + m->recall > 0
                    ? 2.0 * m->precision * m->recall / (m->precision + m->recall)
                    : 0.0;
        if (m->total) rep->weakest[rep->n_present++] = c;
    }
    /* Insertion sort by ascending accuracy; stable, so ties keep class order. */
    for (int i = 1; i < rep->n_present; i++) {
        int c = rep->weakest[i], j = i;
        while (j > 0 && rep->cls[rep->weakest[j - 1]].accuracy > rep->cls[c].accuracy) {
            rep->weakest[j] = rep->weakest[j - 1];
            j--;
        }
        rep->weakest[j] = c;
    }
    /* mean_without[m]: the notebook sums the remaining ratios and divides by their
     * number, in class order; summing in class order keeps its rounding. */
    for (int m = 0; m < rep->n_present; m++) {
        double sum = 0;
        int used = 0;
        for (int c = 0; c < k; c++) {
            if (!rep->cls[c].total) continue;
            int dropped = 0;
            for (int j = 0; j < m; j++) dropped |= rep->weakest[j] == c;
            if (dropped) continue;
            sum += rep->cls[c].accuracy;
            used++;
        }
        rep->mean_without[m] = sum / used;
    }
    for (int i = 0; i < rep->n_present; i++) {
        const wn_class_metrics *m = &rep->cls[rep->weakest[i]];
        rep->macro_precision += m->precision;
        rep->macro_recall += m->recall;
        rep->macro_f1 += m->f1;
    }
    if (rep->n_present) {
        rep->macro_precision /= rep->n_present;
        rep->macro_recall /= rep->n_present;
        rep->macro_f1 /= rep->n_present;
    }
    return WN_OK;
}
