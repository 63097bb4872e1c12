/* host/model_weights.c — maps Keras HDF5 weight files onto a wn_model and back
 * (see model_weights.h for the rules). Plan, check, read into scratch, commit. */
#include "host/model_weights.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/error.h"
#include "host/h5_keras.h"

/* Where one model weight comes from. */
typedef struct wmap {
    int layer, k; /* model graph layer id, weight index in that layer */
    int fl, fw;   /* file layer index (layer_names order), weight index in it */
    int pos;      /* position of the pair in the matching (for messages), -1 by name */
} wmap;

typedef struct ctx {
    const wn_model *m;
    const wn_h5_file *f;
    const char *path;
    wmap *map;
    int n_map, cap_map;
} ctx;

static int map_push(ctx *c, int layer, int k, int fl, int fw, int pos) {
    if (c->n_map == c->cap_map) {
        int cap = c->cap_map ? 2 * c->cap_map : 1024;
        wmap *grown = realloc(c->map, (size_t)cap * sizeof *grown);
        if (!grown) return wn_fail("%s: out of memory", c->path);
        c->map = grown, c->cap_map = cap;
    }
    c->map[c->n_map++] = (wmap){layer, k, fl, fw, pos};
    return WN_OK;
}

static const wn_layer *mlayer(const ctx *c, int id) { return &c->m->graph.layers[id]; }

static int in_backbone(const wn_model *m, int id) {
    return id >= m->backbone_first && id < m->backbone_first + m->backbone_count;
}

/* "conv2d/kernel:0" -> "kernel": the weight's kind, to catch a wrong weight order
 * (beta, moving_mean and moving_variance have the same shape). */
static void weight_kind(const char *name, char *kind, size_t size) {
    const char *slash = strrchr(name, '/');
    const char *s = slash ? slash + 1 : name;
    size_t n = strcspn(s, ":");
    if (n >= size) n = size - 1;
    memcpy(kind, s, n);
    kind[n] = 0;
}

static int known_kind(const char *k) {
    static const char *kinds[] = {"kernel", "bias", "beta", "gamma", "moving_mean",
                                  "moving_variance", "depthwise_kernel",
                                  "pointwise_kernel"};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (!strcmp(k, kinds[i])) return 1;
    return 0;
}

static void shape_str(char *buf, size_t size, int rank, const int64_t *dims) {
    int n = snprintf(buf, size, "(");
    for (int i = 0; i < rank && n > 0 && (size_t)n < size; i++)
        n += snprintf(buf + n, size - (size_t)n, "%s%lld", i ? "," : "", (long long)dims[i]);
    if (n > 0 && (size_t)n < size) snprintf(buf + n, size - (size_t)n, rank == 1 ? ",)" : ")");
}

/* " (file layer 'Conv2d_1a_3x3', weighted layer 0 in the file: matched by position)" */
static void where_str(const ctx *c, const wmap *e, char *buf, size_t size) {
    const wn_h5_layer *fl = &c->f->layers[e->fl];
    const char *mname = mlayer(c, e->layer)->name;
    if (e->pos >= 0)
        snprintf(buf, size, " (file layer '%s', weight '%s'; matched by position: "
                 "weighted layer %d of the file)", fl->name, fl->weights[e->fw].name, e->pos);
    else if (strcmp(fl->name, mname))
        snprintf(buf, size, " (file layer '%s', weight '%s')", fl->name,
                 fl->weights[e->fw].name);
    else
        buf[0] = 0;
}

/* ---------------------------------------------------------------- matching */

static int file_has_layer(const wn_h5_file *f, const char *name, int weighted) {
    int i = wn_h5_find_layer(f, name);
    return i >= 0 && (!weighted || f->layers[i].n_weights > 0);
}

/* Pairs model layers ml[] with file layers fl[] (both weighted, in order): by name
 * when every model name is a file name, else by position; counts must agree. */
