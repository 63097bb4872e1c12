/* tests/h5/test_h5_keras.c — the generic Keras HDF5 layer (host/h5_keras.h):
 * round trips (variable- and fixed-length names, split attributes, /model_weights,
 * sorted group creation, Keras's empty weight_names) and every file-level error
 * (missing, not HDF5, truncated, missing group or dataset, wrong dtype). The file
 * layout details checked here were observed on files written by tf-keras 2.21 with
 * h5py (h5dump); tests/keras/ checks the real thing against Keras itself. */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/base/error.h"
#include "host/h5_keras.h"
#include "tests/common/check.h"


static char dir[256];

static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, 512, "%s/%s", dir, name);
    return p;
}

/* An error reason contains every one of the given fragments. */
static int reason_has(const char *a, const char *b) {
    const char *r = wn_last_error();
    return strstr(r, a) && (!b || strstr(r, b));
}

static float kernel[3 * 3 * 2 * 4], bias[4], beta[4], mean[4], var[4];

static void fill(float *x, int n, float base) {
    for (int i = 0; i < n; i++) x[i] = base + 0.37f * (float)i - 1e-3f * (float)(i * i);
}

/* model.layers order, deliberately not sorted: input, conv, bn, act. */
static wn_h5_out_weight conv_w[2], bn_w[3];
static wn_h5_out_layer layers[4];

static void make_layers(void) {
    fill(kernel, 72, -3.f), fill(bias, 4, 0.5f), fill(beta, 4, -0.25f);
    fill(mean, 4, 0.1f), fill(var, 4, 1.5f);
    conv_w[0] = (wn_h5_out_weight){"zconv/kernel:0", 4, {3, 3, 2, 4}, kernel};
    conv_w[1] = (wn_h5_out_weight){"zconv/bias:0", 1, {4}, bias};
    bn_w[0] = (wn_h5_out_weight){"bn/beta:0", 1, {4}, beta};
    bn_w[1] = (wn_h5_out_weight){"bn/moving_mean:0", 1, {4}, mean};
    bn_w[2] = (wn_h5_out_weight){"bn/moving_variance:0", 1, {4}, var};
    layers[0] = (wn_h5_out_layer){"input_1", 0, NULL};
    layers[1] = (wn_h5_out_layer){"zconv", 2, conv_w};
    layers[2] = (wn_h5_out_layer){"bn", 3, bn_w};
    layers[3] = (wn_h5_out_layer){"activation", 0, NULL};
}

/* Reads the whole file back and compares names, shapes, order and bits. */
static void check_roundtrip(const char *path, int expect_top) {
    wn_h5_file *f;
    int rc = wn_h5_open(path, &f);
    CHECK(rc == WN_OK, "open %s: %s", path, wn_last_error());
    if (rc != WN_OK) return;
    CHECK(f->n_layers == 4, "%d layers", f->n_layers);
    CHECK(f->n_weighted_layers == 2, "%d weighted", f->n_weighted_layers);
    CHECK(!strcmp(f->backend, "tensorflow"), "backend '%s'", f->backend);
    CHECK(!strcmp(f->keras_version, "2.21.0"), "keras_version '%s'", f->keras_version);
    CHECK(f->has_top_level_group == expect_top, "top-level group %d", f->has_top_level_group);
    CHECK(!f->in_model_weights, "in_model_weights");
    for (int i = 0; i < 4 && i < f->n_layers; i++) {
        const wn_h5_layer *l = &f->layers[i];
        CHECK(!strcmp(l->name, layers[i].name), "layer %d '%s'", i, l->name);
        CHECK(l->n_weights == layers[i].n_weights, "layer %s: %d weights", l->name,
              l->n_weights);
        for (int k = 0; k < l->n_weights && k < layers[i].n_weights; k++) {
            const wn_h5_weight *w = &l->weights[k];
            const wn_h5_out_weight *e = &layers[i].weights[k];
            CHECK(!strcmp(w->name, e->name), "weight '%s' vs '%s'", w->name, e->name);
            CHECK(w->rank == e->rank && w->dtype == WN_H5_DTYPE_F32, "%s rank/dtype", w->name);
            size_t count = 1;
            for (int r = 0; r < e->rank; r++) {
                CHECK(w->dims[r] == e->dims[r], "%s dim %d", w->name, r);
                count *= (size_t)e->dims[r];
            }
            float back[128];
            CHECK(wn_h5_weight_read(f, i, k, back, count) == WN_OK, "read: %s",
                  wn_last_error());
            CHECK(!memcmp(back, e->data, count * sizeof(float)), "%s not bit-exact", w->name);
        }
    }
    CHECK(wn_h5_find_layer(f, "bn") == 2 && wn_h5_find_layer(f, "nope") == -1, "find");
    wn_h5_close(f);
}

