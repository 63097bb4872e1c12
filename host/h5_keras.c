/* host/h5_keras.c — Keras 2's legacy HDF5 weight layout over the HDF5 C library
 * (see h5_keras.h for the layout). No model knowledge: names, shapes and dtypes are
 * read from the file, never assumed. */
#include "host/h5_keras.h"

#include <errno.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/base/error.h"
#include "host/base/atomic_file.h"
#include "host/isolate.h"
#include "host/regular_file.h"

#define WN_NAME_BUF 512 /* room for "layer '<name>': weight_names" */

_Static_assert(sizeof(hid_t) == sizeof(int64_t), "hid_t is stored as int64_t in wn_h5_file");

/* ---------------------------------------------------------------- HDF5 errors */

/* HDF5 prints its error stack to stderr by default; library code must not print.
 * Each public call silences it on entry and restores the caller's handler on exit. */
typedef struct h5_quiet {
    H5E_auto2_t func;
    void *data;
} h5_quiet;

static h5_quiet h5_quiet_begin(void) {
    h5_quiet q = {0, 0};
    H5Eget_auto2(H5E_DEFAULT, &q.func, &q.data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    H5Eclear2(H5E_DEFAULT);
    return q;
}

static void h5_quiet_end(h5_quiet q) {
    H5Eclear2(H5E_DEFAULT);
    H5Eset_auto2(H5E_DEFAULT, q.func, q.data);
}

/* The innermost (most specific) message of the current HDF5 error stack. */
static herr_t h5_error_walk(unsigned n, const H5E_error2_t *e, void *out) {
    if (n == 0 && e->desc) snprintf((char *)out, 256, "%s", e->desc);
    return 0;
}

static const char *h5_error_text(char buf[256]) {
    buf[0] = 0;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, h5_error_walk, buf);
    if (!buf[0]) snprintf(buf, 256, "unknown HDF5 error");
    return buf;
}

/* ---------------------------------------------------------------- small helpers */

static char *str_dup_n(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

static void free_strings(char **s, int n) {
    if (!s) return;
    for (int i = 0; i < n; i++) free(s[i]);
    free(s);
}

/* 1 when every component of the relative `path` exists as a link under loc (h5py's
 * `name in group` for a path with '/'); H5Lexists alone fails on a missing parent. */
static int h5_path_exists(hid_t loc, const char *path) {
    char buf[1024];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof buf) return 0;
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != 0) continue;
        char saved = buf[i];
        buf[i] = 0;
        htri_t ok = H5Lexists(loc, buf, H5P_DEFAULT);
        buf[i] = saved;
        if (ok <= 0) return 0;
    }
    return 1;
}

/* A layer name usable as a group path: Keras's names may hold '/' (DenseNet's
 * "conv1/conv", a group conv inside a group conv1, as h5py writes it), but no
 * component may be empty, "." or "..", so a name never leaves the file's root. */
static int h5_layer_name_ok(const char *name) {
    if (!name || !name[0]) return 0;
    const char *p = name;
    for (;;) {
        size_t n = strcspn(p, "/");
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return 0;
        if (!p[n]) return 1;
        p += n + 1;
    }
}

/* Describes an HDF5 datatype for messages ("float32", "int64", "string", ...). */
static wn_h5_dtype h5_dtype_describe(hid_t type, char *desc, size_t desc_size) {
    H5T_class_t cls = H5Tget_class(type);
    size_t size = H5Tget_size(type);
    switch (cls) {
    case H5T_FLOAT:
        snprintf(desc, desc_size, "float%zu", size * 8);
        if (size == 4) return WN_H5_DTYPE_F32;
        if (size == 8) return WN_H5_DTYPE_F64;
        if (size == 2) return WN_H5_DTYPE_F16;
        return WN_H5_DTYPE_OTHER;
    case H5T_INTEGER:
        snprintf(desc, desc_size, "%sint%zu", H5Tget_sign(type) == H5T_SGN_NONE ? "u" : "",
                 size * 8);
        return WN_H5_DTYPE_OTHER;
    case H5T_STRING: snprintf(desc, desc_size, "string"); return WN_H5_DTYPE_OTHER;
    case H5T_COMPOUND: snprintf(desc, desc_size, "compound"); return WN_H5_DTYPE_OTHER;
    default: snprintf(desc, desc_size, "HDF5 class %d", (int)cls); return WN_H5_DTYPE_OTHER;
    }
}

/* ---------------------------------------------------------------- string attributes */

/* Reads the string-array attribute `name` of obj into a malloc'd list.
 * Accepts fixed-length (NULLPAD/NULLTERM/SPACEPAD) and variable-length strings, any
 * shape (flattened); a zero-element attribute of any type is the empty list (h5py
 * writes `[]` as float64 of shape (0,)). Returns WN_OK, or WN_ERR with a reason
 * mentioning `what` (e.g. "layer 'dense': weight_names"). */
