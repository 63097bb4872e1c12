/* host/loader.c — seeded epochs, batches, a prefetch thread and double-buffered
 * staging (see host/loader.h).
 *
 * Threads: the caller's thread and one prefetch thread. The caller posts a job
 * ("assemble the next batch into slot k"); the prefetch thread does it and signals.
 * Everything a job touches (cursor, slot k, the bad-file marks in stream mode) is
 * only touched by the caller while no job is in flight, so one mutex around the job
 * hand-over is all the locking there is. In stream mode the prefetch thread decodes
 * the batch's files with the OpenMP decode pool (all cores). */
#include "host/loader.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/base/error.h"
#include "host/base/rng.h"
#include "host/image_cache.h"
#include "host/staging.h"

typedef struct loader_slot {
    wn_staging pixels;  /* [batch, H, W, 3] */
    int32_t *labels;    /* [batch] */
    int32_t *indices;   /* [batch] */
    int count;
    int number;         /* batch number within the epoch */
    int global, first;  /* the whole batch's images; the slice's first place in it */
} loader_slot;

struct wn_loader {
    const wn_dataset *ds;
    wn_loader_options opt;
    int mode;                 /* WN_LOADER_CACHE or WN_LOADER_STREAM */
    size_t image_bytes;       /* H*W*3 */
    wn_image_cache cache;     /* cache mode */
    wn_decode_pool *pool;     /* stream mode */
    uint8_t *bad;             /* [n_files] 1: bad file, left out of every epoch */
    atomic_int n_bad;
    int32_t *order;           /* [n_files] this epoch's visiting order */
    int cursor;               /* next position in order to assemble */
    char **errors;            /* [batch] stream-mode decode messages */
    int32_t *files;           /* [batch] stream-mode files being decoded */
    loader_slot slot[2];

    pthread_t thread;
    int thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv_job;    /* caller -> prefetch thread: a job or quit */
    pthread_cond_t cv_done;   /* prefetch thread -> caller: job finished */
    int job_pending, job_running, quit;
    int job_slot, job_number; /* what the pending/running job assembles */
    int job_rc;               /* WN_OK or WN_ERR of the last finished job */
    char job_error[2048];     /* its message (wn_last_error is per thread) */

    int epoch_started;        /* begin_epoch was called */
    int in_flight;            /* a job was posted and not yet collected */
    int failed;               /* the epoch stopped on an error */
};

/* ------------------------------------------------------------ shuffling */

/* One splitmix64 stream per (seed, epoch) (host/base/rng.h). */

/* Uniform in [0, range) without modulo bias (rejection). */
static uint64_t rng_below(uint64_t *s, uint64_t range) {
    const uint64_t threshold = (0 - range) % range;
    for (;;) {
        uint64_t r = wn_splitmix64(s);
        if (r >= threshold) return r % range;
    }
}

/* Fisher-Yates over all file indices: the order depends on (seed, epoch) only, not on
 * which files turned out bad (they are skipped when met). */
static void order_make(int32_t *order, int n, int shuffle, uint64_t seed, int epoch) {
    for (int i = 0; i < n; i++) order[i] = i;
    if (!shuffle) return;
    uint64_t s = seed;
    uint64_t key = wn_splitmix64(&s) ^ ((uint64_t)(uint32_t)epoch * 0xD1B54A32D192ED03ull);
    s = key;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rng_below(&s, (uint64_t)i + 1);
        int32_t t = order[i];
        order[i] = order[j], order[j] = t;
    }
}

/* ------------------------------------------------------------ batch assembly */

static void report_bad(wn_loader *ld, int file, const char *message) {
    ld->bad[file] = 1;
    atomic_fetch_add(&ld->n_bad, 1);
    if (ld->opt.on_bad_file) {
        const char *path = ld->ds->paths[file];
        ld->opt.on_bad_file(ld->opt.on_bad_file_user, path, wn_error_reason(message, path));
    }
}

/* Up to `batch` files from the cursor on that are not known to be bad, into files[]. */
static int take_files(wn_loader *ld, int32_t *files) {
    const int n = ld->ds->n_files;
    int got = 0;
    while (got < ld->opt.batch && ld->cursor < n) {
        const int f = ld->order[ld->cursor++];
        if (!ld->bad[f]) files[got++] = f;
    }
    return got;
}

/* This rank's contiguous slice [*lo, *hi) of a whole batch of `global` images. */
static void shard_slice(const wn_loader *ld, int global, int *lo, int *hi) {
    int ranks = ld->opt.shard_count > 1 ? ld->opt.shard_count : 1;
    int r = ranks > 1 ? ld->opt.shard_rank : 0;
    int base = global / ranks, extra = global % ranks;
    *lo = r * base + (r < extra ? r : extra);
    *hi = *lo + base + (r < extra);
}

