/* engine/model/zoo/efficientnet_lite.c — EfficientNet-Lite0/1/2 backbones (no top).
 *
 * One MBConv block ("block<stage><letter>", Keras's naming) is, in model.layers
 * order:
 *   [_expand_conv 1x1 -> _expand_bn -> _expand_activation]   when expand ratio != 1
 *   _dwconv kxk stride s -> _bn -> _activation               depthwise, ReLU6
 *   _project_conv 1x1 -> _project_bn                         linear bottleneck
 *   [_add(project_bn, block input)]                          stride 1 and in == out
 * Convolutions have no bias; every BatchNormalization has gamma (scale=True) and
 * epsilon 1e-3, as in the official model. The stem is stem_conv 3x3/2 (32) ->
 * stem_bn -> stem_activation; the head top_conv 1x1 (1280) -> top_bn ->
 * top_activation. Every block's layers depend on the one before, so creation order
 * already is Keras's model.layers order.
 */
#include "engine/model/zoo/efficientnet_lite.h"

#include <math.h>
#include <stdio.h>

#include "host/base/error.h"
#include "engine/model/zoo/zoo.h"

/* The official block table (efficientnet_lite_builder.py), before scaling. */
typedef struct lite_stage {
    int repeats, kernel, stride, expand, in, out;
} lite_stage;

static const lite_stage k_lite_stages[] = {
    {1, 3, 1, 1, 32, 16},   {2, 3, 2, 6, 16, 24},   {2, 5, 2, 6, 24, 40},
    {3, 3, 2, 6, 40, 80},   {3, 5, 1, 6, 80, 112},  {4, 5, 2, 6, 112, 192},
    {1, 3, 1, 6, 192, 320},
};
enum { LITE_STAGES = (int)(sizeof k_lite_stages / sizeof k_lite_stages[0]) };

/* width coefficient, depth coefficient, native resolution */
typedef struct lite_variant {
    double width, depth;
    int native;
} lite_variant;

static const lite_variant k_lite_variants[] = {
    {1.0, 1.0, 224}, /* lite0 */
    {1.0, 1.1, 240}, /* lite1 */
    {1.1, 1.2, 260}, /* lite2 */
};
enum { LITE_VARIANTS = (int)(sizeof k_lite_variants / sizeof k_lite_variants[0]) };

enum { LITE_STEM = 32, LITE_HEAD = 1280 };
static const float k_lite_bn_epsilon = 1e-3f;

/* Channel rounding of the official builder: to a multiple of 8, never more than
 * 10% below the scaled count. */
static int lite_round_filters(int filters, double width) {
    double scaled = filters * width;
    int rounded = (int)(scaled + 4.0) / 8 * 8;
    if (rounded < 8) rounded = 8;
    if (rounded < 0.9 * scaled) rounded += 8;
    return rounded;
}

static void lite_name(char *buf, const char *block, const char *suffix) {
    snprintf(buf, WN_NAME_MAX, "%s_%s", block, suffix);
}

/* conv/depthwise -> BN (with gamma) [-> ReLU6]; returns the last layer id. */
static int lite_bn_act(wn_graph *g, int x, const char *block, const char *bn,
                       const char *act) {
    char name[WN_NAME_MAX];
    lite_name(name, block, bn);
    x = wn_graph_add_batchnorm(g, name, x, 1, k_lite_bn_epsilon);
    if (act == NULL) return x;
    lite_name(name, block, act);
    return wn_graph_add_activation(g, name, x, WN_ACT_RELU6);
}

static int lite_block(wn_graph *g, int x, const char *block, int cin, int cout, int k,
                      int stride, int expand) {
    char name[WN_NAME_MAX];
    int input = x;
    if (expand != 1) {
        lite_name(name, block, "expand_conv");
        x = wn_graph_add_conv2d(g, name, x, cin * expand, 1, 1, 1, 1, WN_PAD_SAME, 0);
        x = lite_bn_act(g, x, block, "expand_bn", "expand_activation");
    }
    lite_name(name, block, "dwconv");
    x = wn_graph_add_depthwise_conv2d(g, name, x, k, k, stride, stride, WN_PAD_SAME, 0);
    x = lite_bn_act(g, x, block, "bn", "activation");
    lite_name(name, block, "project_conv");
    x = wn_graph_add_conv2d(g, name, x, cout, 1, 1, 1, 1, WN_PAD_SAME, 0);
    x = lite_bn_act(g, x, block, "project_bn", NULL);
    if (stride == 1 && cin == cout) {
        int xs[2] = {x, input}; /* Keras: layers.add([x, inputs]) */
        lite_name(name, block, "add");
        x = wn_graph_add_add(g, name, 2, xs);
    }
    return x;
}

int wn_efficientnet_lite_build(wn_graph *g, int variant, int from, int h, int w) {
    if (variant < 0 || variant >= LITE_VARIANTS)
        return wn_fail("efficientnet_lite%d: unknown variant (have lite0, lite1, lite2)",
                       variant);
    const lite_variant *v = &k_lite_variants[variant];
    int x = wn_graph_add_input(g, NULL, h, w, 3, from);
    x = wn_graph_add_conv2d(g, "stem_conv", x, LITE_STEM, 3, 3, 2, 2, WN_PAD_SAME, 0);
    x = lite_bn_act(g, x, "stem", "bn", "activation");

    int channels = LITE_STEM;
    for (int s = 0; s < LITE_STAGES; s++) {
        const lite_stage *st = &k_lite_stages[s];
        int cout = lite_round_filters(st->out, v->width);
        /* fix_head_stem: the first and last stages keep their repeats */
        int repeats = (s == 0 || s == LITE_STAGES - 1)
                          ? st->repeats
                          : (int)ceil(v->depth * st->repeats);
        for (int r = 0; r < repeats; r++) {
            char block[16]; /* "block7a" */
            snprintf(block, sizeof block, "block%d%c", s + 1, 'a' + r);
            x = lite_block(g, x, block, channels, cout, st->kernel, r == 0 ? st->stride : 1,
                           st->expand);
            channels = cout;
        }
    }
    x = wn_graph_add_conv2d(g, "top_conv", x, LITE_HEAD, 1, 1, 1, 1, WN_PAD_SAME, 0);
    x = lite_bn_act(g, x, "top", "bn", "activation");
    if (x < 0) return wn_fail_context("building efficientnet_lite%d: ", variant);
    return x;
}

int wn_efficientnet_lite0_build(wn_graph *g, int from, int h, int w) {
    return wn_efficientnet_lite_build(g, 0, from, h, w);
}

int wn_efficientnet_lite1_build(wn_graph *g, int from, int h, int w) {
    return wn_efficientnet_lite_build(g, 1, from, h, w);
}

int wn_efficientnet_lite2_build(wn_graph *g, int from, int h, int w) {
    return wn_efficientnet_lite_build(g, 2, from, h, w);
}

int wn_efficientnet_lite_native_size(int variant) {
    return variant >= 0 && variant < LITE_VARIANTS ? k_lite_variants[variant].native : 0;
}
