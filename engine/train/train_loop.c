/* engine/train/train_loop.c — one training phase (Keras's fit) and evaluation; see
 * train_loop.h for the semantics. */
#include "engine/train/train_loop.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/base/error.h"
#include "engine/train/distributed.h"
#include "engine/train/lr_schedule.h"
#include "kernels/softmax_xent/softmax_xent.h"

void wn_train_options_default(wn_train_options *o) {
    memset(o, 0, sizeof *o);
    o->phase = "train";
    o->epochs = 20;
    o->lr = 1e-3f;
    o->beta_1 = 0.9f, o->beta_2 = 0.999f, o->epsilon = 1e-7f; /* Keras's Adam */
    o->augment = 1;
    o->rotation = 0.2f;
    o->early_stopping = 1;
    o->min_delta = 0.001;
    o->patience = 2;
    o->restore = WN_RESTORE_AT_END;
}

/* The learning rate of the phase's optimizer step `step` (0-based over the phase). */
static float lr_for_step(const wn_train_options *o, long step, int steps_per_epoch) {
    wn_lr_schedule s = {o->lr_schedule, o->lr, (long)o->epochs * steps_per_epoch, 0.0f,
                        (long)(o->lr_step_epochs > 0 ? o->lr_step_epochs : 1) * steps_per_epoch,
                        o->lr_step_factor};
    return wn_lr_at(&s, step);
}

/* Loader epochs of different phases never share a permutation. */
static int loader_epoch(const wn_train_options *o, int epoch) {
    return o->phase_index * 100000 + epoch;
}

/* ------------------------------------------------------------------ evaluation */

double wn_sample_loss_logits(const float *z, int k, int label, float smoothing) {
    double mx = z[0];
    for (int i = 1; i < k; i++)
        if (z[i] > mx) mx = z[i];
    double s = 0;
    for (int i = 0; i < k; i++) s += exp((double)z[i] - mx);
    if (smoothing == 0.0f) return mx + log(s) - (double)z[label];
    double yz = 0; /* sum_j y_j z_j with y = onehot * (1 - s) + s / K (float32 targets) */
    for (int i = 0; i < k; i++) yz += (double)wn_smoothed_target(i, label, smoothing, k) * z[i];
    return mx + log(s) - yz;
}

int wn_evaluate(wn_executor *ex, const wn_model *m, wn_loader *ld, wn_eval_result *r,
                wn_confusion *cm, float *probs, int32_t *labels, int32_t *indices) {
    return wn_evaluate_ctl(ex, m, ld, NULL, r, cm, probs, labels, indices);
}

static int eval_stop_requested(const wn_eval_control *ctl) {
    return ctl && ctl->interrupt && *ctl->interrupt;
}

/* A detailed evaluation's outputs (each may be NULL), its batch buffers and its
 * host sums. */
typedef struct eval_detail {
    const wn_model *m;
    wn_confusion *cm;
    float *probs;
    int32_t *labels, *indices;
    float *p, *z; /* [images * classes]: one batch's probabilities and logits */
    double loss_sum;
    long correct, seen;
    long place;   /* images of the whole pass before the current batch (all ranks') */
} eval_detail;

static int eval_detail_alloc(eval_detail *d, int images) {
    size_t per_batch = (size_t)images * (size_t)d->m->num_classes; /* a batch is at most this */
    d->p = malloc((per_batch ? per_batch : 1) * sizeof *d->p);
    d->z = malloc((per_batch ? per_batch : 1) * sizeof *d->z);
    if (d->p && d->z) return WN_OK;
    free(d->p), free(d->z);
    d->p = d->z = NULL;
    return wn_fail("evaluation: out of memory for %d images", images);
}

/* One batch: probabilities and logits read back, the loss and correct count summed
 * on the host, the outputs filled at the images' places. */
static int eval_batch_detailed(wn_executor *ex, eval_detail *d, const wn_batch *b) {
    int k = d->m->num_classes;
    if (b->count == 0) { /* a rank's empty slice of a short last batch */
        d->place += b->global_count;
        return WN_OK;
    }
    int rc = wn_executor_predict(ex, b->pixels, b->count, d->p);
    if (rc == WN_OK) rc = wn_executor_read_output(ex, d->m->logits_layer, d->z);
    if (rc != WN_OK) return rc;
    for (int i = 0; i < b->count; i++) {
        const float *pi = d->p + (size_t)i * k;
        int pred = wn_argmax(pi, k), y = b->labels[i];
        d->loss_sum += wn_sample_loss_logits(d->z + (size_t)i * k, k, y,
                                             wn_executor_label_smoothing(ex));
        d->correct += pred == y;
        if (d->cm && (rc = wn_confusion_add(d->cm, y, pred)) != WN_OK) break;
        long at = d->place + b->first + i; /* the image's place in the pass */
        if (d->probs) memcpy(d->probs + (size_t)at * k, pi, (size_t)k * sizeof *pi);
        if (d->labels) d->labels[at] = y;
        if (d->indices) d->indices[at] = b->indices[i];
    }
    d->seen += b->count;
    d->place += b->global_count;
    return rc;
}

/* Several ranks: the outputs start at zero, and the confusion matrix's counts
 * before the pass are kept aside, so that summing the ranks' outputs gives the
 * whole pass's (each image is filled in by one rank only). */
