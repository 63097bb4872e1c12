/* engine/model/model.h — the notebook's whole model, built by name, and its weights.
 *
 * A wn_model is the notebook's get_model() as one flat wn_graph (engine/model/graph.h):
 *
 *   graph id                      Keras (outer model.layers)
 *   0                             input_1 (InputLayer), uint8 images
 *   1                             sequential + tf.math.truediv + tf.math.subtract
 *                                 (augmentation and preprocess, one fused layer)
 *   backbone_first ..             the backbone's own model.layers, index k at
 *     backbone_first+count-1      graph id backbone_first + k (k = 0 is its input)
 *   then                          global_average_pooling2d, dropout, dense
 *
 * Backbones are a registry of builder functions (engine/models/registry.c): each
 * adds its layers with the wn_graph_add_* API and returns its output layer; the
 * model code then orders them as Keras does. Adding an architecture is one file in
 * engine/models/ plus one line in the registry.
 *
 * Weights live on the host in two flat arrays (graph.h explains the split):
 * `params` (trainable-capable, in layer order) and `stats` (BN moving statistics).
 * Per-weight views (name, shape, offset) are the layers' wn_weight entries; the
 * HDF5 reader/writer walks them. An executor (engine/runtime/executor.h) copies them to a
 * backend and back.
 *
 * The fine-tune boundary: fine_tune_at = WN_FINE_TUNE_NONE freezes the whole
 * backbone (transfer learning; only the head trains); 0 trains everything ("all");
 * N freezes backbone layers [0, N) like the notebook's `layers[:N]`. The trainable
 * weights are always one suffix of params: [trainable_first, n_params).
 */
#ifndef WN_MODEL_H
#define WN_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "engine/model/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WN_FINE_TUNE_NONE (-1)

typedef enum {
    WN_PREPROCESS_TF = 0,  /* x/127.5 - 1 (Keras preprocess_input mode 'tf') */
    WN_PREPROCESS_LITE = 1, /* (x - 127)/128: EfficientNet-Lite (the TF builder's MEAN_RGB
                              127, STDDEV_RGB 128) */
    WN_PREPROCESS_CAFFE = 2, /* RGB -> BGR, minus the ImageNet BGR means (mode 'caffe':
                                ResNet50) */
    WN_PREPROCESS_TORCH = 3  /* x/255, minus mean, over std per channel (mode 'torch':
                                DenseNet121) */
} wn_preprocess;

/* One backbone architecture. `build` adds the backbone's layers to `g` (creation
 * order is free: the caller reorders them into Keras's model.layers order) and
 * returns its output layer id or WN_ERR. Its first layer must be
 * wn_graph_add_input(g, NULL, h, w, 3, from). */
typedef struct wn_backbone_def {
    const char *name;       /* CLI name: "irv2" */
    const char *keras_name; /* Keras model name: "inception_resnet_v2" */
    int min_size;           /* smallest input side Keras accepts (75 for irv2) */
    wn_preprocess preprocess;
    int (*build)(wn_graph *g, int from, int h, int w);
    /* `wastenet run`'s fine-tuning boundary when --fine-tune-at is not given: a layer
     * index or a block name as --fine-tune-at takes it (wn_fine_tune_resolve); NULL:
     * none, --fine-tune-at must be given */
    const char *fine_tune_default;
    /* 1: Keras's model name is keras_name + "_<rows>" (MobileNetV2), see
     * wn_backbone_keras_name */
    int name_has_rows;
} wn_backbone_def;

/* The Keras model name of `def` at an h x w input, into buf: keras_name, or for
 * MobileNetV2 keras_name + "_<rows>" as MobileNetV2(weights='imagenet') names it (the
 * notebook's call): rows = h when the input is square and h is one of ImageNet's sizes
 * {96, 128, 160, 192, 224}, else 224 (tf-keras 2 and Keras 3 alike; with weights=None
 * Keras uses h itself, which only by-name loading of whole-model files sees). */
void wn_backbone_keras_name(const wn_backbone_def *def, int h, int w, char *buf, size_t size);

/* The backends' augment_preprocess mode (kernels/augment.h WN_AUG_PRE_*) of a
 * backbone's preprocessing; EfficientNet-Lite's is 'tf' followed by an affine. */
int wn_preprocess_augment_mode(wn_preprocess p);

/* The layers Keras adds to a functional model for preprocess_input of `p` on a
 * KerasTensor (names, classes), e.g. 'caffe': tf.__operators__.getitem
 * (SlicingOpLambda), tf.nn.bias_add (TFOpLambda). Returns their count (up to 3). */
int wn_preprocess_keras_layers(wn_preprocess p, const char **names, const char **classes);

/* The registered backbones, and lookup by CLI name (NULL + reason if unknown). */
const wn_backbone_def *wn_backbone_find(const char *name);
int wn_backbone_count(void);
/* The i-th registered backbone (0 <= i < wn_backbone_count()), in --help's order. */
const wn_backbone_def *wn_backbone_at(int i);

