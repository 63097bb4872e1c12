/* tests/fuzz/fuzz_image_decode.c — libFuzzer target for the image decoding wrapper
 * (host/image_decode.h): any bytes go through wn_image_decode_memory() exactly as a
 * file's contents would, and a decoded image is resized like the loader does.
 *
 * What must hold for every input (a violation aborts, which the fuzzer reports):
 *  - no crash, no out-of-bounds access, no leak (ASan/LSan), no undefined behaviour;
 *  - success means 1 <= width, height and width*height <= the pixel limit, with every
 *    one of the [height, width, 3] bytes readable (they are summed, so ASan sees a
 *    short buffer) and resizable;
 *  - failure means a reason that names the input (the name given to the decoder).
 * The pixel limit is lowered to 4 Mpx so a small input claiming a big (valid) image
 * decodes in milliseconds; the limit checks are the same code at any limit. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/base/error.h"
#include "host/image_decode.h"
#include "host/resize.h"

#define FUZZ_MAX_PIXELS ((size_t)1 << 22)
#define FUZZ_NAME "fuzz-input.jpg"

static wn_image_decoder *g_decoder; /* one per process: buffers reused like a loader thread */
static wn_resizer *g_resizer;

static void fuzz_check(int cond, const char *what) {
    if (!cond) {
        fprintf(stderr, "fuzz_image_decode: contract violated: %s (last error: %s)\n", what,
                wn_last_error());
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!g_decoder) {
        g_decoder = wn_image_decoder_new();
        g_resizer = wn_resizer_new();
        fuzz_check(g_decoder && g_resizer, "decoder or resizer creation");
    }
    wn_image img;
    if (wn_image_decode_memory(g_decoder, data, size, FUZZ_NAME, FUZZ_MAX_PIXELS, &img) != WN_OK) {
        fuzz_check(strstr(wn_last_error(), FUZZ_NAME) != NULL, "the error names the input");
        return 0;
    }
    fuzz_check(img.pixels && img.width >= 1 && img.height >= 1, "a decoded image has pixels");
    fuzz_check((size_t)img.width * (size_t)img.height <= FUZZ_MAX_PIXELS, "within the pixel limit");
    fuzz_check(img.format == WN_IMAGE_JPEG || img.format == WN_IMAGE_PNG, "decoded format");
    size_t n = (size_t)img.width * (size_t)img.height * 3;
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++) sum += img.pixels[i];
    /* Resize like the loader (to 7x5: odd sizes, both directions of scaling). */
    uint8_t out[5 * 7 * 3];
    fuzz_check(wn_resize_bilinear_u8(g_resizer, img.pixels, img.height, img.width, out, 5, 7) == WN_OK,
               "a decoded image resizes");
    volatile unsigned sink = sum + out[0];
    (void)sink;
    return 0;
}