static int eval_shared_begin(eval_detail *d, int images, long **cm_before) {
    int k = d->m->num_classes;
    if (d->probs) memset(d->probs, 0, (size_t)images * (size_t)k * sizeof *d->probs);
    if (d->labels) memset(d->labels, 0, (size_t)images * sizeof *d->labels);
    if (d->indices) memset(d->indices, 0, (size_t)images * sizeof *d->indices);
    if (!d->cm) return WN_OK;
    size_t cells = (size_t)d->cm->k * (size_t)d->cm->k;
    *cm_before = malloc(cells * sizeof **cm_before);
    if (!*cm_before) return wn_fail("evaluation: out of memory");
    memcpy(*cm_before, d->cm->counts, cells * sizeof **cm_before);
    memset(d->cm->counts, 0, cells * sizeof *d->cm->counts);
    return WN_OK;
}

/* The ranks' sums of a pass: totals, and the detailed outputs when asked. */
static int eval_shared_end(eval_detail *d, int images, long *cm_before) {
    double t[3] = {d->loss_sum, (double)d->correct, (double)d->seen};
    int k = d->m->num_classes;
    size_t cells = d->cm ? (size_t)d->cm->k * (size_t)d->cm->k : 0;
    if (wn_dist_sum_doubles(t, 3, "the evaluation totals") != WN_OK ||
        (d->probs && wn_dist_sum_floats(d->probs, (size_t)images * (size_t)k,
                                        "the evaluation's probabilities") != WN_OK) ||
        (d->labels && wn_dist_sum_int32(d->labels, (size_t)images, "the evaluation's labels") != WN_OK) ||
        (d->indices && wn_dist_sum_int32(d->indices, (size_t)images, "the evaluation's files") != WN_OK) ||
        (d->cm && wn_dist_sum_longs(d->cm->counts, cells, "the confusion matrix") != WN_OK))
        return WN_ERR;
    for (size_t i = 0; i < cells; i++) d->cm->counts[i] += cm_before[i];
    d->loss_sum = t[0], d->correct = (long)t[1], d->seen = (long)t[2];
    return WN_OK;
}

/* Ctrl-C before a batch, agreed by every rank (they stop at the same batch). */
static int eval_stop_agreed(const wn_eval_control *ctl, int *stop) {
    *stop = eval_stop_requested(ctl);
    return wn_dist_active() ? wn_dist_any(stop, "the evaluation's stop flag") : WN_OK;
}

int wn_evaluate_ctl(wn_executor *ex, const wn_model *m, wn_loader *ld,
                    const wn_eval_control *ctl, wn_eval_result *r, wn_confusion *cm,
                    float *probs, int32_t *labels, int32_t *indices) {
    memset(r, 0, sizeof *r);
    eval_detail d = {.m = m, .cm = cm, .probs = probs, .labels = labels, .indices = indices};
    int detailed = cm || probs || labels || indices, images = wn_loader_size(ld);
    long *cm_before = NULL;
    if (detailed && eval_detail_alloc(&d, images) != WN_OK) return WN_ERR;
    if (detailed && wn_dist_active() && eval_shared_begin(&d, images, &cm_before) != WN_OK) {
        free(d.p), free(d.z);
        return WN_ERR;
    }
    int rc = wn_loader_begin_epoch(ld, 0);
    if (!detailed && rc == WN_OK) {
        double drop;
        long dc, ds;
        rc = wn_executor_take_totals(ex, &drop, &dc, &ds); /* start from zero */
    }
    wn_batch b;
    int got = 0, batch = 0;
    while (rc == WN_OK && (got = wn_loader_next(ld, &b)) == 1) {
        /* Checked before every batch, the first too, and only when one is left: a
         * pass whose last batch is done is complete. */
        int stop = 0;
        if ((rc = eval_stop_agreed(ctl, &stop)) != WN_OK) break;
        if (stop) {
            r->interrupted = 1;
            break;
        }
        batch++;
        rc = detailed       ? eval_batch_detailed(ex, &d, &b)
             : b.count == 0 ? WN_OK /* a rank's empty slice of a short last batch */
                            : wn_executor_eval_batch(ex, b.pixels, b.labels, b.count, NULL, NULL);
        if (rc == WN_OK && ctl && ctl->after_batch)
            ctl->after_batch(ctl->hook_user, ctl->pass ? ctl->pass : "", ctl->epoch, batch);
    }
    if (rc == WN_OK && got < 0) rc = WN_ERR;
    if (rc == WN_OK && !detailed)
        rc = wn_executor_take_totals(ex, &d.loss_sum, &d.correct, &d.seen);
    if (rc == WN_OK && wn_dist_active()) rc = eval_shared_end(&d, images, cm_before);
    free(cm_before);
    free(d.p), free(d.z);
    if (rc != WN_OK) return wn_fail_context("evaluating %d images: ", wn_loader_size(ld));
    r->samples = d.seen;
    r->correct = d.correct;
    /* Keras's Mean and MeanMetricWrapper divide float32 totals. */
    r->loss = d.seen ? (double)(float)(d.loss_sum / (double)d.seen) : 0.0;
    r->accuracy = d.seen ? (double)((float)d.correct / (float)d.seen) : 0.0;
    return WN_OK;
}

/* ------------------------------------------------------------------ checkpoints */

static int check_matches(const wn_checkpoint *ck, const wn_model *m, const char *path,
                         const char *phase) {
    const char *arch = m->backbone ? m->backbone->name : "?";
    if (strcmp(ck->arch, arch) || ck->image_h != m->image_h || ck->image_w != m->image_w ||
        ck->num_classes != m->num_classes || ck->n_params != m->graph.n_params ||
        ck->n_stats != m->graph.n_stats)
        return wn_fail("%s belongs to another model (%s %dx%d, %d classes, %zu parameters; this "
                       "run: %s %dx%d, %d classes, %zu); use the same --model, --image-size "
                       "and data, or start a new run",
                       path, ck->arch, ck->image_h, ck->image_w, ck->num_classes, ck->n_params,
                       arch, m->image_h, m->image_w, m->num_classes, m->graph.n_params);
    if (phase && strcmp(ck->phase, phase))
        return wn_fail("%s is the checkpoint of phase '%s', not '%s'", path, ck->phase, phase);
    return WN_OK;
}

