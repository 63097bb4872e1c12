/* engine/graph.h — a static layer graph whose layers are Keras's model.layers.
 *
 * A wn_graph is a DAG of layers stored in Keras's model.layers order (index i is
 * Keras's layers[i]), with Keras's names, so `--fine-tune-at N` freezes exactly
 * layers [0, N) of the backbone, and weight files load by position or name.
 *
 * Shapes are per image (H, W, C); the batch size N is chosen when a wn_plan is made.
 *
 * Parameters live in two flat float buffers, filled in layer order:
 *  - params: every weight that *can* be trained (conv kernels and biases, BN beta,
 *    BN gamma where present, Dense kernel and bias), in Keras's per-layer order.
 *    Because frozen layers are always a prefix, the trainable weights for any
 *    boundary are one contiguous suffix: Adam is one launch over [first, end).
 *  - stats: the never-trainable BN moving_mean and moving_variance.
 */
#ifndef WN_GRAPH_H
#define WN_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "engine/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WN_NAME_MAX 96
#define WN_MAX_INPUTS 8
#define WN_MAX_WEIGHTS 4

typedef enum {
    WN_LAYER_INPUT,
    WN_LAYER_AUGMENT,    /* RandomFlip + RandomRotation (training only) + preprocess */
    WN_LAYER_CONV2D,
    WN_LAYER_DEPTHWISE_CONV2D,
    WN_LAYER_BATCHNORM,  /* inference mode: per-channel affine */
    WN_LAYER_ACTIVATION,
    WN_LAYER_MAXPOOL,
    WN_LAYER_AVGPOOL,
    WN_LAYER_CONCAT,
    WN_LAYER_SCALE_RESIDUAL, /* CustomScaleLayer: x + scale*r */
    WN_LAYER_ADD,
    WN_LAYER_GAP,
    WN_LAYER_DROPOUT,
    WN_LAYER_DENSE       /* softmax is fused into the loss; predict applies it */
} wn_layer_type;

/* One weight array of a layer, in Keras's weight order for that layer. */
typedef struct wn_weight {
    char name[WN_NAME_MAX]; /* Keras variable name, e.g. "conv2d/kernel:0" */
    int rank;
    int dims[4];            /* Keras shape, e.g. HWIO for kernels */
    size_t count;
    int in_stats;           /* 0: offset is into params; 1: into stats */
    size_t offset;          /* element offset in params or stats */
} wn_weight;

typedef struct wn_layer {
    char name[WN_NAME_MAX];  /* Keras name: "conv2d_17", "block35_1_mixed", ... */
    wn_layer_type type;
    int n_inputs;
    int inputs[WN_MAX_INPUTS]; /* indices of producer layers, in call order */
    int out_h, out_w, out_c;   /* output shape per image */

    /* configuration (meaning depends on type) */
    int filters, kh, kw, sh, sw; /* conv / pool */
    wn_padding padding;
    int use_bias;                /* conv, dense */
    int has_gamma;               /* batchnorm (IRV2: scale=False) */
    float epsilon;               /* batchnorm */
    wn_activation activation;    /* activation layer */
    float scale;                 /* residual scale */
    float rate;                  /* dropout rate */

    int n_weights;
    wn_weight weights[WN_MAX_WEIGHTS];
    size_t param_count;          /* elements over all weights (params + stats) */
    int block;                   /* 0: outer model; 1: inside the backbone */
} wn_layer;

typedef struct wn_graph {
    char name[WN_NAME_MAX];  /* e.g. "inception_resnet_v2" */
    int n_layers, cap_layers;
    wn_layer *layers;
    int output;              /* index of the output layer */
    size_t n_params;         /* floats in params */
    size_t n_stats;          /* floats in stats */
    int in_h, in_w, in_c;    /* input image shape */
} wn_graph;

#ifdef __cplusplus
}
#endif
#endif
