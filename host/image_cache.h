/* host/image_cache.h — decode + resize many files on all cores.
 *
 * wn_decode_pool holds one JPEG/PNG decoder and one resizer per thread and turns a
 * list of files into uint8 NHWC images [n, H, W, 3] (OpenMP, dynamic schedule:
 * files differ in cost). wn_image_cache uses it once for a whole split: the RAM
 * cache of the loader's cache mode; the stream mode calls the pool per batch.
 *
 * A file that fails (see host/image_decode.h) does not stop the others: its status
 * is set and its message kept, and the caller decides (stop, or skip and report).
 */
#ifndef WN_IMAGE_CACHE_H
#define WN_IMAGE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "host/dataset.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wn_decode_pool wn_decode_pool;

/* threads 0: all cores. max_pixels 0: WN_DEFAULT_MAX_PIXELS. */
wn_decode_pool *wn_decode_pool_new(int threads, size_t max_pixels);
void wn_decode_pool_free(wn_decode_pool *p);
int wn_decode_pool_threads(const wn_decode_pool *p);

/* Decodes ds->paths[files[i]] and resizes it into dst + i*H*W*3 for i < n.
 * errors[i] is NULL for a good file, else a malloc'd message naming the file (the
 * caller frees it). Returns WN_OK even when files fail; WN_ERR only when errors
 * could not be recorded (out of memory). */
int wn_decode_pool_run(wn_decode_pool *p, const wn_dataset *ds, const int32_t *files, int n,
                       int height, int width, uint8_t *dst, char **errors);

/* The problem in a message "path: problem" (for reports that name the path apart). */
const char *wn_error_reason(const char *message, const char *path);

typedef struct wn_image_cache {
    uint8_t *pixels; /* [n_files, height, width, 3] NHWC uint8; a bad file's slot is 0 */
    uint8_t *bad;    /* [n_files] 1 where the file could not be decoded */
    int n_files, height, width;
    int n_bad;
} wn_image_cache;

typedef struct wn_cache_options {
    int threads;               /* 0: all cores */
    size_t max_pixels;         /* 0: WN_DEFAULT_MAX_PIXELS */
    int skip_bad;              /* 0: the first bad file (in file order) fails the build */
    wn_bad_file_fn report;     /* skip_bad: called once per bad file, in file order */
    void *report_user;
} wn_cache_options;

/* Decodes and resizes every file of ds once. */
int wn_image_cache_build(wn_image_cache *c, const wn_dataset *ds, int height, int width,
                         const wn_cache_options *opt);
void wn_image_cache_free(wn_image_cache *c);

/* Bytes the cache of ds at this size needs (n_files*H*W*3). */
size_t wn_image_cache_bytes(const wn_dataset *ds, int height, int width);

#ifdef __cplusplus
}
#endif
#endif