/* "'a', 'b', 'c'" of a class list, cut to fit. */
static void list_names(char *buf, size_t size, const char *const *names, int n) {
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        int w = snprintf(buf + used, size - used, "%s'%s'", i ? ", " : "", names[i]);
        if (w < 0 || (size_t)w >= size - used) {
            if (size > 4) snprintf(buf + size - 4, 4, "...");
            break;
        }
        used += (size_t)w;
    }
}

int wn_train_check_identity(const wn_checkpoint *ck, const wn_train_options *o, const char *path) {
    if (ck->command[0] && o->command && strcmp(ck->command, o->command))
        return wn_fail("%s was written by 'wastenet %s', this is 'wastenet %s': resume it with "
                       "'wastenet %s --resume', or start a new run",
                       path, ck->command, o->command, ck->command);
    if (ck->batch && o->batch && ck->batch != o->batch)
        return wn_fail("%s was written with --batch %d, this run uses --batch %d: resume with "
                       "--batch %d (it fixes the steps of every epoch)",
                       path, ck->batch, o->batch, ck->batch);
    if (ck->n_class_names && o->class_names) {
        int same = ck->n_class_names == o->n_class_names;
        for (int i = 0; same && i < o->n_class_names; i++)
            same = !strcmp(ck->class_names[i], o->class_names[i]);
        if (!same) {
            char was[1024], now[1024];
            list_names(was, sizeof was, (const char *const *)ck->class_names, ck->n_class_names);
            list_names(now, sizeof now, o->class_names, o->n_class_names);
            return wn_fail("%s was trained on the classes %s (in label order); the data now has "
                           "%s: class folders were renamed, added or removed, and resuming "
                           "would relabel them; restore the folders or start a new run",
                           path, was, now);
        }
    }
    return WN_OK;
}

int wn_train_load_weights_from_checkpoint(wn_model *m, const char *path, int *status,
                                          int *epochs) {
    wn_checkpoint ck;
    if (wn_checkpoint_load(&ck, path) != WN_OK) return WN_ERR;
    int rc = check_matches(&ck, m, path, NULL);
    if (rc == WN_OK) {
        memcpy(m->params, ck.params, ck.n_params * sizeof(float));
        memcpy(m->stats, ck.stats, ck.n_stats * sizeof(float));
        if (status) *status = ck.status;
        if (epochs) *epochs = ck.epoch;
    }
    wn_checkpoint_free(&ck);
    return rc;
}

/* ------------------------------------------------------------------ the phase's state */

/* Loss and accuracy totals of (part of) an epoch, as the executor sums them. */
typedef struct epoch_totals {
    double loss_sum;
    long correct, seen;
} epoch_totals;

/* An epoch's figures, as its line, history and early stopping see them. */
typedef struct epoch_figures {
    epoch_totals train;    /* the whole epoch's training totals */
    double loss, accuracy; /* their per-sample means (float32, as Keras's metrics) */
    double val_loss, val_accuracy;
} epoch_figures;

/* What follows an epoch. */
typedef enum {
    EPOCH_NEXT,   /* another epoch */
    EPOCH_LAST,   /* the phase ends normally: phase_end runs */
    PHASE_STOPPED /* interrupted inside an epoch or diverged: result and checkpoint are written */
} epoch_outcome;

/* One call of wn_train_phase: its inputs, the state it carries between epochs
 * (besides the executor's) and the current epoch's draws. */
typedef struct phase_run {
    wn_executor *ex;
    wn_model *m;
    wn_loader *train, *val;
    const wn_train_options *o;
    wn_train_result *res;
    wn_adam_params adam;
    wn_early_stopping es;
    wn_rng rng;             /* as a checkpoint records it: the state at the current
                               epoch's start until its training is done, then the next's */
    wn_rng at_start, after_draws; /* the RNG before and after the current epoch's draws */
    float *best;            /* [n_train] best-weights snapshot (or phase-start weights) */
    float *adam_m, *adam_v; /* [n_train] host copies for checkpoints */
    size_t n_train;
    int n_img, steps;       /* training images, steps per epoch */
    uint8_t *flips;         /* [n_img] the current epoch's draws */
    float *angles;          /* [n_img] */
    float *zoom, *shift;    /* [2 n_img] when --zoom / --translate are on, else NULL */
    float *contrast;        /* [n_img] when --contrast is on, else NULL */
    uint64_t *dseeds;       /* [steps] dropout seeds */
    int start_epoch, start_step; /* where this call starts (a checkpoint's place) */
    epoch_totals part;      /* the resumed epoch's totals of its steps before start_step */
    int per_step;           /* the bar shows each step's loss and accuracy */
    int ended_before;       /* resumed a phase that had already ended */
    long steps_this_call;
} phase_run;

static void phase_run_free(phase_run *r) {
    free(r->best), free(r->adam_m), free(r->adam_v);
    free(r->flips), free(r->angles), free(r->dseeds);
    free(r->zoom), free(r->shift), free(r->contrast);
}

/* The executor's totals since the last take, summed over the ranks. */
static int take_totals(wn_executor *ex, epoch_totals *t) {
    if (wn_executor_take_totals(ex, &t->loss_sum, &t->correct, &t->seen) != WN_OK) return WN_ERR;
    if (!wn_dist_active()) return WN_OK;
    double v[3] = {t->loss_sum, (double)t->correct, (double)t->seen};
    if (wn_dist_sum_doubles(v, 3, "the training totals") != WN_OK) return WN_ERR;
    t->loss_sum = v[0], t->correct = (long)v[1], t->seen = (long)v[2];
    return WN_OK;
}