/* Object-header address of /name: HDF5 allocates in creation order, so addresses
 * increasing in sorted name order show the groups were created sorted (as Keras does). */
static haddr_t group_addr(hid_t file, const char *name) {
    H5O_info_t info;
    if (H5Oget_info_by_name(file, name, &info, H5P_DEFAULT) < 0) return 0;
    return info.addr;
}

static void test_roundtrip_variable_length(void) {
    const char *path = tmp_path("vlen.h5");
    CHECK(wn_h5_write(path, layers, 4, NULL) == WN_OK, "write: %s", wn_last_error());
    check_roundtrip(path, 1);

    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CHECK(file >= 0, "raw open");
    /* names are variable-length strings, like tf-keras 2.21 + h5py 3 writes them */
    hid_t a = H5Aopen(file, "layer_names", H5P_DEFAULT);
    hid_t t = H5Aget_type(a);
    CHECK(H5Tis_variable_str(t) > 0, "layer_names should be variable-length");
    H5Tclose(t), H5Aclose(a);
    /* an empty weight_names is float64 of shape (0,), exactly as h5py writes [] */
    a = H5Aopen_by_name(file, "activation", "weight_names", H5P_DEFAULT, H5P_DEFAULT);
    t = H5Aget_type(a);
    hid_t s = H5Aget_space(a);
    hsize_t dim = 99;
    CHECK(H5Tget_class(t) == H5T_FLOAT && H5Tget_size(t) == 8, "empty weight_names type");
    CHECK(H5Sget_simple_extent_ndims(s) == 1 && H5Sget_simple_extent_dims(s, &dim, NULL) == 1 &&
              dim == 0,
          "empty weight_names shape");
    H5Sclose(s), H5Tclose(t), H5Aclose(a);
    /* datasets: float32 little-endian, contiguous, under the '/'-split subgroup */
    hid_t d = H5Dopen2(file, "/zconv/zconv/kernel:0", H5P_DEFAULT);
    CHECK(d >= 0, "dataset at /zconv/zconv/kernel:0");
    t = H5Dget_type(d);
    hid_t dcpl = H5Dget_create_plist(d);
    CHECK(H5Tequal(t, H5T_IEEE_F32LE) > 0, "dataset type");
    CHECK(H5Pget_layout(dcpl) == H5D_CONTIGUOUS, "dataset layout");
    H5Pclose(dcpl), H5Tclose(t), H5Dclose(d);
    /* groups created in sorted order, top_level_model_weights last */
    haddr_t a_act = group_addr(file, "activation"), a_bn = group_addr(file, "bn"),
            a_in = group_addr(file, "input_1"), a_conv = group_addr(file, "zconv"),
            a_top = group_addr(file, "top_level_model_weights");
    CHECK(a_act < a_bn && a_bn < a_in && a_in < a_conv && a_conv < a_top,
          "group creation order %llu %llu %llu %llu %llu", (unsigned long long)a_act,
          (unsigned long long)a_bn, (unsigned long long)a_in, (unsigned long long)a_conv,
          (unsigned long long)a_top);
    H5Fclose(file);
}

static void test_roundtrip_fixed_length(void) {
    const char *path = tmp_path("fixed.h5");
    wn_h5_write_opts o = {.fixed_length_strings = 1, .no_top_level_group = 1};
    CHECK(wn_h5_write(path, layers, 4, &o) == WN_OK, "write: %s", wn_last_error());
    check_roundtrip(path, 0);
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t a = H5Aopen(file, "layer_names", H5P_DEFAULT), t = H5Aget_type(a);
    CHECK(H5Tis_variable_str(t) == 0 && H5Tget_size(t) == strlen("activation") &&
              H5Tget_strpad(t) == H5T_STR_NULLPAD,
          "layer_names should be fixed-length NULLPAD of the longest name");
    H5Tclose(t), H5Aclose(a), H5Fclose(file);
}

/* layer_names past 64,512 bytes is split into layer_names0, layer_names1, ... with
 * np.array_split sizes (the first n % k chunks one longer). */
