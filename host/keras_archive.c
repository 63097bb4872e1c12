/* host/keras_archive.c — Keras 3 `.keras` archives over libzip and jansson (see
 * keras_archive.h). */
#include "host/keras_archive.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zip.h>

#include "host/base/error.h"
#include "host/base/atomic_file.h"

#define WEIGHTS_MEMBER "model.weights.h5"

int wn_keras_archive_is(const char *path) {
    unsigned char magic[4] = {0};
    FILE *fp = fopen(path, "rb");
    if (!fp) return 0;
    size_t n = fread(magic, 1, sizeof magic, fp);
    fclose(fp);
    return n == 4 && !memcmp(magic, "PK\x03\x04", 4);
}

/* Opens the archive with consistency checks (a truncated zip has no central
 * directory and fails here, naming the problem). */
static zip_t *archive_open(const char *path) {
    int code = 0;
    zip_t *z = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &code);
    if (!z) {
        zip_error_t e;
        zip_error_init_with_code(&e, code);
        wn_fail("%s: not a readable .keras archive (%s); a truncated or damaged file? "
                "Save it again with model.save(\"x.keras\")",
                path, zip_error_strerror(&e));
        zip_error_fini(&e);
    }
    return z;
}

/* Reads member `name` into a malloc'd, NUL-terminated buffer. */
static int member_read(zip_t *z, const char *path, const char *name, char **out, size_t *size) {
    *out = NULL;
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat(z, name, 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE))
        return wn_fail("%s: the archive has no %s (not a Keras 3 .keras file?)", path, name);
    if (st.size > ((zip_uint64_t)1 << 36))
        return wn_fail("%s: %s claims %llu bytes (damaged archive?)", path, name,
                       (unsigned long long)st.size);
    char *buf = malloc((size_t)st.size + 1);
    zip_file_t *zf = buf ? zip_fopen(z, name, 0) : NULL;
    if (!zf) {
        free(buf);
        return wn_fail("%s: cannot open %s in the archive: %s", path, name, zip_strerror(z));
    }
    zip_int64_t got = 0, n = 0;
    while (got < (zip_int64_t)st.size &&
           (n = zip_fread(zf, buf + got, (zip_uint64_t)st.size - (zip_uint64_t)got)) > 0)
        got += n;
    int bad = n < 0 || got != (zip_int64_t)st.size;
    char why[256];
    snprintf(why, sizeof why, "%s", bad ? zip_file_strerror(zf) : "");
    zip_fclose(zf); /* also reports a CRC mismatch of a damaged member */
    if (bad) {
        free(buf);
        return wn_fail("%s: cannot read %s from the archive (%s); truncated or damaged?", path,
                       name, why);
    }
    buf[st.size] = 0;
    *out = buf;
    *size = (size_t)st.size;
    return WN_OK;
}

int wn_keras_archive_extract_weights(const char *path, char *tmp, size_t size) {
    zip_t *z = archive_open(path);
    if (!z) return WN_ERR;
    char *data;
    size_t n;
    int rc = member_read(z, path, WEIGHTS_MEMBER, &data, &n);
    zip_discard(z);
    if (rc != WN_OK) return WN_ERR;
    const char *dir = getenv("TMPDIR");
    if (!dir || !dir[0]) dir = "/tmp";
    snprintf(tmp, size, "%s/wastenet-keras-XXXXXX", dir);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        free(data);
        return wn_fail("%s: cannot create a temporary file in %s to read %s: %s", path, dir,
                       WEIGHTS_MEMBER, strerror(errno));
    }
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, data + done, n - done);
        if (w <= 0) break;
        done += (size_t)w;
    }
    free(data);
    if (close(fd) != 0 || done != n) {
        unlink(tmp);
        return wn_fail("%s: cannot write the temporary copy of %s in %s (disk full?)", path,
                       WEIGHTS_MEMBER, dir);
    }
    return WN_OK;
}

void wn_keras_config_free(wn_keras_config *cfg) {
    for (int i = 0; cfg->nested_classes && i < cfg->nested_layers; i++) free(cfg->nested_classes[i]);
    for (int i = 0; cfg->nested_names && i < cfg->nested_layers; i++) free(cfg->nested_names[i]);
    free(cfg->nested_classes);
    free(cfg->nested_names);
    memset(cfg, 0, sizeof *cfg);
}

static const char *jstr(json_t *obj, const char *key) {
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

static char *dup_str(const char *s) {
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d) memcpy(d, s, n + 1);
    return d;
}