/* ------------------------------------------------------------------ checkpoints, snapshots */

/* `part`: the totals of the steps done in `epoch` (NULL: none). */
static int save_checkpoint(phase_run *r, int epoch, int step, wn_phase_status status,
                           const epoch_totals *part) {
    const wn_train_options *o = r->o;
    const wn_model *m = r->m;
    if (!o->checkpoint || !wn_dist_is_root()) return WN_OK; /* rank 0 writes for all */
    long t = 0;
    if (wn_executor_download_weights(r->ex) != WN_OK ||
        wn_executor_get_adam(r->ex, r->adam_m, r->adam_v, &t) != WN_OK)
        return wn_fail_context("writing checkpoint %s: ", o->checkpoint);
    wn_checkpoint ck;
    memset(&ck, 0, sizeof ck);
    snprintf(ck.phase, sizeof ck.phase, "%s", o->phase);
    snprintf(ck.arch, sizeof ck.arch, "%s", m->backbone ? m->backbone->name : "?");
    ck.image_h = m->image_h, ck.image_w = m->image_w, ck.num_classes = m->num_classes;
    ck.fine_tune_at = m->fine_tune_at;
    ck.epoch = epoch, ck.step = step, ck.epochs_max = o->epochs, ck.status = status;
    ck.lr = o->lr, ck.seed = o->seed, ck.rng = r->rng, ck.es = r->es;
    if (part)
        ck.part_loss_sum = part->loss_sum, ck.part_correct = part->correct,
        ck.part_seen = part->seen;
    ck.adam_t = t;
    ck.n_params = m->graph.n_params, ck.n_stats = m->graph.n_stats;
    ck.trainable_first = m->trainable_first;
    ck.params = m->params, ck.stats = m->stats;
    ck.adam_m = r->adam_m, ck.adam_v = r->adam_v;
    ck.has_best = 1, ck.best = r->best;
    snprintf(ck.command, sizeof ck.command, "%s", o->command ? o->command : "");
    ck.batch = o->batch;
    ck.n_class_names = o->class_names ? o->n_class_names : 0;
    ck.class_names = (char **)o->class_names;
    return wn_checkpoint_save(&ck, o->checkpoint);
}

/* Loads the phase checkpoint into the model, executor and loop state. */
static int resume_from(phase_run *r, wn_checkpoint *ck) {
    const wn_train_options *o = r->o;
    wn_model *m = r->m;
    if (wn_checkpoint_load(ck, o->checkpoint) != WN_OK) {
        char why[1024];
        snprintf(why, sizeof why, "%s", wn_last_error());
        return wn_fail("%s; delete it to start the phase over, or put back an intact copy "
                       "and resume",
                       why);
    }
    if (check_matches(ck, m, o->checkpoint, o->phase) != WN_OK) return WN_ERR;
    if (wn_train_check_identity(ck, o, o->checkpoint) != WN_OK) return WN_ERR;
    if (ck->trainable_first != m->trainable_first || ck->fine_tune_at != m->fine_tune_at)
        return wn_fail("%s was written with --fine-tune-at %d (%zu trainable values), this run "
                       "uses %d (%zu): use the same --fine-tune-at to resume",
                       o->checkpoint, ck->fine_tune_at, ck->n_params - ck->trainable_first,
                       m->fine_tune_at, r->n_train);
    if (ck->seed != o->seed)
        return wn_fail("%s was written with --seed %llu, this run uses %llu: resume with the "
                       "same seed (it fixes the shuffling and augmentation of every epoch)",
                       o->checkpoint, (unsigned long long)ck->seed,
                       (unsigned long long)o->seed);
    memcpy(m->params, ck->params, ck->n_params * sizeof(float));
    memcpy(m->stats, ck->stats, ck->n_stats * sizeof(float));
    if (wn_executor_upload_weights(r->ex) != WN_OK ||
        wn_executor_set_adam(r->ex, ck->adam_m, ck->adam_v, ck->adam_t) != WN_OK)
        return wn_fail_context("resuming from %s: ", o->checkpoint);
    r->es = ck->es;
    r->rng = ck->rng;
    if (ck->has_best) memcpy(r->best, ck->best, r->n_train * sizeof(float));
    return WN_OK;
}

/* Copies the trainable suffix between the model and the snapshot. */
static int take_snapshot(phase_run *r) {
    if (wn_executor_download_weights(r->ex) != WN_OK) return WN_ERR;
    memcpy(r->best, r->m->params + r->m->trainable_first, r->n_train * sizeof(float));
    return WN_OK;
}

static int restore_snapshot(phase_run *r) {
    if (wn_executor_download_weights(r->ex) != WN_OK) return WN_ERR;
    memcpy(r->m->params + r->m->trainable_first, r->best, r->n_train * sizeof(float));
    return wn_executor_upload_weights(r->ex);
}

/* Early stopping's restore_best_weights. */
static int restore_best(phase_run *r) {
    if (restore_snapshot(r) != WN_OK) return WN_ERR;
    r->res->restored = 1;
    return WN_OK;
}

/* ------------------------------------------------------------------ stopping part way */

static int interrupt_flag_set(const wn_train_options *o) {
    return o->interrupt && *o->interrupt;
}

/* "<phase>: interrupted <when>; checkpoint <path>" as the result's message. */
static void interrupt_message(phase_run *r, const char *when) {
    snprintf(r->res->message, sizeof r->res->message, "%s: interrupted %s; checkpoint %s",
             r->o->phase, when, r->o->checkpoint ? r->o->checkpoint : "(none)");
}