static int map_flat(ctx *c, const int *ml, int nm, const int *fl, int nf, const char *what,
                    int *by_name) {
    int missing = 0, first_missing = -1;
    for (int i = 0; i < nm; i++)
        if (!file_has_layer(c->f, mlayer(c, ml[i])->name, 1)) {
            if (first_missing < 0) first_missing = i;
            missing++;
        }
    *by_name = missing == 0 && nm == nf;
    if (nm != nf) {
        if (2 * (nm - missing) >= nm) { /* the file uses our names: say which differ */
            if (missing)
                return wn_fail("%s: layer '%s' (%s) of the %s is missing from the file%s "
                               "(the file has %d layers with weights, the %s %d)",
                               c->path, mlayer(c, ml[first_missing])->name,
                               wn_layer_type_keras(mlayer(c, ml[first_missing])->type), what,
                               missing > 1 ? " (and others)" : "", nf, what, nm);
            for (int j = 0; j < nf; j++) {
                int known = 0;
                for (int i = 0; i < nm && !known; i++)
                    known = !strcmp(c->f->layers[fl[j]].name, mlayer(c, ml[i])->name);
                if (!known)
                    return wn_fail("%s: the file has a layer with weights, '%s', that the %s "
                                   "does not have (the file has %d layers with weights, the "
                                   "%s %d)",
                                   c->path, c->f->layers[fl[j]].name, what, nf, what, nm);
            }
        }
        return wn_fail("%s: the file has %d layers with weights, the %s has %d: weights for "
                       "another architecture?",
                       c->path, nf, what, nm);
    }
    for (int i = 0; i < nm; i++) {
        const wn_layer *l = mlayer(c, ml[i]);
        int fi = *by_name ? wn_h5_find_layer(c->f, l->name) : fl[i];
        const wn_h5_layer *f = &c->f->layers[fi];
        if (f->n_weights != l->n_weights)
            return wn_fail("%s: layer '%s' (%s) has %d weights, the file's layer '%s' has %d%s",
                           c->path, l->name, wn_layer_type_keras(l->type), l->n_weights,
                           f->name, f->n_weights,
                           *by_name ? "" : " (matched by position, as Keras does)");
        for (int k = 0; k < l->n_weights; k++)
            if (map_push(c, ml[i], k, fi, k, *by_name ? -1 : i) != WN_OK) return WN_ERR;
    }
    return WN_OK;
}

/* Maps the model layers ml[] onto the flat weight list of nested group fl_nest:
 * by weight name when all of the model's names are there, else in layer order
 * (the order Keras writes for a frozen nested model). */
static int map_nested(ctx *c, const int *ml, int nm, int fl_nest, int *by_name) {
    const wn_h5_layer *f = &c->f->layers[fl_nest];
    int total = 0, found = 0;
    for (int i = 0; i < nm; i++) total += mlayer(c, ml[i])->n_weights;
    if (f->n_weights != total)
        return wn_fail("%s: the nested model group '%s' has %d weights, the model's %s "
                       "backbone has %d: weights for another architecture?",
                       c->path, f->name, f->n_weights,
                       c->m->backbone ? c->m->backbone->keras_name : c->m->graph.name, total);
    /* by name: each model weight name appears exactly once in the group */
    int *idx = malloc((size_t)(total > 0 ? total : 1) * sizeof *idx);
    if (!idx) return wn_fail("%s: out of memory", c->path);
    int t = 0;
    for (int i = 0; i < nm; i++) {
        const wn_layer *l = mlayer(c, ml[i]);
        for (int k = 0; k < l->n_weights; k++, t++) {
            idx[t] = -1;
            for (int j = 0; j < f->n_weights; j++)
                if (!strcmp(f->weights[j].name, l->weights[k].name)) {
                    idx[t] = j;
                    break;
                }
            if (idx[t] >= 0) found++;
        }
    }
    *by_name = found == total;
    t = 0;
    int rc = WN_OK;
    for (int i = 0; i < nm && rc == WN_OK; i++) {
        const wn_layer *l = mlayer(c, ml[i]);
        for (int k = 0; k < l->n_weights && rc == WN_OK; k++, t++)
            rc = map_push(c, ml[i], k, fl_nest, *by_name ? idx[t] : t, *by_name ? -1 : i);
    }
    free(idx);
    return rc;
}

