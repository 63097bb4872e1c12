/* engine/model/zoo/xception.c — Xception without top, layer for layer as
 * keras/applications/xception.py builds it (tf-keras names).
 *
 * Entry flow: block1 (two 'valid' 3x3 convolutions), then blocks 2-4, each a
 * residual 1x1/2 Conv2D + BatchNormalization (auto-named conv2d_N /
 * batch_normalization_N) beside two SeparableConv2D + BN and a 3x3/2 max pooling,
 * joined by an Add (auto-named add_N); middle flow: blocks 5-12, three ReLU +
 * SeparableConv2D + BN each around an identity Add; exit flow: block13 (residual
 * 1024) and block14 (1536, 2048 with ReLU). Every convolution is bias-free, every BN
 * has gamma and epsilon 1e-3 (Keras's defaults). 132 layers, 20,861,480 parameters
 * at any input size; the smallest input Keras accepts is 71x71.
 *
 * Layers are created in Keras's creation order so that the auto names come out with
 * Keras's numbers; the model code sorts them into model.layers order.
 */
#include <stdio.h>

#include "engine/model/graph.h"
#include "engine/model/zoo/zoo.h"

static const float k_xception_bn_epsilon = 1e-3f;

/* name + suffix into buf (Keras's explicit names: "block4_sepconv1_bn"). */
static const char *xname(char *buf, const char *prefix, const char *suffix) {
    snprintf(buf, WN_NAME_MAX, "%s%s", prefix, suffix);
    return buf;
}

static int bn(wn_graph *g, const char *name, int x) {
    return wn_graph_add_batchnorm(g, name, x, 1, k_xception_bn_epsilon);
}

/* [ReLU <p>_sepconv<i>_act ->] SeparableConv2D <p>_sepconv<i> -> BN <p>_sepconv<i>_bn.
 * act_name NULL: no activation before (block2's first, block14). */
static int sep_bn(wn_graph *g, int x, const char *prefix, int i, int filters,
                  const char *act_name) {
    char name[WN_NAME_MAX], tag[32];
    if (act_name) x = wn_graph_add_activation(g, act_name, x, WN_ACT_RELU);
    snprintf(tag, sizeof tag, "_sepconv%d", i);
    x = wn_graph_add_separable_conv2d(g, xname(name, prefix, tag), x, filters, 3, 3, 1, 1,
                                      WN_PAD_SAME, 0);
    snprintf(tag, sizeof tag, "_sepconv%d_bn", i);
    return bn(g, xname(name, prefix, tag), x);
}

/* The residual 1x1/2 projection, auto-named (conv2d_N, batch_normalization_N). */
static int projection(wn_graph *g, int x, int filters) {
    x = wn_graph_add_conv2d(g, NULL, x, filters, 1, 1, 2, 2, WN_PAD_SAME, 0);
    return bn(g, NULL, x);
}

/* Entry-flow block: projection, [ReLU] sepconv, ReLU sepconv, max pool, add. */
static int entry_block(wn_graph *g, int x, int block, int f1, int f2, int relu_first) {
    char prefix[16], name[WN_NAME_MAX];
    snprintf(prefix, sizeof prefix, "block%d", block);
    int residual = projection(g, x, f2);
    x = sep_bn(g, x, prefix, 1, f1, relu_first ? xname(name, prefix, "_sepconv1_act") : NULL);
    x = sep_bn(g, x, prefix, 2, f2, xname(name, prefix, "_sepconv2_act"));
    x = wn_graph_add_pool(g, xname(name, prefix, "_pool"), x, WN_POOL_MAX, 3, 3, 2, 2,
                          WN_PAD_SAME);
    int xs[2] = {x, residual}; /* layers.add([x, residual]) */
    return wn_graph_add_add(g, NULL, 2, xs);
}

int wn_xception_build(wn_graph *g, int from, int h, int w) {
    char name[WN_NAME_MAX], prefix[16];
    int x = wn_graph_add_input(g, NULL, h, w, 3, from);

    /* block1: two 'valid' convolutions (this is why 71 is the smallest input) */
    x = wn_graph_add_conv2d(g, "block1_conv1", x, 32, 3, 3, 2, 2, WN_PAD_VALID, 0);
    x = bn(g, "block1_conv1_bn", x);
    x = wn_graph_add_activation(g, "block1_conv1_act", x, WN_ACT_RELU);
    x = wn_graph_add_conv2d(g, "block1_conv2", x, 64, 3, 3, 1, 1, WN_PAD_VALID, 0);
    x = bn(g, "block1_conv2_bn", x);
    x = wn_graph_add_activation(g, "block1_conv2_act", x, WN_ACT_RELU);

    x = entry_block(g, x, 2, 128, 128, 0);
    x = entry_block(g, x, 3, 256, 256, 1);
    x = entry_block(g, x, 4, 728, 728, 1);

    /* middle flow: blocks 5..12 */
    for (int b = 5; b <= 12; b++) {
        snprintf(prefix, sizeof prefix, "block%d", b);
        int residual = x;
        for (int i = 1; i <= 3; i++) {
            char tag[32];
            snprintf(tag, sizeof tag, "_sepconv%d_act", i);
            x = sep_bn(g, x, prefix, i, 728, xname(name, prefix, tag));
        }
        int xs[2] = {x, residual};
        x = wn_graph_add_add(g, NULL, 2, xs);
    }

    /* exit flow */
    x = entry_block(g, x, 13, 728, 1024, 1);
    x = sep_bn(g, x, "block14", 1, 1536, NULL);
    x = wn_graph_add_activation(g, "block14_sepconv1_act", x, WN_ACT_RELU);
    x = sep_bn(g, x, "block14", 2, 2048, NULL);
    return wn_graph_add_activation(g, "block14_sepconv2_act", x, WN_ACT_RELU);
}
