/* engine/train/model_onnx.c — the notebook's model as an ONNX ModelProto (see model_onnx.h).
 *
 * One walk over the graph in Keras's layer order (a topological order, as ONNX
 * wants its nodes): each layer becomes its ONNX nodes and initializers, and
 * tensor[i] names the ONNX value that holds layer i's output (NCHW; [N, C] after
 * the global pooling). Dropout and a nested model's input are aliases of their
 * producer. Field numbers are onnx.proto's (onnx 1.23).
 */
#include "engine/train/model_onnx.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/base/atomic_file.h"
#include "host/base/error.h"
#include "host/keras_archive.h"
#include "host/protobuf_writer.h"

/* onnx.proto field numbers */
enum { MODEL_IR_VERSION = 1, MODEL_PRODUCER_NAME = 2, MODEL_DOC_STRING = 6, MODEL_GRAPH = 7,
       MODEL_OPSET_IMPORT = 8, MODEL_METADATA = 14 };
enum { OPSET_DOMAIN = 1, OPSET_VERSION = 2 };
enum { GRAPH_NODE = 1, GRAPH_NAME = 2, GRAPH_INITIALIZER = 5, GRAPH_INPUT = 11,
       GRAPH_OUTPUT = 12 };
enum { NODE_INPUT = 1, NODE_OUTPUT = 2, NODE_NAME = 3, NODE_OP_TYPE = 4, NODE_ATTRIBUTE = 5 };
enum { ATTR_NAME = 1, ATTR_F = 2, ATTR_I = 3, ATTR_INTS = 8, ATTR_TYPE = 20 };
enum { ATTR_TYPE_FLOAT = 1, ATTR_TYPE_INT = 2, ATTR_TYPE_INTS = 7 };
enum { TENSOR_DIMS = 1, TENSOR_DATA_TYPE = 2, TENSOR_NAME = 8, TENSOR_RAW_DATA = 9 };
enum { DATA_FLOAT = 1, DATA_INT64 = 7 };
enum { VALUE_NAME = 1, VALUE_TYPE = 2 };
enum { TYPE_TENSOR = 1, TENSOR_TYPE_ELEM = 1, TENSOR_TYPE_SHAPE = 2, SHAPE_DIM = 1,
       DIM_VALUE = 1, DIM_PARAM = 2 };
enum { ENTRY_KEY = 1, ENTRY_VALUE = 2 };

#define NAME_CAP (WN_NAME_MAX + 32)

typedef struct onnx_writer {
    wn_pb pb;
    const wn_model *m;
    const char **tensor; /* per layer id: the ONNX value holding its output */
    char *pooled;        /* per layer id: 1 when its output is [N, C] (after GAP) */
    int relu6_bounds;    /* the shared Clip bounds are written */
} onnx_writer;

/* ---------------------------------------------------------------- messages */

static size_t node_begin(onnx_writer *o, const char *op, const char *name, int n_in,
                         const char *const *in, const char *out) {
    wn_pb *pb = &o->pb;
    size_t mark = wn_pb_begin(pb, GRAPH_NODE);
    for (int i = 0; i < n_in; i++) wn_pb_string(pb, NODE_INPUT, in[i]);
    wn_pb_string(pb, NODE_OUTPUT, out);
    wn_pb_string(pb, NODE_NAME, name);
    wn_pb_string(pb, NODE_OP_TYPE, op);
    return mark;
}

/* A node without attributes. */
static void node(onnx_writer *o, const char *op, const char *name, int n_in,
                 const char *const *in, const char *out) {
    wn_pb_end(&o->pb, node_begin(o, op, name, n_in, in, out));
}

static void attr_int(onnx_writer *o, const char *name, int64_t v) {
    size_t a = wn_pb_begin(&o->pb, NODE_ATTRIBUTE);
    wn_pb_string(&o->pb, ATTR_NAME, name);
    wn_pb_varint(&o->pb, ATTR_TYPE, ATTR_TYPE_INT);
    wn_pb_int64(&o->pb, ATTR_I, v);
    wn_pb_end(&o->pb, a);
}