static void test_split_attribute(void) {
    enum { N = 3001 };
    static char names[N][48];
    static wn_h5_out_layer many[N];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "a_rather_long_layer_name_number_%08d", i);
        many[i] = (wn_h5_out_layer){names[i], 0, NULL};
    }
    /* 40 bytes x 3001 = 120,040 bytes: 2 chunks of 1501 and 1500 */
    const char *path = tmp_path("split.h5");
    CHECK(wn_h5_write(path, many, N, NULL) == WN_OK, "write: %s", wn_last_error());
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CHECK(H5Aexists(file, "layer_names") == 0, "unsplit layer_names present");
    CHECK(H5Aexists(file, "layer_names0") > 0 && H5Aexists(file, "layer_names1") > 0 &&
              H5Aexists(file, "layer_names2") == 0,
          "expected exactly two chunks");
    hid_t a = H5Aopen(file, "layer_names0", H5P_DEFAULT), s = H5Aget_space(a);
    CHECK(H5Sget_simple_extent_npoints(s) == 1501, "chunk 0 has %lld",
          (long long)H5Sget_simple_extent_npoints(s));
    H5Sclose(s), H5Aclose(a), H5Fclose(file);

    wn_h5_file *f;
    CHECK(wn_h5_open(path, &f) == WN_OK, "open: %s", wn_last_error());
    if (f) {
        CHECK(f->n_layers == N, "%d layers", f->n_layers);
        int in_order = f->n_layers == N;
        for (int i = 0; in_order && i < N; i++) in_order = !strcmp(f->layers[i].name, names[i]);
        CHECK(in_order, "split names out of order");
        wn_h5_close(f);
    }
}

