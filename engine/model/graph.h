/* engine/model/graph.h — a static layer graph whose layers are Keras's model.layers.
 *
 * A wn_graph is a DAG of layers stored in Keras's model.layers order (index i is
 * Keras's layers[i]), with Keras's names, so `--fine-tune-at N` freezes exactly
 * layers [0, N) of the backbone, and weight files load by position or name.
 *
 * Shapes are per image (H, W, C); the batch size N is chosen when an executor is
 * made (engine/runtime/executor.h).
 *
 * Parameters live in two flat float buffers, filled in layer order:
 *  - params: every weight that *can* be trained (conv kernels and biases, BN beta,
 *    BN gamma where present, Dense kernel and bias), in Keras's per-layer order.
 *    Because frozen layers are always a prefix, the trainable weights for any
 *    boundary are one contiguous suffix: Adam is one launch over [first, end).
 *  - stats: the never-trainable BN moving_mean and moving_variance.
 *
 * Building a graph (what a model file in engine/models/ does):
 *
 *     wn_graph g; wn_graph_init(&g, "inception_resnet_v2");
 *     int x = wn_graph_add_input(&g, NULL, 320, 320, 3, -1);     // "input_1"
 *     x = wn_graph_add_conv2d(&g, NULL, x, 32, 3, 3, 2, 2, WN_PAD_VALID, 0); // "conv2d"
 *     x = wn_graph_add_batchnorm(&g, NULL, x, 0, 1e-3f);   // "batch_normalization"
 *     ...
 *     wn_graph_order_keras(&g, first, out);  // Keras's model.layers order
 *     wn_graph_finalize(&g, out);            // weight offsets, totals
 *
 * Every add function returns the new layer's id (>= 0) or WN_ERR with a reason.
 * An input id < 0 makes it fail at once, keeping the first reason, so a chain of
 * adds can be checked once at the end. A NULL name gives Keras's auto name: the
 * snake_case class name with a per-graph counter, zero-based ("conv2d",
 * "conv2d_1", ...), except inputs, which are one-based ("input_1"), as in a fresh
 * Keras session. Explicit names do not advance the counters.
 *
 * Layer ids are creation order until wn_graph_order_keras reorders a range of
 * layers into Keras's model.layers order; after that, ids are Keras indices.
 */
#ifndef WN_GRAPH_H
#define WN_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/common/op_types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WN_NAME_MAX 96
#define WN_MAX_INPUTS 8
#define WN_MAX_WEIGHTS 4

typedef enum {
    WN_LAYER_INPUT,      /* image input (uint8 NHWC), or a nested model's input
                            (then an alias of its single producer) */
    WN_LAYER_AUGMENT,    /* RandomFlip + RandomRotation (training only) + preprocess
                            (x/127.5 - 1): Keras's Sequential + two TFOpLambda */
    WN_LAYER_CONV2D,
    WN_LAYER_DEPTHWISE_CONV2D, /* depth_multiplier 1 */
    WN_LAYER_SEPARABLE_CONV2D, /* Keras SeparableConv2D: depthwise kxk (depth_multiplier
                                  1, the layer's strides and padding) then pointwise 1x1,
                                  one layer; the executor runs it as two convolutions */
    WN_LAYER_ZERO_PADDING, /* ZeroPadding2D; only as the input of a 'valid' convolution
                              (or of a max pooling that reads a ReLU), into which the
                              executor folds it as explicit padding */
    WN_LAYER_BATCHNORM,  /* inference mode: per-channel affine */
    WN_LAYER_ACTIVATION,
    WN_LAYER_MAXPOOL,
    WN_LAYER_AVGPOOL,
    WN_LAYER_CONCAT,
    WN_LAYER_SCALE_RESIDUAL, /* CustomScaleLayer: x + scale*r */
    WN_LAYER_ADD,
    WN_LAYER_GAP,
    WN_LAYER_DROPOUT,
    WN_LAYER_DENSE,      /* softmax is fused into the loss; predict applies it */
    WN_LAYER_TYPE_COUNT
} wn_layer_type;

