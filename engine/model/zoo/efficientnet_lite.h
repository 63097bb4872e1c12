/* engine/model/zoo/efficientnet_lite.h — EfficientNet-Lite0/1/2 backbones (no top).
 *
 * The architecture of the official TensorFlow EfficientNet-Lite (tensorflow/tpu,
 * efficientnet/lite): MBConv blocks with ReLU6, depthwise convolutions and
 * BatchNormalization with gamma (epsilon 1e-3), no squeeze-and-excitation, the stem
 * (32 channels) and head (1280) not scaled, the first and last stages not repeated
 * more. Layer names and order follow keras.applications.efficientnet (stem_conv,
 * block2a_expand_conv, block2a_dwconv, ..., block2b_add, top_conv, top_bn,
 * top_activation), the names that tools/convert_efficientnet_lite.py writes, so the
 * converted ImageNet weights load by name. 'same' padding replaces Keras's explicit
 * ZeroPadding2D before stride-2 depthwise convolutions (identical arithmetic).
 *
 * Layer counts (model.layers of the backbone, input included): Lite0 141, Lite1 and
 * Lite2 186. The weights expect (x - 127) / 128 preprocessing (see docs/RESULTS.md).
 */
#ifndef WN_MODELS_EFFICIENTNET_LITE_H
#define WN_MODELS_EFFICIENTNET_LITE_H

#include "engine/model/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Adds the backbone of EfficientNet-Lite<variant> (0, 1 or 2) for h x w x 3 inputs
 * read from layer `from` (see wn_backbone_def in engine/model/model.h); returns the id of
 * its output layer (top_activation: ceil(h/32) x ceil(w/32) x 1280) or WN_ERR. */
int wn_efficientnet_lite_build(wn_graph *g, int variant, int from, int h, int w);

/* One function per variant, in wn_backbone_def's `build` signature, is declared in
 * engine/models/zoo.h (wn_efficientnet_lite0_build, ...). */

/* Native input resolution of a variant (224, 240, 260), or 0 when unknown. */
int wn_efficientnet_lite_native_size(int variant);

#ifdef __cplusplus
}
#endif
#endif