static int h5_read_string_array(hid_t obj, const char *name, const char *what,
                                const char *path, char ***out, int *n_out) {
    char err[256];
    *out = NULL;
    *n_out = 0;
    hid_t attr = H5Aopen(obj, name, H5P_DEFAULT);
    if (attr < 0) return wn_fail("%s: cannot open %s: %s", path, what, h5_error_text(err));
    hid_t space = H5Aget_space(attr), ftype = H5Aget_type(attr), mtype = -1;
    int rc = WN_ERR;
    char **list = NULL;
    int n = 0;
    hssize_t count = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
    if (space < 0 || ftype < 0 || count < 0) {
        wn_fail("%s: cannot read %s: %s", path, what, h5_error_text(err));
        goto done;
    }
    if (count == 0) { /* the empty list, whatever its type */
        rc = WN_OK;
        goto done;
    }
    if (count > 10 * 1000 * 1000) {
        wn_fail("%s: %s has %lld entries (damaged file?)", path, what, (long long)count);
        goto done;
    }
    if (H5Tget_class(ftype) != H5T_STRING) {
        char desc[24];
        h5_dtype_describe(ftype, desc, sizeof desc);
        wn_fail("%s: %s should be a list of strings but is %s", path, what, desc);
        goto done;
    }
    n = (int)count;
    list = calloc((size_t)n, sizeof *list);
    if (!list) {
        wn_fail("%s: out of memory reading %s", path, what);
        goto done;
    }
    if (H5Tis_variable_str(ftype) > 0) {
        char **raw = calloc((size_t)n, sizeof *raw);
        mtype = H5Tcopy(H5T_C_S1);
        if (!raw || mtype < 0 || H5Tset_size(mtype, H5T_VARIABLE) < 0 ||
            H5Tset_cset(mtype, H5Tget_cset(ftype)) < 0 || H5Aread(attr, mtype, raw) < 0) {
            free(raw);
            wn_fail("%s: cannot read %s: %s", path, what, h5_error_text(err));
            goto done;
        }
        int ok = 1;
        for (int i = 0; i < n; i++) {
            list[i] = str_dup_n(raw[i] ? raw[i] : "", raw[i] ? strlen(raw[i]) : 0);
            if (!list[i]) ok = 0;
        }
        H5Dvlen_reclaim(mtype, space, H5P_DEFAULT, raw);
        free(raw);
        if (!ok) {
            wn_fail("%s: out of memory reading %s", path, what);
            goto done;
        }
    } else {
        size_t size = H5Tget_size(ftype);
        H5T_str_t pad = H5Tget_strpad(ftype);
        char *raw = malloc((size_t)n * size + 1);
        mtype = H5Tcopy(ftype);
        if (!raw || mtype < 0 || H5Aread(attr, mtype, raw) < 0) {
            free(raw);
            wn_fail("%s: cannot read %s: %s", path, what, h5_error_text(err));
            goto done;
        }
        int ok = 1;
        for (int i = 0; i < n; i++) {
            const char *s = raw + (size_t)i * size;
            size_t len = 0;
            while (len < size && s[len]) len++;
            if (pad == H5T_STR_SPACEPAD)
                while (len > 0 && s[len - 1] == ' ') len--;
            list[i] = str_dup_n(s, len);
            if (!list[i]) ok = 0;
        }
        free(raw);
        if (!ok) {
            wn_fail("%s: out of memory reading %s", path, what);
            goto done;
        }
    }
    rc = WN_OK;
done:
    if (mtype >= 0) H5Tclose(mtype);
    if (ftype >= 0) H5Tclose(ftype);
    if (space >= 0) H5Sclose(space);
    H5Aclose(attr);
    if (rc != WN_OK) {
        free_strings(list, n);
        return WN_ERR;
    }
    *out = list;
    *n_out = n;
    return WN_OK;
}

/* Keras's load_attributes_from_hdf5_group: `name` itself, or name0, name1, ...
 * concatenated. *found = 0 (and WN_OK) when neither exists. */
static int h5_read_keras_list(hid_t obj, const char *name, const char *what,
                              const char *path, char ***out, int *n_out, int *found) {
    *out = NULL;
    *n_out = 0;
    *found = 0;
    if (H5Aexists(obj, name) > 0) {
        *found = 1;
        return h5_read_string_array(obj, name, what, path, out, n_out);
    }
    char **all = NULL;
    int n_all = 0;
    for (int chunk = 0;; chunk++) {
        char chunk_name[128];
        snprintf(chunk_name, sizeof chunk_name, "%s%d", name, chunk);
        if (H5Aexists(obj, chunk_name) <= 0) break;
        *found = 1;
        char **part;
        int n_part;
        if (h5_read_string_array(obj, chunk_name, what, path, &part, &n_part) != WN_OK) {
            free_strings(all, n_all);
            return WN_ERR;
        }
        char **grown = realloc(all, (size_t)(n_all + n_part + 1) * sizeof *grown);
        if (!grown) {
            free_strings(part, n_part);
            free_strings(all, n_all);
            return wn_fail("%s: out of memory reading %s", path, what);
        }
        all = grown;
        memcpy(all + n_all, part, (size_t)n_part * sizeof *part);
        n_all += n_part;
        free(part);
    }
    *out = all;
    *n_out = n_all;
    return WN_OK;
}

/* A scalar (or one-element) string attribute such as backend or keras_version;
 * leaves buf empty when absent. */
static int h5_read_string_scalar(hid_t obj, const char *name, const char *path, char *buf,
                                 size_t size) {
    buf[0] = 0;
    if (H5Aexists(obj, name) <= 0) return WN_OK;
    char **list;
    int n;
    if (h5_read_string_array(obj, name, name, path, &list, &n) != WN_OK) return WN_ERR;
    if (n > 0) snprintf(buf, size, "%s", list[0]);
    free_strings(list, n);
    return WN_OK;
}

/* ---------------------------------------------------------------- reading */

static void layer_free(wn_h5_layer *l) {
    for (int i = 0; i < l->n_weights; i++) free(l->weights[i].name);
    free(l->weights);
    free(l->name);
    free(l->slot);
}

void wn_h5_close(wn_h5_file *f) {
    if (!f) return;
    h5_quiet q = h5_quiet_begin();
    for (int i = 0; i < f->n_layers; i++) layer_free(&f->layers[i]);
    free(f->layers);
    if (f->root_id >= 0 && f->root_id != f->file_id) H5Gclose((hid_t)f->root_id);
    if (f->file_id >= 0) H5Fclose((hid_t)f->file_id);
    h5_quiet_end(q);
    free(f);
}

