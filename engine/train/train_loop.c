/* engine/train/train_loop.c — one training phase (Keras's fit) and evaluation; see
 * train_loop.h for the semantics. */
#include "engine/train/train_loop.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/base/error.h"
#include "engine/train/lr_schedule.h"
#include "kernels/softmax_xent/softmax_xent.h"

void wn_train_options_default(wn_train_options *o) {
    memset(o, 0, sizeof *o);
    o->phase = "train";
    o->epochs = 20;
    o->lr = 1e-3f;
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

int wn_evaluate_ctl(wn_executor *ex, const wn_model *m, wn_loader *ld,
                    const wn_eval_control *ctl, wn_eval_result *r, wn_confusion *cm,
                    float *probs, int32_t *labels, int32_t *indices) {
    memset(r, 0, sizeof *r);
    int k = m->num_classes;
    int detailed = cm || probs || labels || indices;
    float *p = NULL, *z = NULL;
    if (detailed) {
        size_t per_batch = (size_t)wn_loader_size(ld) * (size_t)k; /* a batch is at most this */
        p = malloc((per_batch ? per_batch : 1) * sizeof *p);
        z = malloc((per_batch ? per_batch : 1) * sizeof *z);
        if (!p || !z) {
            free(p), free(z);
            return wn_fail("evaluation: out of memory for %d images", wn_loader_size(ld));
        }
    }
    int rc = wn_loader_begin_epoch(ld, 0);
    double loss_sum = 0;
    long seen = 0, correct = 0;
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
        if (eval_stop_requested(ctl)) {
            r->interrupted = 1;
            break;
        }
        batch++;
        if (!detailed) {
            rc = wn_executor_eval_batch(ex, b.pixels, b.labels, b.count, NULL, NULL);
            if (rc == WN_OK && ctl && ctl->after_batch)
                ctl->after_batch(ctl->hook_user, ctl->pass ? ctl->pass : "", ctl->epoch, batch);
            continue;
        }
        rc = wn_executor_predict(ex, b.pixels, b.count, p);
        if (rc == WN_OK) rc = wn_executor_read_output(ex, m->logits_layer, z);
        if (rc != WN_OK) break;
        for (int i = 0; i < b.count; i++) {
            const float *pi = p + (size_t)i * k;
            int pred = wn_argmax(pi, k), y = b.labels[i];
            loss_sum += wn_sample_loss_logits(z + (size_t)i * k, k, y, wn_executor_label_smoothing(ex));
            correct += pred == y;
            if (cm && (rc = wn_confusion_add(cm, y, pred)) != WN_OK) break;
            if (probs) memcpy(probs + (size_t)(seen + i) * k, pi, (size_t)k * sizeof *pi);
            if (labels) labels[seen + i] = y;
            if (indices) indices[seen + i] = b.indices[i];
        }
        seen += b.count;
        if (rc == WN_OK && ctl && ctl->after_batch)
            ctl->after_batch(ctl->hook_user, ctl->pass ? ctl->pass : "", ctl->epoch, batch);
    }
    if (rc == WN_OK && got < 0) rc = WN_ERR;
    if (rc == WN_OK && !detailed) rc = wn_executor_take_totals(ex, &loss_sum, &correct, &seen);
    free(p), free(z);
    if (rc != WN_OK) return wn_fail_context("evaluating %d images: ", wn_loader_size(ld));
    r->samples = seen;
    r->correct = correct;
    /* Keras's Mean and MeanMetricWrapper divide float32 totals. */
    r->loss = seen ? (double)(float)(loss_sum / (double)seen) : 0.0;
    r->accuracy = seen ? (double)((float)correct / (float)seen) : 0.0;
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

/* The state the loop carries between epochs, besides the executor's. */
typedef struct phase_state {
    wn_early_stopping es;
    wn_rng rng;          /* at the start of the current epoch */
    float *best;         /* [n_train] best-weights snapshot (or phase-start weights) */
    float *adam_m, *adam_v; /* [n_train] host copies for checkpoints */
    size_t n_train;
} phase_state;

static int save_checkpoint(wn_executor *ex, wn_model *m, const wn_train_options *o,
                           phase_state *st, int epoch, int step, wn_phase_status status,
                           double part_loss, long part_correct, long part_seen) {
    if (!o->checkpoint) return WN_OK;
    long t = 0;
    if (wn_executor_download_weights(ex) != WN_OK ||
        wn_executor_get_adam(ex, st->adam_m, st->adam_v, &t) != WN_OK)
        return wn_fail_context("writing checkpoint %s: ", o->checkpoint);
    wn_checkpoint ck;
    memset(&ck, 0, sizeof ck);
    snprintf(ck.phase, sizeof ck.phase, "%s", o->phase);
    snprintf(ck.arch, sizeof ck.arch, "%s", m->backbone ? m->backbone->name : "?");
    ck.image_h = m->image_h, ck.image_w = m->image_w, ck.num_classes = m->num_classes;
    ck.fine_tune_at = m->fine_tune_at;
    ck.epoch = epoch, ck.step = step, ck.epochs_max = o->epochs, ck.status = status;
    ck.lr = o->lr, ck.seed = o->seed, ck.rng = st->rng, ck.es = st->es;
    ck.part_loss_sum = part_loss, ck.part_correct = part_correct, ck.part_seen = part_seen;
    ck.adam_t = t;
    ck.n_params = m->graph.n_params, ck.n_stats = m->graph.n_stats;
    ck.trainable_first = m->trainable_first;
    ck.params = m->params, ck.stats = m->stats;
    ck.adam_m = st->adam_m, ck.adam_v = st->adam_v;
    ck.has_best = 1, ck.best = st->best;
    snprintf(ck.command, sizeof ck.command, "%s", o->command ? o->command : "");
    ck.batch = o->batch;
    ck.n_class_names = o->class_names ? o->n_class_names : 0;
    ck.class_names = (char **)o->class_names;
    return wn_checkpoint_save(&ck, o->checkpoint);
}

/* Loads the phase checkpoint into the model, executor and loop state. */
static int resume_from(wn_executor *ex, wn_model *m, const wn_train_options *o,
                       phase_state *st, wn_checkpoint *ck) {
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
                       m->fine_tune_at, st->n_train);
    if (ck->seed != o->seed)
        return wn_fail("%s was written with --seed %llu, this run uses %llu: resume with the "
                       "same seed (it fixes the shuffling and augmentation of every epoch)",
                       o->checkpoint, (unsigned long long)ck->seed,
                       (unsigned long long)o->seed);
    memcpy(m->params, ck->params, ck->n_params * sizeof(float));
    memcpy(m->stats, ck->stats, ck->n_stats * sizeof(float));
    if (wn_executor_upload_weights(ex) != WN_OK ||
        wn_executor_set_adam(ex, ck->adam_m, ck->adam_v, ck->adam_t) != WN_OK)
        return wn_fail_context("resuming from %s: ", o->checkpoint);
    st->es = ck->es;
    st->rng = ck->rng;
    if (ck->has_best) memcpy(st->best, ck->best, st->n_train * sizeof(float));
    return WN_OK;
}

