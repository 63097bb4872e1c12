/* engine/train/checkpoint.c — the phase checkpoint file (see checkpoint.h). */
#include "engine/train/checkpoint.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "host/base/error.h"
#include "engine/model/model.h"
#include "host/base/atomic_file.h"
#include "host/regular_file.h"

static const unsigned char wn_ckpt_magic[8] = {'W', 'N', 'C', 'K', 'P', 'T', 0, 1};
#define WN_CKPT_VERSION 2u /* 2: + the run identity (command, batch, class names) */
#define WN_CKPT_ENDIAN 0x01020304u

/* 64-bit FNV-1a over 8-byte words (then the tail bytes): fast on the ~GB of a
 * fine-tuning checkpoint, and any flipped or missing byte changes it. */
typedef struct hasher {
    uint64_t h;
} hasher;

static void hash_bytes(hasher *hs, const void *data, size_t n) {
    const unsigned char *p = data;
    uint64_t h = hs->h;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0x100000001B3ull;
    }
    for (; i < n; i++) h = (h ^ p[i]) * 0x100000001B3ull;
    hs->h = h;
}

typedef struct stream {
    FILE *fp;
    hasher hs;
    const char *path;
    int failed;
} stream;

static void put(stream *s, const void *data, size_t n) {
    if (s->failed || n == 0) return;
    hash_bytes(&s->hs, data, n);
    if (fwrite(data, 1, n, s->fp) != n) s->failed = 1;
}

static int get(stream *s, void *data, size_t n) {
    if (n == 0) return WN_OK;
    if (fread(data, 1, n, s->fp) != n)
        return wn_fail("%s: truncated checkpoint (the file ends early)", s->path);
    hash_bytes(&s->hs, data, n);
    return WN_OK;
}

#define PUT(s, v) put((s), &(v), sizeof(v))
#define GET(s, v) get((s), &(v), sizeof(v))

/* Fixed-width header fields: int32, int64, uint64, float64 and fixed strings. */
static void put_i32(stream *s, int v) { int32_t x = v; PUT(s, x); }
static void put_i64(stream *s, long v) { int64_t x = v; PUT(s, x); }
static void put_u64(stream *s, uint64_t v) { PUT(s, v); }
static void put_f64(stream *s, double v) { PUT(s, v); }
static int get_i32(stream *s, int *v) { int32_t x; if (GET(s, x)) return WN_ERR; *v = x; return WN_OK; }
static int get_i64(stream *s, long *v) { int64_t x; if (GET(s, x)) return WN_ERR; *v = (long)x; return WN_OK; }
static int get_u64(stream *s, uint64_t *v) { return GET(s, *v); }
static int get_f64(stream *s, double *v) { return GET(s, *v); }
static int get_size(stream *s, size_t *v) { uint64_t x; if (GET(s, x)) return WN_ERR; *v = (size_t)x; return WN_OK; }

static void write_header(stream *s, const wn_checkpoint *ck) {
    char name[WN_CKPT_NAME_MAX];
    /* NUL-padded to the fixed width, so the bytes (and the checksum) are defined. */
    memset(name, 0, sizeof name);
    memcpy(name, ck->phase, strnlen(ck->phase, sizeof name - 1));
    put(s, name, sizeof name);
    memset(name, 0, sizeof name);
    memcpy(name, ck->arch, strnlen(ck->arch, sizeof name - 1));
    put(s, name, sizeof name);
    put_i32(s, ck->image_h), put_i32(s, ck->image_w), put_i32(s, ck->num_classes);
    put_i32(s, ck->fine_tune_at);
    put_i32(s, ck->epoch), put_i32(s, ck->step), put_i32(s, ck->epochs_max);
    put_i32(s, ck->status);
    put_f64(s, ck->lr);
    put_u64(s, ck->seed);
    for (int i = 0; i < 4; i++) put_u64(s, ck->rng.s[i]);
    const wn_early_stopping *es = &ck->es;
    put_f64(s, es->min_delta), put_i32(s, es->patience), put_i32(s, es->mode_max);
    put_i32(s, (int)es->restore);
    put_f64(s, es->best), put_i32(s, es->best_epoch), put_i32(s, es->wait);
    put_i32(s, es->stopped_epoch), put_i32(s, es->has_snapshot);
    put_f64(s, ck->part_loss_sum), put_i64(s, ck->part_correct), put_i64(s, ck->part_seen);
    put_i64(s, ck->adam_t);
    put_u64(s, ck->n_params), put_u64(s, ck->n_stats), put_u64(s, ck->trainable_first);
    put_i32(s, ck->has_best);
}