static int assemble_cached(wn_loader *ld, loader_slot *s) {
    int got = take_files(ld, ld->files), lo, hi;
    shard_slice(ld, got, &lo, &hi);
    s->global = got, s->first = lo;
    for (int i = lo; i < hi; i++) {
        const int f = ld->files[i];
        memcpy((uint8_t *)s->pixels.ptr + (size_t)s->count * ld->image_bytes,
               ld->cache.pixels + (size_t)f * ld->image_bytes, ld->image_bytes);
        s->labels[s->count] = ld->ds->labels[f];
        s->indices[s->count] = f;
        s->count++;
    }
    return WN_OK;
}

/* Stream mode with shards: the whole batch's files, only the slice decoded; a bad
 * file is an error (loader_open refuses skip_bad here). */
static int assemble_streamed_shard(wn_loader *ld, loader_slot *s) {
    int got = take_files(ld, ld->files), lo, hi;
    shard_slice(ld, got, &lo, &hi);
    s->global = got, s->first = lo;
    if (hi == lo) return WN_OK;
    if (wn_decode_pool_run(ld->pool, ld->ds, ld->files + lo, hi - lo, ld->opt.height,
                           ld->opt.width, s->pixels.ptr, ld->errors) != WN_OK)
        return WN_ERR;
    int rc = WN_OK;
    for (int i = 0; i < hi - lo; i++) {
        if (ld->errors[i] && rc == WN_OK) rc = wn_fail("%s", ld->errors[i]);
        free(ld->errors[i]);
        ld->errors[i] = NULL;
        s->labels[i] = ld->ds->labels[ld->files[lo + i]];
        s->indices[i] = ld->files[lo + i];
    }
    s->count = hi - lo;
    return rc;
}

/* Decodes the next files straight into the slot; a bad file's place is taken by the
 * files after it, so batches stay full. */
static int assemble_streamed(wn_loader *ld, loader_slot *s) {
    const int n = ld->ds->n_files;
    while (s->count < ld->opt.batch && ld->cursor < n) {
        int want = ld->opt.batch - s->count, got = 0;
        while (got < want && ld->cursor < n) {
            const int f = ld->order[ld->cursor++];
            if (!ld->bad[f]) ld->files[got++] = f;
        }
        uint8_t *dst = (uint8_t *)s->pixels.ptr + (size_t)s->count * ld->image_bytes;
        if (wn_decode_pool_run(ld->pool, ld->ds, ld->files, got, ld->opt.height, ld->opt.width,
                               dst, ld->errors) != WN_OK)
            return WN_ERR;
        int rc = WN_OK;
        for (int i = 0; i < got; i++) {
            const int f = ld->files[i];
            if (ld->errors[i]) {
                if (rc == WN_OK && !ld->opt.skip_bad) rc = wn_fail("%s", ld->errors[i]);
                else if (ld->opt.skip_bad) report_bad(ld, f, ld->errors[i]);
                free(ld->errors[i]);
                ld->errors[i] = NULL;
                continue;
            }
            uint8_t *to = (uint8_t *)s->pixels.ptr + (size_t)s->count * ld->image_bytes;
            const uint8_t *from = dst + (size_t)i * ld->image_bytes;
            if (to != from) memmove(to, from, ld->image_bytes);
            s->labels[s->count] = ld->ds->labels[f];
            s->indices[s->count] = f;
            s->count++;
        }
        if (rc != WN_OK) return rc;
    }
    s->global = s->count, s->first = 0;
    return WN_OK;
}

static void *prefetch_main(void *arg) {
    wn_loader *ld = arg;
    pthread_mutex_lock(&ld->mu);
    for (;;) {
        while (!ld->job_pending && !ld->quit) pthread_cond_wait(&ld->cv_job, &ld->mu);
        if (ld->quit) break;
        ld->job_pending = 0, ld->job_running = 1;
        loader_slot *s = &ld->slot[ld->job_slot];
        s->count = 0, s->global = 0, s->first = 0, s->number = ld->job_number;
        pthread_mutex_unlock(&ld->mu);

        int rc = ld->mode == WN_LOADER_CACHE ? assemble_cached(ld, s)
                 : ld->opt.shard_count > 1  ? assemble_streamed_shard(ld, s)
                                            : assemble_streamed(ld, s);

        pthread_mutex_lock(&ld->mu);
        ld->job_rc = rc;
        if (rc != WN_OK) snprintf(ld->job_error, sizeof ld->job_error, "%s", wn_last_error());
        ld->job_running = 0;
        pthread_cond_broadcast(&ld->cv_done);
    }
    pthread_mutex_unlock(&ld->mu);
    return NULL;
}

