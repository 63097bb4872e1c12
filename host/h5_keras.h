/* host/h5_keras.h — Keras 2's legacy HDF5 weight-file layout, read and written
 * generically (no model knowledge here; engine/train/model_weights.h maps a file to a model).
 *
 * The layout (`model.save_weights("x.h5")`, keras/saving/legacy/hdf5_format.py;
 * docs/KERAS_SEMANTICS.md §2):
 *   /                         attrs: layer_names  (every layer of model.layers, in
 *                                                  order; fixed- or variable-length
 *                                                  strings; split into layer_names0,
 *                                                  layer_names1, ... when large)
 *                                    backend       ("tensorflow")
 *                                    keras_version ("2.0.8", "2.21.0"; absent = Keras 1)
 *   /<layer>/                 attr weight_names: the layer's variables in its legacy
 *                                                  order ("conv2d/kernel:0", ...); an
 *                                                  empty list is a float64 array (0,)
 *   /<layer>/<weight name>    one dataset per weight ("/" in the name makes subgroups)
 *   /top_level_model_weights  an extra group, normally empty (newer Keras 2 writers;
 *                             absent from Keras 2.0 files such as the official one)
 * A whole-model file (`model.save("x.h5")`) has the same tree under /model_weights.
 * A nested model (the notebook's `inception_resnet_v2` inside the outer model) is one
 * layer group whose weight_names lists all of the inner model's variables.
 *
 * Keras 3's `.weights.h5` (`model.save_weights("x.weights.h5")`, and model.weights.h5
 * inside a `.keras` archive; keras/src/saving/saving_lib.py) has another layout:
 *   /layers/<slot>/vars/<i>   the i-th variable of a layer, in the layer's own order
 *                             (kernel, bias; gamma, beta, moving_mean, moving_variance)
 *   /layers/<slot>/vars       attr name: the layer's name (Keras >= 3.x; may be absent)
 *   /layers/<slot>/layers/... a nested model or Sequential, recursively
 * where <slot> is the snake_case class name with a per-class counter in the
 * container's model.layers order ("conv2d", "conv2d_1", ...; a nested Functional is
 * "functional"): Keras 3 matches by slot, not by layer name. wn_h5_open indexes it as
 * a flat list of the layers that have variables (nested ones included), each with
 * its slot path; a layer without a name attribute is named by its slot path.
 * wn_h5_write_keras3 writes this layout; wn_h5_write with opts.model_config writes a
 * whole-model legacy file (the layout under /model_weights).
 *
 * Reading: wn_h5_open() validates the file and indexes every layer and weight (name,
 * shape, dtype) without reading weight data; wn_h5_weight_read() then reads one
 * float32 weight. Writing: wn_h5_write() writes the layout as Keras 2 does (groups in
 * sorted name order, float32 contiguous datasets), atomically.
 *
 * Errors follow host/base/error.h: WN_ERR with a reason naming the file and what is wrong;
 * the HDF5 library's own error printing is switched off inside these calls.
 */
#ifndef WN_H5_KERAS_H
#define WN_H5_KERAS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WN_H5_MAX_RANK 8

/* Keras's per-attribute limit (HDF5_OBJECT_HEADER_LIMIT): larger attributes are split. */
#define WN_H5_ATTR_LIMIT 64512

typedef enum {
    WN_H5_DTYPE_F32 = 0, /* IEEE float32 (either byte order): the only one we load */
    WN_H5_DTYPE_F64,
    WN_H5_DTYPE_F16,
    WN_H5_DTYPE_OTHER    /* integers, strings, compounds... */
} wn_h5_dtype;

/* One weight of a layer, as the file describes it. */
typedef struct wn_h5_weight {
    char *name;                     /* as in weight_names, e.g. "conv2d/kernel:0" */
    int rank;
    int64_t dims[WN_H5_MAX_RANK];   /* row-major shape, e.g. HWIO for conv kernels */
    size_t count;                   /* product of dims */
    wn_h5_dtype dtype;
    char dtype_desc[24];            /* "float32", "float64", "int32", ... for messages */
} wn_h5_weight;

/* One entry of layer_names with its group's weights (n_weights may be 0); in a Keras 3
 * file, one layer with variables. */
typedef struct wn_h5_layer {
    char *name;
    int n_weights;
    wn_h5_weight *weights;
    char *slot;   /* Keras 3: "layers/functional/layers/conv2d_5" (datasets under
                     <slot>/vars); NULL in a Keras 2 layout file */
    int depth;    /* Keras 3: 0 in the saved model itself, 1 inside a nested model */
} wn_h5_layer;

typedef enum {
    WN_H5_LAYOUT_KERAS2 = 0, /* layer_names + weight_names (legacy h5, both Kerases) */
    WN_H5_LAYOUT_KERAS3 = 1  /* layers/<slot>/vars/<i> (.weights.h5) */
} wn_h5_layout;