static void attr_float(onnx_writer *o, const char *name, float v) {
    size_t a = wn_pb_begin(&o->pb, NODE_ATTRIBUTE);
    wn_pb_string(&o->pb, ATTR_NAME, name);
    wn_pb_varint(&o->pb, ATTR_TYPE, ATTR_TYPE_FLOAT);
    wn_pb_float(&o->pb, ATTR_F, v);
    wn_pb_end(&o->pb, a);
}

static void attr_ints(onnx_writer *o, const char *name, int n, const int64_t *v) {
    size_t a = wn_pb_begin(&o->pb, NODE_ATTRIBUTE);
    wn_pb_string(&o->pb, ATTR_NAME, name);
    wn_pb_varint(&o->pb, ATTR_TYPE, ATTR_TYPE_INTS);
    for (int i = 0; i < n; i++) wn_pb_int64(&o->pb, ATTR_INTS, v[i]);
    wn_pb_end(&o->pb, a);
}

static void init_floats(onnx_writer *o, const char *name, int rank, const int64_t *dims,
                        const float *data, size_t count) {
    size_t t = wn_pb_begin(&o->pb, GRAPH_INITIALIZER);
    for (int i = 0; i < rank; i++) wn_pb_int64(&o->pb, TENSOR_DIMS, dims[i]);
    wn_pb_varint(&o->pb, TENSOR_DATA_TYPE, DATA_FLOAT);
    wn_pb_string(&o->pb, TENSOR_NAME, name);
    wn_pb_floats_le(&o->pb, TENSOR_RAW_DATA, data, count);
    wn_pb_end(&o->pb, t);
}

/* A one-dimensional int64 initializer of n <= 8 values (raw_data, little-endian). */
static void init_int64s(onnx_writer *o, const char *name, int n, const int64_t *v) {
    uint8_t raw[64];
    for (int i = 0; i < n; i++)
        for (int b = 0; b < 8; b++) raw[8 * i + b] = (uint8_t)((uint64_t)v[i] >> (8 * b));
    size_t t = wn_pb_begin(&o->pb, GRAPH_INITIALIZER);
    wn_pb_int64(&o->pb, TENSOR_DIMS, n);
    wn_pb_varint(&o->pb, TENSOR_DATA_TYPE, DATA_INT64);
    wn_pb_string(&o->pb, TENSOR_NAME, name);
    wn_pb_bytes(&o->pb, TENSOR_RAW_DATA, raw, (size_t)n * 8);
    wn_pb_end(&o->pb, t);
}

static void init_scalar(onnx_writer *o, const char *name, float v) {
    init_floats(o, name, 0, NULL, &v, 1);
}

/* A graph input or output: float32 [batch, d1, ...] with a symbolic batch. */
static void value_info(onnx_writer *o, int field, const char *name, int n_dims,
                       const int *dims) {
    wn_pb *pb = &o->pb;
    size_t v = wn_pb_begin(pb, field);
    wn_pb_string(pb, VALUE_NAME, name);
    size_t type = wn_pb_begin(pb, VALUE_TYPE);
    size_t tensor = wn_pb_begin(pb, TYPE_TENSOR);
    wn_pb_varint(pb, TENSOR_TYPE_ELEM, DATA_FLOAT);
    size_t shape = wn_pb_begin(pb, TENSOR_TYPE_SHAPE);
    size_t d = wn_pb_begin(pb, SHAPE_DIM);
    wn_pb_string(pb, DIM_PARAM, "batch");
    wn_pb_end(pb, d);
    for (int i = 0; i < n_dims; i++) {
        d = wn_pb_begin(pb, SHAPE_DIM);
        wn_pb_int64(pb, DIM_VALUE, dims[i]);
        wn_pb_end(pb, d);
    }
    wn_pb_end(pb, shape);
    wn_pb_end(pb, tensor);
    wn_pb_end(pb, type);
    wn_pb_end(pb, v);
}

static void metadata(onnx_writer *o, const char *key, const char *value) {
    size_t e = wn_pb_begin(&o->pb, MODEL_METADATA);
    wn_pb_string(&o->pb, ENTRY_KEY, key);
    wn_pb_string(&o->pb, ENTRY_VALUE, value);
    wn_pb_end(&o->pb, e);
}

/* ---------------------------------------------------------------- weights */

