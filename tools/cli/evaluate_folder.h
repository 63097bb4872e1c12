/* tools/cli/evaluate_folder.h — one model or an ensemble scored on a labeled folder:
 * the core of `wastenet evaluate`, also used by `wastenet cv` on each fold's
 * validation images. Semantics: engine/ensemble_eval.h; members and class names:
 * tools/member_options.h, tools/inference.h. */
#ifndef WN_TOOLS_EVALUATE_FOLDER_H
#define WN_TOOLS_EVALUATE_FOLDER_H

#include <stddef.h>

#include "engine/train/ensemble_eval.h"
#include "engine/train/metrics.h"
#include "engine/train/progress.h"
#include "host/dataset.h"
#include "tools/cli/member_options.h"

typedef struct wn_folder_eval_request {
    const wn_members *members;
    const char *data;         /* one sub-folder per class */
    const char *class_list;   /* --classes, or NULL */
    wn_tta tta;
    const char *backend;      /* auto, cpu, cuda */
    int batch;
    int skip_bad;
    size_t max_pixels;
    wn_progress *progress;    /* a bar per member on its stream; NULL: quiet */
} wn_folder_eval_request;

typedef struct wn_folder_eval {
    wn_dataset ds;            /* the folder's files and class names (label order) */
    wn_set_result res;        /* loss, accuracy, probabilities, predictions */
    wn_confusion cm;
    wn_class_report rep;
    int have_rep;
} wn_folder_eval;

/* Scores every image of rq->data; on failure returns WN_ERR with the reason
 * (out is then safe to free). */
int wn_evaluate_folder(const wn_folder_eval_request *rq, wn_folder_eval *out);
void wn_folder_eval_free(wn_folder_eval *e);

#endif