static int read_header(stream *s, wn_checkpoint *ck) {
    int restore = 0;
    if (get(s, ck->phase, sizeof ck->phase) || get(s, ck->arch, sizeof ck->arch)) return WN_ERR;
    ck->phase[sizeof ck->phase - 1] = ck->arch[sizeof ck->arch - 1] = '\0';
    wn_early_stopping *es = &ck->es;
    if (get_i32(s, &ck->image_h) || get_i32(s, &ck->image_w) || get_i32(s, &ck->num_classes) ||
        get_i32(s, &ck->fine_tune_at) || get_i32(s, &ck->epoch) || get_i32(s, &ck->step) ||
        get_i32(s, &ck->epochs_max) || get_i32(s, &ck->status) || get_f64(s, &ck->lr) ||
        get_u64(s, &ck->seed) || get_u64(s, &ck->rng.s[0]) || get_u64(s, &ck->rng.s[1]) ||
        get_u64(s, &ck->rng.s[2]) || get_u64(s, &ck->rng.s[3]) || get_f64(s, &es->min_delta) ||
        get_i32(s, &es->patience) || get_i32(s, &es->mode_max) || get_i32(s, &restore) ||
        get_f64(s, &es->best) || get_i32(s, &es->best_epoch) || get_i32(s, &es->wait) ||
        get_i32(s, &es->stopped_epoch) || get_i32(s, &es->has_snapshot) ||
        get_f64(s, &ck->part_loss_sum) || get_i64(s, &ck->part_correct) ||
        get_i64(s, &ck->part_seen) || get_i64(s, &ck->adam_t) || get_size(s, &ck->n_params) ||
        get_size(s, &ck->n_stats) || get_size(s, &ck->trainable_first) ||
        get_i32(s, &ck->has_best))
        return WN_ERR;
    es->restore = (wn_restore_mode)restore;
    return WN_OK;
}

/* Version 2: what the phase was trained on, so that --resume can refuse another
 * command, batch or class list. Class names: u32 count, then u32 length + bytes. */
static void write_identity(stream *s, const wn_checkpoint *ck) {
    char name[WN_CKPT_NAME_MAX];
    memset(name, 0, sizeof name);
    memcpy(name, ck->command, strnlen(ck->command, sizeof name - 1));
    put(s, name, sizeof name);
    put_i32(s, ck->batch);
    put_i32(s, ck->n_class_names);
    for (int i = 0; i < ck->n_class_names; i++) {
        uint32_t len = (uint32_t)strlen(ck->class_names[i]);
        PUT(s, len);
        put(s, ck->class_names[i], len);
    }
}

static int read_identity(stream *s, wn_checkpoint *ck) {
    if (get(s, ck->command, sizeof ck->command)) return WN_ERR;
    ck->command[sizeof ck->command - 1] = '\0';
    int n = 0;
    if (get_i32(s, &ck->batch) || get_i32(s, &n)) return WN_ERR;
    if (n < 0 || n > 100000) return wn_fail("%s: corrupt checkpoint header (%d class names)", s->path, n);
    ck->class_names = calloc((size_t)n + 1, sizeof *ck->class_names);
    if (!ck->class_names) return wn_fail("%s: out of memory", s->path);
    ck->owns_class_names = 1;
    for (int i = 0; i < n; i++) {
        uint32_t len;
        if (GET(s, len)) return WN_ERR;
        if (len > 4096) return wn_fail("%s: corrupt checkpoint header (a class name of %u bytes)", s->path, len);
        char *name = malloc((size_t)len + 1);
        if (!name) return wn_fail("%s: out of memory", s->path);
        ck->class_names[i] = name;
        ck->n_class_names = i + 1;
        if (get(s, name, len)) return WN_ERR;
        name[len] = '\0';
    }
    return WN_OK;
}