/* Ends the phase inside epoch `epoch` (0-based) on an interruption: the checkpoint
 * records `step` steps done with their totals `done` and the RNG state at the
 * epoch's start (a resume replays the epoch's draws and skips those steps). */
static int checkpoint_interrupted(phase_run *r, int epoch, int step, const epoch_totals *done,
                                  const char *when) {
    r->rng = r->at_start;
    if (save_checkpoint(r, epoch, step, WN_PHASE_RUNNING, done) != WN_OK) return WN_ERR;
    wn_progress_interrupted(r->o->progress);
    r->res->interrupted = 1;
    r->res->epochs_done = epoch;
    interrupt_message(r, when);
    return wn_executor_download_weights(r->ex);
}

/* Ends the phase on a non-finite loss: best (or starting) weights back. */
static int diverge(phase_run *r, int epoch, int step, const char *what, double value) {
    wn_train_result *res = r->res;
    res->status = WN_PHASE_DIVERGED;
    char where[64];
    if (step) snprintf(where, sizeof where, "epoch %d, step %d", epoch + 1, step);
    else snprintf(where, sizeof where, "epoch %d", epoch + 1);
    snprintf(res->message, sizeof res->message,
             "%s: the %s became %s at %s: training stopped; the %s weights are kept. Try a "
             "lower --lr.",
             r->o->phase, what, isnan(value) ? "NaN" : "infinite", where,
             r->es.has_snapshot ? "best epoch's" : "phase's starting");
    r->rng = r->at_start;
    if (restore_snapshot(r) != WN_OK) return WN_ERR;
    res->restored = r->es.has_snapshot;
    /* The checkpoint records the end of the phase at the last complete epoch. */
    if (save_checkpoint(r, epoch, 0, WN_PHASE_DIVERGED, NULL) != WN_OK) return WN_ERR;
    return wn_executor_download_weights(r->ex);
}

/* ------------------------------------------------------------------ the phase's begin */

static int check_options(const wn_train_options *o) {
    if (o->epochs < 1) return wn_fail("%s: --epochs must be at least 1 (got %d)", o->phase, o->epochs);
    if (!(o->lr > 0) || !isfinite(o->lr))
        return wn_fail("%s: the learning rate must be positive (got %g)", o->phase, o->lr);
    if (!(o->beta_1 >= 0 && o->beta_1 < 1) || !(o->beta_2 >= 0 && o->beta_2 < 1))
        return wn_fail("%s: Adam's beta_1 and beta_2 must be in [0, 1) (got %g and %g)", o->phase,
                       o->beta_1, o->beta_2);
    if (!(o->epsilon > 0) || !isfinite(o->epsilon))
        return wn_fail("%s: Adam's epsilon must be positive (got %g)", o->phase, o->epsilon);
    return WN_OK;
}

static int alloc_buffers(phase_run *r) {
    r->n_train = wn_model_trainable_count(r->m);
    size_t bytes = (r->n_train ? r->n_train : 1) * sizeof(float);
    r->best = malloc(bytes), r->adam_m = malloc(bytes), r->adam_v = malloc(bytes);
    r->n_img = wn_loader_size(r->train), r->steps = wn_loader_batches_per_epoch(r->train);
    r->flips = malloc((size_t)(r->n_img ? r->n_img : 1));
    r->angles = malloc((size_t)(r->n_img ? r->n_img : 1) * sizeof *r->angles);
    r->dseeds = malloc((size_t)(r->steps ? r->steps : 1) * sizeof *r->dseeds);
    size_t per_img = (size_t)(r->n_img ? r->n_img : 1) * sizeof(float);
    int aug = r->o->augment;
    r->zoom = aug && r->o->zoom > 0 ? malloc(2 * per_img) : NULL;
    r->shift = aug && r->o->translate > 0 ? malloc(2 * per_img) : NULL;
    r->contrast = aug && r->o->contrast > 0 ? malloc(per_img) : NULL;
    if ((aug && r->o->zoom > 0 && !r->zoom) || (aug && r->o->translate > 0 && !r->shift) ||
        (aug && r->o->contrast > 0 && !r->contrast))
        return wn_fail("%s: out of memory for the augmentation draws", r->o->phase);
    if (!r->best || !r->adam_m || !r->adam_v || !r->flips || !r->angles || !r->dseeds)
        return wn_fail("%s: out of memory for %zu trainable values", r->o->phase, r->n_train);
    if (r->n_img < 1) return wn_fail("%s: the training set is empty", r->o->phase);
    return WN_OK;
}

/* Continues from the phase's checkpoint; a phase that had ended stays as it ended. */
static int resume_phase(phase_run *r) {
    const wn_train_options *o = r->o;
    wn_train_result *res = r->res;
    wn_checkpoint ck;
    int rc = resume_from(r, &ck);
    if (rc == WN_OK) {
        r->start_epoch = ck.epoch, r->start_step = ck.step;
        r->part = (epoch_totals){ck.part_loss_sum, ck.part_correct, ck.part_seen};
        res->resumed = 1, res->resumed_epoch = ck.epoch, res->resumed_step = ck.step;
        res->epochs_done = ck.epoch;
        res->status = (wn_phase_status)ck.status;
    }
    wn_checkpoint_free(&ck);
    if (rc != WN_OK) return rc;
    if (o->history) wn_history_truncate(o->history, o->phase, r->start_epoch + 1);
    if (res->status != WN_PHASE_RUNNING) { /* finished before: nothing to do */
        r->ended_before = 1;
        res->best_epoch = r->es.has_snapshot ? r->es.best_epoch + 1 : 0;
        res->best_val_accuracy = r->es.best;
    }
    return WN_OK;
}

/* Buffers, early stopping, the phase's RNG, then the checkpoint's state (resume)
 * or the phase's starting weights (the fallback of a NaN in the first epoch). */
