/* engine/train/model_weights.h — Keras HDF5 weight files <-> a wn_model's host weights.
 *
 * Loading (wn_model_weights_load) accepts the layouts Keras users have:
 *  - the backbone alone ("notop"): a flat file with one group per backbone layer,
 *    e.g. the official inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5
 *    or `base_model.save_weights("x.h5")`; the head is left as it is;
 *  - the notebook's whole model (`model.save_weights("x.h5")` on get_model()): the
 *    backbone as one nested group named after it ("inception_resnet_v2") plus the
 *    head's "dense" group; also what `wastenet export` writes;
 *  - either under /model_weights (a `model.save("x.h5")` file).
 * Matching follows Keras's topological loading (docs/KERAS_SEMANTICS.md §2): the
 * k-th layer with weights in the file goes to the k-th layer with weights in the
 * model, because the official file's names are TF-slim-style, not Keras's. When
 * every name in the file is one of the model's own (files written by Keras 2.x or by
 * wastenet) layers — and, inside a nested group, single weights — are matched by
 * name instead, which also survives a file saved with a different trainable split.
 * Every weight's shape and dtype (float32) is checked, and every value must be
 * finite (a NaN or Inf in a weight file is refused, naming the layer).
 *
 * Nothing is half-loaded: values are read into a scratch copy and copied into the
 * model only when the whole file has been checked and read. Every error names the
 * file, the model's layer (and the file's layer when the names differ), and what was
 * expected versus found.
 *
 * Saving (wn_model_weights_save) writes what Keras's model.load_weights() reads:
 * the whole model in the outer layout of the notebook's get_model() (a fresh one, with
 * the backbone frozen: the nested group lists the backbone's weights in layer order),
 * or the backbone alone in the notop layout. Written atomically (host/h5_keras.h).
 */
#ifndef WN_MODEL_WEIGHTS_H
#define WN_MODEL_WEIGHTS_H

#include <stddef.h>

#include "engine/model/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    WN_WEIGHTS_WHOLE_MODEL = 0, /* backbone + head */
    WN_WEIGHTS_BACKBONE_ONLY = 1
} wn_weights_scope;

/* What a load found; pass NULL when not needed. */
typedef struct wn_weights_info {
    wn_weights_scope scope;
    int by_name;           /* 1: layers matched by name; 0: by position (Keras's rule) */
    int nested;            /* 1: the backbone was a nested model group */
    int layers;            /* model layers with weights that were loaded */
    size_t values;         /* floats loaded */
    char keras_version[64];/* the file's keras_version ("" for Keras 1 / absent) */
} wn_weights_info;

/* Loads `path` into m's host weights (m->params, m->stats); on failure m is
 * untouched. Call wn_executor_upload_weights() afterwards on any executor. */
int wn_model_weights_load(wn_model *m, const char *path, wn_weights_info *info);

/* Writes m's weights to `path`: scope WN_WEIGHTS_WHOLE_MODEL (the notebook's outer
 * layout) or WN_WEIGHTS_BACKBONE_ONLY (the notop layout). */
/* Output units of a whole-model file's head (its "dense" kernel (in, out); a .keras
 * archive's Dense units), 0 when the file has none (a backbone-only file), or -1 with
 * a reason (host/base/error.h) when the file cannot be read. */
int wn_model_weights_head_classes(const char *path);

int wn_model_weights_save(const wn_model *m, const char *path, wn_weights_scope scope);

/* A whole-model legacy .h5 (what tf-keras 2's model.save("x.h5") writes): the root's
 * model_config attribute is `model_config` (host/keras_config.h's Keras 2 dialect),
 * the weights as wn_model_weights_save writes them, under /model_weights. */
int wn_model_weights_save_full_model(const wn_model *m, const char *path,
                                     const char *model_config);

/* The same in Keras 3's .weights.h5 layout (host/h5_keras.h): what Keras 3's
 * model.save_weights("x.weights.h5") writes for the notebook's get_model() (or for
 * the backbone alone), every layer's group with its name, for load_weights, which
 * matches by slot and so does not depend on the model's trainable split. */
int wn_model_weights_save_keras3(const wn_model *m, const char *path, wn_weights_scope scope);

/* Keras 3's slot of graph layer `id` ("layers/conv2d_5"): the snake_case class name
 * and a counter over the layers of that class in [first, first + count) before it,
 * under `prefix` ("" or "layers/functional/"). */
void wn_model_keras3_slot(const wn_model *m, int id, int first, int count, const char *prefix,
                          char *out, size_t size);

#ifdef __cplusplus
}
#endif
#endif
