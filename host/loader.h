/* host/loader.h — training and evaluation batches from a scanned split.
 *
 * A batch is uint8 NHWC pixels [count, height, width, 3] (0..255, RGB, resized with
 * tf.image.resize's bilinear rule and rounded to the nearest integer: see
 * host/resize.h for the deviation from Keras's unrounded float), int32 labels
 * [count] and the file index of each item [count]. Both backends consume it the
 * same way: the CUDA backend copies the uint8 batch to the GPU (pinned staging
 * buffers make that copy asynchronous), the CPU backend converts it in place.
 *
 *   wn_loader_options o; wn_loader_options_default(&o);
 *   o.height = o.width = 320; o.batch = 64; o.shuffle = 1; o.seed = 42;
 *   wn_loader *ld;
 *   if (wn_loader_open(&ld, &train, &o) != WN_OK) die(wn_last_error());
 *   for (int epoch = 0; epoch < epochs; epoch++) {
 *       wn_loader_begin_epoch(ld, epoch);
 *       wn_batch b; int r;
 *       while ((r = wn_loader_next(ld, &b)) == 1) train_step(&b);
 *       if (r < 0) die(wn_last_error());
 *   }
 *   wn_loader_close(ld);
 *
 * Modes:
 * - cache: wn_loader_open decodes and resizes every image once, on all cores, into
 *   a uint8 RAM cache [n, H, W, 3]; an epoch only gathers cached images into batches.
 * - stream: nothing is cached; every epoch decodes and resizes each batch's files
 *   again (on all cores). For data sets larger than memory.
 * - auto (default): cache when n*H*W*3 bytes fit cache_budget_bytes, else stream.
 *
 * Order: with shuffle, epoch e visits a permutation of all images drawn from
 * (seed, e) alone, so a run is reproducible and any epoch can be replayed (Keras's
 * 8*batch shuffle buffer cannot be reproduced outside TensorFlow; a full permutation
 * mixes at least as well). Without shuffle, files stay in scan order (evaluation).
 * Batches hold `batch` images, the last one of an epoch fewer (no drop_remainder).
 *
 * Prefetch: one thread assembles batch k+1 into the second staging buffer while the
 * caller uses batch k. A batch returned by wn_loader_next() stays valid until the
 * next call of wn_loader_next(), wn_loader_begin_epoch() or wn_loader_close().
 *
 * Bad files (zero bytes, truncated, not an image, over the pixel limit, unreadable):
 * by default opening (cache) or the batch that meets it (stream) fails with a message
 * naming the file and the problem. With skip_bad each bad file is reported once
 * through on_bad_file, left out of every epoch, and counted (wn_loader_bad_count).
 *
 * One loader is used from one thread at a time. Library code: never prints.
 */
#ifndef WN_LOADER_H
#define WN_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "host/dataset.h"
#include "host/staging.h"
#include "host/image_decode.h" /* WN_DEFAULT_MAX_PIXELS */

#ifdef __cplusplus
extern "C" {
#endif

enum { WN_LOADER_AUTO = 0, WN_LOADER_CACHE = 1, WN_LOADER_STREAM = 2 };

typedef struct wn_loader_options {
    int height, width;         /* output size of every image (Keras image_size) */
    int batch;                 /* images per batch (the last one may be smaller) */
    int shuffle;               /* 1: a fresh seeded permutation every epoch */
    uint64_t seed;
    int skip_bad;              /* 0: a bad file is an error; 1: report, skip, count */
    int mode;                  /* WN_LOADER_AUTO, _CACHE or _STREAM */
    size_t cache_budget_bytes; /* auto mode: cache if it fits; 0 = half the RAM */
    int threads;               /* decode threads; 0 = all cores */
    size_t max_pixels;         /* per image, checked from the header; 0 = default */
    const wn_host_allocator *staging; /* staging buffers' memory (the backend's pinned
                                  host memory for a GPU run); NULL: aligned malloc */
    wn_bad_file_fn on_bad_file;/* skip_bad reports (may be NULL) */
    void *on_bad_file_user;
    /* Data-parallel training (engine/train/distributed.h): with shard_count > 1 every
     * batch is the same global batch of `batch` images one process would get, and
     * this loader returns only its rank's slice of it (contiguous; the first
     * global % shard_count ranks get one image more; a slice may be empty). Stream
     * mode then refuses skip_bad (the ranks could not agree on what a bad file
     * found mid-epoch moves). 0 or 1: whole batches. */
    int shard_rank, shard_count;
} wn_loader_options;

typedef struct wn_batch {
    const uint8_t *pixels;  /* [count, height, width, 3] NHWC, RGB, 0..255 */
    const int32_t *labels;  /* [count] class index */
    const int32_t *indices; /* [count] index of each item in wn_dataset.paths */
    int count;              /* 1..batch (0..batch: a shard's slice may be empty) */
    int height, width;
    int number;             /* 0-based batch number within the epoch */
    int global_count;       /* images of the whole batch (= count without shards) */
    int first;              /* place of this slice's first image in the whole batch */
} wn_batch;

typedef struct wn_loader wn_loader;

/* batch 32, 256x256 (Keras's defaults), no shuffle, seed 0, auto mode, all cores,
 * default pixel limit, ordinary staging memory, stop on bad files. */
void wn_loader_options_default(wn_loader_options *opt);

/* Opens a loader over ds (which must outlive it). In cache mode this decodes and
 * resizes every image, which is where bad files are found. */
int wn_loader_open(wn_loader **out, const wn_dataset *ds, const wn_loader_options *opt);

/* Starts epoch `epoch` (any order, any number of times): reshuffles with
 * (seed, epoch) and starts prefetching its first batch. */
int wn_loader_begin_epoch(wn_loader *ld, int epoch);

/* 1: *out holds the next batch; 0: the epoch is done; WN_ERR: a bad file (without
 * skip_bad) or a system error, see wn_last_error(). */
int wn_loader_next(wn_loader *ld, wn_batch *out);

void wn_loader_close(wn_loader *ld);

/* Images per epoch (files minus those found bad so far). */
int wn_loader_size(const wn_loader *ld);
/* Batches in an epoch of wn_loader_size() images: ceil(size / batch). */
int wn_loader_batches_per_epoch(const wn_loader *ld);
/* Bad files skipped so far (skip_bad). */
int wn_loader_bad_count(const wn_loader *ld);
/* 1 when file i of the data set was found bad and is skipped (skip_bad); read it
 * when no batch is being assembled. */
int wn_loader_file_is_bad(const wn_loader *ld, int file);
/* WN_LOADER_CACHE or WN_LOADER_STREAM: what auto chose. */
int wn_loader_mode(const wn_loader *ld);
/* 1 when the staging buffers are pinned (the allocator said so). */
int wn_loader_pinned(const wn_loader *ld);

#ifdef __cplusplus
}
#endif
#endif