/* Shape and dtype of dataset `wname` in group g, into w (name already set). */
static int weight_index(const wn_h5_file *f, hid_t g, const char *layer, wn_h5_weight *w) {
    char err[256];
    if (!h5_path_exists(g, w->name))
        return wn_fail("%s: layer '%s' lists weight '%s' in weight_names but the file has "
                       "no such dataset (damaged or hand-edited file)",
                       f->path, layer, w->name);
    hid_t d = H5Dopen2(g, w->name, H5P_DEFAULT);
    if (d < 0)
        return wn_fail("%s: layer '%s': '%s' is not a readable dataset: %s", f->path, layer,
                       w->name, h5_error_text(err));
    hid_t space = H5Dget_space(d), type = H5Dget_type(d);
    int rc = WN_ERR;
    int rank = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    if (type < 0 || rank < 0) {
        wn_fail("%s: layer '%s': cannot read the shape of '%s': %s", f->path, layer, w->name,
                h5_error_text(err));
        goto done;
    }
    if (rank > WN_H5_MAX_RANK) {
        wn_fail("%s: layer '%s': '%s' has rank %d (at most %d supported)", f->path, layer,
                w->name, rank, WN_H5_MAX_RANK);
        goto done;
    }
    hsize_t dims[H5S_MAX_RANK];
    H5Sget_simple_extent_dims(space, dims, NULL);
    w->rank = rank;
    w->count = 1;
    for (int i = 0; i < rank; i++) {
        /* a damaged header can claim any size: cap the element count at 2^40 */
        if (dims[i] > ((hsize_t)1 << 40) ||
            (dims[i] != 0 && w->count > ((size_t)1 << 40) / (size_t)dims[i])) {
            wn_fail("%s: layer '%s': '%s' is implausibly large (damaged file?)", f->path,
                    layer, w->name);
            goto done;
        }
        w->dims[i] = (int64_t)dims[i];
        w->count *= (size_t)dims[i];
    }
    w->dtype = h5_dtype_describe(type, w->dtype_desc, sizeof w->dtype_desc);
    rc = WN_OK;
done:
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    H5Dclose(d);
    return rc;
}

/* Indexes layer_names and every listed layer group. */
static int file_index(wn_h5_file *f) {
    char **names;
    int n, found;
    hid_t root = (hid_t)f->root_id;
    if (h5_read_keras_list(root, "layer_names", "the root attribute layer_names", f->path,
                           &names, &n, &found) != WN_OK)
        return WN_ERR;
    f->layers = calloc((size_t)(n > 0 ? n : 1), sizeof *f->layers);
    if (!f->layers) {
        free_strings(names, n);
        return wn_fail("%s: out of memory", f->path);
    }
    f->n_layers = n;
    for (int i = 0; i < n; i++) f->layers[i].name = names[i];
    free(names);

    for (int i = 0; i < n; i++) {
        wn_h5_layer *l = &f->layers[i];
        for (int j = 0; j < i; j++)
            if (!strcmp(f->layers[j].name, l->name))
                return wn_fail("%s: layer_names lists '%s' twice (damaged file)", f->path,
                               l->name);
        if (!h5_layer_name_ok(l->name) || !h5_path_exists(root, l->name))
            return wn_fail("%s: layer_names lists '%s' but the file has no group for it "
                           "(damaged or incomplete file)",
                           f->path, l->name);
        hid_t g = H5Gopen2(root, l->name, H5P_DEFAULT);
        if (g < 0)
            return wn_fail("%s: '%s' is listed in layer_names but is not a group", f->path,
                           l->name);
        char what[WN_NAME_BUF];
        snprintf(what, sizeof what, "layer '%s': weight_names", l->name);
        char **wnames;
        int nw;
        if (h5_read_keras_list(g, "weight_names", what, f->path, &wnames, &nw, &found) !=
            WN_OK) {
            H5Gclose(g);
            return WN_ERR;
        }
        if (!found) {
            H5Gclose(g);
            return wn_fail("%s: layer '%s' has no weight_names attribute (not a Keras weight "
                           "file, or damaged)",
                           f->path, l->name);
        }
        l->weights = calloc((size_t)(nw > 0 ? nw : 1), sizeof *l->weights);
        if (!l->weights) {
            free_strings(wnames, nw);
            H5Gclose(g);
            return wn_fail("%s: out of memory", f->path);
        }
        l->n_weights = nw;
        for (int k = 0; k < nw; k++) l->weights[k].name = wnames[k];
        free(wnames);
        for (int k = 0; k < nw; k++)
            if (weight_index(f, g, l->name, &l->weights[k]) != WN_OK) {
                H5Gclose(g);
                return WN_ERR;
            }
        H5Gclose(g);
        if (nw > 0) f->n_weighted_layers++;
    }
    return WN_OK;
}


/* ---------------------------------------------------------------- Keras 3 layout */

/* Names of the links directly under group g, in name order (HDF5's default index). */
typedef struct name_list {
    char **s;
    int n, cap;
} name_list;

static herr_t name_list_add(hid_t g, const char *name, const H5L_info_t *info, void *user) {
    (void)g, (void)info;
    name_list *l = user;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        char **grown = realloc(l->s, (size_t)cap * sizeof *grown);
        if (!grown) return -1;
        l->s = grown, l->cap = cap;
    }
    l->s[l->n] = str_dup_n(name, strlen(name));
    return l->s[l->n++] ? 0 : -1;
}

static int k3_add_layer(wn_h5_file *f, wn_h5_layer *l) {
    wn_h5_layer *grown = realloc(f->layers, (size_t)(f->n_layers + 1) * sizeof *grown);
    if (!grown) return wn_fail("%s: out of memory", f->path);
    f->layers = grown;
    f->layers[f->n_layers++] = *l;
    return WN_OK;
}

/* One layer's vars group: its datasets must be exactly "0".."n-1". Adds the layer to
 * f when it has variables. */
