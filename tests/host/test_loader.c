/* tests/host/test_loader.c — epochs and batches: scan order without shuffle, a seeded
 * permutation per epoch (every image exactly once, reproducible, different per
 * epoch), batch sizes (the last one smaller), pixels and labels that belong to the
 * listed files, cache and stream modes giving the same batches, the automatic mode
 * choice, and bad files (stop by default, skip + report + count with skip_bad).
 *
 * Every image is one solid colour that encodes its file index, so any bilinear
 * resize keeps it exactly and each batch item can be traced to its file. */
#define _DEFAULT_SOURCE
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "host/base/error.h"
#include "fixtures.h"
#include "host/dataset.h"
#include "host/loader.h"

enum { N_CLASSES = 3, PER_CLASS = 13, N_GOOD = N_CLASSES * PER_CLASS, OUT_H = 6, OUT_W = 8, BATCH = 8 };

static void colour_of(int file, int label, uint8_t rgb[3]) {
    rgb[0] = (uint8_t)(file * 5), rgb[1] = (uint8_t)(label * 60 + 7), rgb[2] = (uint8_t)(255 - file);
}

/* <root>/<split>/c<k>/img<j>.png, solid colours; sizes vary so resizes differ. */
static void make_split(const char *split) {
    for (int c = 0; c < N_CLASSES; c++)
        for (int j = 0; j < PER_CLASS; j++) {
            int file = c * PER_CLASS + j; /* scan order: c0 first, names sorted */
            char dir[4096], path[4200];
            PATH_PRINTF(dir, "%s/c%d", split, c);
            fx_mkdirs(dir);
            PATH_PRINTF(path, "%s/img%02d.png", dir, j);
            int w = 5 + (file % 7) * 3, h = 4 + (file % 5) * 2;
            uint8_t *px = malloc((size_t)w * h * 3), rgb[3];
            colour_of(file, c, rgb);
            for (int i = 0; i < w * h; i++) memcpy(px + 3 * i, rgb, 3);
            fx_write_png_rgb(path, w, h, px);
            free(px);
        }
}

static int reports;
static void on_bad(void *user, const char *path, const char *reason) {
    (void)user, (void)reason;
    reports++;
    CHECK(strstr(path, "bad_") != NULL, "reported a good file: %s", path);
}

/* Runs one epoch; checks every batch; writes the visiting order (file indices). */
static int run_epoch(wn_loader *ld, const wn_dataset *ds, int epoch, int32_t *order, int *n,
                     int expect_batch) {
    wn_batch b;
    int r, number = 0;
    *n = 0;
    CHECK(wn_loader_begin_epoch(ld, epoch) == WN_OK, "begin_epoch: %s", wn_last_error());
    while ((r = wn_loader_next(ld, &b)) == 1) {
        usleep(200); /* the prefetch thread fills the other buffer meanwhile */
        CHECK(b.number == number, "batch number %d want %d", b.number, number);
        CHECK(b.height == OUT_H && b.width == OUT_W, "batch size %dx%d", b.width, b.height);
        CHECK(b.count >= 1 && b.count <= expect_batch, "count %d", b.count);
        for (int i = 0; i < b.count; i++) {
            int f = b.indices[i];
            CHECK(f >= 0 && f < ds->n_files, "index %d", f);
            if (f < 0 || f >= ds->n_files) continue;
            CHECK(b.labels[i] == ds->labels[f], "label of %s: %d want %d", ds->paths[f], b.labels[i],
                  ds->labels[f]);
            /* file index in scan order -> colour (bad files sort after the good ones) */
            uint8_t want[3];
            colour_of(f, ds->labels[f], want);
            const uint8_t *px = b.pixels + (size_t)i * OUT_H * OUT_W * 3;
            int same = 1;
            for (int p = 0; p < OUT_H * OUT_W; p++) same &= !memcmp(px + 3 * p, want, 3);
            CHECK(same, "batch %d item %d: pixels are not those of %s", number, i, ds->paths[f]);
            order[(*n)++] = f;
        }
        number++;
    }
    CHECK(r == 0, "epoch %d ended with %d: %s", epoch, r, wn_last_error());
    return number;
}

static int is_permutation(const int32_t *order, int n, const wn_dataset *ds, int good) {
    int *seen = calloc((size_t)ds->n_files, sizeof *seen), ok = n == good;
    for (int i = 0; i < n; i++) ok &= order[i] >= 0 && order[i] < ds->n_files && !seen[order[i]]++;
    free(seen);
    return ok;
}

