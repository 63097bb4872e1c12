/* engine/model/zoo/irv2.c — InceptionResNetV2 without top, layer for layer as
 * keras/applications/inception_resnet_v2.py builds it (TF 2.12+ / tf-keras names).
 *
 * Layers are created in Keras's creation order so that the auto names
 * (conv2d_N, batch_normalization_N, activation_N, custom_scale_layer_N, ...) come
 * out with Keras's numbers; the model code then sorts them into model.layers order
 * (wn_graph_order_keras). See KERAS_SEMANTICS.md §1.
 */
#include <stdio.h>

#include "engine/model/graph.h"
#include "engine/model/zoo/zoo.h"

/* conv2d_bn(x, filters, (kh, kw), strides, padding, activation, use_bias, name):
 * Conv2D, then BatchNormalization(scale=False) unless use_bias, then ReLU unless
 * activation is off. Explicit names get the _bn / _ac suffixes. */
static int conv2d_bn(wn_graph *g, int x, int filters, int kh, int kw, int stride,
                     wn_padding pad, int relu, int use_bias, const char *name) {
    char bn[WN_NAME_MAX], ac[WN_NAME_MAX];
    if (name) {
        snprintf(bn, sizeof bn, "%.80s_bn", name);
        snprintf(ac, sizeof ac, "%.80s_ac", name);
    }
    x = wn_graph_add_conv2d(g, name, x, filters, kh, kw, stride, stride, pad, use_bias);
    if (!use_bias) x = wn_graph_add_batchnorm(g, name ? bn : NULL, x, 0, 1e-3f);
    if (relu) x = wn_graph_add_activation(g, name ? ac : NULL, x, WN_ACT_RELU);
    return x;
}

/* The common case: 'same' padding, stride 1, ReLU, auto names. */
static int cbr(wn_graph *g, int x, int filters, int kh, int kw) {
    return conv2d_bn(g, x, filters, kh, kw, 1, WN_PAD_SAME, 1, 0, NULL);
}

/* inception_resnet_block: branches -> Concatenate(<block>_mixed) -> 1x1 conv with
 * bias (<block>_conv) -> CustomScaleLayer(scale)([x, up]) -> ReLU (<block>_ac). */
static int irv2_block(wn_graph *g, int x, float scale, const char *type, int idx, int relu) {
    int br[3], n;
    if (x < 0) return x;
    if (type[5] == '3') { /* block35 */
        br[0] = cbr(g, x, 32, 1, 1);
        br[1] = cbr(g, cbr(g, x, 32, 1, 1), 32, 3, 3);
        br[2] = cbr(g, cbr(g, cbr(g, x, 32, 1, 1), 48, 3, 3), 64, 3, 3);
        n = 3;
    } else if (type[5] == '1') { /* block17 */
        br[0] = cbr(g, x, 192, 1, 1);
        br[1] = cbr(g, cbr(g, cbr(g, x, 128, 1, 1), 160, 1, 7), 192, 7, 1);
        n = 2;
    } else { /* block8 */
        br[0] = cbr(g, x, 192, 1, 1);
        br[1] = cbr(g, cbr(g, cbr(g, x, 192, 1, 1), 224, 1, 3), 256, 3, 1);
        n = 2;
    }
    char name[WN_NAME_MAX];
    snprintf(name, sizeof name, "%s_%d_mixed", type, idx);
    int mixed = wn_graph_add_concat(g, name, n, br);
    snprintf(name, sizeof name, "%s_%d_conv", type, idx);
    int channels = g->layers[x].out_c;
    int up = conv2d_bn(g, mixed, channels, 1, 1, 1, WN_PAD_SAME, 0, 1, name);
    int y = wn_graph_add_scale_residual(g, NULL, x, up, scale);
    if (relu) {
        snprintf(name, sizeof name, "%s_%d_ac", type, idx);
        y = wn_graph_add_activation(g, name, y, WN_ACT_RELU);
    }
    return y;
}

static int maxpool3s2(wn_graph *g, int x) {
    return wn_graph_add_pool(g, NULL, x, WN_POOL_MAX, 3, 3, 2, 2, WN_PAD_VALID);
}

int wn_irv2_build(wn_graph *g, int from, int h, int w) {
    int x = wn_graph_add_input(g, NULL, h, w, 3, from);

    /* Stem: 35x35x192 at 299 (37x37 at 320). */
    x = conv2d_bn(g, x, 32, 3, 3, 2, WN_PAD_VALID, 1, 0, NULL);
    x = conv2d_bn(g, x, 32, 3, 3, 1, WN_PAD_VALID, 1, 0, NULL);
    x = cbr(g, x, 64, 3, 3);
    x = maxpool3s2(g, x);
    x = conv2d_bn(g, x, 80, 1, 1, 1, WN_PAD_VALID, 1, 0, NULL);
    x = conv2d_bn(g, x, 192, 3, 3, 1, WN_PAD_VALID, 1, 0, NULL);
    x = maxpool3s2(g, x);

    /* mixed_5b (Inception-A): 320 channels. */
    int br[4];
    br[0] = cbr(g, x, 96, 1, 1);
    br[1] = cbr(g, cbr(g, x, 48, 1, 1), 64, 5, 5);
    br[2] = cbr(g, cbr(g, cbr(g, x, 64, 1, 1), 96, 3, 3), 96, 3, 3);
    br[3] = cbr(g, wn_graph_add_pool(g, NULL, x, WN_POOL_AVG, 3, 3, 1, 1, WN_PAD_SAME), 64,
                1, 1);
    x = wn_graph_add_concat(g, "mixed_5b", 4, br);

    for (int i = 1; i <= 10; i++) x = irv2_block(g, x, 0.17f, "block35", i, 1);

    /* mixed_6a (Reduction-A): 1088 channels. */
    br[0] = conv2d_bn(g, x, 384, 3, 3, 2, WN_PAD_VALID, 1, 0, NULL);
    br[1] = conv2d_bn(g, cbr(g, cbr(g, x, 256, 1, 1), 256, 3, 3), 384, 3, 3, 2, WN_PAD_VALID,
                      1, 0, NULL);
    br[2] = maxpool3s2(g, x);
    x = wn_graph_add_concat(g, "mixed_6a", 3, br);

    for (int i = 1; i <= 20; i++) x = irv2_block(g, x, 0.1f, "block17", i, 1);

    /* mixed_7a (Reduction-B): 2080 channels. */
    br[0] = conv2d_bn(g, cbr(g, x, 256, 1, 1), 384, 3, 3, 2, WN_PAD_VALID, 1, 0, NULL);
    br[1] = conv2d_bn(g, cbr(g, x, 256, 1, 1), 288, 3, 3, 2, WN_PAD_VALID, 1, 0, NULL);
    br[2] = conv2d_bn(g, cbr(g, cbr(g, x, 256, 1, 1), 288, 3, 3), 320, 3, 3, 2, WN_PAD_VALID,
                      1, 0, NULL);
    br[3] = maxpool3s2(g, x);
    x = wn_graph_add_concat(g, "mixed_7a", 4, br);

    for (int i = 1; i <= 9; i++) x = irv2_block(g, x, 0.2f, "block8", i, 1);
    x = irv2_block(g, x, 1.0f, "block8", 10, 0);

    /* Final 1x1 convolution: 8x8x1536. */
    return conv2d_bn(g, x, 1536, 1, 1, 1, WN_PAD_SAME, 1, 0, "conv_7b");
}