/* Copies the trainable suffix between the model and the snapshot. */
static int take_snapshot(wn_executor *ex, wn_model *m, phase_state *st) {
    if (wn_executor_download_weights(ex) != WN_OK) return WN_ERR;
    memcpy(st->best, m->params + m->trainable_first, st->n_train * sizeof(float));
    return WN_OK;
}

static int restore_snapshot(wn_executor *ex, wn_model *m, phase_state *st) {
    if (wn_executor_download_weights(ex) != WN_OK) return WN_ERR;
    memcpy(m->params + m->trainable_first, st->best, st->n_train * sizeof(float));
    return wn_executor_upload_weights(ex);
}

static void phase_state_free(phase_state *st) {
    free(st->best), free(st->adam_m), free(st->adam_v);
    memset(st, 0, sizeof *st);
}

/* ------------------------------------------------------------------ the phase */

/* Ends the phase on a non-finite loss: best (or starting) weights back. */
static int diverge(wn_executor *ex, wn_model *m, const wn_train_options *o, phase_state *st,
                   wn_train_result *res, int epoch, int step, const char *what, double value) {
    res->status = WN_PHASE_DIVERGED;
    char where[64];
    if (step) snprintf(where, sizeof where, "epoch %d, step %d", epoch + 1, step);
    else snprintf(where, sizeof where, "epoch %d", epoch + 1);
    snprintf(res->message, sizeof res->message,
             "%s: the %s became %s at %s: training stopped; the %s weights are kept. Try a "
             "lower --lr.",
             o->phase, what, isnan(value) ? "NaN" : "infinite", where,
             st->es.has_snapshot ? "best epoch's" : "phase's starting");
    if (restore_snapshot(ex, m, st) != WN_OK) return WN_ERR;
    res->restored = st->es.has_snapshot;
    /* The checkpoint records the end of the phase at the last complete epoch. */
    if (save_checkpoint(ex, m, o, st, epoch, 0, WN_PHASE_DIVERGED, 0, 0, 0) != WN_OK)
        return WN_ERR;
    return wn_executor_download_weights(ex);
}

