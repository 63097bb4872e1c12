/* tests/reliability/test_bad_images.c — every image of the bad-input corpus
 * (tests/data/bad/images/, written by tests/data/make_bad_corpus.c) ends as specified
 * when the decoder (host/image_decode.h) reads it:
 *
 *  refused, with a message naming the file and the problem: zero bytes, a JPEG cut in
 *  its header and one cut inside its scan, random bytes named .jpg, a JPEG header
 *  claiming 65500x65500 and a PNG header claiming 100000x100000 (over the pixel
 *  limit, refused before any pixel buffer), GIF and BMP;
 *
 *  decoded to the pixels the file holds, computed here from the generator's formulas
 *  (tests/data/bad_corpus.h) rather than from another decoder: a PNG named .jpg, a
 *  16-bit PNG (high byte kept), a palette PNG, a 1x1 PNG and JPEG (resized to 320x320:
 *  one flat colour), a CMYK JPEG (TensorFlow's Adobe-inverted conversion), a baseline,
 *  a progressive and an EXIF-orientation-6 JPEG of the same picture: the progressive one
 *  decodes to exactly the baseline's pixels (same coefficients), the EXIF one to exactly
 *  the baseline's pixels and size: Keras does not apply EXIF orientation
 *  (tf.io.decode_image ignores it), so neither does wastenet;
 *
 *  a 20000x15000 PNG (made at test time by the generator, 900 MB of pixels): refused
 *  at the default 64 Mpx limit with a message saying how to raise it, decoded exactly
 *  and resized correctly with the limit raised to 300 Mpx.
 *
 * usage: test_bad_images CORPUS_DIR MAKE_BAD_CORPUS [--no-big] */
#define _DEFAULT_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/base/error.h"
#include "host/image_decode.h"
#include "host/resize.h"
#include "tests/data/bad_corpus.h"
#include "tests/common/check.h"

static const char *g_dir;
static wn_image_decoder *g_dec;

static const char *path_of(const char *name) {
    static char buf[2][4096];
    static int k;
    k ^= 1;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

/* ------------------------------------------------------------------ refused */

static void expect_refused(const char *name, const char *problem) {
    wn_image img;
    const char *path = path_of(name);
    int rc = wn_image_decode_file(g_dec, path, 0, &img);
    const char *msg = wn_last_error();
    CHECK(rc == WN_ERR, "%s: decoded although it must be refused", name);
    if (rc != WN_ERR) return;
    CHECK(strstr(msg, path) != NULL, "%s: the message does not name the file: %s", name, msg);
    CHECK(strstr(msg, problem) != NULL, "%s: the message lacks \"%s\": %s", name, problem, msg);
    printf("refused  %-24s %s\n", name, msg + strlen(path) + 2);
}

/* ------------------------------------------------------------------ decoded */

/* Decodes `name` into a malloc'd copy (the decoder's buffer is reused). */
static uint8_t *decode_copy(const char *name, size_t max_pixels, wn_image *img) {
    if (wn_image_decode_file(g_dec, path_of(name), max_pixels, img) != WN_OK) {
        CHECK(0, "%s: refused: %s", name, wn_last_error());
        return NULL;
    }
    size_t n = (size_t)img->width * img->height * 3;
    uint8_t *copy = malloc(n);
    if (copy) memcpy(copy, img->pixels, n);
    return copy;
}

typedef void (*expect_fn)(int x, int y, uint8_t rgb[3]);

static void want_rgb8(int x, int y, uint8_t rgb[3]) {
    for (int c = 0; c < 3; c++) rgb[c] = bc_rgb8_value(x, y, c);
}

static void want_palette(int x, int y, uint8_t rgb[3]) { bc_palette_color(bc_palette_index(x, y), rgb); }

static void want_rgb16_high(int x, int y, uint8_t rgb[3]) {
    for (int c = 0; c < 3; c++) rgb[c] = (uint8_t)(bc_rgb16_value(x, y, c) >> 8);
}

/* TensorFlow's CMYK conversion of Adobe (inverted) data, jpeg_mem.cc: R = K*C/255. */
static void want_cmyk(int x, int y, uint8_t rgb[3]) {
    int k = bc_cmyk_value(x, y, 3);
    for (int c = 0; c < 3; c++) rgb[c] = (uint8_t)(k * bc_cmyk_value(x, y, c) / 255);
}

/* Decodes `name` and compares with `want`: exact (tol 0) or mean/max abs error. */
static uint8_t *expect_decoded(const char *name, wn_image_format fmt, int w, int h, expect_fn want,
                               double mean_tol, int max_tol) {
    wn_image img;
    uint8_t *px = decode_copy(name, 0, &img);
    if (!px) return NULL;
    CHECK(img.format == fmt, "%s: format %s, want %s", name, wn_image_format_name(img.format),
          wn_image_format_name(fmt));
    CHECK(img.width == w && img.height == h, "%s: %dx%d, want %dx%d", name, img.width, img.height, w, h);
    if (img.width != w || img.height != h) return free(px), NULL;
    double sum = 0;
    int worst = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t e[3];
            want(x, y, e);
            for (int c = 0; c < 3; c++) {
                int d = abs((int)px[((size_t)y * w + x) * 3 + c] - e[c]);
                sum += d;
                if (d > worst) worst = d;
            }
        }
    double mean = sum / ((double)w * h * 3);
    CHECK(mean <= mean_tol && worst <= max_tol, "%s: mean abs error %.3f (tol %.3f), max %d (tol %d)",
          name, mean, mean_tol, worst, max_tol);
    printf("decoded  %-24s %dx%d %s, error vs formula: mean %.3f max %d\n", name, w, h,
           wn_image_format_name(img.format), mean, worst);
    return px;
}

