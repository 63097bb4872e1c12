/* tests/h5/test_model_weights.c — engine/train/model_weights.h on a tiny hand-built model
 * (the notebook's outer structure around a 4-weighted-layer backbone, with a biased
 * conv and a BatchNormalization with gamma): round trips of both export layouts,
 * loading by position (foreign names, like the official file) and by name, and every
 * error case — truncated, not HDF5, missing file, wrong shape, wrong dtype, missing
 * layer, extra layer, NaN, wrong weight order, wrong nested count — each with a
 * message naming the layer and expected vs found, and the model untouched. */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/base/error.h"
#include "engine/model/model.h"
#include "host/h5_keras.h"
#include "engine/train/model_weights.h"
#include "tests/common/check.h"


static char dir[256];
static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, 512, "%s/%s", dir, name);
    return p;
}

/* ---------------------------------------------------------------- the tiny model */

/* input_2 -> conv2d (3x3, 4, no bias) -> batch_normalization (no gamma) -> activation
 * -> tiny_conv (1x1, 5, bias) -> batch_normalization_1 (with gamma) */
static int tiny_build(wn_graph *g, int from, int h, int w) {
    int x = wn_graph_add_input(g, NULL, h, w, 3, from);
    x = wn_graph_add_conv2d(g, NULL, x, 4, 3, 3, 1, 1, WN_PAD_SAME, 0);
    x = wn_graph_add_batchnorm(g, NULL, x, 0, 1e-3f);
    x = wn_graph_add_activation(g, NULL, x, WN_ACT_RELU);
    x = wn_graph_add_conv2d(g, "tiny_conv", x, 5, 1, 1, 1, 1, WN_PAD_SAME, 1);
    return wn_graph_add_batchnorm(g, NULL, x, 1, 1e-3f);
}

static const wn_backbone_def tiny_def = {"tiny", "tiny_net", 4, WN_PREPROCESS_TF, tiny_build, NULL, 0};

/* The same assembly as wn_model_create (engine/model.c), around tiny_def. */
static int tiny_model(wn_model *m, unsigned seed) {
    memset(m, 0, sizeof *m);
    m->backbone = &tiny_def;
    m->image_h = m->image_w = 8;
    m->num_classes = 3;
    m->dropout_rate = 0.2f;
    wn_graph *g = &m->graph;
    wn_graph_init(g, "model");
    int x = wn_graph_add_input(g, NULL, 8, 8, 3, -1);
    x = wn_graph_add_augment(g, NULL, x);
    m->backbone_first = g->n_layers;
    x = tiny_build(g, x, 8, 8);
    x = wn_graph_order_keras(g, m->backbone_first, x);
    if (x < 0) return WN_ERR;
    m->backbone_output = x;
    m->backbone_count = g->n_layers - m->backbone_first;
    for (int i = m->backbone_first; i < g->n_layers; i++) g->layers[i].block = 1;
    x = wn_graph_add_gap(g, NULL, x);
    x = wn_graph_add_dropout(g, NULL, x, 0.2f);
    x = wn_graph_add_dense(g, NULL, x, 3, 1);
    m->logits_layer = x;
    if (wn_graph_finalize(g, x) != WN_OK) return WN_ERR;
    m->params = malloc((g->n_params + 1) * sizeof(float));
    m->stats = malloc((g->n_stats + 1) * sizeof(float));
    srand(seed);
    for (size_t i = 0; i < g->n_params; i++) m->params[i] = (float)rand() / RAND_MAX - 0.5f;
    for (size_t i = 0; i < g->n_stats; i++) m->stats[i] = (float)rand() / RAND_MAX + 0.1f;
    return WN_OK;
}

static void tiny_free(wn_model *m) {
    wn_graph_free(&m->graph);
    free(m->params), free(m->stats);
}