static int k3_index_vars(wn_h5_file *f, const char *slot, int depth) {
    if (strlen(slot) > 1000) return wn_fail("%s: a layer path longer than 1000 bytes", f->path);
    char vars[1200], err[256];
    snprintf(vars, sizeof vars, "%s/vars", slot);
    hid_t g = H5Gopen2((hid_t)f->root_id, vars, H5P_DEFAULT);
    if (g < 0) return wn_fail("%s: '%s' is not a group: %s", f->path, vars, h5_error_text(err));
    H5G_info_t gi = {0};
    if (H5Gget_info(g, &gi) < 0 || gi.nlinks > 64) {
        H5Gclose(g);
        return wn_fail("%s: '%s' is not a layer's variable group (%s)", f->path, vars,
                       gi.nlinks > 64 ? "too many entries" : "unreadable");
    }
    int n = (int)gi.nlinks;
    wn_h5_layer l = {0};
    char name[256];
    if (h5_read_string_scalar(g, "name", f->path, name, sizeof name) != WN_OK) {
        H5Gclose(g);
        return WN_ERR;
    }
    if (n == 0) { /* a layer without variables: nothing to map */
        H5Gclose(g);
        return WN_OK;
    }
    /* without a name attribute (older Keras 3), the slot is the only identity */
    l.name = str_dup_n(name[0] ? name : slot, strlen(name[0] ? name : slot));
    l.slot = str_dup_n(slot, strlen(slot));
    l.weights = calloc((size_t)n, sizeof *l.weights);
    l.depth = depth;
    int rc = l.name && l.slot && l.weights ? WN_OK : wn_fail("%s: out of memory", f->path);
    for (int k = 0; rc == WN_OK && k < n; k++) {
        char key[16];
        snprintf(key, sizeof key, "%d", k);
        l.weights[k].name = str_dup_n(key, strlen(key));
        l.n_weights = k + 1;
        if (!l.weights[k].name) {
            rc = wn_fail("%s: out of memory", f->path);
        } else if (H5Lexists(g, key, H5P_DEFAULT) <= 0) {
            rc = wn_fail("%s: layer '%s' (%s) has %d variables but no variable '%s/%s' (a "
                         "Keras 3 file numbers them 0..%d; damaged or hand-edited file)",
                         f->path, l.name, slot, n, vars, key, n - 1);
        } else {
            rc = weight_index(f, g, vars, &l.weights[k]);
        }
    }
    H5Gclose(g);
    if (rc == WN_OK) rc = k3_add_layer(f, &l);
    if (rc != WN_OK) layer_free(&l);
    else f->n_weighted_layers++;
    return rc;
}

/* Walks <prefix>layers/ of one model (a Functional or Sequential) and its nested ones. */
static int k3_walk(wn_h5_file *f, const char *prefix, int depth) {
    char layers[1100], err[256];
    snprintf(layers, sizeof layers, "%slayers", prefix);
    if (depth > 8) return wn_fail("%s: models nested deeper than 8 levels at '%s'", f->path, prefix);
    if (!h5_path_exists((hid_t)f->root_id, layers)) return WN_OK;
    hid_t g = H5Gopen2((hid_t)f->root_id, layers, H5P_DEFAULT);
    name_list kids = {0};
    hsize_t at = 0;
    if (g < 0 || H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &at, name_list_add, &kids) < 0) {
        if (g >= 0) H5Gclose(g);
        free_strings(kids.s, kids.n);
        return wn_fail("%s: cannot list '%s': %s", f->path, layers, h5_error_text(err));
    }
    H5Gclose(g);
    int rc = WN_OK;
    for (int i = 0; rc == WN_OK && i < kids.n; i++) {
        char slot[1100], sub[1200];
        if (snprintf(slot, sizeof slot, "%s/%s", layers, kids.s[i]) >= (int)sizeof slot) {
            rc = wn_fail("%s: the group path %s/%s is too long", f->path, layers, kids.s[i]);
            break;
        }
        snprintf(sub, sizeof sub, "%s/layers", slot);
        int nested = h5_path_exists((hid_t)f->root_id, sub);
        snprintf(sub, sizeof sub, "%s/vars", slot);
        if (h5_path_exists((hid_t)f->root_id, sub)) rc = k3_index_vars(f, slot, depth);
        if (rc == WN_OK && nested) {
            int before = f->n_weighted_layers;
            snprintf(sub, sizeof sub, "%s/", slot);
            rc = k3_walk(f, sub, depth + 1);
            if (rc == WN_OK && depth == 0 && f->n_weighted_layers > before) {
                if (f->nested_slot[0]) {
                    rc = wn_fail("%s: two nested models with weights ('%s' and '%s'); "
                                 "expected one backbone",
                                 f->path, f->nested_slot, slot);
                } else {
                    snprintf(f->nested_slot, sizeof f->nested_slot, "%s", slot);
                }
            }
        }
    }
    free_strings(kids.s, kids.n);
    return rc;
}

static int k3_index(wn_h5_file *f) {
    char name[128];
    if (h5_path_exists((hid_t)f->root_id, "vars")) {
        hid_t v = H5Gopen2((hid_t)f->root_id, "vars", H5P_DEFAULT);
        if (v >= 0) {
            int rc = h5_read_string_scalar(v, "name", f->path, name, sizeof name);
            H5Gclose(v);
            if (rc != WN_OK) return WN_ERR;
            snprintf(f->model_name, sizeof f->model_name, "%s", name);
        }
    }
    f->layout = WN_H5_LAYOUT_KERAS3;
    return k3_walk(f, "", 0);
}

