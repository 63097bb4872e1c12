/* engine/train/ensemble_eval.h — scoring a labeled set with one model, an ensemble of
 * models, and test-time augmentation: what `wastenet evaluate` and `predict` share.
 *
 * Semantics (the Keras models tests/keras/test_evaluate_parity.py builds):
 *  - one model, no TTA: Keras's model.evaluate on the notebook's model; the loss is
 *    computed from the Dense logits (tf-keras keeps softmax's logits for the loss:
 *    logsumexp(z) - z[label], summed in double as wn_evaluate does), accuracy = argmax == label;
 *  - several models and/or TTA: the mean of the members' softmax probabilities, as a
 *    Keras model ending in layers.Average() of the members' outputs; its loss is
 *    Keras's categorical_crossentropy on probabilities (from_logits=False): p divided
 *    by its sum, clipped to [1e-7, 1 - 1e-7], -log p[label];
 *  - TTA "flip": each image and its left-right mirror (tf.image.flip_left_right,
 *    the notebook's RandomFlip("horizontal")) count as two members of equal weight.
 * The ensemble's mean is taken over every (model, view) pair, so --tta flip with
 * two models averages four probability vectors.
 *
 * Library code: never prints except through the optional progress bar.
 */
#ifndef WN_ENSEMBLE_EVAL_H
#define WN_ENSEMBLE_EVAL_H

#include <stdint.h>

#include "engine/runtime/executor.h"
#include "engine/train/metrics.h"
#include "engine/model/model.h"
#include "engine/train/progress.h"
#include "host/loader.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { WN_TTA_NONE = 0, WN_TTA_FLIP = 1 } wn_tta;

/* "none" or "flip"; anything else fails naming the value. */
int wn_tta_parse(const char *s, wn_tta *out);
const char *wn_tta_name(wn_tta t);
/* Views per image: 1, or 2 with flip. */
int wn_tta_views(wn_tta t);

/* dst[n, h, w, 3] = src mirrored left-right (dst != src). */
void wn_flip_left_right_u8(const uint8_t *src, uint8_t *dst, int n, int h, int w);

/* Adds the probabilities of n images to prob_sum[n * K], one vector per view (the
 * image, then its mirror with WN_TTA_FLIP). scratch holds n*h*w*3 bytes (TTA only,
 * else NULL). When logits is not NULL (no TTA only) the Dense logits [n * K] of the
 * image are copied there too. */
int wn_predict_views(wn_executor *ex, const wn_model *m, const uint8_t *pixels, int n,
                     wn_tta tta, uint8_t *scratch, float *prob_sum, float *logits);

/* Keras's categorical_crossentropy(from_logits=False) of one probability row, in
 * float32 as Keras computes it. */
float wn_xent_from_probs(const float *p, int k, int label);

/* The scores of a set, accumulated member by member. */
typedef struct wn_set_scores {
    int n, k;          /* images (dataset file indices 0..n-1), classes */
    int views;         /* probability vectors added per image so far */
    float *prob_sum;   /* [n * K] sum of the views' probabilities */
    int32_t *labels;   /* [n] truth of each image */
    uint8_t *seen;     /* [n] 1: the image was scored (not skipped as bad) */
    double logit_loss; /* sum of the logits loss of the only member (see top) */
    int logit_members; /* members whose logits loss was added */
} wn_set_scores;

int wn_set_scores_init(wn_set_scores *s, int n, int k);
void wn_set_scores_free(wn_set_scores *s);

/* Scores every image of `ld` (a loader without shuffle over a dataset of s->n
 * files) with one model: adds its views' probabilities (and its logits loss,
 * without TTA) to s. progress (NULL: quiet) shows a Keras evaluate bar with this
 * member's running loss and accuracy. */
int wn_set_scores_add_model(wn_set_scores *s, wn_executor *ex, const wn_model *m, wn_loader *ld,
                            wn_tta tta, wn_progress *progress);

typedef struct wn_set_result {
    long samples, correct;
    double loss;      /* float32 mean, as Keras reports it */
    double accuracy;  /* float32 correct / samples */
    float *probs;     /* [n * K] mean probabilities (rows of unseen images are 0) */
    int32_t *pred;    /* [n] argmax of probs (-1 for unseen images) */
} wn_set_result;

/* The ensemble's figures from the accumulated scores; counts the confusion matrix
 * `cm` (K x K, counted into). Free with wn_set_result_free. */
int wn_set_result_compute(const wn_set_scores *s, wn_confusion *cm, wn_set_result *r);
void wn_set_result_free(wn_set_result *r);

#ifdef __cplusplus
}
#endif
#endif