static const float *weight_data(const wn_model *m, const wn_weight *w) {
    return (w->in_stats ? m->stats : m->params) + w->offset;
}

/* The initializer name of a weight: its Keras name without ":0". */
static void weight_name(const wn_weight *w, char out[NAME_CAP]) {
    snprintf(out, NAME_CAP, "%s", w->name);
    size_t n = strlen(out);
    if (n > 2 && !strcmp(out + n - 2, ":0")) out[n - 2] = '\0';
}

/* A weight as it is (Dense kernels, biases, BN vectors), in its Keras shape. */
static void init_weight(onnx_writer *o, const wn_weight *w, char name[NAME_CAP]) {
    int64_t dims[4];
    for (int i = 0; i < w->rank; i++) dims[i] = w->dims[i];
    weight_name(w, name);
    init_floats(o, name, w->rank, dims, weight_data(o->m, w), w->count);
}

/* A Keras kernel (kh, kw, in, out) as ONNX's (out, in, kh, kw). A depthwise kernel
 * (kh, kw, C, 1) read as in = C, out = 1 has the memory order of ONNX's
 * (C, 1, kh, kw): `depthwise` declares that shape. */
static int init_kernel(onnx_writer *o, const wn_weight *w, int depthwise, char name[NAME_CAP]) {
    int kh = w->dims[0], kw = w->dims[1], ci = w->dims[2], co = w->dims[3];
    float *t = malloc(w->count * sizeof *t);
    if (!t) return wn_fail("out of memory converting %s", w->name);
    const float *k = weight_data(o->m, w);
    for (int y = 0; y < kh; y++)
        for (int x = 0; x < kw; x++)
            for (int i = 0; i < ci; i++)
                for (int c = 0; c < co; c++)
                    t[(((size_t)c * ci + i) * kh + y) * kw + x] =
                        k[(((size_t)y * kw + x) * ci + i) * co + c];
    int64_t dims[4] = {co, ci, kh, kw};
    if (depthwise) dims[0] = ci, dims[1] = 1;
    weight_name(w, name);
    init_floats(o, name, 4, dims, t, w->count);
    free(t);
    return WN_OK;
}

/* ---------------------------------------------------------------- layers */

static const wn_layer *in_layer(const onnx_writer *o, const wn_layer *l, int i) {
    return &o->m->graph.layers[l->inputs[i]];
}

static const char *in_tensor(const onnx_writer *o, const wn_layer *l, int i) {
    return o->tensor[l->inputs[i]];
}

/* kernel_shape, strides and pads (TensorFlow's 'same' rule made explicit) of a window
 * op on its input's shape. */
static int window_attrs(onnx_writer *o, const wn_layer *l) {
    const wn_layer *p = in_layer(o, l, 0);
    wn_window w;
    if (wn_window_init(&w, 1, p->out_h, p->out_w, p->out_c, l->kh, l->kw, l->sh, l->sw,
                       l->padding, l->name) != WN_OK)
        return WN_ERR;
    int64_t kernel[2] = {l->kh, l->kw}, strides[2] = {l->sh, l->sw};
    int64_t pads[4] = {w.pad_top, w.pad_left, w.pad_bottom, w.pad_right};
    attr_ints(o, "kernel_shape", 2, kernel);
    attr_ints(o, "strides", 2, strides);
    attr_ints(o, "pads", 4, pads);
    return WN_OK;
}

/* Conv of `x` into `out` with kernel weight k (bias weight b or NULL). */
static int conv_node(onnx_writer *o, const wn_layer *l, const char *x, const char *out,
                     const wn_weight *k, const wn_weight *b, int group, int window) {
    char kname[NAME_CAP], bname[NAME_CAP];
    if (init_kernel(o, k, group > 1, kname) != WN_OK) return WN_ERR;
    if (b) init_weight(o, b, bname);
    const char *in[3] = {x, kname, bname};
    size_t n = node_begin(o, "Conv", out, b ? 3 : 2, in, out);
    attr_int(o, "group", group);
    int rc = WN_OK;
    if (window) {
        rc = window_attrs(o, l);
    } else {
        int64_t one[2] = {1, 1};
        attr_ints(o, "kernel_shape", 2, one);
    }
    wn_pb_end(&o->pb, n);
    return rc;
}