int wn_checkpoint_save(const wn_checkpoint *ck, const char *path) {
    if (ck->trainable_first > ck->n_params)
        return wn_fail("checkpoint %s: trainable offset %zu beyond %zu parameters", path,
                       ck->trainable_first, ck->n_params);
    size_t n_train = ck->n_params - ck->trainable_first;
    wn_atomic_file af;
    if (wn_atomic_open(&af, path) != WN_OK) return WN_ERR;
    stream s = {af.fp, {0xCBF29CE484222325ull}, path, 0};
    uint32_t version = WN_CKPT_VERSION, endian = WN_CKPT_ENDIAN;
    put(&s, wn_ckpt_magic, sizeof wn_ckpt_magic);
    PUT(&s, version);
    PUT(&s, endian);
    write_header(&s, ck);
    write_identity(&s, ck);
    put(&s, ck->params, ck->n_params * sizeof(float));
    put(&s, ck->stats, ck->n_stats * sizeof(float));
    put(&s, ck->adam_m, n_train * sizeof(float));
    put(&s, ck->adam_v, n_train * sizeof(float));
    if (ck->has_best) put(&s, ck->best, n_train * sizeof(float));
    uint64_t sum = s.hs.h;
    if (!s.failed && fwrite(&sum, sizeof sum, 1, af.fp) != 1) s.failed = 1;
    if (s.failed) {
        wn_atomic_abort(&af);
        return wn_fail("cannot write checkpoint %s: %s (is the disk full?); the previous "
                       "checkpoint is unchanged",
                       path, strerror(errno));
    }
    return wn_atomic_commit(&af);
}

int wn_checkpoint_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

void wn_checkpoint_free(wn_checkpoint *ck) {
    if (ck->owns_class_names)
        for (int i = 0; i < ck->n_class_names; i++) free(ck->class_names[i]);
    if (ck->owns_class_names) free(ck->class_names);
    ck->class_names = NULL, ck->n_class_names = 0, ck->owns_class_names = 0;
    free(ck->params);
    free(ck->stats);
    free(ck->adam_m);
    free(ck->adam_v);
    free(ck->best);
    ck->params = ck->stats = ck->adam_m = ck->adam_v = ck->best = NULL;
}

static int read_array(stream *s, float **out, size_t n) {
    *out = malloc(n ? n * sizeof(float) : 1);
    if (!*out) return wn_fail("%s: out of memory for %zu values", s->path, n);
    return get(s, *out, n * sizeof(float));
}

/* Opens `path` and reads everything before the arrays: magic, version, byte order, the
 * header and (version 2) the identity. WN_ERR with nothing left open or allocated. */
static int read_head(wn_checkpoint *ck, const char *path, stream *s) {
    memset(ck, 0, sizeof *ck);
    const char *why;
    FILE *fp = wn_fopen_regular(path, "rb", &why);
    if (!fp) return wn_fail("cannot read checkpoint %s: %s", path, why);
    *s = (stream){fp, {0xCBF29CE484222325ull}, path, 0};
    unsigned char magic[8];
    uint32_t version = 0, endian = 0;
    if (get(s, magic, sizeof magic)) goto fail;
    if (memcmp(magic, wn_ckpt_magic, sizeof magic)) {
        wn_fail("%s is not a wastenet checkpoint (bad magic)", path);
        goto fail;
    }
    if (GET(s, version) || GET(s, endian)) goto fail;
    if (version != 1 && version != WN_CKPT_VERSION) {
        wn_fail("%s: checkpoint version %u, this wastenet reads versions 1 and %u (a newer "
                "wastenet wrote it?)",
                path, version, WN_CKPT_VERSION);
        goto fail;
    }
    ck->version = (int)version;
    if (endian != WN_CKPT_ENDIAN) {
        wn_fail("%s: checkpoint written on a machine of another byte order", path);
        goto fail;
    }
    if (read_header(s, ck)) goto fail;
    if (version >= 2 && read_identity(s, ck)) goto fail;
    return WN_OK;
fail:
    fclose(fp);
    wn_checkpoint_free(ck);
    return WN_ERR;
}