static int phase_begin(phase_run *r) {
    const wn_train_options *o = r->o;
    r->adam = (wn_adam_params){o->lr, o->beta_1, o->beta_2, o->epsilon, o->weight_decay};
    if (wn_executor_set_label_smoothing(r->ex, o->label_smoothing) != WN_OK)
        return wn_fail_context("%s: ", o->phase);
    int rc = alloc_buffers(r);
    if (rc != WN_OK) return rc;
    wn_early_stopping_init(&r->es, o->min_delta, o->patience, 1,
                           o->early_stopping ? o->restore : WN_RESTORE_NEVER);
    wn_rng_seed(&r->rng, o->seed, 1000 + (uint64_t)o->phase_index);
    if (o->resume && o->checkpoint && wn_checkpoint_exists(o->checkpoint)) {
        if ((rc = resume_phase(r)) != WN_OK || r->ended_before) return rc;
    } else {
        if ((rc = take_snapshot(r)) != WN_OK) return rc;
        if (o->history) wn_history_truncate(o->history, o->phase, 1);
    }
    if (o->progress) wn_progress_phase_begin(o->progress);
    /* Per-step values cost a device synchronisation: only when a bar shows them. */
    r->per_step = wn_progress_shows_steps(o->progress) || o->step_log;
    /* Every rank reads the step's figures when rank 0 shows them (a collective). */
    if (wn_dist_broadcast(&r->per_step, sizeof r->per_step, "the progress mode") != WN_OK)
        return WN_ERR;
    r->res->status = WN_PHASE_RUNNING;
    return WN_OK;
}

/* ------------------------------------------------------------------ an epoch */

/* The epoch's flips, angles and dropout seeds from the RNG state at its start;
 * r->rng stays at that state, so that a mid-epoch checkpoint replays the draws. */
static void draw_epoch(phase_run *r) {
    const wn_train_options *o = r->o;
    r->at_start = r->rng;
    wn_augment_factors f = {o->rotation, o->zoom, o->translate, o->contrast, r->m->image_h,
                            r->m->image_w};
    wn_augment_draw_layers(&r->rng, r->n_img, &f, o->augment ? r->flips : NULL,
                           o->augment ? r->angles : NULL, r->zoom, r->shift, r->contrast);
    for (int s = 0; s < r->steps; s++) r->dseeds[s] = wn_rng_next(&r->rng);
    r->after_draws = r->rng;
    r->rng = r->at_start;
}

/* Resuming inside an epoch: the same permutation, the checkpoint's steps skipped;
 * *img gets the number of their images. */
static int skip_done_steps(phase_run *r, size_t *img) {
    const char *path = r->o->checkpoint;
    wn_batch b;
    for (int step = 0; step < r->start_step; step++) {
        int got = wn_loader_next(r->train, &b);
        if (got != 1)
            return got < 0 ? WN_ERR
                           : wn_fail("%s: the checkpoint is at step %d but an epoch has %d", path,
                                     r->start_step, r->steps);
        *img += (size_t)b.global_count;
    }
    if (r->start_step > 0 && (long)*img != r->part.seen)
        return wn_fail("%s: its %d steps covered %ld images, with this --batch they cover %zu: "
                       "resume with the batch size the run started with",
                       path, r->start_step, r->part.seen, *img);
    return WN_OK;
}

/* One training step on batch b (this rank's slice of it), the epoch's step *step with
 * first image *img (both advanced). With the bar, its running figures `shown` are
 * updated and drawn, and a non-finite loss stops the phase. *stop: the phase is to
 * stop after this step (an interruption; with several ranks, on any of them). */
static int train_step(phase_run *r, int epoch, const wn_batch *b, int *step, size_t *img,
                      epoch_totals *shown, epoch_outcome *next, int *stop) {
    const wn_train_options *o = r->o;
    float loss = 0;
    int correct = 0;
    size_t mine = *img + (size_t)b->first; /* this rank's first image in the epoch */
    wn_step_part part = {b->global_count, b->first};
    r->adam.lr = lr_for_step(o, (long)epoch * r->steps + *step, r->steps); /* the schedule's */
    wn_augment_batch aug = {o->augment ? r->flips + mine : NULL,
                            o->augment ? r->angles + mine : NULL,
                            r->zoom ? r->zoom + 2 * mine : NULL,
                            r->shift ? r->shift + 2 * mine : NULL,
                            r->contrast ? r->contrast + mine : NULL};
    if (wn_executor_train_step_part(r->ex, b->pixels, b->labels, b->count, &aug, r->dseeds[*step],
                                    wn_dist_active() ? &part : NULL, &r->adam,
                                    r->per_step ? &loss : NULL,
                                    r->per_step ? &correct : NULL) != WN_OK)
        return wn_fail_context("%s, epoch %d, step %d: ", o->phase, epoch + 1, *step + 1);
    *img += (size_t)b->global_count;
    (*step)++;
    r->steps_this_call++;
    *stop = interrupt_flag_set(o) ||
            (o->interrupt_after_steps > 0 && r->steps_this_call >= o->interrupt_after_steps);
    /* The whole batch's figures: this rank's, or every rank's summed (with the stop
     * flag, so that all ranks stop after the same step). */
    double fig[4] = {(double)loss * b->count, (double)correct, (double)b->count, (double)*stop};
    if (wn_dist_active()) {
        if (wn_dist_sum_doubles(fig, 4, "the step's loss and stop flag") != WN_OK)
            return wn_fail_context("%s, epoch %d, step %d: ", o->phase, epoch + 1, *step);
        *stop = fig[3] > 0;
    }
    if (r->per_step) {
        double mean = fig[0] / fig[2];
        if (!isfinite(mean) || !isfinite(loss)) {
            *next = PHASE_STOPPED;
            return diverge(r, epoch, *step, "training loss", isfinite(loss) ? mean : loss);
        }
        shown->loss_sum += fig[0], shown->correct += (long)fig[1];
        shown->seen += (long)fig[2];
        if (o->step_log && wn_dist_is_root())
            fprintf(o->step_log, "%d %d %.9g %.9g\n", epoch + 1, *step, mean, fig[1] / fig[2]);
        wn_progress_step(o->progress, *step, shown->loss_sum / (double)shown->seen,
                         (double)((float)shown->correct / (float)shown->seen));
    }
    if (o->after_batch) o->after_batch(o->hook_user, "train", epoch + 1, *step);
    return WN_OK;
}