static void test_accepted(void) {
    free(expect_decoded("png_named.jpg", WN_IMAGE_PNG, BC_W, BC_H, want_rgb8, 0, 0));
    free(expect_decoded("rgb16.png", WN_IMAGE_PNG, BC_W, BC_H, want_rgb16_high, 0, 0));
    free(expect_decoded("palette.png", WN_IMAGE_PNG, BC_W, BC_H, want_palette, 0, 0));
    /* JPEG at quality 92 on a smooth ramp: measured mean 1.2 / max 3 levels (4:2:0) and
     * 1.0 / 4 (CMYK, 4:4:4); the tolerances leave room for another libjpeg-turbo, while
     * a wrong colour conversion (e.g. CMYK not inverted) is off by ~100 levels. */
    free(expect_decoded("cmyk.jpg", WN_IMAGE_JPEG, BC_W, BC_H, want_cmyk, 2.0, 10));
    uint8_t *base = expect_decoded("baseline.jpg", WN_IMAGE_JPEG, BC_W, BC_H, want_rgb8, 2.0, 8);
    uint8_t *prog = expect_decoded("progressive.jpg", WN_IMAGE_JPEG, BC_W, BC_H, want_rgb8, 2.0, 8);
    uint8_t *exif = expect_decoded("exif_orientation6.jpg", WN_IMAGE_JPEG, BC_W, BC_H, want_rgb8, 2.0, 8);
    size_t n = (size_t)BC_W * BC_H * 3;
    if (base && prog) CHECK(!memcmp(base, prog, n), "progressive.jpg: pixels differ from baseline.jpg");
    if (base && exif)
        CHECK(!memcmp(base, exif, n), "exif_orientation6.jpg: pixels differ from baseline.jpg "
                                      "(EXIF orientation must not be applied, like Keras)");
    free(base), free(prog), free(exif);

    /* 1x1 images, and their 320x320 resize: one flat colour */
    wn_resizer *r = wn_resizer_new();
    uint8_t *out = malloc(320 * 320 * 3);
    const char *ones[] = {"one_pixel.png", "one_pixel.jpg"};
    for (int k = 0; k < 2 && r && out; k++) {
        wn_image img;
        uint8_t *px = decode_copy(ones[k], 0, &img);
        if (!px) continue;
        CHECK(img.width == 1 && img.height == 1, "%s: %dx%d, want 1x1", ones[k], img.width, img.height);
        uint8_t e[3];
        want_rgb8(0, 0, e);
        int tol = k == 0 ? 0 : 6; /* JPEG: one 8x8 block of a flat colour */
        for (int c = 0; c < 3; c++)
            CHECK(abs(px[c] - e[c]) <= tol, "%s: channel %d is %d, want %d (tol %d)", ones[k], c, px[c], e[c], tol);
        CHECK(wn_resize_bilinear_u8(r, px, 1, 1, out, 320, 320) == WN_OK, "%s: resize: %s", ones[k],
              wn_last_error());
        int flat = 1;
        for (size_t i = 0; i < 320 * 320 * 3; i++)
            if (out[i] != px[i % 3]) flat = 0;
        CHECK(flat, "%s: the 320x320 resize of a 1x1 image is not one flat colour", ones[k]);
        printf("decoded  %-24s 1x1 -> 320x320 flat (%d,%d,%d)\n", ones[k], px[0], px[1], px[2]);
        free(px);
    }
    wn_resizer_free(r);
    free(out);
}

