/* engine/train/ensemble_eval.c — one model, an ensemble and test-time augmentation over a
 * labeled set (see ensemble_eval.h). */
#include "engine/train/ensemble_eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "host/base/error.h"
#include "engine/train/train_loop.h"

int wn_tta_parse(const char *s, wn_tta *out) {
    if (!strcmp(s, "none")) return *out = WN_TTA_NONE, WN_OK;
    if (!strcmp(s, "flip")) return *out = WN_TTA_FLIP, WN_OK;
    return wn_fail("--tta %s: expected none or flip", s);
}

const char *wn_tta_name(wn_tta t) { return t == WN_TTA_FLIP ? "flip" : "none"; }

int wn_tta_views(wn_tta t) { return t == WN_TTA_FLIP ? 2 : 1; }

void wn_flip_left_right_u8(const uint8_t *src, uint8_t *dst, int n, int h, int w) {
    for (long r = 0; r < (long)n * h; r++) {
        const uint8_t *s = src + (size_t)r * (size_t)w * 3;
        uint8_t *d = dst + (size_t)r * (size_t)w * 3;
        for (int x = 0; x < w; x++) memcpy(d + (size_t)(w - 1 - x) * 3, s + (size_t)x * 3, 3);
    }
}

/* probs[n*K] of one forward pass, added to sum. */
static int add_view(wn_executor *ex, const uint8_t *pixels, int n, int k, float *tmp,
                    float *sum) {
    if (wn_executor_predict(ex, pixels, n, tmp) != WN_OK) return WN_ERR;
    for (size_t i = 0; i < (size_t)n * (size_t)k; i++) sum[i] += tmp[i];
    return WN_OK;
}

int wn_predict_views(wn_executor *ex, const wn_model *m, const uint8_t *pixels, int n,
                     wn_tta tta, uint8_t *scratch, float *prob_sum, float *logits) {
    int k = m->num_classes;
    float *tmp = malloc((size_t)n * (size_t)k * sizeof *tmp);
    if (!tmp) return wn_fail("prediction: out of memory for %d images", n);
    int rc = add_view(ex, pixels, n, k, tmp, prob_sum);
    if (rc == WN_OK && logits && tta == WN_TTA_NONE)
        rc = wn_executor_read_output(ex, m->logits_layer, logits);
    if (rc == WN_OK && tta == WN_TTA_FLIP) {
        wn_flip_left_right_u8(pixels, scratch, n, m->image_h, m->image_w);
        rc = add_view(ex, scratch, n, k, tmp, prob_sum);
    }
    free(tmp);
    return rc;
}

float wn_xent_from_probs(const float *p, int k, int label) {
    /* tf_keras.backend.categorical_crossentropy: output / reduce_sum(output), then
     * clip_by_value(epsilon, 1 - epsilon), -sum(target * log(output)). */
    const float eps = 1e-7f;
    float sum = 0.0f;
    for (int j = 0; j < k; j++) sum += p[j];
    float q = p[label] / sum;
    if (q < eps) q = eps;
    if (q > 1.0f - eps) q = 1.0f - eps;
    return -logf(q);
}

int wn_set_scores_init(wn_set_scores *s, int n, int k) {
    memset(s, 0, sizeof *s);
    if (k < 1 || k > 4096) return wn_fail("scores: %d classes (supported: 1..4096)", k);
    s->n = n, s->k = k;
    s->prob_sum = calloc((size_t)(n ? n : 1) * (size_t)k, sizeof *s->prob_sum);
    s->labels = calloc((size_t)(n ? n : 1), sizeof *s->labels);
    s->seen = calloc((size_t)(n ? n : 1), 1);
    if (!s->prob_sum || !s->labels || !s->seen) {
        wn_set_scores_free(s);
        return wn_fail("scores of %d images: out of memory", n);
    }
    return WN_OK;
}

void wn_set_scores_free(wn_set_scores *s) {
    free(s->prob_sum), free(s->labels), free(s->seen);
    memset(s, 0, sizeof *s);
}