int wn_checkpoint_load(wn_checkpoint *ck, const char *path) {
    stream s;
    if (read_head(ck, path, &s) != WN_OK) return WN_ERR;
    FILE *fp = s.fp;
    int rc = WN_ERR;
    /* Sanity limits before allocating: a corrupt header must not ask for terabytes. */
    const size_t limit = (size_t)1 << 34; /* 16 G floats */
    if (ck->n_params > limit || ck->n_stats > limit || ck->trainable_first > ck->n_params) {
        wn_fail("%s: corrupt checkpoint header (sizes %zu/%zu/%zu)", path, ck->n_params,
                ck->n_stats, ck->trainable_first);
        goto done;
    }
    size_t n_train = ck->n_params - ck->trainable_first;
    if (read_array(&s, &ck->params, ck->n_params) || read_array(&s, &ck->stats, ck->n_stats) ||
        read_array(&s, &ck->adam_m, n_train) || read_array(&s, &ck->adam_v, n_train))
        goto done;
    if (ck->has_best && read_array(&s, &ck->best, n_train)) goto done;
    uint64_t expect = s.hs.h, sum;
    if (fread(&sum, sizeof sum, 1, fp) != 1) {
        wn_fail("%s: truncated checkpoint (no checksum)", path);
        goto done;
    }
    if (sum != expect) {
        wn_fail("%s: checkpoint checksum mismatch (the file is corrupt)", path);
        goto done;
    }
    if (fgetc(fp) != EOF) {
        wn_fail("%s: unexpected bytes after the checkpoint's checksum", path);
        goto done;
    }
    rc = WN_OK;
done:
    fclose(fp);
    if (rc != WN_OK) wn_checkpoint_free(ck);
    return rc;
}

int wn_checkpoint_read_info(wn_checkpoint *ck, const char *path) {
    stream s;
    if (read_head(ck, path, &s) != WN_OK) return WN_ERR;
    fclose(s.fp);
    return WN_OK;
}

int wn_checkpoint_is_file(const char *path) {
    unsigned char magic[6] = {0};
    FILE *fp = wn_fopen_regular(path, "rb", NULL);
    if (!fp) return 0;
    size_t n = fread(magic, 1, sizeof magic, fp);
    fclose(fp);
    return n == sizeof magic && !memcmp(magic, wn_ckpt_magic, sizeof magic);
}

int wn_checkpoint_load_model(wn_model *m, const char *path) {
    wn_checkpoint ck;
    if (wn_checkpoint_load(&ck, path) != WN_OK) {
        /* predict and export read weights only: a damaged checkpoint has a twin */
        char why[1024];
        snprintf(why, sizeof why, "%s", wn_last_error());
        return wn_fail("%s; use another checkpoint, or the <phase>_weights.h5 that the run "
                       "saved beside it when the phase finished",
                       why);
    }
    int rc = wn_model_create(m, ck.arch, ck.image_h, ck.image_w, ck.num_classes, 0);
    if (rc == WN_OK && (ck.n_params != m->graph.n_params || ck.n_stats != m->graph.n_stats)) {
        rc = wn_fail("%s: holds %zu + %zu weights, but model %s has %zu + %zu", path,
                     ck.n_params, ck.n_stats, ck.arch, m->graph.n_params, m->graph.n_stats);
        wn_model_free(m);
    }
    if (rc == WN_OK) {
        memcpy(m->params, ck.params, ck.n_params * sizeof(float));
        memcpy(m->stats, ck.stats, ck.n_stats * sizeof(float));
    }
    wn_checkpoint_free(&ck);
    return rc;
}