/* A whole-model file (`model.save("x.h5")`) keeps the weights under /model_weights. */
static void test_model_weights_descent(void) {
    const char *src = tmp_path("vlen.h5"), *path = tmp_path("whole_model.h5");
    hid_t in = H5Fopen(src, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t out = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(in >= 0 && out >= 0, "raw files");
    CHECK(H5Ocopy(in, "/", out, "model_weights", H5P_DEFAULT, H5P_DEFAULT) >= 0, "copy");
    H5Fclose(in), H5Fclose(out);
    wn_h5_file *f;
    CHECK(wn_h5_open(path, &f) == WN_OK, "open: %s", wn_last_error());
    if (f) {
        CHECK(f->in_model_weights && f->n_layers == 4 && f->n_weighted_layers == 2,
              "descent %d %d", f->in_model_weights, f->n_layers);
        float back[4];
        CHECK(wn_h5_weight_read(f, 2, 2, back, 4) == WN_OK && !memcmp(back, var, sizeof var),
              "read under model_weights: %s", wn_last_error());
        wn_h5_close(f);
    }
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *fp = fopen(path, "wb");
    fwrite(data, 1, n, fp);
    fclose(fp);
}

static void expect_open_error(const char *path, const char *frag1, const char *frag2) {
    wn_h5_file *f = (wn_h5_file *)1;
    int rc = wn_h5_open(path, &f);
    CHECK(rc == WN_ERR && f == NULL, "%s should not open", path);
    CHECK(reason_has(frag1, frag2), "%s: reason '%s' lacks '%s'/'%s'", path, wn_last_error(),
          frag1, frag2 ? frag2 : "");
    printf("  refused as expected: %s\n", wn_last_error());
}

static void test_file_errors(void) {
    expect_open_error(tmp_path("does_not_exist.h5"), "does_not_exist.h5", "no such file");

    const char *text = tmp_path("text.h5");
    write_bytes(text, "this is not HDF5\n", 17);
    expect_open_error(text, "text.h5", "not an HDF5 file");

    /* truncated: the first half of a valid file (the signature is intact) */
    const char *trunc = tmp_path("truncated.h5");
    FILE *fp = fopen(tmp_path("vlen.h5"), "rb");
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    write_bytes(trunc, buf, n / 2);
    expect_open_error(trunc, "truncated.h5", "truncated");

    /* an HDF5 file that is not a Keras weight file */
    const char *plain = tmp_path("plain.h5");
    hid_t file = H5Fcreate(plain, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Fclose(file);
    expect_open_error(plain, "not a Keras weight file", "layer_names");

    /* layer_names lists a layer whose group is gone */
    const char *nogroup = tmp_path("nogroup.h5");
    CHECK(wn_h5_write(nogroup, layers, 4, NULL) == WN_OK, "write");
    file = H5Fopen(nogroup, H5F_ACC_RDWR, H5P_DEFAULT);
    H5Ldelete(file, "bn", H5P_DEFAULT);
    H5Fclose(file);
    expect_open_error(nogroup, "'bn'", "no group");

    /* weight_names lists a dataset that is gone */
    const char *nodata = tmp_path("nodata.h5");
    CHECK(wn_h5_write(nodata, layers, 4, NULL) == WN_OK, "write");
    file = H5Fopen(nodata, H5F_ACC_RDWR, H5P_DEFAULT);
    H5Ldelete(file, "/zconv/zconv/bias:0", H5P_DEFAULT);
    H5Fclose(file);
    expect_open_error(nodata, "zconv/bias:0", "no such dataset");

    /* a group without weight_names */
    const char *noattr = tmp_path("noattr.h5");
    CHECK(wn_h5_write(noattr, layers, 4, NULL) == WN_OK, "write");
    file = H5Fopen(noattr, H5F_ACC_RDWR, H5P_DEFAULT);
    H5Adelete_by_name(file, "activation", "weight_names", H5P_DEFAULT);
    H5Fclose(file);
    expect_open_error(noattr, "'activation'", "no weight_names");
}

/* A float64 weight is indexed (so the model mapper can say "found float64") but never
 * read as float32. */
static void test_wrong_dtype(void) {
    const char *path = tmp_path("f64.h5");
    CHECK(wn_h5_write(path, layers, 4, NULL) == WN_OK, "write");
    hid_t file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    H5Ldelete(file, "/bn/bn/beta:0", H5P_DEFAULT);
    hsize_t dim = 4;
    hid_t s = H5Screate_simple(1, &dim, NULL);
    hid_t d = H5Dcreate2(file, "/bn/bn/beta:0", H5T_IEEE_F64LE, s, H5P_DEFAULT, H5P_DEFAULT,
                         H5P_DEFAULT);
    double v[4] = {1, 2, 3, 4};
    H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Dclose(d), H5Sclose(s), H5Fclose(file);

    wn_h5_file *f;
    CHECK(wn_h5_open(path, &f) == WN_OK, "open: %s", wn_last_error());
    if (!f) return;
    CHECK(f->layers[2].weights[0].dtype == WN_H5_DTYPE_F64 &&
              !strcmp(f->layers[2].weights[0].dtype_desc, "float64"),
          "dtype %s", f->layers[2].weights[0].dtype_desc);
    float back[4];
    CHECK(wn_h5_weight_read(f, 2, 0, back, 4) == WN_ERR &&
              reason_has("expected float32, found float64", "'bn'"),
          "reason '%s'", wn_last_error());
    CHECK(wn_h5_weight_read(f, 2, 1, back, 5) == WN_ERR && reason_has("expected 5", "found 4"),
          "count reason '%s'", wn_last_error());
    wn_h5_close(f);
}

static void test_write_errors(void) {
    /* a folder that does not exist: clear failure, no stray temporary file */
    CHECK(wn_h5_write("/nonexistent-dir-wn/x.h5", layers, 4, NULL) == WN_ERR &&
              reason_has("x.h5", "writable"),
          "reason '%s'", wn_last_error());
    /* duplicate layer names are refused before anything is written */
    wn_h5_out_layer dup[2] = {{"a", 0, NULL}, {"a", 0, NULL}};
    const char *path = tmp_path("dup.h5");
    CHECK(wn_h5_write(path, dup, 2, NULL) == WN_ERR && reason_has("'a'", "twice"), "dup");
    CHECK(access(path, F_OK) != 0, "dup.h5 must not exist");
    /* overwriting replaces the old file whole */
    path = tmp_path("replace.h5");
    write_bytes(path, "old", 3);
    CHECK(wn_h5_write(path, layers, 4, NULL) == WN_OK, "replace: %s", wn_last_error());
    check_roundtrip(path, 1);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/wn_test_h5_keras.XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    make_layers();
    test_roundtrip_variable_length();
    test_roundtrip_fixed_length();
    test_split_attribute();
    test_model_weights_descent();
    test_file_errors();
    test_wrong_dtype();
    test_write_errors();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
    if (test_failures) {
        fprintf(stderr, "test_h5_keras: %d failure(s)\n", test_failures);
        return 1;
    }
    printf("test_h5_keras: all checks passed\n");
    return 0;
}
