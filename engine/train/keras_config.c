/* engine/train/keras_config.c — config.json of the notebook's model for Keras 3 (see
 * keras_config.h), built with jansson. */
#include "engine/train/keras_config.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host/base/error.h"

/* json_object_set_new that tolerates NULL values (jansson then fails the set; the
 * final dump check catches any allocation failure). */
static void set(json_t *o, const char *k, json_t *v) { json_object_set_new(o, k, v); }

static json_t *pair(int a, int b) { return json_pack("[ii]", a, b); }

/* A float32 setting as the shortest decimal that reads back as the same float
 * (0.2, not 0.20000000298023224), as Python's float() of Keras's value prints. */
static json_t *real_f(float v) {
    char buf[32];
    for (int digits = 6; digits <= 9; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, (double)v);
        if ((float)strtod(buf, NULL) == v) break;
    }
    return json_real(strtod(buf, NULL));
}

/* A KerasTensor reference to output 0 of layer `name`, shape (None, h, w, c) (rank 3),
 * (None, h, w) (rank 2: one channel taken out) or (None, c) (rank 1). */
static json_t *tensor(const char *name, int rank, int h, int w, int c) {
    json_t *shape = rank == 3   ? json_pack("[nIII]", (json_int_t)h, (json_int_t)w, (json_int_t)c)
                    : rank == 2 ? json_pack("[nII]", (json_int_t)h, (json_int_t)w)
                                : json_pack("[nI]", (json_int_t)c);
    return json_pack("{s:s, s:{s:o, s:s, s:[sii]}}", "class_name", "__keras_tensor__", "config",
                     "shape", shape, "dtype", "float32", "keras_history", name, 0, 0);
}

/* A constant float32 tensor argument of an op layer, as Keras 3 serialises one
 * (`__tensor__`): the three per-channel values, broadcast shape (1, 1, 1, 3) when
 * `nhwc`, else (3). */
static json_t *constant3(const float v[3], int nhwc) {
    json_t *vals = json_pack("[ooo]", real_f(v[0]), real_f(v[1]), real_f(v[2]));
    if (nhwc) vals = json_pack("[[[o]]]", vals);
    return json_pack("{s:s, s:{s:o, s:s}}", "class_name", "__tensor__", "config", "value", vals,
                     "dtype", "float32");
}

static json_t *layer_tensor(const wn_layer *l) {
    int flat = l->type == WN_LAYER_GAP || l->type == WN_LAYER_DROPOUT || l->type == WN_LAYER_DENSE;
    return tensor(l->name, flat ? 1 : 3, l->out_h, l->out_w, l->out_c);
}

/* One inbound node: args [x] (or [[x1, x2, ...]] for merge layers), kwargs. */
static json_t *node(json_t *args, json_t *kwargs) {
    return json_pack("[{s:o, s:o}]", "args", args, "kwargs", kwargs ? kwargs : json_object());
}

/* A layer entry: module, class_name, config (given, with name/trainable/dtype
 * added), registered_name, name, inbound_nodes. */
static json_t *entry(const char *module, const char *cls, const char *registered,
                     const char *name, json_t *config, json_t *inbound) {
    set(config, "name", json_string(name));
    /* InputLayer refuses unknown keyword arguments such as trainable */
    if (strcmp(cls, "InputLayer") && !json_object_get(config, "trainable"))
        set(config, "trainable", json_true());
    set(config, "dtype", json_string("float32"));
    return json_pack("{s:s, s:s, s:o, s:o, s:s, s:o}", "module", module, "class_name", cls,
                     "config", config, "registered_name",
                     registered ? json_string(registered) : json_null(), "name", name,
                     "inbound_nodes", inbound ? inbound : json_array());
}

static const char *padding(wn_padding p) { return p == WN_PAD_SAME ? "same" : "valid"; }

static const char *activation(wn_activation a) {
    return a == WN_ACT_RELU ? "relu" : a == WN_ACT_RELU6 ? "relu6" : "linear";
}

/* The producer name a layer's input refers to: a nested model's input aliases its
 * producer outside, but inside the nested config it is the InputLayer itself. */
