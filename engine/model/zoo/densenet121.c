/* engine/model/zoo/densenet121.c — DenseNet121 without top, layer for layer as
 * keras/applications/densenet.py builds it (tf-keras names, with their '/').
 *
 * Stem: zero_padding2d (3) -> conv1/conv 7x7/2 'valid' -> conv1/bn -> conv1/relu ->
 * zero_padding2d_1 (1) -> pool1 3x3/2 max. Four dense blocks conv2..conv5 of 6, 12,
 * 24 and 16 conv blocks ("conv4_block7"): _0_bn -> _0_relu -> _1_conv 1x1 (128) ->
 * _1_bn -> _1_relu -> _2_conv 3x3 'same' (32) -> _concat([x, x1]); between them the
 * transitions pool2..pool4: _bn -> _relu -> _conv 1x1 (half the channels) -> _pool
 * 2x2/2 average. Then bn -> relu. Convolutions are bias-free; every BN has gamma and
 * epsilon 1.001e-5. 427 layers, 7,037,504 parameters; the smallest input Keras
 * accepts is 32x32. Preprocessing: 'torch' (x/255, ImageNet mean and std).
 */
#include <stdio.h>

#include "engine/model/graph.h"
#include "engine/model/zoo/zoo.h"

static const float k_densenet_bn_epsilon = 1.001e-5f;

static int bn_relu(wn_graph *g, int x, const char *prefix, const char *bn, const char *relu) {
    char name[WN_NAME_MAX];
    snprintf(name, sizeof name, "%s%s", prefix, bn);
    x = wn_graph_add_batchnorm(g, name, x, 1, k_densenet_bn_epsilon);
    snprintf(name, sizeof name, "%s%s", prefix, relu);
    return wn_graph_add_activation(g, name, x, WN_ACT_RELU);
}

/* conv_block(x, growth_rate 32, name). */
static int conv_block(wn_graph *g, int x, const char *block) {
    char name[WN_NAME_MAX];
    int x1 = bn_relu(g, x, block, "_0_bn", "_0_relu");
    snprintf(name, sizeof name, "%s_1_conv", block);
    x1 = wn_graph_add_conv2d(g, name, x1, 4 * 32, 1, 1, 1, 1, WN_PAD_VALID, 0);
    x1 = bn_relu(g, x1, block, "_1_bn", "_1_relu");
    snprintf(name, sizeof name, "%s_2_conv", block);
    x1 = wn_graph_add_conv2d(g, name, x1, 32, 3, 3, 1, 1, WN_PAD_SAME, 0);
    int xs[2] = {x, x1};
    snprintf(name, sizeof name, "%s_concat", block);
    return wn_graph_add_concat(g, name, 2, xs);
}

/* transition_block(x, reduction 0.5, name). */
static int transition(wn_graph *g, int x, const char *block) {
    char name[WN_NAME_MAX];
    x = bn_relu(g, x, block, "_bn", "_relu");
    if (x < 0) return x;
    snprintf(name, sizeof name, "%s_conv", block);
    x = wn_graph_add_conv2d(g, name, x, g->layers[x].out_c / 2, 1, 1, 1, 1, WN_PAD_VALID, 0);
    snprintf(name, sizeof name, "%s_pool", block);
    return wn_graph_add_pool(g, name, x, WN_POOL_AVG, 2, 2, 2, 2, WN_PAD_VALID);
}

int wn_densenet121_build(wn_graph *g, int from, int h, int w) {
    static const int blocks[4] = {6, 12, 24, 16};
    int x = wn_graph_add_input(g, NULL, h, w, 3, from);
    x = wn_graph_add_zero_padding(g, NULL, x, 3, 3, 3, 3);
    x = wn_graph_add_conv2d(g, "conv1/conv", x, 64, 7, 7, 2, 2, WN_PAD_VALID, 0);
    x = bn_relu(g, x, "conv1", "/bn", "/relu");
    x = wn_graph_add_zero_padding(g, NULL, x, 1, 1, 1, 1);
    x = wn_graph_add_pool(g, "pool1", x, WN_POOL_MAX, 3, 3, 2, 2, WN_PAD_VALID);
    for (int s = 0; s < 4; s++) {
        for (int b = 1; b <= blocks[s]; b++) {
            char block[32];
            snprintf(block, sizeof block, "conv%d_block%d", s + 2, b);
            x = conv_block(g, x, block);
        }
        if (s < 3) {
            char pool[16];
            snprintf(pool, sizeof pool, "pool%d", s + 2);
            x = transition(g, x, pool);
        }
    }
    return bn_relu(g, x, "", "bn", "relu");
}