static int h5_open_direct(const char *path, const char *display, wn_h5_file **out) {
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0)
        return wn_fail("%s: %s", path,
                       errno == ENOENT ? "no such file" : strerror(errno));
    if (!S_ISREG(st.st_mode)) return wn_fail("%s: not a regular file", path);
    if (access(path, R_OK) != 0) return wn_fail("%s: cannot read: %s", path, strerror(errno));

    h5_quiet q = h5_quiet_begin();
    char err[256];
    wn_h5_file *f = calloc(1, sizeof *f);
    if (!f) {
        h5_quiet_end(q);
        return wn_fail("%s: out of memory", path);
    }
    f->file_id = f->root_id = -1;
    snprintf(f->path, sizeof f->path, "%s", display ? display : path);

    htri_t is_h5 = H5Fis_hdf5(path);
    if (is_h5 <= 0) {
        wn_fail("%s: not an HDF5 file (%lld bytes, no HDF5 signature); expected a Keras .h5 "
                "weight file",
                path, (long long)st.st_size);
        goto fail;
    }
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0) {
        wn_fail("%s: HDF5 cannot open it (%lld bytes; truncated or damaged?): %s", path,
                (long long)st.st_size, h5_error_text(err));
        goto fail;
    }
    f->file_id = file;
    hid_t root = H5Gopen2(file, "/", H5P_DEFAULT);
    if (root < 0) {
        wn_fail("%s: cannot open the root group: %s", path, h5_error_text(err));
        goto fail;
    }
    /* `model.save()` files keep the weights under /model_weights (Keras's reader
     * descends when the root has no layer_names). */
    if (H5Aexists(root, "layer_names") <= 0 && H5Aexists(root, "layer_names0") <= 0 &&
        H5Lexists(root, "model_weights", H5P_DEFAULT) > 0) {
        hid_t mw = H5Gopen2(root, "model_weights", H5P_DEFAULT);
        H5Gclose(root);
        if (mw < 0) {
            wn_fail("%s: /model_weights is not a group", path);
            goto fail;
        }
        root = mw;
        f->in_model_weights = 1;
    }
    f->root_id = root;
    if (H5Aexists(root, "layer_names") <= 0 && H5Aexists(root, "layer_names0") <= 0 &&
        H5Lexists(root, "layers", H5P_DEFAULT) > 0) {
        if (k3_index(f) != WN_OK) goto fail;
        h5_quiet_end(q);
        *out = f;
        return WN_OK;
    }
    if (H5Aexists(root, "layer_names") <= 0 && H5Aexists(root, "layer_names0") <= 0) {
        wn_fail("%s: an HDF5 file but not a Keras weight file (no layer_names attribute at "
                "/%s)",
                path, f->in_model_weights ? "model_weights" : "");
        goto fail;
    }
    if (h5_read_string_scalar(root, "backend", path, f->backend, sizeof f->backend) != WN_OK ||
        h5_read_string_scalar(root, "keras_version", path, f->keras_version,
                              sizeof f->keras_version) != WN_OK)
        goto fail;
    f->has_top_level_group = H5Lexists(root, "top_level_model_weights", H5P_DEFAULT) > 0;
    if (file_index(f) != WN_OK) goto fail;
    h5_quiet_end(q);
    *out = f;
    return WN_OK;
fail:
    h5_quiet_end(q);
    wn_h5_close(f);
    return WN_ERR;
}

/* What the isolated child does: everything wastenet reads from a weight file (the
 * index, then every float32 weight). */
static int h5_read_everything(const char *path, void *user) {
    (void)user;
    wn_h5_file *f;
    if (h5_open_direct(path, NULL, &f) != WN_OK) return WN_ERR;
    size_t largest = 1;
    for (int l = 0; l < f->n_layers; l++)
        for (int w = 0; w < f->layers[l].n_weights; w++)
            if (f->layers[l].weights[w].dtype == WN_H5_DTYPE_F32 &&
                f->layers[l].weights[w].count > largest)
                largest = f->layers[l].weights[w].count;
    float *buf = malloc(largest * sizeof *buf);
    int rc = buf ? WN_OK : wn_fail("%s: out of memory", path);
    for (int l = 0; rc == WN_OK && l < f->n_layers; l++)
        for (int w = 0; rc == WN_OK && w < f->layers[l].n_weights; w++)
            if (f->layers[l].weights[w].dtype == WN_H5_DTYPE_F32)
                rc = wn_h5_weight_read(f, l, w, buf, f->layers[l].weights[w].count);
    free(buf);
    wn_h5_close(f);
    return rc;
}

int wn_h5_open(const char *path, wn_h5_file **out) { return wn_h5_open_named(path, NULL, out); }

int wn_h5_open_named(const char *path, const char *display, wn_h5_file **out) {
    *out = NULL;
    /* Debian's HDF5 1.10.8 crashes or loops forever on some damaged files (found by
     * fuzzing; tests/fuzz/upstream/h5_keras/): read the file once in a child process
     * first (host/isolate.h), so that such a file ends with a message naming it. The
     * limit allows 10 MB/s on top of 30 s: 52 s for InceptionResNetV2's 215 MB. */
    const char *why;
    FILE *probe = wn_fopen_regular(path, "rb", &why); /* HDF5 would wait on a pipe */
    if (!probe && errno != ENOENT) /* a missing file: the reader's own message below */
        return wn_fail("%s: cannot read it as a weight file: %s", path, why);
    if (probe) fclose(probe);
    struct stat st;
    double limit = 30.0 + (stat(path, &st) == 0 ? (double)st.st_size / 10e6 : 0.0);
    const char *env = getenv("WN_H5_READ_TIMEOUT"); /* seconds; tests use a short one */
    if (env && atof(env) > 0) limit = atof(env);
    if (wn_isolate_run(path, h5_read_everything, NULL, limit, "the HDF5 library") != WN_OK)
        return WN_ERR;
    return h5_open_direct(path, display, out);
}

int wn_h5_find_layer(const wn_h5_file *f, const char *name) {
    for (int i = 0; i < f->n_layers; i++)
        if (!strcmp(f->layers[i].name, name)) return i;
    return -1;
}