static int same_weights(const wn_model *a, const wn_model *b, int backbone_only) {
    for (int i = 0; i < a->graph.n_layers; i++) {
        if (backbone_only && a->graph.layers[i].block != 1) continue;
        const wn_layer *l = &a->graph.layers[i];
        for (int k = 0; k < l->n_weights; k++) {
            const wn_weight *w = &l->weights[k];
            const float *pa = (w->in_stats ? a->stats : a->params) + w->offset;
            const float *pb = (w->in_stats ? b->stats : b->params) + w->offset;
            if (memcmp(pa, pb, w->count * sizeof(float))) return 0;
        }
    }
    return 1;
}

/* ---------------------------------------------------------------- flat files */

/* A notop-style file of the tiny backbone, built here so that tests can rename,
 * drop, add or reshape things. */
typedef struct flat {
    wn_h5_out_layer layers[16];
    wn_h5_out_weight weights[16][WN_MAX_WEIGHTS];
    char lnames[16][WN_NAME_MAX];
    char wnames[16][WN_MAX_WEIGHTS][96];
    int n;
} flat;

static void flat_from(flat *f, const wn_model *m, int foreign_names) {
    memset(f, 0, sizeof *f);
    for (int i = m->backbone_first; i < m->backbone_first + m->backbone_count; i++) {
        const wn_layer *l = &m->graph.layers[i];
        int j = f->n++;
        if (foreign_names) /* TF-slim style, like the official file */
            snprintf(f->lnames[j], sizeof f->lnames[j], "Slim_%d_%s", j,
                     wn_layer_type_keras(l->type));
        else
            snprintf(f->lnames[j], sizeof f->lnames[j], "%s", l->name);
        f->layers[j] = (wn_h5_out_layer){f->lnames[j], l->n_weights, f->weights[j]};
        for (int k = 0; k < l->n_weights; k++) {
            const wn_weight *w = &l->weights[k];
            const char *kind = strrchr(w->name, '/') + 1;
            snprintf(f->wnames[j][k], sizeof f->wnames[j][k], "%s/%s", f->lnames[j], kind);
            wn_h5_out_weight *o = &f->weights[j][k];
            o->name = f->wnames[j][k];
            o->rank = w->rank;
            for (int r = 0; r < w->rank; r++) o->dims[r] = w->dims[r];
            o->data = (w->in_stats ? m->stats : m->params) + w->offset;
        }
    }
}

static int flat_find(const flat *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->lnames[i], name)) return i;
    return -1;
}

/* ---------------------------------------------------------------- checks */

/* Loading `path` into m fails, the reason has the fragments, and m is unchanged. */
static void expect_refused(wn_model *m, const char *path, const char *f1, const char *f2,
                           const char *f3) {
    wn_model snap;
    tiny_model(&snap, 1);
    memcpy(snap.params, m->params, m->graph.n_params * sizeof(float));
    memcpy(snap.stats, m->stats, m->graph.n_stats * sizeof(float));
    int rc = wn_model_weights_load(m, path, NULL);
    const char *r = wn_last_error();
    CHECK(rc == WN_ERR, "%s should be refused", path);
    CHECK(strstr(r, f1) && (!f2 || strstr(r, f2)) && (!f3 || strstr(r, f3)),
          "reason '%s' lacks '%s' / '%s' / '%s'", r, f1, f2 ? f2 : "", f3 ? f3 : "");
    CHECK(same_weights(m, &snap, 0), "%s: the model was changed by a refused load", path);
    printf("  refused as expected: %s\n", r);
    tiny_free(&snap);
}