int wn_keras_archive_config(const char *path, wn_keras_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    zip_t *z = archive_open(path);
    if (!z) return WN_ERR;
    char *text = NULL, *meta = NULL;
    size_t n;
    int rc = member_read(z, path, "config.json", &text, &n);
    if (rc == WN_OK && member_read(z, path, "metadata.json", &meta, &n) == WN_OK) {
        json_t *m = json_loads(meta, 0, NULL);
        snprintf(cfg->keras_version, sizeof cfg->keras_version, "%s", jstr(m, "keras_version"));
        json_decref(m);
    }
    wn_clear_error();
    zip_discard(z);
    free(meta);
    if (rc != WN_OK) return WN_ERR;
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    free(text);
    if (!root)
        return wn_fail("%s: config.json is not valid JSON (line %d: %s)", path, jerr.line,
                       jerr.text);
    json_t *conf = json_object_get(root, "config");
    json_t *layers = json_object_get(conf, "layers");
    snprintf(cfg->model_class, sizeof cfg->model_class, "%s", jstr(root, "class_name"));
    snprintf(cfg->model_name, sizeof cfg->model_name, "%s", jstr(conf, "name"));
    if (!json_is_array(layers)) {
        json_decref(root);
        return wn_fail("%s: config.json has no config.layers list (a %s, not a functional "
                       "model saved by Keras 3?)",
                       path, cfg->model_class[0] ? cfg->model_class : "model of unknown class");
    }
    cfg->n_layers = (int)json_array_size(layers);
    size_t i;
    json_t *l;
    rc = WN_OK;
    json_array_foreach(layers, i, l) {
        const char *cls = jstr(l, "class_name");
        json_t *lc = json_object_get(l, "config");
        if (!strcmp(cls, "InputLayer") && i == 0) {
            json_t *shape = json_object_get(lc, "batch_shape");
            if (json_array_size(shape) == 4) {
                cfg->input_h = (int)json_integer_value(json_array_get(shape, 1));
                cfg->input_w = (int)json_integer_value(json_array_get(shape, 2));
            }
        } else if (!strcmp(cls, "Dense")) {
            cfg->dense_units = (int)json_integer_value(json_object_get(lc, "units"));
        } else if (!strcmp(cls, "Functional") && json_is_array(json_object_get(lc, "layers"))) {
            if (cfg->nested_name[0]) {
                rc = wn_fail("%s: config.json has two nested models ('%s' and '%s'); expected "
                             "one backbone",
                             path, cfg->nested_name, jstr(lc, "name"));
                break;
            }
            json_t *inner = json_object_get(lc, "layers");
            snprintf(cfg->nested_name, sizeof cfg->nested_name, "%s", jstr(lc, "name"));
            int k = (int)json_array_size(inner);
            cfg->nested_classes = calloc((size_t)(k ? k : 1), sizeof(char *));
            cfg->nested_names = calloc((size_t)(k ? k : 1), sizeof(char *));
            if (!cfg->nested_classes || !cfg->nested_names) {
                rc = wn_fail("%s: out of memory", path);
                break;
            }
            cfg->nested_layers = k;
            for (int j = 0; j < k; j++) {
                json_t *e = json_array_get(inner, (size_t)j);
                cfg->nested_classes[j] = dup_str(jstr(e, "class_name"));
                cfg->nested_names[j] = dup_str(jstr(json_object_get(e, "config"), "name"));
                if (!cfg->nested_classes[j] || !cfg->nested_names[j]) {
                    rc = wn_fail("%s: out of memory", path);
                    break;
                }
            }
        }
    }
    json_decref(root);
    if (rc != WN_OK) wn_keras_config_free(cfg);
    return rc;
}

int wn_read_file_bytes(const char *path, void **data, size_t *size) {
    *data = NULL;
    *size = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) return wn_fail("%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 20, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if (n < cap) break;
        char *grown = realloc(buf, cap * 2);
        if (!grown) free(buf);
        buf = grown;
        cap *= 2;
    }
    int bad = ferror(fp);
    fclose(fp);
    if (!buf || bad) {
        free(buf);
        return wn_fail("%s: cannot read (%s)", path, buf ? "I/O error" : "out of memory");
    }
    *data = buf;
    *size = n;
    return WN_OK;
}

int wn_keras_archive_write(const char *path, const wn_keras_member *members, int n) {
    char tmp[4200];
    if (wn_atomic_temp_name(path, tmp, sizeof tmp) != WN_OK) return WN_ERR;
    int code = 0;
    zip_t *z = zip_open(tmp, ZIP_CREATE | ZIP_TRUNCATE, &code);
    if (!z) {
        zip_error_t e;
        zip_error_init_with_code(&e, code);
        wn_fail("cannot create %s (through the temporary %s): %s", path, tmp,
                zip_error_strerror(&e));
        zip_error_fini(&e);
        return WN_ERR;
    }
    for (int i = 0; i < n; i++) {
        zip_source_t *src = zip_source_buffer(z, members[i].data, members[i].size, 0);
        zip_int64_t idx = src ? zip_file_add(z, members[i].name, src, ZIP_FL_ENC_UTF_8) : -1;
        if (idx < 0) {
            if (src) zip_source_free(src);
            wn_fail("%s: cannot add %s: %s", path, members[i].name, zip_strerror(z));
            zip_discard(z);
            unlink(tmp);
            return WN_ERR;
        }
        /* stored, as Keras writes its archives: the weights do not compress */
        zip_set_file_compression(z, (zip_uint64_t)idx, ZIP_CM_STORE, 0);
    }
    if (zip_close(z) != 0) { /* the members are written here */
        wn_fail("%s: cannot write the archive (%s; disk full?)", path, zip_strerror(z));
        zip_discard(z);
        unlink(tmp);
        return WN_ERR;
    }
    return wn_atomic_rename(tmp, path);
}