static json_t *backbone_layer(const wn_graph *g, const wn_layer *l, int first) {
    json_t *args = json_array();
    if (l->type == WN_LAYER_CONCAT || l->type == WN_LAYER_ADD ||
        l->type == WN_LAYER_SCALE_RESIDUAL) {
        json_t *list = json_array();
        for (int i = 0; i < l->n_inputs; i++)
            json_array_append_new(list, layer_tensor(&g->layers[l->inputs[i]]));
        json_array_append_new(args, list);
    } else if (l->type != WN_LAYER_INPUT) {
        json_array_append_new(args, layer_tensor(&g->layers[l->inputs[0]]));
    }
    (void)first;
    json_t *c = json_object();
    switch (l->type) {
    case WN_LAYER_INPUT:
        set(c, "batch_shape", json_pack("[nIII]", (json_int_t)l->out_h, (json_int_t)l->out_w,
                                        (json_int_t)l->out_c));
        set(c, "sparse", json_false());
        set(c, "ragged", json_false());
        json_decref(args); /* an InputLayer has no inbound node */
        return entry("keras.layers", "InputLayer", NULL, l->name, c, NULL);
    case WN_LAYER_CONV2D:
    case WN_LAYER_DEPTHWISE_CONV2D:
    case WN_LAYER_SEPARABLE_CONV2D: {
        static const char *cls[] = {"Conv2D", "DepthwiseConv2D", "SeparableConv2D"};
        int kind = l->type == WN_LAYER_CONV2D ? 0 : l->type == WN_LAYER_DEPTHWISE_CONV2D ? 1 : 2;
        if (kind != 1) set(c, "filters", json_integer(l->filters));
        set(c, "kernel_size", pair(l->kh, l->kw));
        set(c, "strides", pair(l->sh, l->sw));
        set(c, "padding", json_string(padding(l->padding)));
        set(c, "data_format", json_string("channels_last"));
        set(c, "dilation_rate", pair(1, 1));
        if (kind == 0) set(c, "groups", json_integer(1));
        else set(c, "depth_multiplier", json_integer(1));
        set(c, "activation", json_string("linear"));
        set(c, "use_bias", json_boolean(l->use_bias));
        return entry("keras.layers", cls[kind], NULL, l->name, c, node(args, NULL));
    }
    case WN_LAYER_ZERO_PADDING:
        set(c, "padding", json_pack("[[ii][ii]]", l->pad_t, l->pad_b, l->pad_l, l->pad_r));
        set(c, "data_format", json_string("channels_last"));
        return entry("keras.layers", "ZeroPadding2D", NULL, l->name, c, node(args, NULL));
    case WN_LAYER_BATCHNORM:
        set(c, "axis", json_integer(3));
        set(c, "momentum", json_real(0.99));
        set(c, "epsilon", real_f(l->epsilon));
        set(c, "center", json_true());
        set(c, "scale", json_boolean(l->has_gamma));
        return entry("keras.layers", "BatchNormalization", NULL, l->name, c, node(args, NULL));
    case WN_LAYER_ACTIVATION:
        if (l->relu_class && l->activation != WN_ACT_NONE) { /* MobileNetV2's ReLU(6.) */
            set(c, "max_value", l->activation == WN_ACT_RELU6 ? json_real(6.0) : json_null());
            set(c, "negative_slope", json_real(0.0));
            set(c, "threshold", json_real(0.0));
            return entry("keras.layers", "ReLU", NULL, l->name, c, node(args, NULL));
        }
        set(c, "activation", json_string(activation(l->activation)));
        return entry("keras.layers", "Activation", NULL, l->name, c, node(args, NULL));
    case WN_LAYER_MAXPOOL:
    case WN_LAYER_AVGPOOL:
        set(c, "pool_size", pair(l->kh, l->kw));
        set(c, "strides", pair(l->sh, l->sw));
        set(c, "padding", json_string(padding(l->padding)));
        set(c, "data_format", json_string("channels_last"));
        return entry("keras.layers", l->type == WN_LAYER_MAXPOOL ? "MaxPooling2D" : "AveragePooling2D",
                     NULL, l->name, c, node(args, NULL));
    case WN_LAYER_CONCAT:
        set(c, "axis", json_integer(3));
        return entry("keras.layers", "Concatenate", NULL, l->name, c, node(args, NULL));
    case WN_LAYER_ADD:
        return entry("keras.layers", "Add", NULL, l->name, c, node(args, NULL));
    case WN_LAYER_SCALE_RESIDUAL:
        /* Keras's own class (x + scale*r), importable from Keras itself */
        set(c, "scale", real_f(l->scale));
        return entry("keras.src.applications.inception_resnet_v2", "CustomScaleLayer",
                     "CustomScaleLayer", l->name, c, node(args, NULL));
    default:
        json_decref(c);
        json_decref(args);
        return NULL;
    }
}