static void test_roundtrip_whole(void) {
    wn_model a, b;
    tiny_model(&a, 1), tiny_model(&b, 2);
    const char *path = tmp_path("whole.h5");
    CHECK(wn_model_weights_save(&a, path, WN_WEIGHTS_WHOLE_MODEL) == WN_OK, "save: %s",
          wn_last_error());
    /* the outer layout: Keras's outer model.layers, the backbone as one nested group */
    wn_h5_file *f;
    CHECK(wn_h5_open(path, &f) == WN_OK, "open: %s", wn_last_error());
    if (f) {
        static const char *expect[] = {"input_1", "sequential", "tf.math.truediv",
                                       "tf.math.subtract", "tiny_net", "global_average_pooling2d",
                                       "dropout", "dense"};
        CHECK(f->n_layers == 8, "%d outer layers", f->n_layers);
        for (int i = 0; i < 8 && i < f->n_layers; i++)
            CHECK(!strcmp(f->layers[i].name, expect[i]), "outer layer %d: '%s'", i,
                  f->layers[i].name);
        int nest = wn_h5_find_layer(f, "tiny_net");
        CHECK(nest >= 0 && f->layers[nest].n_weights == 1 + 3 + 2 + 4, "nested weights %d",
              nest >= 0 ? f->layers[nest].n_weights : -1);
        if (nest >= 0 && f->layers[nest].n_weights == 10)
            CHECK(!strcmp(f->layers[nest].weights[0].name, "conv2d/kernel:0") &&
                      !strcmp(f->layers[nest].weights[6].name, "batch_normalization_1/gamma:0"),
                  "nested names '%s' '%s'", f->layers[nest].weights[0].name,
                  f->layers[nest].weights[6].name);
        wn_h5_close(f);
    }
    wn_weights_info info;
    CHECK(wn_model_weights_load(&b, path, &info) == WN_OK, "load: %s", wn_last_error());
    CHECK(same_weights(&a, &b, 0), "whole round trip not bit-exact");
    CHECK(info.scope == WN_WEIGHTS_WHOLE_MODEL && info.nested && info.by_name &&
              info.layers == 5 && !strcmp(info.keras_version, "2.21.0"),
          "info scope %d nested %d by_name %d layers %d", info.scope, info.nested, info.by_name,
          info.layers);
    tiny_free(&a), tiny_free(&b);
}

static void test_roundtrip_backbone(void) {
    wn_model a, b, b0;
    tiny_model(&a, 1), tiny_model(&b, 2), tiny_model(&b0, 2);
    const char *path = tmp_path("notop.h5");
    CHECK(wn_model_weights_save(&a, path, WN_WEIGHTS_BACKBONE_ONLY) == WN_OK, "save: %s",
          wn_last_error());
    wn_weights_info info;
    CHECK(wn_model_weights_load(&b, path, &info) == WN_OK, "load: %s", wn_last_error());
    CHECK(same_weights(&a, &b, 1), "backbone round trip not bit-exact");
    const wn_layer *dense = &b.graph.layers[b.logits_layer];
    CHECK(!memcmp(b.params + dense->weights[0].offset, b0.params + dense->weights[0].offset,
                  dense->weights[0].count * sizeof(float)),
          "a backbone-only load must leave the head alone");
    CHECK(info.scope == WN_WEIGHTS_BACKBONE_ONLY && !info.nested && info.by_name &&
              info.layers == 4,
          "info scope %d by_name %d layers %d", info.scope, info.by_name, info.layers);
    tiny_free(&a), tiny_free(&b), tiny_free(&b0);
}

/* TF-slim-style names, like the official notop file: matched by position. */
static void test_by_position(void) {
    wn_model a, b;
    tiny_model(&a, 1), tiny_model(&b, 2);
    static flat fl;
    flat_from(&fl, &a, 1);
    const char *path = tmp_path("slim.h5");
    wn_h5_write_opts o = {.fixed_length_strings = 1, .no_top_level_group = 1,
                          .keras_version = "2.0.8"};
    CHECK(wn_h5_write(path, fl.layers, fl.n, &o) == WN_OK, "write: %s", wn_last_error());
    wn_weights_info info;
    CHECK(wn_model_weights_load(&b, path, &info) == WN_OK, "load: %s", wn_last_error());
    CHECK(same_weights(&a, &b, 1), "positional load not bit-exact");
    CHECK(!info.by_name && info.scope == WN_WEIGHTS_BACKBONE_ONLY, "by_name %d", info.by_name);
    tiny_free(&a), tiny_free(&b);
}

static void write_flat(const flat *f, const char *path) {
    CHECK(wn_h5_write(path, f->layers, f->n, NULL) == WN_OK, "write %s: %s", path,
          wn_last_error());
}