int wn_h5_weight_read(const wn_h5_file *f, int layer, int w, float *dst, size_t count) {
    if (layer < 0 || layer >= f->n_layers || w < 0 || w >= f->layers[layer].n_weights)
        return wn_fail("%s: weight %d of layer %d does not exist", f->path, w, layer);
    const wn_h5_layer *l = &f->layers[layer];
    const wn_h5_weight *wt = &l->weights[w];
    if (wt->dtype != WN_H5_DTYPE_F32)
        return wn_fail("%s: layer '%s' weight '%s': expected float32, found %s", f->path,
                       l->name, wt->name, wt->dtype_desc);
    if (wt->count != count)
        return wn_fail("%s: layer '%s' weight '%s': expected %zu values, found %zu", f->path,
                       l->name, wt->name, count, wt->count);
    if (count == 0) return WN_OK;
    h5_quiet q = h5_quiet_begin();
    char err[256];
    int rc = WN_OK;
    char group[1100];
    snprintf(group, sizeof group, l->slot ? "%s/vars" : "%s", l->slot ? l->slot : l->name);
    hid_t g = H5Gopen2((hid_t)f->root_id, group, H5P_DEFAULT);
    hid_t d = g >= 0 ? H5Dopen2(g, wt->name, H5P_DEFAULT) : -1;
    if (d < 0 || H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) < 0)
        rc = wn_fail("%s: layer '%s': cannot read '%s' (truncated or damaged file?): %s",
                     f->path, l->name, wt->name, h5_error_text(err));
    if (d >= 0) H5Dclose(d);
    if (g >= 0) H5Gclose(g);
    h5_quiet_end(q);
    return rc;
}

/* ---------------------------------------------------------------- writing */

/* Writes a list of strings as attribute `name`: variable-length (tf-keras + h5py 3)
 * or fixed-length NULLPAD (numpy 'S', Keras 2.0 + h5py 2). */
static int h5_write_string_attr(hid_t obj, const char *name, const char *const *s, size_t n,
                                int fixed, int scalar) {
    hid_t space = -1, type = -1, attr = -1;
    int rc = -1;
    char *buf = NULL;
    hsize_t dim = n;
    space = scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &dim, NULL);
    type = H5Tcopy(H5T_C_S1);
    if (space < 0 || type < 0) goto done;
    if (fixed) {
        size_t maxlen = 1;
        for (size_t i = 0; i < n; i++)
            if (strlen(s[i]) > maxlen) maxlen = strlen(s[i]);
        buf = calloc(n ? n : 1, maxlen);
        if (!buf) goto done;
        for (size_t i = 0; i < n; i++) memcpy(buf + i * maxlen, s[i], strlen(s[i]));
        if (H5Tset_size(type, maxlen) < 0 || H5Tset_strpad(type, H5T_STR_NULLPAD) < 0)
            goto done;
    } else if (H5Tset_size(type, H5T_VARIABLE) < 0) {
        goto done;
    }
    if (H5Tset_cset(type, H5T_CSET_ASCII) < 0) goto done;
    attr = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    if (attr < 0) goto done;
    if (H5Awrite(attr, type, fixed ? (const void *)buf : (const void *)s) < 0) goto done;
    rc = 0;
done:
    free(buf);
    if (attr >= 0) H5Aclose(attr);
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    return rc;
}

/* Keras's save_attributes_to_hdf5_group: an empty list is float64 of shape (0,); a
 * list whose numpy 'S' array exceeds WN_H5_ATTR_LIMIT bytes is split with
 * np.array_split into name0, name1, ... (fixed-length, as numpy arrays are). */
static int h5_write_keras_list(hid_t obj, const char *name, const char *const *s, int n,
                               int fixed) {
    if (n == 0) {
        hsize_t zero = 0;
        hid_t space = H5Screate_simple(1, &zero, NULL);
        hid_t attr = space >= 0 ? H5Acreate2(obj, name, H5T_IEEE_F64LE, space, H5P_DEFAULT,
                                             H5P_DEFAULT)
                                : -1;
        if (space >= 0) H5Sclose(space);
        if (attr < 0) return -1;
        H5Aclose(attr);
        return 0;
    }
    size_t maxlen = 1;
    for (int i = 0; i < n; i++)
        if (strlen(s[i]) > maxlen) maxlen = strlen(s[i]);
    int chunks = 1;
    while ((size_t)((n + chunks - 1) / chunks) * maxlen > WN_H5_ATTR_LIMIT) chunks++;
    if (chunks == 1) return h5_write_string_attr(obj, name, s, (size_t)n, fixed, 0);
    int start = 0;
    for (int c = 0; c < chunks; c++) {
        int len = n / chunks + (c < n % chunks);
        char chunk_name[160];
        snprintf(chunk_name, sizeof chunk_name, "%s%d", name, c);
        if (h5_write_string_attr(obj, chunk_name, s + start, (size_t)len, 1, 0) != 0)
            return -1;
        start += len;
    }
    return 0;
}

static int write_dataset(hid_t g, hid_t lcpl, const wn_h5_out_weight *w) {
    hsize_t dims[WN_H5_MAX_RANK];
    for (int i = 0; i < w->rank; i++) dims[i] = (hsize_t)w->dims[i];
    hid_t space = w->rank == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(w->rank, dims, NULL);
    if (space < 0) return -1;
    hid_t d = H5Dcreate2(g, w->name, H5T_IEEE_F32LE, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    H5Sclose(space);
    if (d < 0) return -1;
    size_t count = 1;
    for (int i = 0; i < w->rank; i++) count *= (size_t)w->dims[i];
    herr_t rc = count ? H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, w->data)
                      : 0;
    H5Dclose(d);
    return rc < 0 ? -1 : 0;
}

/* order[] = 0..n-1 sorted by layer name (Python's sorted(): byte order), the order
 * Keras creates the groups in. Insertion sort: n is a model's layer count, and no
 * global comparator state is needed. */
