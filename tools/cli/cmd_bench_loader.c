/* tools/cli/cmd_bench_loader.c — `wastenet bench-loader DIR`: how fast the host data
 * pipeline is (docs/PERF.md records the figures).
 *
 * 1. cold decode + resize: every file decoded and resized once, as when the cache is
 *    built, on all cores and on one core (files already in the OS page cache: this
 *    measures decoding, not the disk); one core also split into decode and resize;
 * 2. cached batches: epochs of shuffled batches gathered from the RAM cache into the
 *    staging buffers by the prefetch thread, the consumer doing nothing;
 * 3. with --stream, streamed batches (decoded every epoch) too. */
#include <getopt.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host/base/error.h"
#include "host/dataset.h"
#include "host/image_cache.h"
#include "host/image_decode.h"
#include "host/loader.h"
#include "host/resize.h"
#include "tools/cli/bench_clock.h"
#include "tools/cli/commands.h"
#include "tools/cli/option_bounds.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: wastenet bench-loader DIR [options]\n\n"
            "Measures the data pipeline on the split folder DIR (<class>/<images>): cold\n"
            "decode+resize images/s on all cores and per core, and cached batches/s.\n\n"
            "options:\n"
            "  --size N        output size NxN (default 320)\n"
            "  --batch N       batch size (default 64)\n"
            "  --threads N     decode threads, 1..1024 (default: all cores)\n"
            "  --seconds S     minimum time per batch measurement (default 2)\n"
            "  --stream        also measure the streaming mode (decode every epoch)\n"
            "  -h, --help      this help\n\n"
            "example:\n  wastenet bench-loader dataset_images/train --size 320 --batch 64\n");
}

/* CPU seconds used by all threads of this process: images per CPU second is the
 * per-core rate even when other programs share the cores. */
static double cpu_now(void) { return bench_clock_s(CLOCK_PROCESS_CPUTIME_ID); }

/* Cold decode + resize of all files with `threads` threads; returns images/s (wall)
 * and images per CPU second in *per_cpu_s. */
static double bench_cold(const wn_dataset *ds, int size, int threads, uint8_t *dst, int32_t *files,
                         char **errors, double *per_cpu_s) {
    wn_decode_pool *pool = wn_decode_pool_new(threads, 0);
    if (!pool) return -1;
    double t0 = bench_now_s(), c0 = cpu_now();
    int rc = wn_decode_pool_run(pool, ds, files, ds->n_files, size, size, dst, errors);
    double t = bench_now_s() - t0, cpu = cpu_now() - c0;
    wn_decode_pool_free(pool);
    int bad = 0;
    for (int i = 0; i < ds->n_files; i++) {
        if (errors[i]) bad++;
        free(errors[i]);
        errors[i] = NULL;
    }
    if (rc != WN_OK) return -1;
    if (bad) fprintf(stderr, "  (%d files could not be decoded; run `wastenet data`)\n", bad);
    *per_cpu_s = (ds->n_files - bad) / cpu;
    return (ds->n_files - bad) / t;
}

/* One core, decode and resize timed apart (thread CPU time: unaffected by other
 * programs sharing the core). */
static void bench_split(const wn_dataset *ds, int size, uint8_t *dst) {
    wn_image_decoder *dec = wn_image_decoder_new();
    wn_resizer *rs = wn_resizer_new();
    double t_dec = 0, t_res = 0;
    int n = 0;
    for (int i = 0; dec && rs && i < ds->n_files; i++) {
        wn_image img;
        double t0 = bench_clock_s(CLOCK_THREAD_CPUTIME_ID);
        if (wn_image_decode_file(dec, ds->paths[i], 0, &img) != WN_OK) continue;
        double t1 = bench_clock_s(CLOCK_THREAD_CPUTIME_ID);
        wn_resize_bilinear_u8(rs, img.pixels, img.height, img.width, dst, size, size);
        t_dec += t1 - t0, t_res += bench_clock_s(CLOCK_THREAD_CPUTIME_ID) - t1, n++;
    }
    if (n)
        printf("  one core, CPU time: decode %.0f images/s (%.2f ms), resize %.0f images/s (%.2f ms)\n",
               n / t_dec, 1e3 * t_dec / n, n / t_res, 1e3 * t_res / n);
    wn_image_decoder_free(dec);
    wn_resizer_free(rs);
}

