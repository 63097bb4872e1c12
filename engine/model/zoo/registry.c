/* engine/model/zoo/registry.c — the table of backbones `--model NAME` can build. */
#include <stdio.h>
#include <string.h>

#include "host/base/error.h"
#include "engine/model/model.h"
#include "engine/model/zoo/zoo.h"
#include "kernels/augment/augment.h"

/* The fine-tuning defaults (`wastenet run` without --fine-tune-at), each the boundary
 * Keras users of that backbone take: InceptionResNetV2 the notebook's 500;
 * EfficientNet-Lite block5a (the project's measured recipe, docs/RESULTS.md: layer 69
 * of Lite0, 96 of Lite1/2); Xception block14 (its exit flow's last block, 126);
 * ResNet50 and DenseNet121 conv5_block1 (their last stage: 143, 313); MobileNetV2 100,
 * TensorFlow's transfer-learning tutorial's fine_tune_at (in block_11); tiny_cnn its
 * last conv block (7). */
static const wn_backbone_def wn_backbones[] = {
    {"irv2", "inception_resnet_v2", 75, WN_PREPROCESS_TF, wn_irv2_build, "500", 0},
    {"efficientnet_lite0", "efficientnet_lite0", 32, WN_PREPROCESS_LITE, wn_efficientnet_lite0_build,
     "block5a", 0},
    {"efficientnet_lite1", "efficientnet_lite1", 32, WN_PREPROCESS_LITE, wn_efficientnet_lite1_build,
     "block5a", 0},
    {"efficientnet_lite2", "efficientnet_lite2", 32, WN_PREPROCESS_LITE, wn_efficientnet_lite2_build,
     "block5a", 0},
    {"xception", "xception", 71, WN_PREPROCESS_TF, wn_xception_build, "block14", 0},
    {"resnet50", "resnet50", 32, WN_PREPROCESS_CAFFE, wn_resnet50_build, "conv5_block1", 0},
    /* Keras names it mobilenetv2_1.00_<rows> (wn_backbone_keras_name) */
    {"mobilenet_v2", "mobilenetv2_1.00", 32, WN_PREPROCESS_TF, wn_mobilenet_v2_build, "100", 1},
    {"densenet121", "densenet121", 32, WN_PREPROCESS_TORCH, wn_densenet121_build, "conv5_block1", 0},
    {"tiny_cnn", "tiny_cnn", 8, WN_PREPROCESS_TF, wn_tiny_cnn_build, "7", 0},
};

int wn_backbone_count(void) { return (int)(sizeof wn_backbones / sizeof wn_backbones[0]); }

const wn_backbone_def *wn_backbone_at(int i) {
    return i >= 0 && i < wn_backbone_count() ? &wn_backbones[i] : NULL;
}

const wn_backbone_def *wn_backbone_find(const char *name) {
    for (int i = 0; i < wn_backbone_count(); i++)
        if (!strcmp(wn_backbones[i].name, name)) return &wn_backbones[i];
    char known[256] = "";
    for (int i = 0; i < wn_backbone_count(); i++) {
        if (i) strncat(known, ", ", sizeof known - strlen(known) - 1);
        strncat(known, wn_backbones[i].name, sizeof known - strlen(known) - 1);
    }
    wn_fail("unknown model '%s' (known: %s)", name, known);
    return NULL;
}

void wn_backbone_keras_name(const wn_backbone_def *def, int h, int w, char *buf, size_t size) {
    if (!def->name_has_rows) {
        snprintf(buf, size, "%s", def->keras_name);
        return;
    }
    static const int imagenet_rows[] = {96, 128, 160, 192, 224};
    int rows = 224;
    for (unsigned i = 0; i < sizeof imagenet_rows / sizeof imagenet_rows[0]; i++)
        if (h == w && h == imagenet_rows[i]) rows = h;
    snprintf(buf, size, "%s_%d", def->keras_name, rows);
}

int wn_preprocess_augment_mode(wn_preprocess p) {
    switch (p) {
    case WN_PREPROCESS_CAFFE: return WN_AUG_PRE_CAFFE;
    case WN_PREPROCESS_TORCH: return WN_AUG_PRE_TORCH;
    case WN_PREPROCESS_TF:
    case WN_PREPROCESS_LITE: break;
    }
    return WN_AUG_PRE_TF;
}

int wn_preprocess_keras_layers(wn_preprocess p, const char **names, const char **classes) {
    static const char *tf[] = {"tf.math.truediv", "tf.math.subtract"};
    static const char *caffe[] = {"tf.__operators__.getitem", "tf.nn.bias_add"};
    static const char *torch[] = {"tf.math.truediv", "tf.nn.bias_add", "tf.math.truediv_1"};
    const char **list = tf;
    int n = 2;
    if (p == WN_PREPROCESS_CAFFE) list = caffe;
    if (p == WN_PREPROCESS_TORCH) list = torch, n = 3;
    for (int i = 0; i < n; i++) {
        names[i] = list[i];
        classes[i] = p == WN_PREPROCESS_CAFFE && i == 0 ? "SlicingOpLambda" : "TFOpLambda";
    }
    return n;
}