/* Stopped between two steps of an epoch: the checkpoint holds the steps done. */
static int interrupt_in_epoch(phase_run *r, int epoch, int step) {
    epoch_totals t;
    if (take_totals(r->ex, &t) != WN_OK) return WN_ERR;
    epoch_totals done = {r->part.loss_sum + t.loss_sum, r->part.correct + t.correct,
                         r->part.seen + t.seen};
    char when[96];
    snprintf(when, sizeof when, "at epoch %d, step %d of %d", epoch + 1, step, r->steps);
    return checkpoint_interrupted(r, epoch, step, &done, when);
}

/* The epoch's training figures: per-sample means of float32 totals (Keras). */
static int training_figures(phase_run *r, int epoch, epoch_figures *f, epoch_outcome *next) {
    epoch_totals t;
    if (take_totals(r->ex, &t) != WN_OK) return WN_ERR;
    f->train = (epoch_totals){t.loss_sum + r->part.loss_sum, t.correct + r->part.correct,
                              t.seen + r->part.seen};
    r->part = (epoch_totals){0, 0, 0};
    long n = f->train.seen;
    f->loss = n ? (double)(float)(f->train.loss_sum / (double)n) : 0.0;
    f->accuracy = n ? (double)((float)f->train.correct / (float)n) : 0.0;
    if (isfinite(f->loss)) return WN_OK;
    *next = PHASE_STOPPED;
    return diverge(r, epoch, 0, "training loss", f->loss);
}

/* The epoch's training steps, from its first or (resuming) from the checkpoint's
 * step, then its training figures. An interruption between steps or a non-finite
 * loss stops the phase. */
static int train_epoch(phase_run *r, int epoch, epoch_figures *f, epoch_outcome *next) {
    const wn_train_options *o = r->o;
    int rc = wn_loader_begin_epoch(r->train, loader_epoch(o, epoch));
    if (rc != WN_OK) return rc;
    if (o->progress) wn_progress_epoch_begin(o->progress, epoch + 1, o->epochs, r->steps);
    int step = 0;
    size_t img = 0; /* images of this epoch before the current batch */
    if (epoch == r->start_epoch) {
        if ((rc = skip_done_steps(r, &img)) != WN_OK) return rc;
        step = r->start_step;
    } else {
        r->part = (epoch_totals){0, 0, 0};
    }
    epoch_totals shown = r->part, stale; /* shown: the bar's host running sums */
    /* Discard totals left over from before (an evaluation, a previous phase). */
    if ((rc = take_totals(r->ex, &stale)) != WN_OK) return rc;
    wn_batch b;
    int got;
    while ((got = wn_loader_next(r->train, &b)) == 1) {
        int stop = 0;
        rc = train_step(r, epoch, &b, &step, &img, &shown, next, &stop);
        if (rc != WN_OK || *next == PHASE_STOPPED) return rc;
        if (stop && step < r->steps) {
            *next = PHASE_STOPPED;
            return interrupt_in_epoch(r, epoch, step);
        }
    }
    if (got < 0) return WN_ERR;
    r->rng = r->after_draws;
    return training_figures(r, epoch, f, next);
}

/* Validation after the epoch's training (inference mode). An interruption inside
 * it discards its batches so far: the checkpoint says "every step of this epoch
 * done", with the epoch's training totals, so a resume replays the epoch's draws,
 * skips all its steps and validates it from the start. */
static int validate_epoch(phase_run *r, int epoch, epoch_figures *f, epoch_outcome *next) {
    const wn_train_options *o = r->o;
    wn_eval_result v;
    wn_eval_control vc = {o->interrupt, o->after_batch, o->hook_user, "validation", epoch + 1};
    if (wn_evaluate_ctl(r->ex, r->m, r->val, &vc, &v, NULL, NULL, NULL, NULL) != WN_OK)
        return WN_ERR;
    if (v.interrupted) {
        *next = PHASE_STOPPED;
        char when[160];
        snprintf(when, sizeof when,
                 "during epoch %d's validation (its %d training steps are done; the validation "
                 "is redone on resume)",
                 epoch + 1, r->steps);
        return checkpoint_interrupted(r, epoch, r->steps, &f->train, when);
    }
    if (!isfinite(v.loss)) {
        *next = PHASE_STOPPED;
        return diverge(r, epoch, 0, "validation loss", v.loss);
    }
    f->val_loss = v.loss, f->val_accuracy = v.accuracy;
    return WN_OK;
}

/* EarlyStopping.on_epoch_end, then on_train_end when the phase ends here. */
static int early_stopping_epoch_end(phase_run *r, int epoch, double val_accuracy,
                                    wn_phase_status *status) {
    wn_es_action a = wn_early_stopping_epoch_end(&r->es, epoch, val_accuracy);
    if (a.snapshot && take_snapshot(r) != WN_OK) return WN_ERR;
    if (a.restore && restore_best(r) != WN_OK) return WN_ERR;
    if (a.stop) *status = WN_PHASE_STOPPED;
    if (*status != WN_PHASE_RUNNING && wn_early_stopping_end(&r->es)) return restore_best(r);
    return WN_OK;
}