/* A Keras 3 op layer (keras.src.ops.numpy) called on `args`; config holds its name
 * and, for Stack, its axis. */
static json_t *op_node(const char *cls, const char *name, json_t *args, json_t *config) {
    set(config, "name", json_string(name));
    return json_pack("{s:s, s:s, s:o, s:s, s:s, s:o}", "module", "keras.src.ops.numpy",
                     "class_name", cls, "config", config, "registered_name", cls, "name", name,
                     "inbound_nodes", node(args, NULL));
}

/* A Keras 3 op layer: x <op> constant. */
static json_t *op_layer(const char *cls, const char *name, const char *from, int h, int w,
                        double constant) {
    return op_node(cls, name, json_pack("[oo]", tensor(from, 3, h, w, 3), json_real(constant)),
                   json_object());
}

/* The op layers Keras 3's preprocess_input puts between the augmentation and the
 * backbone, appended to `layers` as keras/src/applications/imagenet_utils.py builds
 * them on a KerasTensor; returns the last one's name. */
static const char *preprocess_layers(json_t *layers, wn_preprocess p, const char *from, int h,
                                     int w) {
    switch (p) {
    case WN_PREPROCESS_LITE: /* (x - 127) / 128 */
        json_array_append_new(layers, op_layer("Subtract", "subtract", from, h, w, 127.0));
        json_array_append_new(layers, op_layer("TrueDivide", "true_divide", "subtract", h, w, 128.0));
        return "true_divide";
    case WN_PREPROCESS_CAFFE: { /* ops.flip(x, -1) as three GetItem + Stack, + (-mean) */
        static const char *item[3] = {"get_item", "get_item_1", "get_item_2"};
        static const float neg_mean[3] = {-103.939f, -116.779f, -123.68f};
        json_t *stacked = json_array();
        for (int k = 0; k < 3; k++) {
            json_t *index = json_pack("[{s:s, s:{}}, i]", "class_name", "__ellipsis__", "config", 2 - k);
            json_array_append_new(layers, op_node("GetItem", item[k],
                                                  json_pack("[oo]", tensor(from, 3, h, w, 3), index),
                                                  json_object()));
            json_array_append_new(stacked, tensor(item[k], 2, h, w, 0));
        }
        json_array_append_new(layers, op_node("Stack", "stack", json_pack("[o]", stacked),
                                              json_pack("{s:i}", "axis", -1)));
        json_array_append_new(layers, op_node("Add", "add",
                                              json_pack("[oo]", tensor("stack", 3, h, w, 3),
                                                        constant3(neg_mean, 1)),
                                              json_object()));
        return "add";
    }
    case WN_PREPROCESS_TORCH: { /* x / 255 + (-mean), / std */
        static const float neg_mean[3] = {-0.485f, -0.456f, -0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
        json_array_append_new(layers, op_layer("TrueDivide", "true_divide", from, h, w, 255.0));
        json_array_append_new(layers, op_node("Add", "add",
                                              json_pack("[oo]", tensor("true_divide", 3, h, w, 3),
                                                        constant3(neg_mean, 1)),
                                              json_object()));
        json_array_append_new(layers, op_node("TrueDivide", "true_divide_1",
                                              json_pack("[oo]", tensor("add", 3, h, w, 3),
                                                        constant3(std, 0)),
                                              json_object()));
        return "true_divide_1";
    }
    case WN_PREPROCESS_TF:
    default: /* x / 127.5 - 1 */
        json_array_append_new(layers, op_layer("TrueDivide", "true_divide", from, h, w, 127.5));
        json_array_append_new(layers, op_layer("Subtract", "subtract", "true_divide", h, w, 1.0));
        return "subtract";
    }
}

static json_t *augment_sequential(const wn_model *m, const char *from) {
    int h = m->image_h, w = m->image_w;
    json_t *in = json_pack("{s:s, s:s, s:{s:[niii], s:s, s:b, s:b, s:s}, s:n}", "module",
                           "keras.layers", "class_name", "InputLayer", "config", "batch_shape", h,
                           w, 3, "dtype", "float32", "sparse", 0, "ragged", 0, "name",
                           "input_layer_1", "registered_name");
    json_t *flip = json_pack("{s:s, s:s, s:{s:s, s:b, s:s, s:s, s:n, s:s}, s:n}", "module",
                             "keras.layers", "class_name", "RandomFlip", "config", "name",
                             "random_flip", "trainable", 1, "dtype", "float32", "data_format",
                             "channels_last", "seed", "mode", "horizontal", "registered_name");
    json_t *rot = json_pack("{s:s, s:s, s:{s:s, s:b, s:s, s:s, s:[ff], s:s, s:f, s:s, s:n}, s:n}",
                            "module", "keras.layers", "class_name", "RandomRotation", "config",
                            "name", "random_rotation", "trainable", 1, "dtype", "float32",
                            "data_format", "channels_last", "factor", -0.2, 0.2, "fill_mode",
                            "reflect", "fill_value", 0.0, "interpolation", "bilinear", "seed",
                            "registered_name");
    json_t *c = json_pack("{s:[ooo]}", "layers", in, flip, rot);
    json_t *args = json_pack("[o]", tensor(from, 3, h, w, 3));
    return entry("keras", "Sequential", NULL, "sequential", c, node(args, NULL));
}

static json_t *config_tree(const wn_model *m);

/* Keras 3 refuses a layer name with '/' (tf-keras 2's DenseNet121 has "conv1/conv";
 * Keras 3's own DenseNet121 names it "conv1_conv"): every '/' of every string of the
 * tree becomes '_'. Names are the only strings of a config that can hold one. */
static void keras3_names(json_t *v) {
    const char *key;
    size_t i;
    json_t *item;
    if (json_is_object(v)) {
        json_object_foreach(v, key, item) keras3_names(item);
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, item) keras3_names(item);
    } else if (json_is_string(v) && strchr(json_string_value(v), '/')) {
        char *copy = strdup(json_string_value(v));
        if (!copy) return; /* left as is: Keras then names the layer in its error */
        for (char *c = copy; *c; c++)
            if (*c == '/') *c = '_';
        json_string_set(v, copy);
        free(copy);
    }
}

