/* engine/train/model_keras.h — a wn_model as a Keras 3 `.keras` archive (host/keras_archive.h):
 * config.json generated from the graph (host/keras_config.h), metadata.json, and
 * model.weights.h5 in Keras 3's layout (engine/train/model_weights.h), for
 * keras.models.load_model(path) with no custom code. Reading a .keras goes through
 * wn_model_weights_load, which checks config.json against the model. */
#ifndef WN_MODEL_KERAS_H
#define WN_MODEL_KERAS_H

#include "engine/model/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Writes the notebook's whole model to `path`, atomically. */
int wn_model_save_keras_archive(const wn_model *m, const char *path);

/* Writes the whole model as a legacy .h5 with its architecture (model_config in
 * Keras 2's dialect) for tf-keras 2's tf_keras.models.load_model(path). */
int wn_model_save_h5_model(const wn_model *m, const char *path);

#ifdef __cplusplus
}
#endif
#endif
