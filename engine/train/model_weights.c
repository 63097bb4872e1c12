/* engine/train/model_weights.c — maps Keras HDF5 weight files onto a wn_model and back
 * (see model_weights.h for the rules). Plan, check, read into scratch, commit. */
#include "engine/train/model_weights.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/base/error.h"
#include "host/h5_keras.h"
#include "host/keras_archive.h"

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
    if (fl->slot)
        snprintf(buf, size, " (file layer '%s', variable %s/vars/%s%s)", fl->name, fl->slot,
                 fl->weights[e->fw].name,
                 e->pos >= 0 ? "; matched by slot, as Keras 3 does" : "");
    else if (e->pos >= 0)
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

/* Same variable name, ignoring TF's ":0" suffix (Keras 3's legacy h5 has none) and
 * Keras 3 calling DepthwiseConv2D's depthwise_kernel "kernel". */
static int same_var_name(const char *a, const char *b) {
    size_t na = strcspn(a, ":"), nb = strcspn(b, ":");
    if (na == nb && !strncmp(a, b, na)) return 1;
    static const char dw[] = "depthwise_kernel", k[] = "kernel";
    const char *sa = strrchr(a, '/'), *sb = strrchr(b, '/');
    if (!sa || !sb || sa - a != sb - b || strncmp(a, b, (size_t)(sa - a))) return 0;
    char ka[48], kb[48];
    weight_kind(a, ka, sizeof ka);
    weight_kind(b, kb, sizeof kb);
    return (!strcmp(ka, dw) && !strcmp(kb, k)) || (!strcmp(ka, k) && !strcmp(kb, dw));
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
                       wn_model_backbone_name(c->m), total);
    /* by name: each model weight name appears exactly once in the group */
    int *idx = malloc((size_t)(total > 0 ? total : 1) * sizeof *idx);
    if (!idx) return wn_fail("%s: out of memory", c->path);
    int t = 0;
    for (int i = 0; i < nm; i++) {
        const wn_layer *l = mlayer(c, ml[i]);
        for (int k = 0; k < l->n_weights; k++, t++) {
            idx[t] = -1;
            for (int j = 0; j < f->n_weights; j++)
                if (same_var_name(f->weights[j].name, l->weights[k].name)) {
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
        int dw_alias = !strcmp(km, "depthwise_kernel") && !strcmp(kf, "kernel"); /* Keras 3 */
        if (known_kind(kf) && known_kind(km) && strcmp(kf, km) && !dw_alias)
            return wn_fail("%s: layer '%s' weight '%s': the file has '%s' in its place%s "
                           "(weights saved in another order, e.g. with another trainable "
                           "split?)",
                           c->path, l->name, w->name, kf, where);
    }
    return WN_OK;
}


/* ---------------------------------------------------------------- Keras 3 files */

/* Keras 3's slot prefix for a layer type: naming.to_snake_case(class name). */
static const char *k3_slot_class(wn_layer_type t) {
    return t == WN_LAYER_INPUT ? "input_layer" : wn_layer_type_snake_name(t);
}

/* slots[i] = Keras 3's slot path of model layer ml[i] inside container `prefix`
 * ("" or "layers/functional/"): "<prefix>layers/<class>[_k]", k counting the layers of
 * that class before it in model.layers order (Keras's _get_unique_name). */
void wn_model_keras3_slot(const wn_model *m, int id, int first, int count, const char *prefix,
                          char *out, size_t size) {
    const wn_layer *l = &m->graph.layers[id];
    int k = 0;
    for (int j = first; j < id && j < first + count; j++)
        if (j >= 0 && m->graph.layers[j].type == l->type &&
            in_backbone(m, j) == in_backbone(m, id))
            k++;
    if (k)
        snprintf(out, size, "%slayers/%s_%d", prefix, k3_slot_class(l->type), k);
    else
        snprintf(out, size, "%slayers/%s", prefix, k3_slot_class(l->type));
}

static void k3_slots(const ctx *c, int first, int count, const char *prefix, char (*slots)[320],
                     const int *ids, int n_ids) {
    for (int i = 0; i < n_ids; i++)
        wn_model_keras3_slot(c->m, ids[i], first, count, prefix, slots[i], 320);
}

static int k3_find(const wn_h5_file *f, const char *key, int by_slot) {
    int found = -1;
    for (int i = 0; i < f->n_layers; i++)
        if (!strcmp(by_slot ? f->layers[i].slot : f->layers[i].name, key)) {
            if (found >= 0) return -2; /* ambiguous */
            found = i;
        }
    return found;
}

/* Keras 3 .weights.h5: every file layer with variables is one model layer with
 * weights. By name when the file's names are the model's (a fresh Keras session, or
 * a wastenet export), else by slot, which is how Keras 3's load_weights matches. */
static int plan_keras3(ctx *c, wn_weights_info *info) {
    const wn_model *m = c->m;
    const wn_h5_file *f = c->f;
    int n_layers = m->graph.n_layers, rc = WN_ERR;
    int *ids = malloc((size_t)n_layers * sizeof *ids), *fl = malloc((size_t)n_layers * sizeof *fl);
    char (*slots)[320] = malloc((size_t)n_layers * sizeof *slots);
    char *used = calloc((size_t)(f->n_layers > 0 ? f->n_layers : 1), 1);
    if (!ids || !fl || !slots || !used) {
        wn_fail("%s: out of memory", c->path);
        goto done;
    }
    const char *bname = wn_model_backbone_name(m);
    /* whole model: a nested model with variables plus the head; else the backbone */
    int whole = f->nested_slot[0] != 0;
    info->nested = whole;
    info->scope = whole ? WN_WEIGHTS_WHOLE_MODEL : WN_WEIGHTS_BACKBONE_ONLY;
    int n = 0;
    for (int i = 0; i < n_layers; i++)
        if (m->graph.layers[i].n_weights > 0 && (whole || in_backbone(m, i))) ids[n++] = i;
    if (f->n_weighted_layers != n) {
        wn_fail("%s: the file (Keras 3 layout%s%s%s) has %d layers with weights, the "
                "%s%s has %d: weights for another architecture?",
                c->path, f->model_name[0] ? ", model '" : "", f->model_name,
                       f->model_name[0] ? "'" : "", f->n_weighted_layers, whole ? "" : bname,
                       whole ? "model" : " backbone", n);
        goto done;
    }
    int by_name = 1;
    for (int i = 0; i < n && by_name; i++) {
        fl[i] = k3_find(f, mlayer(c, ids[i])->name, 0);
        by_name = fl[i] >= 0;
    }
    if (!by_name) {
        /* the backbone's slots are inside the nested model; the head's outside */
        char nested[300];
        snprintf(nested, sizeof nested, "%s/", f->nested_slot);
        int nb = 0;
        for (int i = 0; i < n; i++) nb += in_backbone(m, ids[i]);
        k3_slots(c, m->backbone_first, m->backbone_count, whole ? nested : "", slots, ids, nb);
        /* the outer container: graph layers outside the backbone, plus the backbone as
         * one Functional (slot class "functional" does not collide with ours) */
        k3_slots(c, 0, n_layers, "", slots + nb, ids + nb, n - nb);
        for (int i = 0; i < n; i++) {
            fl[i] = k3_find(f, slots[i], 1);
            if (fl[i] < 0) {
                const wn_layer *l = mlayer(c, ids[i]);
                wn_fail("%s: layer '%s' (%s) is not in the file: neither a layer of that name "
                        "nor Keras 3's slot '%s' for it has variables there: weights for "
                        "another architecture?",
                        c->path, l->name, wn_layer_type_keras(l->type), slots[i]);
                goto done;
            }
        }
    }
    for (int i = 0; i < n; i++) {
        const wn_layer *l = mlayer(c, ids[i]);
        const wn_h5_layer *F = &f->layers[fl[i]];
        if (used[fl[i]]) {
            wn_fail("%s: file layer '%s' (%s) matches two model layers", c->path, F->name, F->slot);
            goto done;
        }
        used[fl[i]] = 1;
        if (F->n_weights != l->n_weights) {
            wn_fail("%s: layer '%s' (%s) has %d weights, the file's layer '%s' (%s) has %d",
                    c->path, l->name, wn_layer_type_keras(l->type), l->n_weights, F->name,
                    F->slot, F->n_weights);
            goto done;
        }
        for (int k = 0; k < l->n_weights; k++)
            if (map_push(c, ids[i], k, fl[i], k, by_name ? -1 : i) != WN_OK) goto done;
    }
    info->by_name = by_name;
    info->layers = n;
    rc = WN_OK;
done:
    free(ids), free(fl), free(slots), free(used);
    return rc;
}

/* ---------------------------------------------------------------- loading */

static float *weight_ptr(float *params, float *stats, const wn_weight *w) {
    return (w->in_stats ? stats : params) + w->offset;
}

/* Builds the map for whichever layout the file has; sets info's scope and flags. */
static int plan(ctx *c, wn_weights_info *info) {
    if (c->f->layout == WN_H5_LAYOUT_KERAS3) return plan_keras3(c, info);
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
    const char *bname = wn_model_backbone_name(m);
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

/* A .keras archive's config.json against the model: the nested model's layer count
 * and classes in model.layers order, and the head's units. */
static int check_keras_config(const wn_model *m, const char *path, const wn_keras_config *cfg) {
    const char *ours = wn_model_backbone_name(m);
    if (!cfg->nested_name[0]) return WN_OK; /* a backbone saved alone: weights decide */
    if (cfg->nested_layers != m->backbone_count)
        return wn_fail("%s: config.json: the nested model '%s' has %d layers, the model's %s "
                       "has %d: a model of another architecture (pass the matching --model)",
                       path, cfg->nested_name, cfg->nested_layers, ours, m->backbone_count);
    for (int j = 0; j < m->backbone_count; j++) {
        const wn_layer *l = &m->graph.layers[m->backbone_first + j];
        const char *want = wn_layer_keras_class(l); /* ReLU for MobileNetV2's ReLU(6.) */
        /* the notebook's model: the backbone's own input is an InputLayer either way */
        if (strcmp(cfg->nested_classes[j], want))
            return wn_fail("%s: config.json: layer %d of '%s' is '%s' (%s), the model's "
                           "layer %d is '%s' (%s): a model of another architecture",
                           path, j, cfg->nested_name, cfg->nested_names[j],
                           cfg->nested_classes[j], j, l->name, want);
    }
    if (cfg->dense_units && cfg->dense_units != m->num_classes)
        return wn_fail("%s: config.json: the Dense head has %d units, the model %d classes "
                       "(pass --classes %d, or use the matching class list)",
                       path, cfg->dense_units, m->num_classes, cfg->dense_units);
    return WN_OK;
}

/* Opens any weight file wastenet reads: HDF5 (Keras 2 or 3 layout), or a .keras
 * archive, whose weights are extracted to tmp (non-empty on return: unlink it). */
static int open_weights(const wn_model *m, const char *path, wn_h5_file **f, char *tmp,
                        size_t tmp_size) {
    tmp[0] = 0;
    if (!wn_keras_archive_is(path)) return wn_h5_open(path, f);
    if (m) {
        wn_keras_config cfg;
        if (wn_keras_archive_config(path, &cfg) != WN_OK) return WN_ERR;
        int rc = check_keras_config(m, path, &cfg);
        wn_keras_config_free(&cfg);
        if (rc != WN_OK) return WN_ERR;
    }
    if (wn_keras_archive_extract_weights(path, tmp, tmp_size) != WN_OK) return WN_ERR;
    char display[4200];
    snprintf(display, sizeof display, "%s: model.weights.h5", path);
    if (wn_h5_open_named(tmp, display, f) != WN_OK) {
        unlink(tmp);
        tmp[0] = 0;
        return WN_ERR;
    }
    return WN_OK;
}

static void close_weights(wn_h5_file *f, char *tmp) {
    wn_h5_close(f);
    if (tmp[0]) unlink(tmp);
    tmp[0] = 0;
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
    char tmp[4200];
    if (open_weights(m, path, &f, tmp, sizeof tmp) != WN_OK) return WN_ERR;
    snprintf(info.keras_version, sizeof info.keras_version, "%s", f->keras_version);
    ctx c = {m, f, f->path, NULL, 0, 0};
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
                        c.path, l->name, w->name, j, w->count, isnan(dst[j]) ? "NaN" : "infinite",
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
    close_weights(f, tmp);
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

static int save_legacy(const wn_model *m, const char *path, wn_weights_scope scope,
                       const wn_h5_write_opts *opts);

int wn_model_weights_save(const wn_model *m, const char *path, wn_weights_scope scope) {
    return save_legacy(m, path, scope, NULL);
}

int wn_model_weights_save_full_model(const wn_model *m, const char *path,
                                     const char *model_config) {
    wn_h5_write_opts opts = {0};
    opts.model_config = model_config;
    return save_legacy(m, path, WN_WEIGHTS_WHOLE_MODEL, &opts);
}

static int save_legacy(const wn_model *m, const char *path, wn_weights_scope scope,
                       const wn_h5_write_opts *opts) {
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
                ol[nl].name = wn_model_backbone_name(m);
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
    rc = wn_h5_write(path, ol, nl, opts);
    free(ol), free(ow);
    return rc;
}

int wn_model_weights_head_classes(const char *path) {
    wn_h5_file *f;
    char tmp[4200];
    if (wn_keras_archive_is(path)) { /* config.json says it without extracting */
        wn_keras_config cfg;
        if (wn_keras_archive_config(path, &cfg) != WN_OK) return -1;
        int units = cfg.dense_units;
        wn_keras_config_free(&cfg);
        return units;
    }
    if (open_weights(NULL, path, &f, tmp, sizeof tmp) != WN_OK) return -1;
    int classes = 0, i = wn_h5_find_layer(f, "dense");
    if (i >= 0 && f->layers[i].n_weights >= 1 && f->layers[i].weights[0].rank == 2)
        classes = (int)f->layers[i].weights[0].dims[1];
    close_weights(f, tmp);
    return classes;
}

int wn_model_weights_save_keras3(const wn_model *m, const char *path, wn_weights_scope scope) {
    if (!m || !m->params) return wn_fail("%s: no model to save", path);
    const wn_graph *g = &m->graph;
    int n = g->n_layers;
    wn_h5_k3_group *gr = calloc((size_t)n + 8, sizeof *gr);
    wn_h5_out_weight *ow = calloc((size_t)n * WN_MAX_WEIGHTS + 1, sizeof *ow);
    if (!gr || !ow) {
        free(gr), free(ow);
        return wn_fail("%s: out of memory", path);
    }
    const char *bname = wn_model_backbone_name(m);
    int ng = 0, nw = 0, whole = scope == WN_WEIGHTS_WHOLE_MODEL;
    /* the saved model itself, then its layers (Keras writes a vars group for each) */
    gr[ng++] = (wn_h5_k3_group){"", whole ? "functional" : bname, 0, NULL};
    const char *nested = whole ? "layers/functional/" : "";
    if (whole) gr[ng++] = (wn_h5_k3_group){"layers/functional", bname, 0, NULL};
    for (int i = 0; i < n; i++) {
        int bb = in_backbone(m, i);
        if (!bb && !whole) continue;
        wn_h5_k3_group *e = &gr[ng++];
        if (bb)
            wn_model_keras3_slot(m, i, m->backbone_first, m->backbone_count, nested, e->path,
                                 sizeof e->path);
        else
            wn_model_keras3_slot(m, i, 0, n, "", e->path, sizeof e->path);
        e->name = g->layers[i].name;
        wn_h5_out_layer tmp;
        e->weights = &ow[nw];
        e->n_weights = out_layer_fill(m, i, &tmp, &ow[nw], NULL);
        nw += e->n_weights;
        if (!bb && g->layers[i].type == WN_LAYER_AUGMENT) {
            /* Keras 3 names the outer input "input_layer"; the Sequential's layers */
            gr[ng++] = (wn_h5_k3_group){"layers/sequential/layers/random_flip", "random_flip", 0, NULL};
            gr[ng++] = (wn_h5_k3_group){"layers/sequential/layers/random_rotation", "random_rotation", 0, NULL};
        }
    }
    int rc = wn_h5_write_keras3(path, gr, ng);
    free(gr), free(ow);
    return rc;
}