static int emit_preprocess(onnx_writer *o, const wn_layer *l, const char *image) {
    char a[NAME_CAP], b[NAME_CAP], c[NAME_CAP], k1[NAME_CAP], k2[NAME_CAP];
    const char *in[2];
    const char *x = image;
    snprintf(a, sizeof a, "%s/step1", l->name);
    snprintf(b, sizeof b, "%s/step2", l->name);
    snprintf(c, sizeof c, "%s/step3", l->name);
    snprintf(k1, sizeof k1, "%s/const1", l->name);
    snprintf(k2, sizeof k2, "%s/const2", l->name);
    switch (o->m->backbone->preprocess) {
    case WN_PREPROCESS_TF: /* x / 127.5 - 1 */
        init_scalar(o, k1, 127.5f), init_scalar(o, k2, 1.0f);
        in[0] = x, in[1] = k1, node(o, "Div", a, 2, in, a);
        in[0] = a, in[1] = k2, node(o, "Sub", b, 2, in, b);
        x = b;
        break;
    case WN_PREPROCESS_LITE: /* (x - 127) / 128 */
        init_scalar(o, k1, 127.0f), init_scalar(o, k2, 128.0f);
        in[0] = x, in[1] = k1, node(o, "Sub", a, 2, in, a);
        in[0] = a, in[1] = k2, node(o, "Div", b, 2, in, b);
        x = b;
        break;
    case WN_PREPROCESS_CAFFE: { /* RGB -> BGR, minus the BGR means */
        const int64_t bgr[3] = {2, 1, 0}, three = 3;
        const float mean[3] = {103.939f, 116.779f, 123.68f};
        init_int64s(o, k1, 3, bgr);
        init_floats(o, k2, 1, &three, mean, 3);
        in[0] = x, in[1] = k1;
        size_t n = node_begin(o, "Gather", a, 2, in, a);
        attr_int(o, "axis", 3);
        wn_pb_end(&o->pb, n);
        in[0] = a, in[1] = k2, node(o, "Sub", b, 2, in, b);
        x = b;
        break;
    }
    case WN_PREPROCESS_TORCH: { /* (x / 255 - mean) / std */
        const int64_t three = 3;
        const float mean[3] = {0.485f, 0.456f, 0.406f}, stdev[3] = {0.229f, 0.224f, 0.225f};
        char k3[NAME_CAP];
        snprintf(k3, sizeof k3, "%s/const3", l->name);
        init_scalar(o, k1, 255.0f);
        init_floats(o, k2, 1, &three, mean, 3);
        init_floats(o, k3, 1, &three, stdev, 3);
        in[0] = x, in[1] = k1, node(o, "Div", a, 2, in, a);
        in[0] = a, in[1] = k2, node(o, "Sub", b, 2, in, b);
        in[0] = b, in[1] = k3, node(o, "Div", c, 2, in, c);
        x = c;
        break;
    }
    default:
        return wn_fail("ONNX export: layer %s: unknown preprocessing %d", l->name,
                       (int)o->m->backbone->preprocess);
    }
    /* NHWC -> NCHW: ONNX's Conv and pooling are channels-first */
    const int64_t perm[4] = {0, 3, 1, 2};
    size_t n = node_begin(o, "Transpose", l->name, 1, &x, l->name);
    attr_ints(o, "perm", 4, perm);
    wn_pb_end(&o->pb, n);
    return WN_OK;
}