/* Epochs of batches until `seconds` have passed; returns batches/s. */
static double bench_batches(const wn_dataset *ds, const wn_loader_options *o, double seconds,
                            const char *what) {
    wn_loader *ld;
    double t_open = bench_now_s();
    if (wn_loader_open(&ld, ds, o) != WN_OK) {
        fprintf(stderr, "wastenet bench-loader: %s\n", wn_last_error());
        return -1;
    }
    t_open = bench_now_s() - t_open;
    long batches = 0, images = 0, full = 0;
    unsigned checksum = 0;
    double t0 = bench_now_s(), t = 0;
    for (int epoch = 0; t < seconds; epoch++) {
        wn_batch b;
        int r;
        wn_loader_begin_epoch(ld, epoch);
        while ((r = wn_loader_next(ld, &b)) == 1) {
            /* Touch the batch as a consumer would start to (one byte per image). */
            for (int i = 0; i < b.count; i++) checksum += b.pixels[(size_t)i * b.height * b.width * 3];
            batches++, images += b.count, full += b.count == o->batch;
        }
        if (r < 0) {
            fprintf(stderr, "wastenet bench-loader: %s\n", wn_last_error());
            wn_loader_close(ld);
            return -1;
        }
        t = bench_now_s() - t0;
    }
    double bps = batches / t;
    printf("  %s: %.1f batches/s of %dx%dx%dx3 (%.0f images/s, %.2f GB/s), %ld batches in "
           "%.2f s; open %.2f s; staging %s [checksum %u]\n",
           what, bps, o->batch, o->height, o->width, images / t,
           images * (double)o->height * o->width * 3 / t / 1e9, batches, t, t_open,
           wn_loader_pinned(ld) ? "pinned" : "pageable", checksum);
    wn_loader_close(ld);
    return bps;
}

int cmd_bench_loader(int argc, char **argv) {
    static const struct option longopts[] = {{"size", required_argument, NULL, 's'},
                                             {"batch", required_argument, NULL, 'b'},
                                             {"threads", required_argument, NULL, 't'},
                                             {"seconds", required_argument, NULL, 'S'},
                                             {"stream", no_argument, NULL, 'x'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int size = 320, batch = 64, threads = 0, stream = 0, c;
    double seconds = 2;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        char *end = NULL;
        long v = 0;
        if (c == 's' || c == 'b' || c == 't') {
            if (wn_opt_int("bench-loader", c == 's' ? "--size" : c == 'b' ? "--batch" : "--threads",
                           optarg, 1, c == 't' ? WN_MAX_THREADS : 16384, NULL, &v))
                return 2;
        }
        switch (c) {
        case 's': size = (int)v; break;
        case 'b': batch = (int)v; break;
        case 't': threads = (int)v; break;
        case 'S':
            seconds = strtod(optarg, &end);
            if (*end || seconds <= 0) {
                fprintf(stderr, "wastenet bench-loader: --seconds wants a positive number\n");
                return 2;
            }
            break;
        case 'x': stream = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    const char *dir = argv[optind];
    wn_dataset ds;
    if (wn_dataset_scan(&ds, dir, NULL, 0, NULL) != WN_OK) {
        fprintf(stderr, "wastenet bench-loader: %s\n", wn_last_error());
        return 1;
    }
    wn_dataset_print_found(&ds, stdout);
    int all = threads ? threads : omp_get_num_procs();
    size_t bytes = wn_image_cache_bytes(&ds, size, size);
    uint8_t *dst = malloc(bytes ? bytes : 1);
    int32_t *files = malloc(((size_t)ds.n_files + 1) * sizeof *files);
    char **errors = calloc((size_t)ds.n_files + 1, sizeof *errors);
    if (!dst || !files || !errors) {
        fprintf(stderr, "wastenet bench-loader: out of memory (%zu MB)\n", bytes >> 20);
        return 1;
    }
    for (int i = 0; i < ds.n_files; i++) files[i] = i;

    printf("cold decode + resize to %dx%d (files in the page cache):\n", size, size);
    double one_cpu, many_cpu;
    bench_cold(&ds, size, all, dst, files, errors, &many_cpu); /* warm-up: page cache */
    double one = bench_cold(&ds, size, 1, dst, files, errors, &one_cpu);
    double many = bench_cold(&ds, size, all, dst, files, errors, &many_cpu);
    if (one < 0 || many < 0) {
        fprintf(stderr, "wastenet bench-loader: %s\n", wn_last_error());
        return 1;
    }
    printf("  all cores (%d threads): %.0f images/s = %.0f images/s per core (%.0f per CPU second)\n",
           all, many, many / all, many_cpu);
    printf("  one core:              %.0f images/s (%.0f per CPU second)\n", one, one_cpu);
    bench_split(&ds, size, dst);
    free(dst), free(files), free(errors);

    printf("batches (batch %d, shuffled, prefetch thread, consumer idle):\n", batch);
    wn_loader_options o;
    wn_loader_options_default(&o);
    o.height = o.width = size;
    o.batch = batch;
    o.shuffle = 1;
    o.seed = 1;
    o.threads = threads;
    o.mode = WN_LOADER_CACHE;
    int rc = bench_batches(&ds, &o, seconds, "cached") < 0;
    if (!rc && stream) {
        o.mode = WN_LOADER_STREAM;
        rc = bench_batches(&ds, &o, seconds, "streamed") < 0;
    }
    wn_dataset_free(&ds);
    return rc ? 1 : 0;
}