/* The history row, and the run folder's history files rewritten. */
static int append_history(phase_run *r, int epoch, const epoch_figures *f, double seconds) {
    const wn_train_options *o = r->o;
    wn_epoch_record rec;
    memset(&rec, 0, sizeof rec);
    snprintf(rec.phase, sizeof rec.phase, "%s", o->phase);
    rec.epoch = epoch + 1;
    rec.loss = f->loss, rec.accuracy = f->accuracy;
    rec.val_loss = f->val_loss, rec.val_accuracy = f->val_accuracy;
    /* with a schedule: the rate of the epoch's last step (also when a resume skipped it) */
    rec.lr = lr_for_step(o, (long)epoch * r->steps + (r->steps > 0 ? r->steps - 1 : 0), r->steps);
    rec.seconds = seconds;
    if (wn_history_append(o->history, &rec) != WN_OK) return WN_ERR;
    if (o->report_dir) return wn_report_write_history(o->report_dir, o->history);
    return WN_OK;
}

/* After an epoch's training and validation: its line, early stopping, its history
 * row and its checkpoint, then whether another epoch follows (not after the last,
 * after early stopping fired, or with *interrupt set). */
static int end_epoch(phase_run *r, int epoch, const epoch_figures *f, double t_epoch,
                     epoch_outcome *next) {
    const wn_train_options *o = r->o;
    double seconds = o->progress ? wn_progress_epoch_end(o->progress, f->loss, f->accuracy,
                                                         f->val_loss, f->val_accuracy)
                                 : wn_clock_seconds() - t_epoch;
    r->res->epochs_done = epoch + 1;
    wn_phase_status status = epoch + 1 == o->epochs ? WN_PHASE_DONE : WN_PHASE_RUNNING;
    if (o->early_stopping && early_stopping_epoch_end(r, epoch, f->val_accuracy, &status) != WN_OK)
        return WN_ERR;
    if (o->history && append_history(r, epoch, f, seconds) != WN_OK) return WN_ERR;
    /* History first, then the checkpoint: after a crash between the two, resuming
     * drops the history rows the checkpoint does not have. */
    if (save_checkpoint(r, epoch + 1, 0, status, NULL) != WN_OK) return WN_ERR;
    r->res->status = status;
    *next = status == WN_PHASE_RUNNING ? EPOCH_NEXT : EPOCH_LAST;
    int stop = *next == EPOCH_NEXT && interrupt_flag_set(o);
    if (*next == EPOCH_NEXT && wn_dist_active() &&
        wn_dist_any(&stop, "the stop flag after an epoch") != WN_OK)
        return WN_ERR;
    if (stop) {
        char when[48];
        snprintf(when, sizeof when, "after epoch %d", epoch + 1);
        r->res->interrupted = 1;
        interrupt_message(r, when);
        *next = EPOCH_LAST;
    }
    return WN_OK;
}

static int run_epoch(phase_run *r, int epoch, epoch_outcome *next) {
    draw_epoch(r);
    double t_epoch = wn_clock_seconds();
    epoch_figures f;
    int rc = train_epoch(r, epoch, &f, next);
    if (rc == WN_OK && *next != PHASE_STOPPED) rc = validate_epoch(r, epoch, &f, next);
    if (rc == WN_OK && *next != PHASE_STOPPED) rc = end_epoch(r, epoch, &f, t_epoch, next);
    return rc;
}

/* ------------------------------------------------------------------ the phase's end */

/* After the last epoch that ran (or none, resumed with --epochs at or below the
 * epochs already done: the phase then ends as if its epochs had run out). */
static int phase_end(phase_run *r) {
    const wn_train_options *o = r->o;
    wn_train_result *res = r->res;
    if (res->status == WN_PHASE_RUNNING && !res->interrupted) {
        res->status = WN_PHASE_DONE;
        if (o->early_stopping && wn_early_stopping_end(&r->es) && restore_best(r) != WN_OK)
            return WN_ERR;
        if (save_checkpoint(r, res->epochs_done, 0, WN_PHASE_DONE, NULL) != WN_OK) return WN_ERR;
    }
    if (o->early_stopping && r->es.has_snapshot) {
        res->best_epoch = r->es.best_epoch + 1;
        res->best_val_accuracy = r->es.best;
    }
    if (o->progress && !res->interrupted)
        wn_progress_phase_end(o->progress, o->phase, res->epochs_done);
    return wn_executor_download_weights(r->ex);
}

int wn_train_phase(wn_executor *ex, wn_model *m, wn_loader *train, wn_loader *val,
                   const wn_train_options *o, wn_train_result *res) {
    memset(res, 0, sizeof *res);
    double t0 = wn_clock_seconds();
    int rc = check_options(o);
    if (rc != WN_OK) return rc;
    phase_run r = {.ex = ex, .m = m, .train = train, .val = val, .o = o, .res = res};
    rc = phase_begin(&r);
    if (rc == WN_OK && r.ended_before) {
        rc = wn_executor_download_weights(ex); /* the ended phase's weights, as resumed */
    } else if (rc == WN_OK) {
        epoch_outcome next = EPOCH_NEXT;
        for (int epoch = r.start_epoch; rc == WN_OK && next == EPOCH_NEXT && epoch < o->epochs;
             epoch++)
            rc = run_epoch(&r, epoch, &next);
        if (rc == WN_OK && next != PHASE_STOPPED) rc = phase_end(&r);
    }
    phase_run_free(&r);
    res->seconds = wn_clock_seconds() - t0;
    return rc;
}