static wn_loader *open_loader(const wn_dataset *ds, int mode, int shuffle, uint64_t seed, int skip_bad) {
    wn_loader_options o;
    wn_loader_options_default(&o);
    o.height = OUT_H, o.width = OUT_W, o.batch = BATCH;
    o.mode = mode, o.shuffle = shuffle, o.seed = seed, o.skip_bad = skip_bad;
    o.on_bad_file = on_bad;
    wn_loader *ld = NULL;
    if (wn_loader_open(&ld, ds, &o) != WN_OK) return NULL;
    return ld;
}

static void test_good(const wn_dataset *ds) {
    int32_t order[2][N_GOOD * 2], again[N_GOOD * 2], other[N_GOOD * 2];
    int n, batches;
    for (int mode = WN_LOADER_CACHE; mode <= WN_LOADER_STREAM; mode++) {
        const char *m = mode == WN_LOADER_CACHE ? "cache" : "stream";
        /* No shuffle: scan order, batches of 8, the last of 39 % 8 = 7. */
        wn_loader *ld = open_loader(ds, mode, 0, 0, 0);
        CHECK(ld != NULL, "%s open: %s", m, wn_last_error());
        if (!ld) continue;
        CHECK(wn_loader_mode(ld) == mode && wn_loader_size(ld) == N_GOOD &&
                  wn_loader_batches_per_epoch(ld) == 5 && wn_loader_pinned(ld) == 0,
              "%s: mode %d size %d batches %d", m, wn_loader_mode(ld), wn_loader_size(ld),
              wn_loader_batches_per_epoch(ld));
        wn_batch b;
        CHECK(wn_loader_next(ld, &b) == WN_ERR, "%s: next before begin_epoch", m);
        batches = run_epoch(ld, ds, 0, order[0], &n, BATCH);
        CHECK(batches == 5 && n == N_GOOD, "%s: %d batches, %d images", m, batches, n);
        int sorted = 1;
        for (int i = 0; i < n; i++) sorted &= order[0][i] == i;
        CHECK(sorted, "%s: without shuffle the order must be the scan order", m);
        wn_loader_close(ld);

        /* Shuffle: a permutation per epoch, different epochs differ, reproducible. */
        ld = open_loader(ds, mode, 1, 1234, 0);
        CHECK(ld != NULL, "%s open: %s", m, wn_last_error());
        if (!ld) continue;
        for (int e = 0; e < 2; e++) {
            run_epoch(ld, ds, e, order[e], &n, BATCH);
            CHECK(is_permutation(order[e], n, ds, N_GOOD), "%s epoch %d: not a permutation", m, e);
        }
        CHECK(memcmp(order[0], order[1], N_GOOD * sizeof(int32_t)) != 0, "%s: epochs 0 and 1 alike", m);
        /* Abandon an epoch after one batch, then replay epoch 0: the same order. */
        wn_loader_begin_epoch(ld, 5);
        wn_loader_next(ld, &b);
        run_epoch(ld, ds, 0, again, &n, BATCH);
        CHECK(!memcmp(order[0], again, N_GOOD * sizeof(int32_t)), "%s: epoch 0 not reproducible", m);
        wn_loader_close(ld);
        ld = open_loader(ds, mode, 1, 1235, 0);
        run_epoch(ld, ds, 0, other, &n, BATCH);
        CHECK(memcmp(order[0], other, N_GOOD * sizeof(int32_t)) != 0, "%s: seeds 1234 and 1235 alike", m);
        wn_loader_close(ld);
    }
    /* The two modes give the same order (pixels are checked per item above). */
    wn_loader *a = open_loader(ds, WN_LOADER_CACHE, 1, 99, 0), *s = open_loader(ds, WN_LOADER_STREAM, 1, 99, 0);
    if (a && s) {
        run_epoch(a, ds, 3, order[0], &n, BATCH);
        run_epoch(s, ds, 3, order[1], &n, BATCH);
        CHECK(!memcmp(order[0], order[1], N_GOOD * sizeof(int32_t)), "cache and stream orders differ");
    }
    wn_loader_close(a), wn_loader_close(s);

    /* Automatic mode: the cache (39*6*8*3 = 5616 bytes) against the budget. */
    wn_loader_options o;
    wn_loader_options_default(&o);
    o.height = OUT_H, o.width = OUT_W, o.batch = BATCH;
    wn_loader *ld;
    o.cache_budget_bytes = 5616;
    CHECK(wn_loader_open(&ld, ds, &o) == WN_OK && wn_loader_mode(ld) == WN_LOADER_CACHE, "auto: cache");
    wn_loader_close(ld);
    o.cache_budget_bytes = 5615;
    CHECK(wn_loader_open(&ld, ds, &o) == WN_OK && wn_loader_mode(ld) == WN_LOADER_STREAM, "auto: stream");
    wn_loader_close(ld);
    /* A batch larger than the data set: one batch. */
    o.batch = 100, o.mode = WN_LOADER_CACHE;
    CHECK(wn_loader_open(&ld, ds, &o) == WN_OK, "batch 100: %s", wn_last_error());
    if (ld) {
        wn_loader_begin_epoch(ld, 0);
        wn_batch b;
        CHECK(wn_loader_next(ld, &b) == 1 && b.count == N_GOOD && wn_loader_next(ld, &b) == 0,
              "batch 100: one batch of %d", N_GOOD);
        wn_loader_close(ld);
    }
    o.batch = 0;
    CHECK(wn_loader_open(&ld, ds, &o) == WN_ERR, "batch 0 accepted");
}