static void job_post(wn_loader *ld, int slot, int number) {
    pthread_mutex_lock(&ld->mu);
    ld->job_slot = slot, ld->job_number = number;
    ld->job_pending = 1;
    pthread_cond_signal(&ld->cv_job);
    pthread_mutex_unlock(&ld->mu);
    ld->in_flight = 1;
}

/* Waits until no job is pending or running; returns the last job's status. */
static int job_wait(wn_loader *ld) {
    pthread_mutex_lock(&ld->mu);
    while (ld->job_pending || ld->job_running) pthread_cond_wait(&ld->cv_done, &ld->mu);
    int rc = ld->job_rc;
    pthread_mutex_unlock(&ld->mu);
    ld->in_flight = 0;
    return rc;
}

/* ------------------------------------------------------------ the interface */

void wn_loader_options_default(wn_loader_options *o) {
    memset(o, 0, sizeof *o);
    o->height = o->width = 256;
    o->batch = 32;
    o->mode = WN_LOADER_AUTO;
    o->staging = NULL;
}

static size_t default_cache_budget(void) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0) return (size_t)1 << 30;
    return (size_t)pages * (size_t)page / 2;
}

int wn_loader_open(wn_loader **out, const wn_dataset *ds, const wn_loader_options *opt) {
    *out = NULL;
    if (opt->height <= 0 || opt->width <= 0 || opt->height > 16384 || opt->width > 16384)
        return wn_fail("loader: image size %dx%d must be within 1..16384", opt->width,
                       opt->height);
    if (opt->batch <= 0) return wn_fail("loader: batch size %d must be at least 1", opt->batch);
    if (opt->mode < WN_LOADER_AUTO || opt->mode > WN_LOADER_STREAM)
        return wn_fail("loader: unknown mode %d", opt->mode);
    if (opt->shard_count > 1 && (opt->shard_rank < 0 || opt->shard_rank >= opt->shard_count))
        return wn_fail("loader: shard %d of %d does not exist", opt->shard_rank,
                       opt->shard_count);
    wn_loader *ld = calloc(1, sizeof *ld);
    if (!ld) return wn_fail("loader: out of memory");
    ld->ds = ds;
    ld->opt = *opt;
    ld->image_bytes = (size_t)opt->height * opt->width * 3;
    atomic_init(&ld->n_bad, 0);
    pthread_mutex_init(&ld->mu, NULL);
    pthread_cond_init(&ld->cv_job, NULL);
    pthread_cond_init(&ld->cv_done, NULL);

    const size_t n = (size_t)ds->n_files;
    size_t cache_bytes = wn_image_cache_bytes(ds, opt->height, opt->width);
    size_t budget = opt->cache_budget_bytes ? opt->cache_budget_bytes : default_cache_budget();
    ld->mode = opt->mode != WN_LOADER_AUTO ? opt->mode
               : cache_bytes <= budget   ? WN_LOADER_CACHE
                                         : WN_LOADER_STREAM;

    int rc = WN_OK;
    if (ld->mode == WN_LOADER_STREAM && opt->skip_bad && opt->shard_count > 1) {
        rc = wn_fail("--skip-bad with images streamed from the files works in a single "
                       "process only (the ranks could not agree on which files a bad one "
                       "moves): decode into RAM (--cache ram, or a larger --cache-budget), "
                       "or remove the bad files ('wastenet data' lists them)");
        goto fail;
    }
    ld->order = malloc((n + 1) * sizeof *ld->order);
    ld->bad = calloc(n + 1, 1);
    ld->files = malloc((size_t)opt->batch * sizeof *ld->files);
    ld->errors = calloc((size_t)opt->batch, sizeof *ld->errors);
    if (!ld->order || !ld->bad || !ld->files || !ld->errors) {
        rc = wn_fail("loader: out of memory");
        goto fail;
    }
    for (int k = 0; k < 2; k++) {
        loader_slot *s = &ld->slot[k];
        if (wn_staging_alloc(&s->pixels, (size_t)opt->batch * ld->image_bytes, opt->staging) !=
            WN_OK) {
            rc = WN_ERR;
            goto fail;
        }
        s->labels = malloc((size_t)opt->batch * sizeof *s->labels);
        s->indices = malloc((size_t)opt->batch * sizeof *s->indices);
        if (!s->labels || !s->indices) {
            rc = wn_fail("loader: out of memory");
            goto fail;
        }
    }

    if (ld->mode == WN_LOADER_CACHE) {
        wn_cache_options co = {.threads = opt->threads,
                               .max_pixels = opt->max_pixels,
                               .skip_bad = opt->skip_bad,
                               .report = opt->on_bad_file,
                               .report_user = opt->on_bad_file_user};
        if ((rc = wn_image_cache_build(&ld->cache, ds, opt->height, opt->width, &co)) != WN_OK)
            goto fail;
        memcpy(ld->bad, ld->cache.bad, n);
        atomic_store(&ld->n_bad, ld->cache.n_bad);
    } else {
        ld->pool = wn_decode_pool_new(opt->threads, opt->max_pixels);
        if (!ld->pool) {
            rc = WN_ERR;
            goto fail;
        }
    }

    if (pthread_create(&ld->thread, NULL, prefetch_main, ld) != 0) {
        rc = wn_fail("loader: cannot start the prefetch thread");
        goto fail;
    }
    ld->thread_started = 1;
    *out = ld;
    return WN_OK;
fail:
    wn_loader_close(ld);
    return rc;
}