/* Checks every mapped weight's shape, dtype and kind before anything is read. */
static int check_map(const ctx *c) {
    for (int i = 0; i < c->n_map; i++) {
        const wmap *e = &c->map[i];
        const wn_layer *l = mlayer(c, e->layer);
        const wn_weight *w = &l->weights[e->k];
        const wn_h5_weight *fw = &c->f->layers[e->fl].weights[e->fw];
        char where[512], want[96], got[96];
        where_str(c, e, where, sizeof where);
        int64_t dims[4];
        for (int r = 0; r < w->rank; r++) dims[r] = w->dims[r];
        int same = fw->rank == w->rank;
        for (int r = 0; same && r < w->rank; r++) same = fw->dims[r] == dims[r];
        if (!same) {
            shape_str(want, sizeof want, w->rank, dims);
            shape_str(got, sizeof got, fw->rank, fw->dims);
            return wn_fail("%s: layer '%s' weight '%s': expected shape %s, found %s%s",
                           c->path, l->name, w->name, want, got, where);
        }
        if (fw->dtype != WN_H5_DTYPE_F32)
            return wn_fail("%s: layer '%s' weight '%s': expected float32, found %s%s",
                           c->path, l->name, w->name, fw->dtype_desc, where);
        char kf[48], km[48];
        weight_kind(fw->name, kf, sizeof kf);
        weight_kind(w->name, km, sizeof km);
        if (known_kind(kf) && known_kind(km) && strcmp(kf, km))
            return wn_fail("%s: layer '%s' weight '%s': the file has '%s' in its place%s "
                           "(weights saved in another order, e.g. with another trainable "
                           "split?)",
                           c->path, l->name, w->name, kf, where);
    }
    return WN_OK;
}

/* ---------------------------------------------------------------- loading */

static float *weight_ptr(float *params, float *stats, const wn_weight *w) {
    return (w->in_stats ? stats : params) + w->offset;
}

/* Builds the map for whichever layout the file has; sets info's scope and flags. */
static int plan(ctx *c, wn_weights_info *info) {
    const wn_model *m = c->m;
    const wn_h5_file *f = c->f;
    int n_layers = m->graph.n_layers;
    int *bb = malloc((size_t)n_layers * sizeof *bb), *hd = malloc((size_t)n_layers * sizeof *hd);
    int *fw = malloc((size_t)(f->n_layers > 0 ? f->n_layers : 1) * sizeof *fw);
    int *all = malloc((size_t)n_layers * sizeof *all);
    int rc = WN_ERR;
    if (!bb || !hd || !fw || !all) {
        wn_fail("%s: out of memory", c->path);
        goto done;
    }
    int nbb = 0, nhd = 0, nfw = 0, nest = -1, n_nested = 0;
    for (int i = 0; i < n_layers; i++) {
        if (m->graph.layers[i].n_weights == 0) continue;
        if (in_backbone(m, i))
            bb[nbb++] = i;
        else
            hd[nhd++] = i;
    }
    const char *bname = m->backbone ? m->backbone->keras_name : m->graph.name;
    for (int i = 0; i < f->n_layers; i++) {
        if (f->layers[i].n_weights == 0) continue;
        /* a nested model: named like our backbone, or more weights than any layer has */
        if (f->layers[i].n_weights > WN_MAX_WEIGHTS || !strcmp(f->layers[i].name, bname)) {
            nest = i;
            n_nested++;
        } else {
            fw[nfw++] = i;
        }
    }
    if (n_nested > 1) {
        wn_fail("%s: the file holds %d nested models; expected one (%s)", c->path, n_nested,
                bname);
        goto done;
    }
    if (n_nested == 1) {
        info->nested = 1;
        info->scope = WN_WEIGHTS_WHOLE_MODEL;
        int head_by_name = 0, bb_by_name = 0;
        if (map_nested(c, bb, nbb, nest, &bb_by_name) != WN_OK) goto done;
        if (map_flat(c, hd, nhd, fw, nfw, "model's head", &head_by_name) != WN_OK) goto done;
        info->by_name = bb_by_name && head_by_name;
        info->layers = nbb + nhd;
    } else {
        int overlap = 0;
        for (int i = 0; i < nbb; i++) overlap += file_has_layer(f, mlayer(c, bb[i])->name, 1);
        int whole;
        if (2 * overlap >= nbb) { /* our names: the head is there iff its names are */
            whole = nhd > 0;
            for (int i = 0; i < nhd; i++) whole = whole && file_has_layer(f, mlayer(c, hd[i])->name, 1);
        } else {
            whole = nhd > 0 && nfw == nbb + nhd;
        }
        int n = 0;
        for (int i = 0; i < nbb; i++) all[n++] = bb[i];
        if (whole)
            for (int i = 0; i < nhd; i++) all[n++] = hd[i];
        info->scope = whole ? WN_WEIGHTS_WHOLE_MODEL : WN_WEIGHTS_BACKBONE_ONLY;
        char what[160];
        snprintf(what, sizeof what, whole ? "model" : "%s backbone", bname);
        if (map_flat(c, all, n, fw, nfw, what, &info->by_name) != WN_OK) goto done;
        info->layers = n;
    }
    rc = WN_OK;
done:
    free(bb), free(hd), free(fw), free(all);
    return rc;
}

