/* engine/model/zoo/tiny_cnn.c — a small CNN backbone for tests and quick experiments.
 *
 * Three conv2d_bn blocks in the style of the Keras applications (Conv2D without
 * bias, BatchNormalization(scale=False) in inference mode, ReLU), auto-named as
 * Keras would name them in a fresh session:
 *
 *   input_1 -> conv2d (16, 3x3, stride 2, same) -> batch_normalization -> activation
 *           -> conv2d_1 (32, 3x3, stride 2, same) -> batch_normalization_1 -> activation_1
 *           -> conv2d_2 (32, 3x3, stride 1, same) -> batch_normalization_2 -> activation_2
 *
 * 10 layers (input included), output ceil(h/4) x ceil(w/4) x 32, 14,016 trainable
 * parameters + 160 moving statistics. Small enough that the end-to-end tests train it
 * on the CPU in seconds (tests/train/), deep enough to have a fine-tune boundary
 * (e.g. --fine-tune-at 4 freezes the first block).
 */
#include "engine/model/graph.h"
#include "engine/model/zoo/zoo.h"

static int conv_bn_relu(wn_graph *g, int x, int filters, int stride) {
    x = wn_graph_add_conv2d(g, NULL, x, filters, 3, 3, stride, stride, WN_PAD_SAME, 0);
    x = wn_graph_add_batchnorm(g, NULL, x, 0, 1e-3f);
    return wn_graph_add_activation(g, NULL, x, WN_ACT_RELU);
}

int wn_tiny_cnn_build(wn_graph *g, int from, int h, int w) {
    int x = wn_graph_add_input(g, NULL, h, w, 3, from);
    x = conv_bn_relu(g, x, 16, 2);
    x = conv_bn_relu(g, x, 32, 2);
    return conv_bn_relu(g, x, 32, 1);
}