int wn_keras_config_json(const wn_model *m, char **out) {
    *out = NULL;
    json_t *root = config_tree(m);
    if (!root) return WN_ERR;
    keras3_names(root);
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!text) return wn_fail("Keras config: out of memory building config.json");
    *out = text;
    return WN_OK;
}

/* ---------------------------------------------------------------- Keras 2 dialect */

/* The outer model's op layers (preprocess_input) as tf-keras 2 writes them: Keras 3's
 * ops.numpy layer -> tf-keras's TFOpLambda / SlicingOpLambda, its name and function.
 * Keras 3's flip of the channels (three GetItem and a Stack, 'caffe') is one
 * tf.__operators__.getitem with slice [..., ::-1] in tf-keras; the adds of a mean
 * tensor are tf.nn.bias_add. A second layer of a kind keeps its _N suffix in both
 * (true_divide_1 -> tf.math.truediv_1). NULL: not an op layer. */
typedef struct {
    const char *k3;       /* Keras 3 name (prefix) */
    const char *k2;       /* tf-keras 2 layer name (prefix) */
    const char *cls;      /* tf-keras class */
    const char *function; /* its `function` */
} k2_op_def;

static const k2_op_def K2_OPS[] = {
    {"true_divide", "tf.math.truediv", "TFOpLambda", "math.truediv"},
    {"subtract", "tf.math.subtract", "TFOpLambda", "math.subtract"},
    {"add", "tf.nn.bias_add", "TFOpLambda", "nn.bias_add"},
    {"get_item", "tf.__operators__.getitem", "SlicingOpLambda", "__operators__.getitem"},
    {"stack", "tf.__operators__.getitem", "SlicingOpLambda", "__operators__.getitem"},
};

/* The op of a Keras 3 outer layer name (and its _N suffix), or NULL. */
static const k2_op_def *k2_op(const char *name, const char **suffix) {
    for (size_t i = 0; i < sizeof K2_OPS / sizeof K2_OPS[0]; i++) {
        size_t n = strlen(K2_OPS[i].k3);
        if (!strncmp(name, K2_OPS[i].k3, n) && (name[n] == 0 || name[n] == '_')) {
            *suffix = name + n;
            return &K2_OPS[i];
        }
    }
    return NULL;
}