/* Builds the backbone alone (Keras's `Application(include_top=False)`), finalized,
 * for layer-list tests and backbone-only weight files. */
int wn_backbone_build_graph(wn_graph *g, const char *arch, int h, int w);

typedef struct wn_model {
    wn_graph graph;            /* the whole model, see the table above */
    const wn_backbone_def *backbone;
    char backbone_name[WN_NAME_MAX]; /* its Keras name at this size (wn_model_backbone_name) */
    int image_h, image_w;      /* input image size (channels: 3) */
    int num_classes;
    float dropout_rate;        /* 0.2 */
    int backbone_first;        /* graph id of backbone layer 0 */
    int backbone_count;        /* backbone model.layers (780 for irv2) */
    int backbone_output;       /* graph id of the backbone's output layer */
    int logits_layer;          /* graph id of the Dense layer */
    size_t backbone_params;    /* params + stats elements of the backbone */

    float *params;             /* host [graph.n_params] */
    float *stats;              /* host [graph.n_stats] */

    int fine_tune_at;          /* WN_FINE_TUNE_NONE, or 0..backbone_count */
    int first_trainable_layer; /* graph id of the lowest layer with trainable weights */
    size_t trainable_first;    /* params offset where the trainable suffix starts */
} wn_model;

/* Builds the notebook's model for `arch` ("irv2", ...) at image_h x image_w with
 * num_classes outputs, with weights initialised as Keras does for a fresh model
 * (init_seed drives the Glorot-uniform kernels; biases and BN beta 0, moving mean
 * 0, moving variance 1) and the backbone frozen (WN_FINE_TUNE_NONE). */
int wn_model_create(wn_model *m, const char *arch, int image_h, int image_w,
                    int num_classes, uint64_t init_seed);
void wn_model_free(wn_model *m);

/* The nested backbone's Keras name (wn_backbone_keras_name at the model's size; a
 * model assembled by hand without it: the def's keras_name, else the graph's name). */
const char *wn_model_backbone_name(const wn_model *m);

/* Re-initialises every weight as wn_model_create does. The Dense kernel and every
 * conv kernel draw from independent streams of `seed` (one per weight). */
void wn_model_init_weights(wn_model *m, uint64_t seed);

/* Sets the frozen boundary (see the top of this file); fails for N outside
 * [0, backbone_count]. Executors made before must be re-planned
 * (wn_executor_set_fine_tune). */
int wn_model_set_fine_tune(wn_model *m, int fine_tune_at);

/* Parses "none", "all" or a layer index N into a fine_tune_at value. */
int wn_fine_tune_parse(const char *s, int *fine_tune_at);

/* Parses --fine-tune-at against a backbone whose Keras layers are graph ids
 * [first, first + count): "none", "all", an index N (not range-checked here), a
 * layer's name (its index), or a block name p: the index of the first layer whose
 * name starts with p + "_" (or p + "/", DenseNet's "conv1/conv"), which is what a Keras user computes as
 * [i for i, l in enumerate(m.layers) if l.name.startswith(p)][0] for a block
 * ("block14" in Xception, "conv5_block1" in ResNet50). */
int wn_fine_tune_resolve(const wn_graph *g, int first, int count, const char *s,
                         int *fine_tune_at);

/* Is graph layer `layer` trainable under the current boundary (it may still have
 * no weights)? */
int wn_model_layer_trainable(const wn_model *m, int layer);

/* Trainable element count: n_params - trainable_first. */
size_t wn_model_trainable_count(const wn_model *m);

/* Trainable params of the backbone alone for the current boundary (the number
 * Keras prints for the base model; the TSV's last column). */
size_t wn_model_backbone_trainable(const wn_model *m);

/* Host pointer to one weight's data (params or stats). */
float *wn_model_weight_data(wn_model *m, const wn_weight *w);

/* One row of the outer model's Keras summary (model.summary()): the fused
 * augmentation layer shows as Keras's three layers (sequential, tf.math.truediv,
 * tf.math.subtract), the backbone as one "Functional" row. */
typedef struct wn_summary_row {
    char name[WN_NAME_MAX];
    const char *keras_class; /* "InputLayer", "Sequential", "TFOpLambda", "Functional" */
    int rank;                /* 3: h, w, c; 1: c only */
    int h, w, c;             /* output shape per image */
    size_t params;           /* all weights (Keras's Param #) */
    size_t trainable;        /* trainable under the current boundary */
    int first_layer, last_layer; /* graph ids this row covers */
} wn_summary_row;

/* Fills up to `cap` rows; returns the number of rows. */
int wn_model_summary_rows(const wn_model *m, wn_summary_row *rows, int cap);

/* Forward FLOPs for one image (convolutions and Dense, 2 per multiply-add). */
double wn_model_flops(const wn_model *m);

#ifdef __cplusplus
}
#endif
#endif