int wn_loader_begin_epoch(wn_loader *ld, int epoch) {
    if (ld->in_flight) job_wait(ld); /* an abandoned epoch: let its job finish */
    order_make(ld->order, ld->ds->n_files, ld->opt.shuffle, ld->opt.seed, epoch);
    ld->cursor = 0;
    ld->failed = 0;
    ld->epoch_started = 1;
    job_post(ld, 0, 0);
    return WN_OK;
}

int wn_loader_next(wn_loader *ld, wn_batch *out) {
    memset(out, 0, sizeof *out);
    if (!ld->epoch_started) return wn_fail("loader: call wn_loader_begin_epoch() first");
    if (ld->failed) return wn_fail("%s", ld->job_error);
    if (!ld->in_flight) return 0; /* the last batch was returned */
    const int k = ld->job_slot;
    if (job_wait(ld) != WN_OK) {
        ld->failed = 1;
        return wn_fail("%s", ld->job_error);
    }
    loader_slot *s = &ld->slot[k];
    if (s->global == 0) return 0; /* only bad files were left */
    /* The caller is done with the other slot (its batch was valid until this call). */
    if (ld->cursor < ld->ds->n_files) job_post(ld, 1 - k, s->number + 1);
    out->pixels = s->pixels.ptr;
    out->labels = s->labels;
    out->indices = s->indices;
    out->count = s->count;
    out->height = ld->opt.height, out->width = ld->opt.width;
    out->number = s->number;
    out->global_count = s->global, out->first = s->first;
    return 1;
}

void wn_loader_close(wn_loader *ld) {
    if (!ld) return;
    if (ld->thread_started) {
        pthread_mutex_lock(&ld->mu);
        ld->quit = 1;
        pthread_cond_signal(&ld->cv_job);
        pthread_mutex_unlock(&ld->mu);
        pthread_join(ld->thread, NULL);
    }
    pthread_mutex_destroy(&ld->mu);
    pthread_cond_destroy(&ld->cv_job);
    pthread_cond_destroy(&ld->cv_done);
    for (int k = 0; k < 2; k++) {
        wn_staging_free(&ld->slot[k].pixels);
        free(ld->slot[k].labels);
        free(ld->slot[k].indices);
    }
    if (ld->errors)
        for (int i = 0; i < ld->opt.batch; i++) free(ld->errors[i]);
    free(ld->errors);
    free(ld->files);
    wn_image_cache_free(&ld->cache);
    wn_decode_pool_free(ld->pool);
    free(ld->order);
    free(ld->bad);
    free(ld);
}

int wn_loader_size(const wn_loader *ld) {
    return ld->ds->n_files - atomic_load(&((wn_loader *)ld)->n_bad);
}

int wn_loader_batches_per_epoch(const wn_loader *ld) {
    return (wn_loader_size(ld) + ld->opt.batch - 1) / ld->opt.batch;
}

int wn_loader_bad_count(const wn_loader *ld) { return atomic_load(&((wn_loader *)ld)->n_bad); }

int wn_loader_file_is_bad(const wn_loader *ld, int file) {
    return file >= 0 && file < ld->ds->n_files && ld->bad[file];
}

int wn_loader_mode(const wn_loader *ld) { return ld->mode; }

int wn_loader_pinned(const wn_loader *ld) { return ld->slot[0].pixels.pinned; }