int wn_set_scores_add_model(wn_set_scores *s, wn_executor *ex, const wn_model *m, wn_loader *ld,
                            wn_tta tta, wn_progress *progress) {
    int k = s->k;
    if (m->num_classes != k)
        return wn_fail("a model with %d outputs in an ensemble of %d classes", m->num_classes, k);
    int steps = wn_loader_batches_per_epoch(ld);
    size_t cap = 0;
    float *sum = NULL, *logits = NULL;
    uint8_t *scratch = NULL;
    double loss_sum = 0;
    long done = 0, correct = 0;
    int rc = wn_loader_begin_epoch(ld, 0), got = 0;
    if (progress) wn_progress_pass_begin(progress, steps);
    wn_batch b;
    while (rc == WN_OK && (got = wn_loader_next(ld, &b)) == 1) {
        if ((size_t)b.count > cap) {
            cap = (size_t)b.count;
            free(sum), free(logits), free(scratch);
            sum = malloc(cap * (size_t)k * sizeof *sum);
            logits = malloc(cap * (size_t)k * sizeof *logits);
            scratch = tta == WN_TTA_FLIP ? malloc(cap * (size_t)b.height * (size_t)b.width * 3) : NULL;
            if (!sum || !logits || (tta == WN_TTA_FLIP && !scratch)) {
                rc = wn_fail("scoring: out of memory for a batch of %d images", b.count);
                break;
            }
        }
        memset(sum, 0, (size_t)b.count * (size_t)k * sizeof *sum);
        rc = wn_predict_views(ex, m, b.pixels, b.count, tta, scratch, sum,
                              tta == WN_TTA_NONE ? logits : NULL);
        if (rc != WN_OK) break;
        float inv = 1.0f / (float)wn_tta_views(tta);
        for (int i = 0; i < b.count; i++) {
            int idx = b.indices[i], y = b.labels[i];
            if (idx < 0 || idx >= s->n) {
                rc = wn_fail("scoring: file index %d outside the set's %d files", idx, s->n);
                break;
            }
            float *row = sum + (size_t)i * k, mean[4096];
            for (int j = 0; j < k && j < 4096; j++) mean[j] = row[j] * inv;
            double l = tta == WN_TTA_NONE ? wn_sample_loss_logits(logits + (size_t)i * k, k, y, 0.0f)
                                          : wn_xent_from_probs(mean, k, y);
            int ok = wn_argmax(mean, k) == y;
            loss_sum += l, correct += ok;
            for (int j = 0; j < k; j++) s->prob_sum[(size_t)idx * k + j] += row[j];
            s->labels[idx] = y;
            s->seen[idx] = 1;
        }
        done += b.count;
        if (rc == WN_OK && progress)
            wn_progress_step(progress, b.number + 1, loss_sum / (double)done,
                             (double)correct / (double)done);
    }
    if (rc == WN_OK && got < 0) rc = WN_ERR;
    free(sum), free(logits), free(scratch);
    if (rc != WN_OK) return wn_fail_context("scoring %d images: ", wn_loader_size(ld));
    if (progress)
        wn_progress_pass_end(progress, done ? loss_sum / (double)done : 0.0,
                             done ? (double)correct / (double)done : 0.0);
    s->views += wn_tta_views(tta);
    if (tta == WN_TTA_NONE) s->logit_loss += loss_sum, s->logit_members++;
    return WN_OK;
}

void wn_set_result_free(wn_set_result *r) {
    free(r->probs), free(r->pred);
    memset(r, 0, sizeof *r);
}

int wn_set_result_compute(const wn_set_scores *s, wn_confusion *cm, wn_set_result *r) {
    memset(r, 0, sizeof *r);
    int n = s->n, k = s->k;
    if (s->views < 1) return wn_fail("no model has scored the set yet");
    r->probs = calloc((size_t)(n ? n : 1) * (size_t)k, sizeof *r->probs);
    r->pred = malloc((size_t)(n ? n : 1) * sizeof *r->pred);
    if (!r->probs || !r->pred) {
        wn_set_result_free(r);
        return wn_fail("results of %d images: out of memory", n);
    }
    /* The logits loss is Keras's only for a lone model without TTA. */
    int by_logits = s->views == 1 && s->logit_members == 1;
    double loss_sum = 0;
    for (int i = 0; i < n; i++) {
        r->pred[i] = -1;
        if (!s->seen[i]) continue;
        float *p = r->probs + (size_t)i * k;
        for (int j = 0; j < k; j++) p[j] = s->prob_sum[(size_t)i * k + j] / (float)s->views;
        int y = s->labels[i], pred = wn_argmax(p, k);
        r->pred[i] = pred;
        r->samples++;
        r->correct += pred == y;
        if (!by_logits) loss_sum += wn_xent_from_probs(p, k, y);
        if (cm && wn_confusion_add(cm, y, pred) != WN_OK) {
            wn_set_result_free(r);
            return WN_ERR;
        }
    }
    if (by_logits) loss_sum = s->logit_loss;
    /* Keras's Mean and MeanMetricWrapper divide float32 totals (engine/train_loop.c). */
    r->loss = r->samples ? (double)(float)(loss_sum / (double)r->samples) : 0.0;
    r->accuracy = r->samples ? (double)((float)r->correct / (float)r->samples) : 0.0;
    return WN_OK;
}
