/* host/image_cache.c — decode + resize on all cores (OpenMP), and the RAM cache.
 * See host/image_cache.h. */
#include "host/image_cache.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "host/base/error.h"
#include "host/image_decode.h"
#include "host/resize.h"

struct wn_decode_pool {
    int threads;
    size_t max_pixels;
    wn_image_decoder **dec; /* [threads] */
    wn_resizer **rs;        /* [threads] */
};

void wn_decode_pool_free(wn_decode_pool *p) {
    if (!p) return;
    for (int t = 0; t < p->threads; t++) {
        if (p->dec) wn_image_decoder_free(p->dec[t]);
        if (p->rs) wn_resizer_free(p->rs[t]);
    }
    free(p->dec), free(p->rs);
    free(p);
}

wn_decode_pool *wn_decode_pool_new(int threads, size_t max_pixels) {
    wn_decode_pool *p = calloc(1, sizeof *p);
    if (!p) {
        wn_fail("out of memory creating the decode threads");
        return NULL;
    }
    p->threads = threads > 0 ? threads : omp_get_num_procs();
    p->max_pixels = max_pixels ? max_pixels : WN_DEFAULT_MAX_PIXELS;
    p->dec = calloc((size_t)p->threads, sizeof *p->dec);
    p->rs = calloc((size_t)p->threads, sizeof *p->rs);
    if (!p->dec || !p->rs) {
        wn_decode_pool_free(p);
        wn_fail("out of memory creating the decode threads");
        return NULL;
    }
    for (int t = 0; t < p->threads; t++) {
        p->dec[t] = wn_image_decoder_new();
        p->rs[t] = wn_resizer_new();
        if (!p->dec[t] || !p->rs[t]) {
            wn_decode_pool_free(p);
            return NULL;
        }
    }
    return p;
}

const char *wn_error_reason(const char *message, const char *path) {
    size_t n = strlen(path);
    if (!strncmp(message, path, n) && message[n] == ':' && message[n + 1] == ' ') return message + n + 2;
    return message;
}

int wn_decode_pool_threads(const wn_decode_pool *p) { return p->threads; }

int wn_decode_pool_run(wn_decode_pool *p, const wn_dataset *ds, const int32_t *files, int n,
                       int height, int width, uint8_t *dst, char **errors) {
    const size_t image_bytes = (size_t)height * width * 3;
    int out_of_memory = 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(p->threads)
    for (int i = 0; i < n; i++) {
        const int t = omp_get_thread_num();
        uint8_t *out = dst + (size_t)i * image_bytes;
        wn_image img;
        int rc = wn_image_decode_file(p->dec[t], ds->paths[files[i]], p->max_pixels, &img);
        if (rc == WN_OK)
            rc = wn_resize_bilinear_u8(p->rs[t], img.pixels, img.height, img.width, out, height,
                                       width);
        errors[i] = NULL;
        if (rc != WN_OK) {
            memset(out, 0, image_bytes);
            /* wn_last_error() is per thread: copy it out while still on this thread. */
            errors[i] = strdup(wn_last_error());
            if (!errors[i]) {
#pragma omp atomic write
                out_of_memory = 1;
            }
        }
    }
    if (out_of_memory) return wn_fail("out of memory recording decode errors");
    return WN_OK;
}

size_t wn_image_cache_bytes(const wn_dataset *ds, int height, int width) {
    return (size_t)ds->n_files * (size_t)height * (size_t)width * 3;
}

void wn_image_cache_free(wn_image_cache *c) {
    if (!c) return;
    free(c->pixels);
    free(c->bad);
    memset(c, 0, sizeof *c);
}

int wn_image_cache_build(wn_image_cache *c, const wn_dataset *ds, int height, int width,
                         const wn_cache_options *opt) {
    memset(c, 0, sizeof *c);
    if (height <= 0 || width <= 0) return wn_fail("image size %dx%d must be positive", width, height);
    const int n = ds->n_files;
    const size_t bytes = wn_image_cache_bytes(ds, height, width);
    /* 64-byte alignment: every image starts on a cache line when H*W*3 % 64 == 0. */
    c->pixels = aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
    c->bad = calloc((size_t)n + 1, 1);
    int32_t *files = malloc(((size_t)n + 1) * sizeof *files);
    char **errors = calloc((size_t)n + 1, sizeof *errors);
    wn_decode_pool *pool = NULL;
    int rc = WN_OK;
    if (!c->pixels || !c->bad || !files || !errors) {
        rc = wn_fail("%s: out of memory for the image cache (%zu MB); use the streaming "
                     "mode (--stream)", ds->dir, bytes >> 20);
        goto done;
    }
    pool = wn_decode_pool_new(opt ? opt->threads : 0, opt ? opt->max_pixels : 0);
    if (!pool) {
        rc = WN_ERR;
        goto done;
    }
    for (int i = 0; i < n; i++) files[i] = i;
    c->n_files = n, c->height = height, c->width = width;
    rc = wn_decode_pool_run(pool, ds, files, n, height, width, c->pixels, errors);
    for (int i = 0; rc == WN_OK && i < n; i++) {
        if (!errors[i]) continue;
        if (!opt || !opt->skip_bad) {
            rc = wn_fail("%s", errors[i]);
            break;
        }
        c->bad[i] = 1;
        c->n_bad++;
        if (opt->report) opt->report(opt->report_user, ds->paths[i], wn_error_reason(errors[i], ds->paths[i]));
    }
done:
    for (int i = 0; errors && i < n; i++) free(errors[i]);
    free(errors);
    free(files);
    wn_decode_pool_free(pool);
    if (rc != WN_OK) wn_image_cache_free(c);
    return rc;
}
