/* engine/model/zoo/zoo.h — the backbone builders of engine/models/, one per file.
 * Each adds its layers to `g` in Keras's creation order, with `from` >= 0 the layer
 * that feeds its input (or -1 for a standalone backbone), and returns its output
 * layer id or WN_ERR (engine/model/model.h: wn_backbone_def). Register a new one with a
 * line in engine/models/registry.c. */
#ifndef WN_MODELS_ZOO_H
#define WN_MODELS_ZOO_H

#include "engine/model/graph.h"

/* InceptionResNetV2 without top (engine/models/irv2.c), any input >= 75x75. */
int wn_irv2_build(wn_graph *g, int from, int h, int w);

/* EfficientNet-Lite0/1/2 without top (engine/models/efficientnet_lite.c). */
int wn_efficientnet_lite0_build(wn_graph *g, int from, int h, int w);
int wn_efficientnet_lite1_build(wn_graph *g, int from, int h, int w);
int wn_efficientnet_lite2_build(wn_graph *g, int from, int h, int w);

/* Xception without top (engine/models/xception.c), any input >= 71x71. */
int wn_xception_build(wn_graph *g, int from, int h, int w);

/* ResNet50 without top (engine/models/resnet50.c), any input >= 32x32. */
int wn_resnet50_build(wn_graph *g, int from, int h, int w);

/* MobileNetV2 (alpha 1.0) without top (engine/models/mobilenet_v2.c), >= 32x32. */
int wn_mobilenet_v2_build(wn_graph *g, int from, int h, int w);

/* DenseNet121 without top (engine/models/densenet121.c), any input >= 32x32. */
int wn_densenet121_build(wn_graph *g, int from, int h, int w);

/* A 3-block CNN for tests (engine/models/tiny_cnn.c), any input >= 8x8. */
int wn_tiny_cnn_build(wn_graph *g, int from, int h, int w);

#endif
