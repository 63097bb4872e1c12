/* tools/cli/evaluate_folder.c — one model or an ensemble on a labeled folder (see
 * evaluate_folder.h). */
#include "tools/cli/evaluate_folder.h"

#include <stdio.h>
#include <string.h>

#include "host/base/error.h"
#include "engine/runtime/executor.h"
#include "host/loader.h"
#include "tools/cli/inference.h"

static void on_bad_file(void *user, const char *path, const char *reason) {
    (void)user;
    fprintf(stderr, "warning: skipping %s: %s\n", path, reason);
}

void wn_folder_eval_free(wn_folder_eval *e) {
    if (e->have_rep) wn_class_report_free(&e->rep);
    wn_confusion_free(&e->cm);
    wn_set_result_free(&e->res);
    wn_dataset_free(&e->ds);
    memset(e, 0, sizeof *e);
}

/* Member 0 fixes the labels: the model's own class names when it has them
 * (--classes or classes.txt), else the folders' sorted names, as the training
 * loader labelled them. */
static int scan_for_first(const wn_folder_eval_request *rq, const char *w, int k,
                          wn_class_list *cls, wn_dataset *ds) {
    if (wn_class_list_resolve(cls, rq->class_list, w, k) != WN_OK) return WN_ERR;
    int named = rq->class_list || cls->from_file;
    wn_scan_options so = {rq->skip_bad, on_bad_file, NULL};
    if (wn_dataset_scan(ds, rq->data, named ? (const char *const *)cls->v : NULL,
                        named ? cls->n : 0, &so) != WN_OK)
        return WN_ERR;
    if (ds->n_classes != k)
        return wn_fail("%s has %d class folders, %s's model %d outputs: pass the folder of the "
                       "classes it was trained on", rq->data, ds->n_classes, w, k);
    if (ds->n_files == 0) return wn_fail("%s: no images", rq->data);
    return WN_OK;
}

/* Later members: the same classes as member 0. */
static int check_member(const wn_folder_eval_request *rq, const char *w, int k,
                        const wn_class_list *cls, const wn_dataset *ds) {
    const char *first = rq->members->weights[0];
    if (k != ds->n_classes)
        return wn_fail("%s has %d outputs, %s %d: the models of an ensemble must share their "
                       "classes", w, k, first, ds->n_classes);
    if (rq->class_list || !cls->from_file) return WN_OK;
    wn_class_list other;
    if (wn_class_list_resolve(&other, NULL, w, k) != WN_OK) return WN_ERR;
    int same = !other.from_file || wn_class_list_equal(cls, &other);
    wn_class_list_free(&other);
    if (!same)
        return wn_fail("%s and %s name their classes differently (classes.txt): the models of "
                       "an ensemble must share their classes", first, w);
    return WN_OK;
}

static int score_member(const wn_folder_eval_request *rq, wn_backend *be, wn_model *m,
                        const wn_dataset *ds, wn_set_scores *scores) {
    wn_loader_options lo;
    wn_loader_options_default(&lo);
    lo.height = m->image_h, lo.width = m->image_w;
    lo.batch = rq->batch, lo.shuffle = 0, lo.mode = WN_LOADER_STREAM;
    lo.skip_bad = rq->skip_bad, lo.on_bad_file = on_bad_file, lo.max_pixels = rq->max_pixels;
    wn_loader *ld = NULL;
    wn_executor *ex = NULL;
    int b = rq->batch < ds->n_files ? rq->batch : ds->n_files;
    int rc = wn_loader_open(&ld, ds, &lo);
    if (rc == WN_OK) rc = wn_executor_create(&ex, m, be, b, WN_EXEC_INFERENCE_ONLY);
    if (rc == WN_OK) rc = wn_set_scores_add_model(scores, ex, m, ld, rq->tta, rq->progress);
    if (ex) wn_executor_destroy(ex);
    if (ld) wn_loader_close(ld);
    return rc;
}

int wn_evaluate_folder(const wn_folder_eval_request *rq, wn_folder_eval *out) {
    memset(out, 0, sizeof *out);
    const wn_members *mem = rq->members;
    wn_class_list cls = {0, NULL, 0};
    wn_set_scores scores;
    memset(&scores, 0, sizeof scores);
    wn_backend *be = wn_inference_backend(rq->backend);
    int rc = be ? WN_OK : WN_ERR;
    for (int i = 0; rc == WN_OK && i < mem->n; i++) {
        const char *w = mem->weights[i];
        wn_model m;
        if ((rc = wn_inference_load_model(&m, w, wn_members_model(mem, i),
                                          wn_members_size(mem, i), "evaluate")) != WN_OK)
            break;
        int k = m.num_classes;
        if (i == 0) {
            rc = scan_for_first(rq, w, k, &cls, &out->ds);
            if (rc == WN_OK) rc = wn_set_scores_init(&scores, out->ds.n_files, k);
        } else {
            rc = check_member(rq, w, k, &cls, &out->ds);
        }
        if (rc == WN_OK && rq->progress && !rq->progress->silent)
            fprintf(rq->progress->out, "model %d/%d: %s (%s, %dx%d)\n", i + 1, mem->n, w,
                    m.backbone->name, m.image_h, m.image_w);
        if (rc == WN_OK && (rc = score_member(rq, be, &m, &out->ds, &scores)) != WN_OK)
            wn_fail_context("%s: ", w);
        wn_model_free(&m);
    }
    if (rc == WN_OK) rc = wn_confusion_init(&out->cm, out->ds.n_classes);
    if (rc == WN_OK) rc = wn_set_result_compute(&scores, &out->cm, &out->res);
    if (rc == WN_OK && out->res.samples == 0) rc = wn_fail("%s: no usable images", rq->data);
    if (rc == WN_OK && (rc = wn_class_report_compute(&out->cm, &out->rep)) == WN_OK)
        out->have_rep = 1;
    wn_set_scores_free(&scores);
    wn_class_list_free(&cls);
    wn_backend_destroy(be);
    return rc;
}