/* One weight array of a layer, in Keras's weight order for that layer. */
typedef struct wn_weight {
    char name[WN_NAME_MAX]; /* Keras variable name, e.g. "conv2d/kernel:0" */
    int rank;
    int dims[4];            /* Keras shape, e.g. HWIO for kernels */
    size_t count;
    int in_stats;           /* 0: offset is into params; 1: into stats */
    size_t offset;          /* element offset in params or stats (after finalize) */
} wn_weight;

typedef struct wn_layer {
    char name[WN_NAME_MAX];  /* Keras name: "conv2d_17", "block35_1_mixed", ... */
    wn_layer_type type;
    int n_inputs;
    int inputs[WN_MAX_INPUTS]; /* ids of producer layers, in call order */
    int out_h, out_w, out_c;   /* output shape per image (GAP, Dense: 1x1xC) */

    /* configuration (meaning depends on type) */
    int filters, kh, kw, sh, sw; /* conv / pool */
    wn_padding padding;
    int use_bias;                /* conv, dense */
    int has_gamma;               /* batchnorm (IRV2: scale=False) */
    int pad_t, pad_b, pad_l, pad_r; /* zero padding rows/columns (ZeroPadding2D) */
    int relu_class;              /* activation: Keras's ReLU layer class (layers.ReLU),
                                    not Activation (MobileNetV2's ReLU(6.)) */
    float epsilon;               /* batchnorm */
    wn_activation activation;    /* activation layer */
    float scale;                 /* residual scale */
    float rate;                  /* dropout rate */

    int n_weights;
    wn_weight weights[WN_MAX_WEIGHTS];
    size_t param_count;          /* elements over all weights (params + stats) */
    size_t trainable_count;      /* elements of its weights that live in params */
    int block;                   /* 0: outer model; 1: inside the backbone */
} wn_layer;

/* A BatchNormalization layer's variables in Keras's order (gamma, beta,
 * moving_mean, moving_variance; gamma only when the layer has it). */
typedef enum { WN_BN_GAMMA = 0, WN_BN_BETA, WN_BN_MEAN, WN_BN_VARIANCE } wn_bn_var;

/* The weight of variable v of BatchNormalization layer l; NULL for a gamma it lacks. */
static inline const wn_weight *wn_bn_weight(const wn_layer *l, wn_bn_var v) {
    int k = l->has_gamma ? (int)v : (int)v - 1;
    return k < 0 ? (const wn_weight *)0 : &l->weights[k];
}

typedef struct wn_name_counter {
    char prefix[40];
    int next;
} wn_name_counter;

typedef struct wn_graph {
    char name[WN_NAME_MAX];  /* e.g. "inception_resnet_v2" */
    int n_layers, cap_layers;
    wn_layer *layers;
    int output;              /* id of the output layer (after finalize) */
    size_t n_params;         /* floats in params */
    size_t n_stats;          /* floats in stats */
    int in_h, in_w, in_c;    /* image input shape (the first INPUT layer) */
    int n_counters;          /* Keras auto-name counters, one per prefix */
    wn_name_counter counters[24];
    int finalized;
} wn_graph;

void wn_graph_init(wn_graph *g, const char *name);
void wn_graph_free(wn_graph *g);

/* `from` < 0: the model's image input (H, W, C). `from` >= 0: a nested model's
 * InputLayer fed by layer `from` (an alias at run time; shape must match). */
int wn_graph_add_input(wn_graph *g, const char *name, int h, int w, int c, int from);
/* Augmentation + preprocess of the image input, named like Keras's "sequential". */
int wn_graph_add_augment(wn_graph *g, const char *name, int x);
int wn_graph_add_conv2d(wn_graph *g, const char *name, int x, int filters, int kh,
                        int kw, int sh, int sw, wn_padding pad, int use_bias);
int wn_graph_add_depthwise_conv2d(wn_graph *g, const char *name, int x, int kh, int kw,
                                  int sh, int sw, wn_padding pad, int use_bias);