static void sort_by_name(const wn_h5_out_layer *layers, int *order, int n) {
    for (int i = 0; i < n; i++) {
        int v = order[i], j = i;
        while (j > 0 && strcmp(layers[order[j - 1]].name, layers[v].name) > 0) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = v;
    }
}

static int check_layers(const char *path, const wn_h5_out_layer *layers, int n_layers) {
    for (int i = 0; i < n_layers; i++) {
        const wn_h5_out_layer *l = &layers[i];
        if (!h5_layer_name_ok(l->name) || !strcmp(l->name, "top_level_model_weights"))
            return wn_fail("%s: invalid layer name '%s'", path, l->name ? l->name : "(null)");
        for (int j = 0; j < i; j++)
            if (!strcmp(layers[j].name, l->name))
                return wn_fail("%s: layer name '%s' used twice", path, l->name);
        if (l->n_weights < 0 || (l->n_weights > 0 && !l->weights))
            return wn_fail("%s: layer '%s': bad weight list", path, l->name);
        for (int k = 0; k < l->n_weights; k++) {
            const wn_h5_out_weight *w = &l->weights[k];
            if (!w->name || !w->name[0] || w->name[0] == '/' || w->rank < 0 ||
                w->rank > WN_H5_MAX_RANK)
                return wn_fail("%s: layer '%s': invalid weight %d", path, l->name, k);
            size_t count = 1;
            for (int r = 0; r < w->rank; r++) {
                if (w->dims[r] < 0)
                    return wn_fail("%s: layer '%s': negative dimension in '%s'", path,
                                   l->name, w->name);
                count *= (size_t)w->dims[r];
            }
            if (count && !w->data)
                return wn_fail("%s: layer '%s': no data for '%s'", path, l->name, w->name);
            for (int j = 0; j < k; j++)
                if (!strcmp(l->weights[j].name, w->name))
                    return wn_fail("%s: layer '%s': weight name '%s' used twice", path,
                                   l->name, w->name);
        }
    }
    return WN_OK;
}

/* The file image of an in-memory (core driver) HDF5 file, written to `path`
 * through host/base/atomic_file.h. */
static int h5_commit_image(void *image, ssize_t image_size, const char *path) {
    wn_atomic_file af;
    if (wn_atomic_open(&af, path) != WN_OK) {
        free(image);
        return WN_ERR;
    }
    fwrite(image, 1, (size_t)image_size, af.fp); /* a short write shows in ferror() */
    free(image);
    return wn_atomic_commit(&af);
}

int wn_h5_write_keras3(const char *path, const wn_h5_k3_group *groups, int n_groups) {
    for (int i = 0; i < n_groups; i++) {
        const wn_h5_k3_group *g = &groups[i];
        if (!g->name || (g->n_weights > 0 && !g->weights) || g->n_weights < 0)
            return wn_fail("%s: group '%s': bad weight list", path, g->path);
        for (int k = 0; k < g->n_weights; k++)
            for (int r = 0; r < g->weights[k].rank; r++)
                if (g->weights[k].dims[r] < 0 || !g->weights[k].data)
                    return wn_fail("%s: group '%s': invalid weight %d", path, g->path, k);
    }
    char tmp[4200];
    if (wn_atomic_temp_name(path, tmp, sizeof tmp) != WN_OK) return WN_ERR;
    h5_quiet q = h5_quiet_begin();
    char err[256];
    const char *failed_at = NULL;
    void *image = NULL;
    ssize_t image_size = 0;
    /* in memory, then written through host/base/atomic_file.h (see wn_h5_write) */
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    hid_t file = fapl >= 0 && H5Pset_fapl_core(fapl, (size_t)1 << 20, 0) >= 0
                     ? H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl)
                     : -1;
    if (fapl >= 0) H5Pclose(fapl);
    if (file < 0) {
        wn_fail("cannot create %s: %s", path, h5_error_text(err));
        h5_quiet_end(q);
        return WN_ERR;
    }
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    if (lcpl < 0 || H5Pset_create_intermediate_group(lcpl, 1) < 0) failed_at = "property list";
    for (int i = 0; !failed_at && i < n_groups; i++) {
        const wn_h5_k3_group *gr = &groups[i];
        char vars[400];
        snprintf(vars, sizeof vars, "%s%svars", gr->path, gr->path[0] ? "/" : "");
        failed_at = gr->path[0] ? gr->path : "/vars";
        hid_t g = H5Gcreate2(file, vars, lcpl, H5P_DEFAULT, H5P_DEFAULT);
        if (g < 0) break;
        int ok = h5_write_string_attr(g, "name", &gr->name, 1, 0, 1) == 0;
        for (int k = 0; ok && k < gr->n_weights; k++) {
            wn_h5_out_weight w = gr->weights[k];
            char key[16];
            snprintf(key, sizeof key, "%d", k);
            w.name = key;
            ok = write_dataset(g, lcpl, &w) == 0;
        }
        H5Gclose(g);
        if (ok) failed_at = NULL;
    }
    if (!failed_at) {
        failed_at = "the file image";
        if (H5Fflush(file, H5F_SCOPE_GLOBAL) >= 0) {
            image_size = H5Fget_file_image(file, NULL, 0);
            image = image_size > 0 ? malloc((size_t)image_size) : NULL;
            if (image && H5Fget_file_image(file, image, (size_t)image_size) == image_size)
                failed_at = NULL;
        }
    }
    int rc = WN_OK;
    if (failed_at) rc = wn_fail("%s: cannot write '%s': %s", path, failed_at, h5_error_text(err));
    if (H5Fclose(file) < 0 && rc == WN_OK)
        rc = wn_fail("%s: cannot finish the file: %s", path, h5_error_text(err));
    if (lcpl >= 0) H5Pclose(lcpl);
    h5_quiet_end(q);
    if (rc != WN_OK) {
        free(image);
        return WN_ERR;
    }
    return h5_commit_image(image, image_size, path);
}

