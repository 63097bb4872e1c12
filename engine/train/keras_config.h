/* engine/train/keras_config.h — a wn_model's architecture as Keras 3's config.json.
 *
 * Generates what Keras 3's model.save("x.keras") writes for the notebook's
 * get_model() (serialize_keras_object of a Functional; keras/src/models/functional.py):
 * InputLayer, the augmentation Sequential (RandomFlip, RandomRotation), preprocess as
 * the Keras 3 op layers preprocess_input makes (TrueDivide/Subtract for 'tf',
 * Subtract/TrueDivide for EfficientNet-Lite's (x - 127)/128, GetItem x3 + Stack + Add
 * for 'caffe', TrueDivide/Add/TrueDivide for 'torch'), the backbone as a nested
 * Functional called with training=False, GlobalAveragePooling2D, Dropout and
 * Dense(softmax). Every backbone layer is a standard Keras layer (Conv2D,
 * DepthwiseConv2D, SeparableConv2D, ZeroPadding2D, BatchNormalization, Activation
 * relu/relu6, ReLU, pooling, Concatenate, Add; '/' in a tf-keras 2 name becomes '_',
 * as in Keras 3's DenseNet121), except InceptionResNetV2's
 * CustomScaleLayer, which names Keras's own class
 * (keras.src.applications.inception_resnet_v2), so keras.models.load_model needs no
 * custom code. Connections come from the graph's inputs, names from its layers.
 */
#ifndef WN_KERAS_CONFIG_H
#define WN_KERAS_CONFIG_H

#include "engine/model/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The Keras 3 version written to metadata.json (the format this mirrors). */
#define WN_KERAS3_FORMAT_VERSION "3.15.1"

/* config.json for m, as a malloc'd NUL-terminated string (*json), or WN_ERR. */
int wn_keras_config_json(const wn_model *m, char **json);

/* The same architecture in Keras 2's dialect (tf-keras 2's model_config attribute of a
 * whole-model legacy .h5, for tf_keras.models.load_model): the Keras 3 config
 * rewritten — inbound nodes as [layer, node, tensor, kwargs] lists, preprocess as
 * tf-keras's TFOpLambda / SlicingOpLambda layers (tf.math.truediv, tf.math.subtract,
 * tf.__operators__.getitem, tf.nn.bias_add), names as tf-keras's, CustomScaleLayer as tf-keras's
 * registered "Custom>CustomScaleLayer", relu6 as a ReLU layer with max_value 6,
 * InputLayer's batch_shape as batch_input_shape. */
int wn_keras2_model_config_json(const wn_model *m, char **json);

/* metadata.json: {"keras_version": ..., "date_saved": "<UTC now>"}. */
int wn_keras_metadata_json(char **json);

#ifdef __cplusplus
}
#endif
#endif