/* An open weight file. Fields are read-only for callers. */
typedef struct wn_h5_file {
    char path[4096];           /* as messages name it */
    wn_h5_layout layout;
    char model_name[128];      /* Keras 3: the saved model's name (root vars attr), or "" */
    char nested_slot[256];     /* Keras 3: slot of the one nested model that has
                                  variables ("layers/functional"), or "" */
    int64_t file_id;           /* hid_t of the file */
    int64_t root_id;           /* hid_t of "/" or "/model_weights" */
    int in_model_weights;      /* 1 when the layout was found under /model_weights */
    char backend[64];          /* "" when absent */
    char keras_version[64];    /* "" when absent (a Keras 1 file) */
    int has_top_level_group;   /* the file has /top_level_model_weights */
    int n_layers;              /* entries of layer_names, in file order */
    wn_h5_layer *layers;
    int n_weighted_layers;     /* layers with n_weights > 0 */
} wn_h5_file;

/* Opens and indexes `path`. Fails with a clear reason when the file is missing,
 * unreadable, not HDF5 (or truncated), or not in Keras's weight layout (no
 * layer_names, a listed layer without its group, a weight_names entry without its
 * dataset; in a Keras 3 file, a vars group whose datasets are not 0..n-1). On
 * success *out must be released with wn_h5_close(). */
int wn_h5_open(const char *path, wn_h5_file **out);

/* wn_h5_open, but messages name the file `display` (e.g. "x.keras: model.weights.h5"
 * for a file extracted from an archive). */
int wn_h5_open_named(const char *path, const char *display, wn_h5_file **out);

void wn_h5_close(wn_h5_file *f);

/* Index of the layer called `name` in layer_names, or -1. */
int wn_h5_find_layer(const wn_h5_file *f, const char *name);

/* Reads weight `w` of layer `layer` into dst (`count` floats, row-major). Fails when
 * the dataset is not float32 or `count` differs from its element count. */
int wn_h5_weight_read(const wn_h5_file *f, int layer, int w, float *dst, size_t count);

/* ---------------------------------------------------------------- writing */

typedef struct wn_h5_out_weight {
    const char *name;               /* weight name, e.g. "dense/kernel:0" */
    int rank;
    int64_t dims[WN_H5_MAX_RANK];
    const float *data;              /* count = product of dims floats, row-major */
} wn_h5_out_weight;

typedef struct wn_h5_out_layer {
    const char *name;               /* layer name (unique in the file) */
    int n_weights;                  /* 0 for weightless layers */
    const wn_h5_out_weight *weights;
} wn_h5_out_layer;

typedef struct wn_h5_write_opts {
    const char *keras_version;      /* NULL: "2.21.0" (what tf-keras 2.21 writes) */
    const char *backend;            /* NULL: "tensorflow" */
    int fixed_length_strings;       /* 1: layer/weight names as fixed-length NULLPAD
                                       strings (numpy 'S', Keras 2.0 files); 0: variable-
                                       length (what tf-keras with h5py 3 writes) */
    int no_top_level_group;         /* 1: omit /top_level_model_weights (Keras 2.0) */
    const char *model_config;       /* non-NULL: a whole-model file (model.save("x.h5")):
                                       this JSON as the root's model_config attribute,
                                       the layout under /model_weights */
} wn_h5_write_opts;

/* Writes `layers` (in model.layers order) to `path` in Keras's legacy layout:
 * root attributes, one group per layer created in sorted name order, weight_names
 * (split into name0, name1, ... past WN_H5_ATTR_LIMIT bytes like Keras), float32
 * contiguous datasets, then /top_level_model_weights. Written to a temporary file and
 * renamed over `path` (host/base/atomic_file.h), so `path` is never half-written.
 * opts may be NULL for the defaults. */
int wn_h5_write(const char *path, const wn_h5_out_layer *layers, int n_layers,
                const wn_h5_write_opts *opts);

/* One group of a Keras 3 .weights.h5: "<path>/vars" with attr name and datasets
 * "0".."n-1" (the weights' own names are not written). path "" is the saved model
 * itself ("/vars"). */
typedef struct wn_h5_k3_group {
    char path[320];                 /* "layers/functional/layers/conv2d_5" */
    const char *name;               /* the layer's name (the vars attr) */
    int n_weights;
    const wn_h5_out_weight *weights;
} wn_h5_k3_group;

/* Writes `groups` in Keras 3's layout (what model.save_weights("x.weights.h5")
 * writes and load_weights reads), atomically like wn_h5_write. */
int wn_h5_write_keras3(const char *path, const wn_h5_k3_group *groups, int n_groups);

#ifdef __cplusplus
}
#endif
#endif