/* ------------------------------------------------------------------ the big image */

static void test_big(const char *generator) {
    enum { W = 20000, H = 15000 };
    char dir[] = "/tmp/wn_big_image.XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp failed");
        return;
    }
    char path[4096], cmd[8192];
    snprintf(path, sizeof path, "%s/big_20000x15000.png", dir);
    snprintf(cmd, sizeof cmd, "'%s' big '%s' %d %d", generator, path, W, H);
    CHECK(system(cmd) == 0, "the generator failed: %s", cmd);
    wn_image img;
    /* the default limit (64 Mpx) refuses it, saying how to raise it */
    int rc = wn_image_decode_file(g_dec, path, 0, &img);
    CHECK(rc == WN_ERR && strstr(wn_last_error(), path) && strstr(wn_last_error(), "20000x15000") &&
              strstr(wn_last_error(), "--max-pixels"),
          "big image at the default limit: %s", rc == WN_ERR ? wn_last_error() : "decoded");
    printf("refused  %-24s at the default limit: %s\n", "big_20000x15000.png", wn_last_error() + strlen(path) + 2);
    /* within a raised limit: decoded exactly, resized like any image */
    rc = wn_image_decode_file(g_dec, path, (size_t)W * H, &img);
    CHECK(rc == WN_OK, "big image within the limit: %s", wn_last_error());
    if (rc == WN_OK) {
        CHECK(img.width == W && img.height == H, "big image: %dx%d", img.width, img.height);
        long wrong = 0;
        for (int y = 0; y < H; y += 37)
            for (int x = 0; x < W; x += 41)
                for (int c = 0; c < 3; c++)
                    if (img.pixels[((size_t)y * W + x) * 3 + c] != bc_big_value(x, y, c, W, H)) wrong++;
        CHECK(wrong == 0, "big image: %ld sampled pixels differ from the formula", wrong);
        wn_resizer *r = wn_resizer_new();
        uint8_t *out = malloc(320 * 320 * 3);
        if (r && out && wn_resize_bilinear_u8(r, img.pixels, H, W, out, 320, 320) == WN_OK) {
            /* each 8x8 tile covers 40x40 output pixels; their centres are flat tiles */
            for (int ty = 0; ty < 8; ty++)
                for (int tx = 0; tx < 8; tx++) {
                    int oy = ty * 40 + 20, ox = tx * 40 + 20;
                    int sx = (int)((ox + 0.5) * W / 320), sy = (int)((oy + 0.5) * H / 320);
                    for (int c = 0; c < 3; c++)
                        CHECK(out[((size_t)oy * 320 + ox) * 3 + c] == bc_big_value(sx, sy, c, W, H),
                              "big image resized: tile (%d,%d) channel %d is %d, want %d", tx, ty, c,
                              out[((size_t)oy * 320 + ox) * 3 + c], bc_big_value(sx, sy, c, W, H));
                }
        } else {
            CHECK(0, "big image: resize failed: %s", wn_last_error());
        }
        wn_resizer_free(r);
        free(out);
        printf("decoded  %-24s 20000x15000 with --max-pixels %d, resized to 320x320\n",
               "big_20000x15000.png", W * H);
    }
    unlink(path);
    rmdir(dir);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: test_bad_images CORPUS_DIR MAKE_BAD_CORPUS [--no-big]\n");
        return 2;
    }
    g_dir = argv[1];
    g_dec = wn_image_decoder_new();
    if (!g_dec) return fprintf(stderr, "%s\n", wn_last_error()), 1;

    expect_refused("empty.jpg", "empty file");
    expect_refused("truncated.jpg", "truncated JPEG");
    expect_refused("truncated_scan.jpg", "truncated JPEG");
    expect_refused("random.jpg", "not an image");
    expect_refused("huge_65500x65500.jpg", "over the limit");
    expect_refused("huge_100000x100000.png", "over the limit");
    expect_refused("image.gif", "GIF images are not supported");
    expect_refused("image.bmp", "BMP images are not supported");
    test_accepted();
    if (argc < 4 || strcmp(argv[3], "--no-big")) test_big(argv[2]);

    wn_image_decoder_free(g_dec);
    return test_finish("test_bad_images");
}