static void test_bad(const char *split, const char *formats_bad) {
    /* Two bad files in class c1, sorting after the good ones ("bad_" > "img"). */
    char path[4200];
    size_t n;
    PATH_PRINTF(path, "%s/truncated.jpg", formats_bad);
    uint8_t *data = fx_read_file(path, &n);
    PATH_PRINTF(path, "%s/c1/bad_truncated.jpg", split);
    fx_write_bytes(path, data, n);
    free(data);
    PATH_PRINTF(path, "%s/c2/bad_empty.jpg", split);
    fx_write_bytes(path, "", 0);
    wn_dataset ds;
    CHECK(wn_dataset_scan(&ds, split, NULL, 0, NULL) == WN_OK && ds.n_files == N_GOOD + 2, "rescan");
    for (int mode = WN_LOADER_CACHE; mode <= WN_LOADER_STREAM; mode++) {
        const char *m = mode == WN_LOADER_CACHE ? "cache" : "stream";
        /* Default: stop, naming the file. Cache mode stops in open, stream in next. */
        wn_loader *ld = open_loader(&ds, mode, 1, 7, 0);
        if (mode == WN_LOADER_CACHE) {
            CHECK(ld == NULL && strstr(wn_last_error(), "bad_truncated.jpg") &&
                      strstr(wn_last_error(), "truncated"),
                  "cache: open must fail on the first bad file: %s", wn_last_error());
        } else {
            CHECK(ld != NULL, "stream open: %s", wn_last_error());
            int r = 1;
            wn_batch b;
            wn_loader_begin_epoch(ld, 0);
            while ((r = wn_loader_next(ld, &b)) == 1) {}
            CHECK(r == WN_ERR && strstr(wn_last_error(), "bad_"), "stream: epoch must fail: %d %s",
                  r, wn_last_error());
            CHECK(wn_loader_next(ld, &b) == WN_ERR, "stream: the failure must stick until begin_epoch");
        }
        wn_loader_close(ld);
        /* skip_bad: one report per bad file, a count, and epochs of the good files. */
        reports = 0;
        ld = open_loader(&ds, mode, 1, 7, 1);
        CHECK(ld != NULL, "%s skip_bad open: %s", m, wn_last_error());
        if (!ld) continue;
        for (int e = 0; e < 2; e++) {
            wn_batch b;
            int r, seen = 0, full = 1, batches = 0, last = 0;
            wn_loader_begin_epoch(ld, e);
            while ((r = wn_loader_next(ld, &b)) == 1) {
                for (int i = 0; i < b.count; i++)
                    CHECK(!strstr(ds.paths[b.indices[i]], "bad_"), "%s: bad file in a batch", m);
                if (batches > 0) full &= last == BATCH;
                last = b.count, seen += b.count, batches++;
            }
            CHECK(r == 0 && seen == N_GOOD && full && batches == 5,
                  "%s skip_bad epoch %d: r %d, %d images, %d batches, full %d", m, e, r, seen,
                  batches, full);
        }
        CHECK(reports == 2 && wn_loader_bad_count(ld) == 2 && wn_loader_size(ld) == N_GOOD,
              "%s skip_bad: %d reports, %d bad, size %d", m, reports, wn_loader_bad_count(ld),
              wn_loader_size(ld));
        wn_loader_close(ld);
    }
    wn_dataset_free(&ds);
}

int main(void) {
    char root[4096], split[4200], bad[4200];
    if (fx_temp_dir(root, sizeof root, "loader") != 0) return 1;
    PATH_PRINTF(split, "%s/train", root);
    PATH_PRINTF(bad, "%s/bad", root);
    make_split(split);
    CHECK(fx_write_bad_set(bad) == 0, "bad set");
    wn_dataset ds;
    CHECK(wn_dataset_scan(&ds, split, NULL, 0, NULL) == WN_OK && ds.n_files == N_GOOD,
          "scan: %s", wn_last_error());
    if (!check_failures) test_good(&ds);
    wn_dataset_free(&ds);
    if (!check_failures) test_bad(split, bad);
    fx_remove_tree(root);
    return CHECK_DONE("test_loader");
}