int wn_model_weights_load(wn_model *m, const char *path, wn_weights_info *info_out) {
    wn_weights_info info;
    memset(&info, 0, sizeof info);
    if (!m || !m->params || (m->graph.n_stats && !m->stats))
        return wn_fail("%s: no model to load into", path);
    if (access(path, F_OK) != 0)
        return wn_fail("%s: no such weight file; wastenet never downloads weights: see "
                       "weights/README.md for where to get them",
                       path);
    wn_h5_file *f;
    if (wn_h5_open(path, &f) != WN_OK) return WN_ERR;
    snprintf(info.keras_version, sizeof info.keras_version, "%s", f->keras_version);
    ctx c = {m, f, path, NULL, 0, 0};
    float *params = NULL, *stats = NULL;
    int rc = WN_ERR;
    if (plan(&c, &info) != WN_OK || check_map(&c) != WN_OK) goto done;

    /* read everything into scratch copies: the model is untouched until commit */
    size_t np = m->graph.n_params, ns = m->graph.n_stats;
    params = malloc((np ? np : 1) * sizeof *params);
    stats = malloc((ns ? ns : 1) * sizeof *stats);
    if (!params || !stats) {
        wn_fail("%s: out of memory for a scratch copy of %zu weights", path, np + ns);
        goto done;
    }
    memcpy(params, m->params, np * sizeof *params);
    if (ns) memcpy(stats, m->stats, ns * sizeof *stats);
    for (int i = 0; i < c.n_map; i++) {
        const wmap *e = &c.map[i];
        const wn_layer *l = &m->graph.layers[e->layer];
        const wn_weight *w = &l->weights[e->k];
        float *dst = weight_ptr(params, stats, w);
        if (wn_h5_weight_read(f, e->fl, e->fw, dst, w->count) != WN_OK) goto done;
        for (size_t j = 0; j < w->count; j++)
            if (!isfinite(dst[j])) {
                char where[512];
                where_str(&c, e, where, sizeof where);
                wn_fail("%s: layer '%s' weight '%s': value %zu of %zu is %s%s; refusing to load "
                        "non-finite weights (a diverged or damaged model)",
                        path, l->name, w->name, j, w->count, isnan(dst[j]) ? "NaN" : "infinite",
                        where);
                goto done;
            }
        info.values += w->count;
    }
    memcpy(m->params, params, np * sizeof *params);
    if (ns) memcpy(m->stats, stats, ns * sizeof *stats);
    rc = WN_OK;
done:
    free(params), free(stats), free(c.map);
    wn_h5_close(f);
    if (rc == WN_OK && info_out) *info_out = info;
    return rc;
}