int wn_h5_write(const char *path, const wn_h5_out_layer *layers, int n_layers,
                const wn_h5_write_opts *opts) {
    wn_h5_write_opts defaults = {0};
    if (!opts) opts = &defaults;
    if (n_layers < 0 || (n_layers > 0 && !layers)) return wn_fail("%s: no layers", path);
    if (check_layers(path, layers, n_layers) != WN_OK) return WN_ERR;

    char tmp[4200];
    if (wn_atomic_temp_name(path, tmp, sizeof tmp) != WN_OK) return WN_ERR;
    int fixed = opts->fixed_length_strings;
    int *order = malloc((size_t)(n_layers > 0 ? n_layers : 1) * sizeof *order);
    const char **names = malloc((size_t)(n_layers > 0 ? n_layers : 1) * sizeof *names);
    if (!order || !names) {
        free(order);
        free(names);
        return wn_fail("%s: out of memory", path);
    }
    for (int i = 0; i < n_layers; i++) order[i] = i, names[i] = layers[i].name;
    sort_by_name(layers, order, n_layers);

    h5_quiet q = h5_quiet_begin();
    char err[256];
    const char *failed_at = NULL; /* what was being written when HDF5 failed */
    void *image = NULL;           /* the finished file's bytes */
    ssize_t image_size = 0;
    /* HDF5 builds the file in memory (the core driver, no backing store) and the image
     * is written through host/base/atomic_file.h: a full disk then fails a plain write that
     * we handle. Writing through HDF5 itself, a failed flush leaves HDF5 1.10 unable to
     * close the file: it crashes at exit (found with RLIMIT_FSIZE, tests/reliability). */
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    hid_t file = fapl >= 0 && H5Pset_fapl_core(fapl, (size_t)1 << 20, 0) >= 0
                     ? H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl)
                     : -1;
    if (fapl >= 0) H5Pclose(fapl);
    if (file < 0) {
        free(order);
        free(names);
        wn_fail("cannot create %s (through the temporary %s): %s; check that the folder "
                "exists and is writable",
                path, tmp, h5_error_text(err));
        h5_quiet_end(q);
        return WN_ERR;
    }
    hid_t top = file; /* where the layout goes: the root, or /model_weights */
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    if (lcpl < 0 || H5Pset_create_intermediate_group(lcpl, 1) < 0) {
        failed_at = "property list";
        goto done;
    }
    const char *backend = opts->backend ? opts->backend : "tensorflow";
    const char *version = opts->keras_version ? opts->keras_version : "2.21.0";
    if (opts->model_config) {
        failed_at = "model_config";
        if (h5_write_string_attr(file, "model_config", &opts->model_config, 1, 0, 1) != 0 ||
            h5_write_string_attr(file, "backend", &backend, 1, 0, 1) != 0 ||
            h5_write_string_attr(file, "keras_version", &version, 1, 0, 1) != 0)
            goto done;
        top = H5Gcreate2(file, "model_weights", lcpl, H5P_DEFAULT, H5P_DEFAULT);
        if (top < 0) goto done;
        failed_at = NULL;
    }
    if (h5_write_keras_list(top, "layer_names", names, n_layers, fixed) != 0) {
        failed_at = "layer_names";
        goto done;
    }
    if (h5_write_string_attr(top, "backend", &backend, 1, fixed, 1) != 0 ||
        h5_write_string_attr(top, "keras_version", &version, 1, fixed, 1) != 0) {
        failed_at = "backend/keras_version";
        goto done;
    }
    for (int i = 0; i < n_layers; i++) {
        const wn_h5_out_layer *l = &layers[order[i]];
        failed_at = l->name;
        hid_t g = H5Gcreate2(top, l->name, lcpl, H5P_DEFAULT, H5P_DEFAULT);
        if (g < 0) goto done;
        const char **wnames = malloc((size_t)(l->n_weights > 0 ? l->n_weights : 1) *
                                     sizeof *wnames);
        int ok = wnames != NULL;
        for (int k = 0; ok && k < l->n_weights; k++) wnames[k] = l->weights[k].name;
        if (ok) ok = h5_write_keras_list(g, "weight_names", wnames, l->n_weights, fixed) == 0;
        free(wnames);
        for (int k = 0; ok && k < l->n_weights; k++)
            ok = write_dataset(g, lcpl, &l->weights[k]) == 0;
        H5Gclose(g);
        if (!ok) goto done;
    }
    if (!opts->no_top_level_group) {
        failed_at = "top_level_model_weights";
        hid_t g = H5Gcreate2(top, "top_level_model_weights", lcpl, H5P_DEFAULT, H5P_DEFAULT);
        if (g < 0) goto done;
        int ok = h5_write_keras_list(g, "weight_names", NULL, 0, fixed) == 0;
        H5Gclose(g);
        if (!ok) goto done;
    }
    failed_at = "the file image";
    if (top != file) H5Gclose(top);
    top = file;
    if (H5Fflush(file, H5F_SCOPE_GLOBAL) < 0) goto done;
    image_size = H5Fget_file_image(file, NULL, 0);
    image = image_size > 0 ? malloc((size_t)image_size) : NULL;
    if (image && H5Fget_file_image(file, image, (size_t)image_size) == image_size) failed_at = NULL;
done:;
    if (top >= 0 && top != file) H5Gclose(top);
    int rc = WN_OK;
    if (failed_at) rc = wn_fail("%s: cannot write '%s': %s", path, failed_at, h5_error_text(err));
    if (file >= 0 && H5Fclose(file) < 0 && rc == WN_OK)
        rc = wn_fail("%s: cannot finish the file: %s", path, h5_error_text(err));
    if (lcpl >= 0) H5Pclose(lcpl);
    h5_quiet_end(q);
    free(order);
    free(names);
    if (rc != WN_OK) {
        free(image);
        return WN_ERR;
    }
    return h5_commit_image(image, image_size, path);
}
