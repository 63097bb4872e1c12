/* tools/cli/inference.h — what `wastenet predict` and `wastenet evaluate` share: the
 * model from a weights file, the class names, the backend, and the member loop of
 * an ensemble (several --weights).
 *
 * Weights are a wastenet checkpoint (which names its model, image size and class
 * count) or a Keras/wastenet .h5 of the whole model (then --model and --image-size
 * say which model). Class names come from --classes, else classes.txt beside the
 * weights (what `wastenet train/run` writes in a run folder), else the notebook's six
 * classes when the head has six outputs, else class_0, class_1, ...
 */
#ifndef WN_TOOLS_INFERENCE_H
#define WN_TOOLS_INFERENCE_H

#include "engine/runtime/backend.h"
#include "engine/model/model.h"

#define WN_MAX_ENSEMBLE 16

typedef struct wn_class_list {
    int n;
    char **v;
    int from_file; /* 1: read from classes.txt beside the weights */
} wn_class_list;

void wn_class_list_free(wn_class_list *c);

/* The k class names of a model loaded from `weights` (rules at the top). */
int wn_class_list_resolve(wn_class_list *c, const char *class_list, const char *weights, int k);

/* 1 when both lists hold the same names in the same order. */
int wn_class_list_equal(const wn_class_list *a, const wn_class_list *b);

/* The image size of a weight file's model when no --image-size is given: a .keras
 * archive's own (its config.json input shape), else 320, the notebook's. A checkpoint
 * names its own size when it is loaded. */
#define WN_DEFAULT_IMAGE_SIZE 320
void wn_inference_default_size(const char *weights, int *h, int *w);

/* Loads a whole model (with its trained head) from a checkpoint or an .h5 file;
 * size 0: wn_inference_default_size; `command` names the caller in messages
 * ("predict"). */
int wn_inference_load_model(wn_model *m, const char *weights, const char *arch, int size,
                            const char *command);

/* "auto" (the GPU when there is one), "cpu" or "cuda"; NULL + reason on failure. */
wn_backend *wn_inference_backend(const char *name);

#endif