/* The Keras 2 name of the outer layer a tensor refers to (op layers renamed). */
static json_t *k2_ref(const char *name, int outer) {
    const char *suffix;
    const k2_op_def *op = outer ? k2_op(name, &suffix) : NULL;
    if (!op) return json_string(name);
    char buf[96];
    snprintf(buf, sizeof buf, "%s%s", op->k2, suffix);
    return json_string(buf);
}

/* The values of a `__tensor__` argument, flattened ([[[[a, b, c]]]] -> [a, b, c]), or a
 * copy of a plain number. */
static json_t *k2_constant(json_t *arg) {
    json_t *v = json_object_get(json_object_get(arg, "config"), "value");
    if (!v) return json_deep_copy(arg);
    while (json_is_array(v) && json_array_size(v) == 1 && json_is_array(json_array_get(v, 0)))
        v = json_array_get(v, 0);
    return json_deep_copy(v);
}

/* The node of layer `src` a tensor comes from: a model (Sequential, Functional) called
 * on a tensor is its node 1 (node 0 is its own), any other layer's node 0. */
static int k2_node_index(json_t *layers, const char *src) {
    size_t j;
    json_t *l;
    json_array_foreach(layers, j, l) {
        const char *cls = json_string_value(json_object_get(l, "class_name"));
        if (!strcmp(json_string_value(json_object_get(l, "name")), src) &&
            (!strcmp(cls, "Sequential") || !strcmp(cls, "Functional")))
            return 1;
    }
    return 0;
}

/* Keras 3 node {args, kwargs} -> Keras 2 [[[layer, node, 0, kwargs], ...]]. */
static json_t *k2_node(json_t *layers, json_t *node, int outer) {
    json_t *args = json_object_get(node, "args"), *kwargs = json_object_get(node, "kwargs");
    json_t *list = json_array(), *tensors = json_array_get(args, 0);
    json_t *extra = json_is_object(kwargs) ? json_deep_copy(kwargs) : json_object();
    json_object_del(extra, "mask");
    json_t *one = json_array();
    if (json_is_array(tensors)) {
        json_array_extend(one, tensors);
    } else {
        json_array_append(one, tensors);
    }
    size_t i;
    json_t *t;
    json_array_foreach(one, i, t) {
        json_t *hist = json_object_get(json_object_get(t, "config"), "keras_history");
        const char *src = json_string_value(json_array_get(hist, 0));
        json_array_append_new(list, json_pack("[oii O]", k2_ref(src, outer),
                                              k2_node_index(layers, src), 0, extra));
    }
    json_decref(one);
    json_decref(extra);
    return json_pack("[o]", list);
}

/* An outer op layer as tf-keras 2 writes it: one inbound node, saved one level flatter
 * than a layer's ([layer, node, tensor, kwargs]), the constant among the kwargs. */
static json_t *k2_op_layer(json_t *layers, const k2_op_def *op, const char *suffix, json_t *node) {
    json_t *args = json_object_get(node, "args");
    json_t *hist = json_object_get(json_object_get(json_array_get(args, 0), "config"), "keras_history");
    const char *src = json_string_value(json_array_get(hist, 0));
    json_t *kwargs;
    if (!strcmp(op->cls, "SlicingOpLambda")) /* x[..., ::-1] */
        kwargs = json_pack("{s:[{s:s}, {s:n, s:n, s:i}]}", "slice_spec", "class_name",
                           "__ellipsis__", "start", "stop", "step", -1);
    else if (!strcmp(op->function, "nn.bias_add"))
        kwargs = json_pack("{s:o, s:s}", "bias", k2_constant(json_array_get(args, 1)),
                           "data_format", "NHWC");
    else
        kwargs = json_pack("{s:o, s:n}", "y", k2_constant(json_array_get(args, 1)), "name");
    char name[96];
    snprintf(name, sizeof name, "%s%s", op->k2, suffix);
    return json_pack("{s:s, s:{s:s, s:b, s:s, s:s}, s:s, s:[[oiio]]}", "class_name", op->cls,
                     "config", "name", name, "trainable", 1, "dtype", "float32", "function",
                     op->function, "name", name, "inbound_nodes",
                     k2_ref(src, 1), k2_node_index(layers, src), 0, kwargs);
}