/* scale: 1 when the layer has gamma (Keras scale=True). center (beta) is always on. */
/* SeparableConv2D(filters, (kh, kw), strides, padding, use_bias): weights
 * depthwise_kernel (kh, kw, C, 1), pointwise_kernel (1, 1, C, filters)[, bias]. */
int wn_graph_add_separable_conv2d(wn_graph *g, const char *name, int x, int filters, int kh,
                                  int kw, int sh, int sw, wn_padding pad, int use_bias);
/* ZeroPadding2D(((top, bottom), (left, right))). */
int wn_graph_add_zero_padding(wn_graph *g, const char *name, int x, int top, int bottom,
                              int left, int right);
int wn_graph_add_batchnorm(wn_graph *g, const char *name, int x, int scale, float epsilon);
int wn_graph_add_activation(wn_graph *g, const char *name, int x, wn_activation act);
/* Keras's layers.ReLU() / ReLU(6.): an activation layer of class ReLU. */
int wn_graph_add_relu_layer(wn_graph *g, const char *name, int x, wn_activation act);
int wn_graph_add_pool(wn_graph *g, const char *name, int x, wn_pool_kind kind, int kh,
                      int kw, int sh, int sw, wn_padding pad);
int wn_graph_add_concat(wn_graph *g, const char *name, int n, const int *xs);
/* y = x + scale*r (Keras CustomScaleLayer; inputs ordered [x, r]). */
int wn_graph_add_scale_residual(wn_graph *g, const char *name, int x, int r, float scale);
int wn_graph_add_add(wn_graph *g, const char *name, int n, const int *xs);
int wn_graph_add_gap(wn_graph *g, const char *name, int x);
int wn_graph_add_dropout(wn_graph *g, const char *name, int x, float rate);
int wn_graph_add_dense(wn_graph *g, const char *name, int x, int units, int use_bias);

/* Reorders layers [first, n_layers) into Keras's model.layers order for a
 * functional model whose output is `output` (functional.py::_map_graph_network:
 * sort by depth from the output, deepest first; ties by the order in which a
 * depth-first search from the output, taking inputs in call order, first reached
 * each layer). Layers in the range may read layers before `first` only through a
 * nested INPUT layer. Rewrites every input id; returns the new id of `output`. */
int wn_graph_order_keras(wn_graph *g, int first, int output);

/* Assigns weight offsets in layer order (params and stats), counts, and checks the
 * graph (topological order, every layer reaches `output`). */
int wn_graph_finalize(wn_graph *g, int output);

/* Keras class name of a layer type ("Conv2D", "BatchNormalization", ...). */
const char *wn_layer_type_keras(wn_layer_type t);
/* Keras class name of one layer (as the type's, except ReLU-class activations). */
const char *wn_layer_keras_class(const wn_layer *l);

/* Keras's snake_case name of a layer type's class ("conv2d", "batch_normalization";
 * "input" for the input layer): the prefix of its auto-names. */
const char *wn_layer_type_snake_name(wn_layer_type t);

/* The convolution/pooling window of layer `l` for a batch of n: its own geometry on
 * its input, or, when it reads a ZeroPadding2D, on the padding's input with the
 * padding as explicit pads (the rows a 'valid' window would not reach dropped). */
int wn_layer_window(const wn_graph *g, const wn_layer *l, int n, wn_window *win);
/* The layer whose output `l` reads as data: its input, or the input of the
 * ZeroPadding2D it reads. */
int wn_layer_data_input(const wn_graph *g, const wn_layer *l);

/* Multiply-adds x2 of one layer's forward pass for one image (convolutions and
 * Dense; 0 for the rest, whose cost is memory, not arithmetic). */
double wn_layer_flops(const wn_graph *g, int layer);

/* Index of the layer named `name`, or -1. */
int wn_graph_find(const wn_graph *g, const char *name);

#ifdef __cplusplus
}
#endif
#endif