static int emit_layer(onnx_writer *o, int id) {
    const wn_layer *l = &o->m->graph.layers[id];
    const char *x = l->n_inputs ? in_tensor(o, l, 0) : NULL;
    const char *in[WN_MAX_INPUTS + 1];
    char tmp[NAME_CAP], tmp2[NAME_CAP];
    o->tensor[id] = l->name;
    if (l->n_inputs && o->pooled[l->inputs[0]] && l->type != WN_LAYER_DROPOUT &&
        l->type != WN_LAYER_DENSE)
        return wn_fail("ONNX export: layer %s (%s) reads the pooled vector of %s; only Dropout "
                       "and Dense may follow GlobalAveragePooling2D",
                       l->name, wn_layer_keras_class(l), in_layer(o, l, 0)->name);
    switch (l->type) {
    case WN_LAYER_INPUT:
        if (l->n_inputs) o->tensor[id] = x; /* a nested model's input: its producer */
        else o->tensor[id] = WN_ONNX_INPUT_NAME;
        return WN_OK;
    case WN_LAYER_AUGMENT: return emit_preprocess(o, l, x);
    case WN_LAYER_CONV2D:
        return conv_node(o, l, x, l->name, &l->weights[0], l->use_bias ? &l->weights[1] : NULL,
                         1, 1);
    case WN_LAYER_DEPTHWISE_CONV2D:
        return conv_node(o, l, x, l->name, &l->weights[0], l->use_bias ? &l->weights[1] : NULL,
                         in_layer(o, l, 0)->out_c, 1);
    case WN_LAYER_SEPARABLE_CONV2D:
        snprintf(tmp, sizeof tmp, "%s/depthwise", l->name);
        if (conv_node(o, l, x, tmp, &l->weights[0], NULL, in_layer(o, l, 0)->out_c, 1) != WN_OK)
            return WN_ERR;
        return conv_node(o, l, tmp, l->name, &l->weights[1],
                         l->use_bias ? &l->weights[2] : NULL, 1, 0);
    case WN_LAYER_ZERO_PADDING: {
        const int64_t pads[8] = {0, 0, l->pad_t, l->pad_l, 0, 0, l->pad_b, l->pad_r};
        snprintf(tmp, sizeof tmp, "%s/pads", l->name);
        init_int64s(o, tmp, 8, pads);
        in[0] = x, in[1] = tmp;
        node(o, "Pad", l->name, 2, in, l->name);
        return WN_OK;
    }
    case WN_LAYER_BATCHNORM: {
        char names[4][NAME_CAP];
        const wn_weight *gamma = wn_bn_weight(l, WN_BN_GAMMA);
        if (gamma) {
            init_weight(o, gamma, names[0]);
        } else { /* scale=False: gamma is 1 */
            float *ones = malloc((size_t)l->out_c * sizeof *ones);
            if (!ones) return wn_fail("out of memory");
            for (int c = 0; c < l->out_c; c++) ones[c] = 1.0f;
            int64_t dim = l->out_c;
            snprintf(names[0], NAME_CAP, "%s/gamma", l->name);
            init_floats(o, names[0], 1, &dim, ones, (size_t)l->out_c);
            free(ones);
        }
        init_weight(o, wn_bn_weight(l, WN_BN_BETA), names[1]);
        init_weight(o, wn_bn_weight(l, WN_BN_MEAN), names[2]);
        init_weight(o, wn_bn_weight(l, WN_BN_VARIANCE), names[3]);
        const char *bn_in[5] = {x, names[0], names[1], names[2], names[3]};
        size_t n = node_begin(o, "BatchNormalization", l->name, 5, bn_in, l->name);
        attr_float(o, "epsilon", l->epsilon);
        wn_pb_end(&o->pb, n);
        return WN_OK;
    }
    case WN_LAYER_ACTIVATION:
        if (l->activation == WN_ACT_RELU) {
            node(o, "Relu", l->name, 1, &x, l->name);
        } else if (l->activation == WN_ACT_RELU6) {
            if (!o->relu6_bounds) {
                init_scalar(o, "relu6/min", 0.0f), init_scalar(o, "relu6/max", 6.0f);
                o->relu6_bounds = 1;
            }
            in[0] = x, in[1] = "relu6/min", in[2] = "relu6/max";
            node(o, "Clip", l->name, 3, in, l->name);
        } else {
            node(o, "Identity", l->name, 1, &x, l->name);
        }
        return WN_OK;
    case WN_LAYER_MAXPOOL:
    case WN_LAYER_AVGPOOL: {
        int avg = l->type == WN_LAYER_AVGPOOL;
        size_t n = node_begin(o, avg ? "AveragePool" : "MaxPool", l->name, 1, &x, l->name);
        /* Keras averages over the window's inside only, ONNX's default */
        if (avg) attr_int(o, "count_include_pad", 0);
        int rc = window_attrs(o, l);
        wn_pb_end(&o->pb, n);
        return rc;
    }
    case WN_LAYER_CONCAT: {
        for (int i = 0; i < l->n_inputs; i++) in[i] = in_tensor(o, l, i);
        size_t n = node_begin(o, "Concat", l->name, l->n_inputs, in, l->name);
        attr_int(o, "axis", 1);
        wn_pb_end(&o->pb, n);
        return WN_OK;
    }
    case WN_LAYER_SCALE_RESIDUAL: /* x + scale * r */
        snprintf(tmp, sizeof tmp, "%s/scale", l->name);
        snprintf(tmp2, sizeof tmp2, "%s/scaled", l->name);
        init_scalar(o, tmp, l->scale);
        in[0] = in_tensor(o, l, 1), in[1] = tmp;
        node(o, "Mul", tmp2, 2, in, tmp2);
        in[0] = x, in[1] = tmp2;
        node(o, "Add", l->name, 2, in, l->name);
        return WN_OK;
    case WN_LAYER_ADD: { /* ((x0 + x1) + x2) + ..., the engine's order */
        const char *acc = x;
        for (int i = 1; i < l->n_inputs; i++) {
            const char *out = l->name;
            if (i + 1 < l->n_inputs) {
                snprintf(i % 2 ? tmp : tmp2, NAME_CAP, "%s/sum%d", l->name, i);
                out = i % 2 ? tmp : tmp2;
            }
            in[0] = acc, in[1] = in_tensor(o, l, i);
            node(o, "Add", out, 2, in, out);
            acc = out;
        }
        return WN_OK;
    }
    case WN_LAYER_GAP:
        snprintf(tmp, sizeof tmp, "%s/pool", l->name);
        node(o, "GlobalAveragePool", tmp, 1, &x, tmp);
        {
            const char *t = tmp;
            size_t n = node_begin(o, "Flatten", l->name, 1, &t, l->name);
            attr_int(o, "axis", 1);
            wn_pb_end(&o->pb, n);
        }
        o->pooled[id] = 1;
        return WN_OK;
    case WN_LAYER_DROPOUT: /* inference: the identity */
        o->tensor[id] = x;
        o->pooled[id] = o->pooled[l->inputs[0]];
        return WN_OK;
    case WN_LAYER_DENSE: {
        if (!o->pooled[l->inputs[0]])
            return wn_fail("ONNX export: Dense layer %s reads %s, not a pooled vector", l->name,
                           in_layer(o, l, 0)->name);
        char kname[NAME_CAP], bname[NAME_CAP];
        init_weight(o, &l->weights[0], kname);
        if (l->use_bias) init_weight(o, &l->weights[1], bname);
        in[0] = x, in[1] = kname, in[2] = bname;
        node(o, l->use_bias ? "Gemm" : "MatMul", l->name, l->use_bias ? 3 : 2, in, l->name);
        o->pooled[id] = 1;
        return WN_OK;
    }
    case WN_LAYER_TYPE_COUNT: break;
    }
    return wn_fail("ONNX export: layer %s has a type (%d) the export does not know", l->name,
                   (int)l->type);
}