/* Rewrites one config.layers list (and nested models' lists, outer = 0) in place. */
static void k2_layers(json_t *layers, int outer) {
    json_t *done = json_array();
    size_t i;
    json_t *l;
    json_array_foreach(layers, i, l) {
        const char *cls = json_string_value(json_object_get(l, "class_name"));
        const char *lname = json_string_value(json_object_get(l, "name")), *suffix;
        const k2_op_def *op = NULL;
        if (outer && !strcmp(json_string_value(json_object_get(l, "module")), "keras.src.ops.numpy"))
            op = k2_op(lname, &suffix);
        if (op) {
            /* the channel flip is the first GetItem alone in tf-keras 2 */
            if (!strcmp(cls, "GetItem") && strcmp(lname, "get_item")) continue;
            if (!strcmp(cls, "Stack")) continue;
            json_array_append_new(done, k2_op_layer(layers, op, suffix,
                                                    json_array_get(json_object_get(l, "inbound_nodes"), 0)));
            continue;
        }
        json_t *c = json_object_get(l, "config");
        json_t *nodes = json_object_get(l, "inbound_nodes"), *k2nodes = json_array();
        size_t j;
        json_t *n;
        json_array_foreach(nodes, j, n) {
            json_t *k2 = k2_node(layers, n, outer);
            json_array_extend(k2nodes, k2);
            json_decref(k2);
        }
        if (!strcmp(cls, "RandomFlip") || !strcmp(cls, "RandomRotation")) {
            json_object_del(c, "data_format"); /* Keras 3 only */
        } else if (!strcmp(cls, "CustomScaleLayer")) {
            json_object_set_new(l, "class_name", json_string("Custom>CustomScaleLayer"));
        } else if (!strcmp(cls, "InputLayer")) {
            json_object_set(c, "batch_input_shape", json_object_get(c, "batch_shape"));
            json_object_del(c, "batch_shape");
        } else if (!strcmp(cls, "Activation") &&
                   !strcmp(json_string_value(json_object_get(c, "activation")), "relu6")) {
            json_object_set_new(l, "class_name", json_string("ReLU"));
            json_object_del(c, "activation");
            json_object_set_new(c, "max_value", json_real(6.0));
            json_object_set_new(c, "negative_slope", json_real(0.0));
            json_object_set_new(c, "threshold", json_real(0.0));
        }
        json_object_set_new(l, "inbound_nodes", k2nodes);
        json_object_del(l, "module");
        json_object_del(l, "registered_name");
        json_t *inner = json_object_get(json_object_get(l, "config"), "layers");
        if (json_is_array(inner)) {
            k2_layers(inner, 0);
            json_t *lc = json_object_get(l, "config");
            /* Keras 2 lists input/output layers as lists of [name, node, tensor] */
            json_t *in = json_object_get(lc, "input_layers"), *out = json_object_get(lc, "output_layers");
            if (in) json_object_set_new(lc, "input_layers", json_pack("[O]", in));
            if (out) json_object_set_new(lc, "output_layers", json_pack("[O]", out));
        }
        json_array_append(done, l);
    }
    json_array_clear(layers);
    json_array_extend(layers, done);
    json_decref(done);
}

int wn_keras2_model_config_json(const wn_model *m, char **out) {
    *out = NULL;
    json_t *root = config_tree(m);
    if (!root) return WN_ERR;
    json_t *conf = json_object_get(root, "config");
    k2_layers(json_object_get(conf, "layers"), 1);
    json_object_set_new(conf, "input_layers", json_pack("[O]", json_object_get(conf, "input_layers")));
    json_object_set_new(conf, "output_layers", json_pack("[O]", json_object_get(conf, "output_layers")));
    json_t *k2 = json_pack("{s:s, s:O}", "class_name", "Functional", "config", conf);
    json_decref(root);
    char *text = k2 ? json_dumps(k2, JSON_COMPACT) : NULL;
    json_decref(k2);
    if (!text) return wn_fail("Keras config: out of memory building model_config");
    *out = text;
    return WN_OK;
}