/* ---------------------------------------------------------------- saving */

/* One output layer per graph layer: its name and weights (views into m). */
static int out_layer_fill(const wn_model *m, int id, wn_h5_out_layer *ol, wn_h5_out_weight *ow,
                          const char *name) {
    const wn_layer *l = &m->graph.layers[id];
    ol->name = name ? name : l->name;
    ol->n_weights = l->n_weights;
    ol->weights = ow;
    for (int k = 0; k < l->n_weights; k++) {
        const wn_weight *w = &l->weights[k];
        ow[k].name = w->name;
        ow[k].rank = w->rank;
        for (int r = 0; r < w->rank; r++) ow[k].dims[r] = w->dims[r];
        ow[k].data = (w->in_stats ? m->stats : m->params) + w->offset;
    }
    return l->n_weights;
}

int wn_model_weights_save(const wn_model *m, const char *path, wn_weights_scope scope) {
    if (!m || !m->params) return wn_fail("%s: no model to save", path);
    const wn_graph *g = &m->graph;
    int n = g->n_layers;
    wn_h5_out_layer *ol = calloc((size_t)n + 4, sizeof *ol);
    wn_h5_out_weight *ow = calloc((size_t)n * WN_MAX_WEIGHTS + 1, sizeof *ow);
    if (!ol || !ow) {
        free(ol), free(ow);
        return wn_fail("%s: out of memory", path);
    }
    int nl = 0, nw = 0, rc;
    if (scope == WN_WEIGHTS_BACKBONE_ONLY) {
        /* the notop layout: the backbone's model.layers, one group each */
        for (int i = m->backbone_first; i < m->backbone_first + m->backbone_count; i++) {
            nw += out_layer_fill(m, i, &ol[nl], &ow[nw], NULL);
            nl++;
        }
    } else {
        /* the notebook's outer model.layers: input_1, sequential, tf.math.truediv,
         * tf.math.subtract, <backbone> (nested: all its weights, in layer order, as
         * Keras lists a frozen nested model's weights), global_average_pooling2d,
         * dropout, dense */
        int nested_at = -1;
        for (int i = 0; i < n; i++) {
            if (in_backbone(m, i)) {
                if (nested_at >= 0) continue;
                nested_at = nl;
                ol[nl].name = m->backbone ? m->backbone->keras_name : g->name;
                ol[nl].weights = &ow[nw];
                for (int j = m->backbone_first; j < m->backbone_first + m->backbone_count; j++) {
                    wn_h5_out_layer tmp;
                    nw += out_layer_fill(m, j, &tmp, &ow[nw], NULL);
                    ol[nl].n_weights += tmp.n_weights;
                }
                nl++;
                continue;
            }
            nw += out_layer_fill(m, i, &ol[nl], &ow[nw], NULL);
            nl++;
            if (g->layers[i].type == WN_LAYER_AUGMENT && m->backbone &&
                m->backbone->preprocess != WN_PREPROCESS_LITE) {
                /* preprocess_input on a KerasTensor: its op layers, without weights */
                const char *names[3], *classes[3];
                int k = wn_preprocess_keras_layers(m->backbone->preprocess, names, classes);
                for (int j = 0; j < k; j++) ol[nl++] = (wn_h5_out_layer){names[j], 0, NULL};
            }
        }
    }
    rc = wn_h5_write(path, ol, nl, NULL);
    free(ol), free(ow);
    return rc;
}

int wn_model_weights_head_classes(const char *path) {
    wn_h5_file *f;
    if (wn_h5_open(path, &f) != WN_OK) return 0;
    int classes = 0, i = wn_h5_find_layer(f, "dense");
    if (i >= 0 && f->layers[i].n_weights >= 1 && f->layers[i].weights[0].rank == 2)
        classes = (int)f->layers[i].weights[0].dims[1];
    wn_h5_close(f);
    return classes;
}
