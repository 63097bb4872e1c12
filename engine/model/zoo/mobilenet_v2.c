/* engine/model/zoo/mobilenet_v2.c — MobileNetV2 (alpha 1.0) without top, layer for
 * layer as keras/applications/mobilenet_v2.py builds it (tf-keras names).
 *
 * Conv1 3x3/2 'same' -> bn_Conv1 -> Conv1_relu (ReLU(6.)), then 17 inverted residual
 * blocks: [block_<i>_expand 1x1 -> _expand_BN -> _expand_relu] (not in block 0, whose
 * prefix is "expanded_conv_"), [<p>pad ZeroPadding2D(correct_pad) when the stride is
 * 2, the depthwise convolution then 'valid'], <p>depthwise 3x3 -> _depthwise_BN ->
 * _depthwise_relu, <p>project 1x1 -> _project_BN, and <p>add([inputs, x]) when the
 * stride is 1 and the channels agree; then Conv_1 1x1 (1280) -> Conv_1_bn -> out_relu.
 * Convolutions are bias-free; every BN has gamma and epsilon 1e-3; the activations
 * are Keras ReLU layers (class ReLU, max_value 6). 154 layers, 2,257,984 parameters;
 * the smallest input Keras accepts is 32x32.
 */
#include <stdio.h>

#include "engine/model/graph.h"
#include "engine/model/zoo/zoo.h"

static const float k_mnv2_bn_epsilon = 1e-3f;

static int bn_relu6(wn_graph *g, int x, const char *bn, const char *relu) {
    x = wn_graph_add_batchnorm(g, bn, x, 1, k_mnv2_bn_epsilon);
    return relu ? wn_graph_add_relu_layer(g, relu, x, WN_ACT_RELU6) : x;
}

/* _inverted_res_block(x, expansion, stride, alpha=1, filters, block_id). */
static int inverted_res_block(wn_graph *g, int x, int expansion, int stride, int filters,
                              int block_id) {
    char prefix[32], a[WN_NAME_MAX], b[WN_NAME_MAX];
    if (x < 0) return x;
    int inputs = x, in_channels = g->layers[x].out_c;
    if (block_id) {
        snprintf(prefix, sizeof prefix, "block_%d_", block_id);
        snprintf(a, sizeof a, "%sexpand", prefix);
        x = wn_graph_add_conv2d(g, a, x, expansion * in_channels, 1, 1, 1, 1, WN_PAD_SAME, 0);
        snprintf(a, sizeof a, "%sexpand_BN", prefix);
        snprintf(b, sizeof b, "%sexpand_relu", prefix);
        x = bn_relu6(g, x, a, b);
    } else {
        snprintf(prefix, sizeof prefix, "expanded_conv_");
    }
    if (stride == 2 && x >= 0) {
        /* imagenet_utils.correct_pad(x, 3): one row/column less before when even */
        int h = g->layers[x].out_h, w = g->layers[x].out_w;
        snprintf(a, sizeof a, "%spad", prefix);
        x = wn_graph_add_zero_padding(g, a, x, 1 - (1 - h % 2), 1, 1 - (1 - w % 2), 1);
    }
    snprintf(a, sizeof a, "%sdepthwise", prefix);
    x = wn_graph_add_depthwise_conv2d(g, a, x, 3, 3, stride, stride,
                                      stride == 1 ? WN_PAD_SAME : WN_PAD_VALID, 0);
    snprintf(a, sizeof a, "%sdepthwise_BN", prefix);
    snprintf(b, sizeof b, "%sdepthwise_relu", prefix);
    x = bn_relu6(g, x, a, b);
    snprintf(a, sizeof a, "%sproject", prefix);
    x = wn_graph_add_conv2d(g, a, x, filters, 1, 1, 1, 1, WN_PAD_SAME, 0);
    snprintf(a, sizeof a, "%sproject_BN", prefix);
    x = bn_relu6(g, x, a, NULL);
    if (in_channels == filters && stride == 1) {
        int xs[2] = {inputs, x};
        snprintf(a, sizeof a, "%sadd", prefix);
        x = wn_graph_add_add(g, a, 2, xs);
    }
    return x;
}

int wn_mobilenet_v2_build(wn_graph *g, int from, int h, int w) {
    /* (filters, stride, expansion) of blocks 0..16; filters are multiples of 8 already */
    static const int blocks[17][3] = {
        {16, 1, 1},  {24, 2, 6},  {24, 1, 6},  {32, 2, 6},  {32, 1, 6},  {32, 1, 6},
        {64, 2, 6},  {64, 1, 6},  {64, 1, 6},  {64, 1, 6},  {96, 1, 6},  {96, 1, 6},
        {96, 1, 6},  {160, 2, 6}, {160, 1, 6}, {160, 1, 6}, {320, 1, 6}};
    int x = wn_graph_add_input(g, NULL, h, w, 3, from);
    x = wn_graph_add_conv2d(g, "Conv1", x, 32, 3, 3, 2, 2, WN_PAD_SAME, 0);
    x = bn_relu6(g, x, "bn_Conv1", "Conv1_relu");
    for (int i = 0; i < 17; i++)
        x = inverted_res_block(g, x, blocks[i][2], blocks[i][1], blocks[i][0], i);
    x = wn_graph_add_conv2d(g, "Conv_1", x, 1280, 1, 1, 1, 1, WN_PAD_SAME, 0);
    return bn_relu6(g, x, "Conv_1_bn", "out_relu");
}