int wn_train_phase(wn_executor *ex, wn_model *m, wn_loader *train, wn_loader *val,
                   const wn_train_options *o, wn_train_result *res) {
    memset(res, 0, sizeof *res);
    double t0 = wn_clock_seconds();
    if (o->epochs < 1) return wn_fail("%s: --epochs must be at least 1 (got %d)", o->phase, o->epochs);
    if (!(o->lr > 0) || !isfinite(o->lr))
        return wn_fail("%s: the learning rate must be positive (got %g)", o->phase, o->lr);
    if (wn_executor_set_label_smoothing(ex, o->label_smoothing) != WN_OK)
        return wn_fail_context("%s: ", o->phase);

    phase_state st;
    memset(&st, 0, sizeof st);
    st.n_train = wn_model_trainable_count(m);
    size_t bytes = (st.n_train ? st.n_train : 1) * sizeof(float);
    st.best = malloc(bytes), st.adam_m = malloc(bytes), st.adam_v = malloc(bytes);
    int n_img = wn_loader_size(train), steps = wn_loader_batches_per_epoch(train);
    uint8_t *flips = malloc((size_t)(n_img ? n_img : 1));
    float *angles = malloc((size_t)(n_img ? n_img : 1) * sizeof *angles);
    uint64_t *dseeds = malloc((size_t)(steps ? steps : 1) * sizeof *dseeds);
    int rc = WN_OK;
    if (!st.best || !st.adam_m || !st.adam_v || !flips || !angles || !dseeds) {
        rc = wn_fail("%s: out of memory for %zu trainable values", o->phase, st.n_train);
        goto out;
    }
    if (n_img < 1) {
        rc = wn_fail("%s: the training set is empty", o->phase);
        goto out;
    }

    wn_early_stopping_init(&st.es, o->min_delta, o->patience, 1,
                           o->early_stopping ? o->restore : WN_RESTORE_NEVER);
    wn_rng_seed(&st.rng, o->seed, 1000 + (uint64_t)o->phase_index);
    int start_epoch = 0, start_step = 0;
    double part_loss = 0;
    long part_correct = 0, part_seen = 0;
    if (o->resume && o->checkpoint && wn_checkpoint_exists(o->checkpoint)) {
        wn_checkpoint ck;
        rc = resume_from(ex, m, o, &st, &ck);
        if (rc == WN_OK) {
            start_epoch = ck.epoch, start_step = ck.step;
            part_loss = ck.part_loss_sum, part_correct = ck.part_correct, part_seen = ck.part_seen;
            res->resumed = 1, res->resumed_epoch = ck.epoch, res->resumed_step = ck.step;
            res->epochs_done = ck.epoch;
            res->status = (wn_phase_status)ck.status;
        }
        wn_checkpoint_free(&ck);
        if (rc != WN_OK) goto out;
        if (o->history) wn_history_truncate(o->history, o->phase, start_epoch + 1);
        if (res->status != WN_PHASE_RUNNING) { /* finished before: nothing to do */
            res->best_epoch = st.es.has_snapshot ? st.es.best_epoch + 1 : 0;
            res->best_val_accuracy = st.es.best;
            rc = wn_executor_download_weights(ex);
            goto out;
        }
    } else {
        /* The phase's starting weights: what a NaN in the first epoch falls back to. */
        if ((rc = take_snapshot(ex, m, &st)) != WN_OK) goto out;
        if (o->history) wn_history_truncate(o->history, o->phase, 1);
    }
    if (o->progress) wn_progress_phase_begin(o->progress);

    /* Per-step values cost a device synchronisation: only when a bar shows them. */
    int per_step = o->progress && o->progress->bar && !o->progress->silent;
    long steps_this_call = 0;
    res->status = WN_PHASE_RUNNING;
    for (int epoch = start_epoch; epoch < o->epochs; epoch++) {
        /* the epoch's last step's rate (history), also when a resume skips every step */
        float lr_used = lr_for_step(o, (long)epoch * steps + (steps > 0 ? steps - 1 : 0), steps);
        /* The epoch's draws, from the RNG state saved at its start. */
        wn_rng at_start = st.rng;
        wn_augment_draw(&st.rng, n_img, o->rotation, o->augment ? flips : NULL,
                        o->augment ? angles : NULL);
        for (int s = 0; s < steps; s++) dseeds[s] = wn_rng_next(&st.rng);
        wn_rng after_draws = st.rng;
        st.rng = at_start; /* a mid-epoch checkpoint replays this epoch's draws */

        double t_epoch = wn_clock_seconds();
        if ((rc = wn_loader_begin_epoch(train, loader_epoch(o, epoch))) != WN_OK) goto out;
        if (o->progress) wn_progress_epoch_begin(o->progress, epoch + 1, o->epochs, steps);
        int step = 0, got;
        size_t img = 0; /* images of this epoch before the current batch */
        wn_batch b;
        /* Resuming inside an epoch: the same permutation, the batches already done skipped. */
        for (; epoch == start_epoch && step < start_step; step++) {
            if ((got = wn_loader_next(train, &b)) != 1) {
                rc = got < 0 ? WN_ERR
                             : wn_fail("%s: the checkpoint is at step %d but an epoch has %d",
                                       o->checkpoint, start_step, steps);
                goto out;
            }
            img += (size_t)b.count;
        }
        if (epoch == start_epoch && start_step > 0 && (long)img != part_seen) {
            rc = wn_fail("%s: its %d steps covered %ld images, with this --batch they cover %zu: "
                         "resume with the batch size the run started with",
                         o->checkpoint, start_step, part_seen, img);
            goto out;
        }
        if (epoch != start_epoch) part_loss = 0, part_correct = 0, part_seen = 0;
        double run_loss = part_loss; /* host running sums for the bar (per_step only) */
        long run_correct = part_correct, run_seen = part_seen;
        {   /* discard totals left over from before (an evaluation, a previous phase) */
            double d;
            long c, s;
            if ((rc = wn_executor_take_totals(ex, &d, &c, &s)) != WN_OK) goto out;
        }
        while ((got = wn_loader_next(train, &b)) == 1) {
            float loss = 0;
            int correct = 0;
            lr_used = lr_for_step(o, (long)epoch * steps + step, steps);
            rc = wn_executor_train_step(ex, b.pixels, b.labels, b.count,
                                        o->augment ? flips + img : NULL,
                                        o->augment ? angles + img : NULL, dseeds[step], &WN_ADAM_KERAS(lr_used),
                                        per_step ? &loss : NULL, per_step ? &correct : NULL);
            if (rc != WN_OK) {
                wn_fail_context("%s, epoch %d, step %d: ", o->phase, epoch + 1, step + 1);
                goto out;
            }
            img += (size_t)b.count;
            step++;
            steps_this_call++;
            if (per_step) {
                if (!isfinite(loss)) {
                    rc = diverge(ex, m, o, &st, res, epoch, step, "training loss", loss);
                    goto out;
                }
                run_loss += (double)loss * b.count, run_correct += correct, run_seen += b.count;
                wn_progress_step(o->progress, step, run_loss / (double)run_seen,
                                 (double)((float)run_correct / (float)run_seen));
            }
            if (o->after_batch) o->after_batch(o->hook_user, "train", epoch + 1, step);
            int stop_now = (o->interrupt && *o->interrupt) ||
                           (o->interrupt_after_steps > 0 &&
                            steps_this_call >= o->interrupt_after_steps);
            if (stop_now && step < steps) {
                /* Finish here: checkpoint the partly done epoch (totals so far, the RNG
                 * state at the epoch's start, the steps done). */
                double l;
                long c, n;
                if ((rc = wn_executor_take_totals(ex, &l, &c, &n)) != WN_OK) goto out;
                rc = save_checkpoint(ex, m, o, &st, epoch, step, WN_PHASE_RUNNING, part_loss + l,
                                     part_correct + c, part_seen + n);
                if (rc != WN_OK) goto out;
                if (o->progress && !o->progress->silent && o->progress->bar)
                    fputc('\n', o->progress->out);
                res->interrupted = 1;
                res->epochs_done = epoch;
                snprintf(res->message, sizeof res->message,
                         "%s: interrupted at epoch %d, step %d of %d; checkpoint %s", o->phase,
                         epoch + 1, step, steps, o->checkpoint ? o->checkpoint : "(none)");
                rc = wn_executor_download_weights(ex);
                goto out;
            }
        }
        if (got < 0) {
            rc = WN_ERR;
            goto out;
        }
        st.rng = after_draws;

        /* The epoch's training figures: per-sample means of float32 totals (Keras). */
        double l;
        long c, n;
        if ((rc = wn_executor_take_totals(ex, &l, &c, &n)) != WN_OK) goto out;
        l += part_loss, c += part_correct, n += part_seen;
        part_loss = 0, part_correct = 0, part_seen = 0;
        double train_loss = n ? (double)(float)(l / (double)n) : 0.0;
        double train_acc = n ? (double)((float)c / (float)n) : 0.0;
        if (!isfinite(train_loss)) {
            st.rng = at_start;
            rc = diverge(ex, m, o, &st, res, epoch, 0, "training loss", train_loss);
            goto out;
        }
        wn_eval_result v;
        wn_eval_control vc = {o->interrupt, o->after_batch, o->hook_user, "validation", epoch + 1};
        if ((rc = wn_evaluate_ctl(ex, m, val, &vc, &v, NULL, NULL, NULL, NULL)) != WN_OK) goto out;
        if (v.interrupted) {
            /* Stopped inside the validation pass: its batches so far are discarded.
             * The checkpoint says "every step of this epoch done", with the epoch's
             * training totals and the RNG state at its start, so a resume replays the
             * epoch's draws, skips all its steps and validates it from the start. */
            st.rng = at_start;
            rc = save_checkpoint(ex, m, o, &st, epoch, steps, WN_PHASE_RUNNING, l, c, n);
            if (rc != WN_OK) goto out;
            if (o->progress && !o->progress->silent && o->progress->bar)
                fputc('\n', o->progress->out);
            res->interrupted = 1;
            res->epochs_done = epoch;
            snprintf(res->message, sizeof res->message,
                     "%s: interrupted during epoch %d's validation (its %d training steps are "
                     "done; the validation is redone on resume); checkpoint %s",
                     o->phase, epoch + 1, steps, o->checkpoint ? o->checkpoint : "(none)");
            rc = wn_executor_download_weights(ex);
            goto out;
        }
        if (!isfinite(v.loss)) {
            st.rng = at_start;
            rc = diverge(ex, m, o, &st, res, epoch, 0, "validation loss", v.loss);
            goto out;
        }
        double seconds = o->progress ? wn_progress_epoch_end(o->progress, train_loss, train_acc,
                                                             v.loss, v.accuracy)
                                     : 0.0;
        if (!o->progress) seconds = wn_clock_seconds() - t_epoch;
        res->epochs_done = epoch + 1;

        /* EarlyStopping.on_epoch_end, then on_train_end after the last epoch. */
        wn_phase_status status = epoch + 1 == o->epochs ? WN_PHASE_DONE : WN_PHASE_RUNNING;
        if (o->early_stopping) {
            wn_es_action a = wn_early_stopping_epoch_end(&st.es, epoch, v.accuracy);
            if (a.snapshot && (rc = take_snapshot(ex, m, &st)) != WN_OK) goto out;
            if (a.restore) {
                if ((rc = restore_snapshot(ex, m, &st)) != WN_OK) goto out;
                res->restored = 1;
            }
            if (a.stop) status = WN_PHASE_STOPPED;
            if (status != WN_PHASE_RUNNING && wn_early_stopping_end(&st.es)) {
                if ((rc = restore_snapshot(ex, m, &st)) != WN_OK) goto out;
                res->restored = 1;
            }
        }
        if (o->history) {
            wn_epoch_record r;
            memset(&r, 0, sizeof r);
            snprintf(r.phase, sizeof r.phase, "%s", o->phase);
            r.epoch = epoch + 1;
            r.loss = train_loss, r.accuracy = train_acc;
            r.val_loss = v.loss, r.val_accuracy = v.accuracy;
            r.lr = lr_used, r.seconds = seconds; /* with a schedule: its last step's */
            if ((rc = wn_history_append(o->history, &r)) != WN_OK) goto out;
            if (o->report_dir && (rc = wn_report_write_history(o->report_dir, o->history)) != WN_OK)
                goto out;
        }
        /* History first, then the checkpoint: after a crash between the two, resuming
         * drops the history rows the checkpoint does not have. */
        if ((rc = save_checkpoint(ex, m, o, &st, epoch + 1, 0, status, 0, 0, 0)) != WN_OK) goto out;
        res->status = status;
        if (status != WN_PHASE_RUNNING) break;
        if (o->interrupt && *o->interrupt) {
            res->interrupted = 1;
            snprintf(res->message, sizeof res->message,
                     "%s: interrupted after epoch %d; checkpoint %s", o->phase, epoch + 1,
                     o->checkpoint ? o->checkpoint : "(none)");
            break;
        }
    }
    if (res->status == WN_PHASE_RUNNING && !res->interrupted) {
        /* Resumed with --epochs at or below the epochs already done: end the phase
         * as if its epochs had run out. */
        res->status = WN_PHASE_DONE;
        if (o->early_stopping && wn_early_stopping_end(&st.es)) {
            if ((rc = restore_snapshot(ex, m, &st)) != WN_OK) goto out;
            res->restored = 1;
        }
        if ((rc = save_checkpoint(ex, m, o, &st, res->epochs_done, 0, WN_PHASE_DONE, 0, 0, 0)) !=
            WN_OK)
            goto out;
    }
    if (o->early_stopping && st.es.has_snapshot) {
        res->best_epoch = st.es.best_epoch + 1;
        res->best_val_accuracy = st.es.best;
    }
    if (o->progress && !res->interrupted) wn_progress_phase_end(o->progress, o->phase, res->epochs_done);
    rc = wn_executor_download_weights(ex);
out:
    phase_state_free(&st);
    free(flips), free(angles), free(dseeds);
    res->seconds = wn_clock_seconds() - t0;
    return rc;
}