static void test_errors(void) {
    wn_model m, src;
    tiny_model(&m, 7), tiny_model(&src, 8);
    static flat fl;

    expect_refused(&m, tmp_path("absent.h5"), "absent.h5", "no such weight file",
                   "weights/README.md");

    const char *text = tmp_path("text.h5");
    FILE *fp = fopen(text, "w");
    fputs("not a weight file\n", fp);
    fclose(fp);
    expect_refused(&m, text, "text.h5", "not an HDF5 file", NULL);

    /* truncated: half of a valid export */
    const char *whole = tmp_path("src_whole.h5"), *trunc = tmp_path("truncated.h5");
    CHECK(wn_model_weights_save(&src, whole, WN_WEIGHTS_WHOLE_MODEL) == WN_OK, "save");
    fp = fopen(whole, "rb");
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    fp = fopen(trunc, "wb");
    fwrite(buf, 1, n / 2, fp);
    fclose(fp);
    expect_refused(&m, trunc, "truncated.h5", "truncated", NULL);

    /* wrong shape: tiny_conv's kernel with 6 filters instead of 5 (data: any 30 floats) */
    flat_from(&fl, &src, 0);
    int tc = flat_find(&fl, "tiny_conv");
    fl.weights[tc][0].dims[3] = 6;
    static float big[64];
    fl.weights[tc][0].data = big;
    write_flat(&fl, tmp_path("shape.h5"));
    expect_refused(&m, tmp_path("shape.h5"), "'tiny_conv'", "expected shape (1,1,4,5)",
                   "found (1,1,4,6)");

    /* wrong shape, by position: the message names the file's layer too */
    flat_from(&fl, &src, 1);
    fl.weights[5][1].dims[0] = 7; /* batch_normalization_1 (layer 5): beta, after gamma */
    fl.weights[5][1].data = big;
    write_flat(&fl, tmp_path("shape_pos.h5"));
    expect_refused(&m, tmp_path("shape_pos.h5"), "'batch_normalization_1'", "found (7,)",
                   "matched by position");

    /* wrong dtype: the dense bias stored as float64 in an otherwise valid export */
    const char *f64 = tmp_path("dtype.h5");
    CHECK(wn_model_weights_save(&src, f64, WN_WEIGHTS_WHOLE_MODEL) == WN_OK, "save");
    hid_t file = H5Fopen(f64, H5F_ACC_RDWR, H5P_DEFAULT);
    H5Ldelete(file, "/dense/dense/bias:0", H5P_DEFAULT);
    hsize_t three = 3;
    hid_t s = H5Screate_simple(1, &three, NULL);
    hid_t d = H5Dcreate2(file, "/dense/dense/bias:0", H5T_IEEE_F64LE, s, H5P_DEFAULT,
                         H5P_DEFAULT, H5P_DEFAULT);
    double v[3] = {1, 2, 3};
    H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Dclose(d), H5Sclose(s), H5Fclose(file);
    expect_refused(&m, f64, "'dense'", "expected float32", "found float64");

    /* missing layer (Keras names): batch_normalization dropped */
    flat_from(&fl, &src, 0);
    int bn = flat_find(&fl, "batch_normalization");
    memmove(&fl.layers[bn], &fl.layers[bn + 1], (size_t)(fl.n - bn - 1) * sizeof fl.layers[0]);
    fl.n--;
    write_flat(&fl, tmp_path("missing.h5"));
    expect_refused(&m, tmp_path("missing.h5"), "'batch_normalization'", "missing from the file",
                   NULL);

    /* extra layer (Keras names): one more conv */
    flat_from(&fl, &src, 0);
    static wn_h5_out_weight extra_w = {"extra_conv/kernel:0", 4, {1, 1, 5, 5}, big};
    fl.layers[fl.n++] = (wn_h5_out_layer){"extra_conv", 1, &extra_w};
    write_flat(&fl, tmp_path("extra.h5"));
    expect_refused(&m, tmp_path("extra.h5"), "'extra_conv'", "does not have", NULL);

    /* another architecture (foreign names, other count) */
    flat_from(&fl, &src, 1);
    fl.n--;
    write_flat(&fl, tmp_path("other_arch.h5"));
    expect_refused(&m, tmp_path("other_arch.h5"), "3 layers with weights", "has 4",
                   "another architecture");

    /* NaN in the *last* weight read: everything before it was read already, so only
     * the scratch copy keeps the model intact */
    static float nan_data[5];
    flat_from(&fl, &src, 0);
    int last = flat_find(&fl, "batch_normalization_1");
    memcpy(nan_data, fl.weights[last][3].data, sizeof nan_data);
    nan_data[2] = NAN;
    fl.weights[last][3].data = nan_data;
    write_flat(&fl, tmp_path("nan.h5"));
    expect_refused(&m, tmp_path("nan.h5"), "'batch_normalization_1'",
                   "batch_normalization_1/moving_variance:0", "NaN");
    nan_data[2] = INFINITY;
    write_flat(&fl, tmp_path("inf.h5"));
    expect_refused(&m, tmp_path("inf.h5"), "'batch_normalization_1'", "infinite", NULL);

    /* wrong order inside a layer: beta and moving_mean swapped (same shapes) */
    flat_from(&fl, &src, 0);
    bn = flat_find(&fl, "batch_normalization");
    wn_h5_out_weight t = fl.weights[bn][0];
    fl.weights[bn][0] = fl.weights[bn][1];
    fl.weights[bn][1] = t;
    write_flat(&fl, tmp_path("order.h5"));
    expect_refused(&m, tmp_path("order.h5"), "'batch_normalization'", "'moving_mean' in its place",
                   NULL);

    /* a nested group with one weight too few */
    wn_model other;
    tiny_model(&other, 9);
    static wn_h5_out_weight nested[16];
    int nn = 0;
    for (int i = other.backbone_first; i < other.backbone_first + other.backbone_count; i++) {
        const wn_layer *l = &other.graph.layers[i];
        for (int k = 0; k < l->n_weights; k++) {
            const wn_weight *w = &l->weights[k];
            nested[nn] = (wn_h5_out_weight){w->name, w->rank, {0}, other.params};
            for (int r = 0; r < w->rank; r++) nested[nn].dims[r] = w->dims[r];
            nested[nn].data = (w->in_stats ? other.stats : other.params) + w->offset;
            nn++;
        }
    }
    const wn_layer *dl = &other.graph.layers[other.logits_layer];
    wn_h5_out_weight dense_w[2];
    for (int k = 0; k < 2; k++) {
        dense_w[k] = (wn_h5_out_weight){dl->weights[k].name, dl->weights[k].rank, {0}, NULL};
        for (int r = 0; r < dl->weights[k].rank; r++) dense_w[k].dims[r] = dl->weights[k].dims[r];
        dense_w[k].data = other.params + dl->weights[k].offset;
    }
    wn_h5_out_layer outer[3] = {{"input_1", 0, NULL}, {"tiny_net", nn - 1, nested},
                                {"dense", 2, dense_w}};
    CHECK(wn_h5_write(tmp_path("nested_short.h5"), outer, 3, NULL) == WN_OK, "write");
    expect_refused(&m, tmp_path("nested_short.h5"), "'tiny_net' has 9 weights",
                   "has 10", NULL);
    tiny_free(&other);
    tiny_free(&m), tiny_free(&src);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/wn_test_model_weights.XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    wn_model probe;
    if (tiny_model(&probe, 1) != WN_OK) {
        fprintf(stderr, "test_model_weights: cannot build the tiny model: %s\n",
                wn_last_error());
        return 1;
    }
    tiny_free(&probe);
    test_roundtrip_whole();
    test_roundtrip_backbone();
    test_by_position();
    test_errors();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
    if (test_failures) {
        fprintf(stderr, "test_model_weights: %d failure(s)\n", test_failures);
        return 1;
    }
    printf("test_model_weights: all checks passed\n");
    return 0;
}