/* ---------------------------------------------------------------- the model */

static int write_graph(onnx_writer *o) {
    const wn_graph *g = &o->m->graph;
    if (g->output < 0 || g->layers[g->output].type != WN_LAYER_DENSE)
        return wn_fail("ONNX export: model %s does not end in a Dense layer", g->name);
    size_t graph = wn_pb_begin(&o->pb, MODEL_GRAPH);
    wn_pb_string(&o->pb, GRAPH_NAME, o->m->backbone->keras_name);
    int in_dims[3] = {g->in_h, g->in_w, g->in_c};
    value_info(o, GRAPH_INPUT, WN_ONNX_INPUT_NAME, 3, in_dims);
    for (int i = 0; i < g->n_layers; i++)
        if (emit_layer(o, i) != WN_OK) return WN_ERR;
    const char *logits = o->tensor[g->output];
    size_t n = node_begin(o, "Softmax", "softmax", 1, &logits, WN_ONNX_OUTPUT_NAME);
    attr_int(o, "axis", 1);
    wn_pb_end(&o->pb, n);
    int out_dims[1] = {o->m->num_classes};
    value_info(o, GRAPH_OUTPUT, WN_ONNX_OUTPUT_NAME, 1, out_dims);
    wn_pb_end(&o->pb, graph);
    return WN_OK;
}