/* The Keras 3 config as a JSON tree (NULL + reason on failure). */
static json_t *config_tree(const wn_model *m) {
    const wn_graph *g = &m->graph;
    int first = m->backbone_first, end = first + m->backbone_count;
    const char *bname = wn_model_backbone_name(m);
    int h = m->image_h, w = m->image_w;

    /* the nested backbone */
    json_t *inner = json_array();
    for (int i = first; i < end; i++) {
        json_t *e = backbone_layer(g, &g->layers[i], first);
        if (!e) {
            json_decref(inner);
            wn_fail("Keras config: layer '%s' (%s) has no Keras 3 equivalent here",
                    g->layers[i].name, wn_layer_type_keras(g->layers[i].type));
            return NULL;
        }
        if (g->layers[i].type != WN_LAYER_INPUT) /* InputLayer takes no trainable */
            json_object_set_new(json_object_get(e, "config"), "trainable", json_false());
        json_array_append_new(inner, e);
    }
    const wn_layer *bout = &g->layers[m->backbone_output];
    json_t *bconf = json_pack("{s:o, s:[sii], s:[sii], s:b}", "layers", inner, "input_layers",
                              g->layers[first].name, 0, 0, "output_layers", bout->name, 0, 0,
                              "trainable", 0);

    /* the outer model */
    json_t *layers = json_array();
    json_t *in = json_object();
    set(in, "batch_shape", json_pack("[niii]", h, w, 3));
    set(in, "sparse", json_false());
    set(in, "ragged", json_false());
    json_array_append_new(layers, entry("keras.layers", "InputLayer", NULL, "input_layer", in, NULL));
    json_array_append_new(layers, augment_sequential(m, "input_layer"));
    const char *pre_out = preprocess_layers(
        layers, m->backbone ? m->backbone->preprocess : WN_PREPROCESS_TF, "sequential", h, w);
    json_t *bargs = json_pack("[o]", tensor(pre_out, 3, h, w, 3));
    json_t *bent = entry("keras.src.models.functional", "Functional", "Functional", bname, bconf,
                         node(bargs, json_pack("{s:b}", "training", 0)));
    json_object_set_new(json_object_get(bent, "config"), "trainable", json_false());
    json_array_append_new(layers, bent);
    for (int i = end; i < g->n_layers; i++) {
        const wn_layer *l = &g->layers[i];
        const wn_layer *src = &g->layers[l->inputs[0]];
        json_t *t = i == end ? tensor(bname, 3, src->out_h, src->out_w, src->out_c)
                             : layer_tensor(src);
        json_t *c = json_object(), *e;
        if (l->type == WN_LAYER_GAP) {
            set(c, "data_format", json_string("channels_last"));
            set(c, "keepdims", json_false());
            e = entry("keras.layers", "GlobalAveragePooling2D", NULL, l->name, c,
                      node(json_pack("[o]", t), NULL));
        } else if (l->type == WN_LAYER_DROPOUT) {
            set(c, "rate", real_f(l->rate));
            set(c, "seed", json_null());
            set(c, "noise_shape", json_null());
            e = entry("keras.layers", "Dropout", NULL, l->name, c, node(json_pack("[o]", t), NULL));
        } else if (l->type == WN_LAYER_DENSE) {
            set(c, "units", json_integer(l->out_c));
            set(c, "activation", json_string("softmax"));
            set(c, "use_bias", json_boolean(l->use_bias));
            e = entry("keras.layers", "Dense", NULL, l->name, c, node(json_pack("[o]", t), NULL));
        } else {
            json_decref(c), json_decref(t), json_decref(layers);
            wn_fail("Keras config: head layer '%s' (%s) is not GAP/Dropout/Dense", l->name,
                    wn_layer_type_keras(l->type));
            return NULL;
        }
        json_array_append_new(layers, e);
    }
    const wn_layer *last = &g->layers[g->n_layers - 1];
    json_t *conf = json_pack("{s:s, s:b, s:o, s:[sii], s:[sii]}", "name", "functional",
                             "trainable", 1, "layers", layers, "input_layers", "input_layer", 0,
                             0, "output_layers", last->name, 0, 0);
    json_t *root = json_pack("{s:s, s:s, s:o, s:s, s:{s:n}, s:n}", "module",
                             "keras.src.models.functional", "class_name", "Functional", "config",
                             conf, "registered_name", "Functional", "build_config",
                             "input_shape", "compile_config");
    if (!root) wn_fail("Keras config: out of memory building config.json");
    return root;
}

int wn_keras_metadata_json(char **out) {
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%Y-%m-%d@%H:%M:%S", &tm);
    json_t *m = json_pack("{s:s, s:s}", "keras_version", WN_KERAS3_FORMAT_VERSION, "date_saved", date);
    *out = m ? json_dumps(m, JSON_COMPACT) : NULL;
    json_decref(m);
    return *out ? WN_OK : wn_fail("Keras config: out of memory building metadata.json");
}
