/* engine/model/zoo/resnet50.c — ResNet50 (v1) without top, layer for layer as
 * keras/applications/resnet.py builds it (tf-keras names).
 *
 * Stem: conv1_pad (ZeroPadding2D 3) -> conv1_conv 7x7/2 'valid' with bias -> conv1_bn
 * -> conv1_relu -> pool1_pad (ZeroPadding2D 1) -> pool1_pool 3x3/2 max. Then four
 * stacks conv2..conv5 of 3, 4, 6 and 3 bottleneck blocks ("conv3_block2"): a
 * 1x1 / 3x3 'same' / 1x1 (4x filters) convolution chain with bias, each followed by
 * BatchNormalization (gamma, epsilon 1.001e-5) and, but for the last, ReLU; the first
 * block of a stack has a 1x1 projection shortcut (_0_conv, _0_bn) with the stack's
 * stride (1 for conv2, 2 after), the others the identity; _add([shortcut, x]) then
 * _out ReLU. 175 layers, 23,587,712 parameters; the smallest input Keras accepts is
 * 32x32. Preprocessing: 'caffe' (RGB -> BGR, ImageNet means subtracted).
 */
#include <stdio.h>

#include "engine/model/graph.h"
#include "engine/model/zoo/zoo.h"

static const float k_resnet_bn_epsilon = 1.001e-5f;

/* Conv2D (bias) -> BN [-> ReLU], named <block>_<i>_conv / _bn / _relu. */
static int conv_bn(wn_graph *g, int x, const char *block, int i, int filters, int k,
                   int stride, wn_padding pad, int relu) {
    char name[WN_NAME_MAX];
    snprintf(name, sizeof name, "%s_%d_conv", block, i);
    x = wn_graph_add_conv2d(g, name, x, filters, k, k, stride, stride, pad, 1);
    snprintf(name, sizeof name, "%s_%d_bn", block, i);
    x = wn_graph_add_batchnorm(g, name, x, 1, k_resnet_bn_epsilon);
    if (!relu) return x;
    snprintf(name, sizeof name, "%s_%d_relu", block, i);
    return wn_graph_add_activation(g, name, x, WN_ACT_RELU);
}

/* resnet.py block1: bottleneck with a projection (first block) or identity shortcut. */
static int bottleneck(wn_graph *g, int x, const char *block, int filters, int stride,
                      int project) {
    char name[WN_NAME_MAX];
    int shortcut = project ? conv_bn(g, x, block, 0, 4 * filters, 1, stride, WN_PAD_VALID, 0)
                           : x;
    x = conv_bn(g, x, block, 1, filters, 1, stride, WN_PAD_VALID, 1);
    x = conv_bn(g, x, block, 2, filters, 3, 1, WN_PAD_SAME, 1);
    x = conv_bn(g, x, block, 3, 4 * filters, 1, 1, WN_PAD_VALID, 0);
    int xs[2] = {shortcut, x}; /* layers.Add()([shortcut, x]) */
    snprintf(name, sizeof name, "%s_add", block);
    x = wn_graph_add_add(g, name, 2, xs);
    snprintf(name, sizeof name, "%s_out", block);
    return wn_graph_add_activation(g, name, x, WN_ACT_RELU);
}

int wn_resnet50_build(wn_graph *g, int from, int h, int w) {
    int x = wn_graph_add_input(g, NULL, h, w, 3, from);
    x = wn_graph_add_zero_padding(g, "conv1_pad", x, 3, 3, 3, 3);
    x = wn_graph_add_conv2d(g, "conv1_conv", x, 64, 7, 7, 2, 2, WN_PAD_VALID, 1);
    x = wn_graph_add_batchnorm(g, "conv1_bn", x, 1, k_resnet_bn_epsilon);
    x = wn_graph_add_activation(g, "conv1_relu", x, WN_ACT_RELU);
    x = wn_graph_add_zero_padding(g, "pool1_pad", x, 1, 1, 1, 1);
    x = wn_graph_add_pool(g, "pool1_pool", x, WN_POOL_MAX, 3, 3, 2, 2, WN_PAD_VALID);

    static const struct { int filters, blocks, stride; } stacks[] = {
        {64, 3, 1}, {128, 4, 2}, {256, 6, 2}, {512, 3, 2}};
    for (int s = 0; s < 4; s++)
        for (int b = 1; b <= stacks[s].blocks; b++) {
            char block[32];
            snprintf(block, sizeof block, "conv%d_block%d", s + 2, b);
            x = bottleneck(g, x, block, stacks[s].filters, b == 1 ? stacks[s].stride : 1,
                           b == 1);
        }
    return x;
}