static int write_model(onnx_writer *o, const char *const *class_names) {
    const wn_model *m = o->m;
    wn_pb *pb = &o->pb;
    wn_pb_int64(pb, MODEL_IR_VERSION, WN_ONNX_IR_VERSION);
    size_t opset = wn_pb_begin(pb, MODEL_OPSET_IMPORT);
    wn_pb_string(pb, OPSET_DOMAIN, "");
    wn_pb_int64(pb, OPSET_VERSION, WN_ONNX_OPSET);
    wn_pb_end(pb, opset);
    wn_pb_string(pb, MODEL_PRODUCER_NAME, "wastenet");
    char doc[512];
    snprintf(doc, sizeof doc,
             "%s (the notebook's model, inference mode). Input '" WN_ONNX_INPUT_NAME
             "': float32 [batch, %d, %d, 3] NHWC, RGB in [0, 255], already resized; "
             "preprocessing is in the graph. Output '" WN_ONNX_OUTPUT_NAME
             "': float32 [batch, %d] softmax probabilities.",
             m->backbone->keras_name, m->image_h, m->image_w, m->num_classes);
    wn_pb_string(pb, MODEL_DOC_STRING, doc);
    if (write_graph(o) != WN_OK) return WN_ERR;
    char size[32];
    snprintf(size, sizeof size, "%dx%d", m->image_h, m->image_w);
    metadata(o, "architecture", m->backbone->name);
    metadata(o, "image_size", size);
    if (class_names) {
        size_t len = 1;
        for (int c = 0; c < m->num_classes; c++) len += strlen(class_names[c]) + 1;
        char *list = malloc(len);
        if (!list) return wn_fail("out of memory");
        list[0] = '\0';
        for (int c = 0; c < m->num_classes; c++) {
            if (c) strcat(list, ",");
            strcat(list, class_names[c]);
        }
        metadata(o, "classes", list);
        free(list);
    }
    return WN_OK;
}

/* The file holds exactly the bytes built (the disk or a concurrent writer could
 * say otherwise). */
static int read_back(const char *path, const wn_pb *pb) {
    void *data = NULL;
    size_t size = 0;
    if (wn_read_file_bytes(path, &data, &size) != WN_OK)
        return wn_fail_context("%s: reading the ONNX file back: ", path);
    int same = size == pb->len && !memcmp(data, pb->data, size);
    free(data);
    if (!same) return wn_fail("%s: read back, the file differs from what was written", path);
    return WN_OK;
}

int wn_model_save_onnx(const wn_model *m, const char *path, const char *const *class_names) {
    onnx_writer o;
    memset(&o, 0, sizeof o);
    o.m = m;
    wn_pb_init(&o.pb);
    int n = m->graph.n_layers;
    o.tensor = calloc((size_t)n, sizeof *o.tensor);
    o.pooled = calloc((size_t)n, 1);
    int rc = o.tensor && o.pooled ? WN_OK : wn_fail("out of memory");
    if (rc == WN_OK) rc = write_model(&o, class_names);
    if (rc == WN_OK) rc = wn_pb_status(&o.pb);
    /* protobuf's (and so ONNX's) limit for one message without external data */
    if (rc == WN_OK && o.pb.len > INT32_MAX)
        rc = wn_fail("%s: the ONNX model would be %zu bytes, over protobuf's 2 GiB limit", path,
                     o.pb.len);
    if (rc == WN_OK) {
        wn_atomic_file f;
        rc = wn_atomic_open(&f, path);
        if (rc == WN_OK) {
            if (fwrite(o.pb.data, 1, o.pb.len, f.fp) != o.pb.len) {
                wn_atomic_abort(&f);
                rc = wn_fail("%s: write failed", path);
            } else {
                rc = wn_atomic_commit(&f);
            }
        }
    }
    if (rc == WN_OK) rc = read_back(path, &o.pb);
    wn_pb_free(&o.pb);
    free(o.tensor), free(o.pooled);
    return rc;
}
