/* tests/data/make_bad_corpus.c — writes the bad-input corpus of the reliability tests
 * (issue 9 item 2), deterministically: the same bytes on every run with the same
 * libjpeg-turbo/libpng/zlib/HDF5 (no clock, no unseeded randomness).
 *
 *   make_bad_corpus images DIR        the image corpus; its output is what is committed
 *                                     in tests/data/bad/images/ (regenerate with
 *                                     `make_bad_corpus images tests/data/bad/images`)
 *   make_bad_corpus big FILE W H      a W x H 8-bit RGB PNG of big_pixel()'s pattern,
 *                                     written row by row (20000x15000: 900 MB of pixels,
 *                                     a ~1 MB file; made at test time, never committed)
 *   make_bad_corpus weights DIR       Keras weight files for the tiny_cnn model at
 *                                     32x32 with 3 classes: good and broken ones (made
 *                                     at test time from the current model definition)
 *   make_bad_corpus dataset DIR       a small valid data set: train/validation/test,
 *                                     3 classes of 8 PNGs each (learnable colours)
 *   make_bad_corpus fuzz-seeds DIR    small valid JPEG/PNG seeds for the image fuzzer
 *                                     (committed in tests/fuzz/corpus/image_decode)
 *   make_bad_corpus fuzz-seeds-h5 DIR small Keras weight files for the HDF5 fuzzer
 *                                     (committed in tests/fuzz/corpus/h5_keras)
 *
 * Every pixel of the synthetic images follows a formula in this file, so tests can
 * compute what a decoder must return without trusting the decoder. The expected
 * outcome of each file is listed in tests/reliability/ and docs/RELIABILITY.md. */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <zlib.h>

#include "host/base/error.h"
#include "engine/model/model.h"
#include "host/h5_keras.h"
#include "engine/train/model_weights.h"
#include "tests/data/bad_corpus.h"

/* ---------------------------------------------------------------- small helpers */

static int mkdir_p(const char *path) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static const char *join(const char *dir, const char *name) {
    static char buf[4][4096];
    static int k;
    k = (k + 1) & 3;
    if (snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name) >= (int)sizeof buf[k]) {
        fprintf(stderr, "make_bad_corpus: path too long: %s/%s\n", dir, name);
        exit(1);
    }
    return buf[k];
}

static int write_bytes(const char *path, const void *data, size_t n) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno)), -1;
    int ok = (n == 0 || fwrite(data, 1, n, fp) == n);
    ok = (fclose(fp) == 0) && ok;
    if (!ok) fprintf(stderr, "cannot write %s\n", path);
    return ok ? 0 : -1;
}

static uint8_t *read_bytes(const char *path, size_t *n) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long len = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *buf = malloc(len > 0 ? (size_t)len : 1);
    if (buf && len > 0 && fread(buf, 1, (size_t)len, fp) != (size_t)len) {
        free(buf);
        buf = NULL;
    }
    fclose(fp);
    *n = (size_t)len;
    return buf;
}

/* xorshift64*: the corpus's only randomness, fixed seed. */
static uint64_t rng_next(uint64_t *s) {
    *s ^= *s >> 12, *s ^= *s << 25, *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

/* ---------------------------------------------------------------- PNG */

/* Fills row y (png row bytes) of a PNG being written. */
typedef void (*png_row_fn)(int y, int w, uint8_t *row, void *user);

typedef struct png_spec {
    int w, h, color_type, bit_depth;
    const png_color *palette; /* PNG_COLOR_TYPE_PALETTE */
    int n_palette;
    int fast;                 /* 1: zlib level 1, "up" filter only (the big image) */
} png_spec;

static int bc_png_write(const char *path, const png_spec *s, png_row_fn fn, void *user) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno)), -1;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    int channels = s->color_type == PNG_COLOR_TYPE_RGB ? 3 : s->color_type == PNG_COLOR_TYPE_RGB_ALPHA ? 4 : 1;
    size_t row_bytes = ((size_t)s->w * channels * s->bit_depth + 7) / 8;
    uint8_t *volatile row = malloc(row_bytes);
    if (!png || !info || !row || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(row);
        fclose(fp);
        return fprintf(stderr, "libpng failed writing %s\n", path), -1;
    }
    png_init_io(png, fp);
    if (s->fast) {
        png_set_compression_level(png, 1);
        png_set_filter(png, 0, PNG_FILTER_UP);
    }
    png_set_IHDR(png, info, (png_uint_32)s->w, (png_uint_32)s->h, s->bit_depth, s->color_type,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (s->palette) png_set_PLTE(png, info, s->palette, s->n_palette);
    png_write_info(png, info);
    for (int y = 0; y < s->h; y++) {
        fn(y, s->w, row, user);
        png_write_row(png, row);
    }
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    free(row);
    return fclose(fp) == 0 ? 0 : -1;
}

/* 16-bit RGB: bc_rgb16_value(), big-endian in the file. */
static void row_rgb16(int y, int w, uint8_t *row, void *user) {
    (void)user;
    for (int x = 0; x < w; x++)
        for (int c = 0; c < 3; c++) {
            unsigned v = bc_rgb16_value(x, y, c);
            row[(x * 3 + c) * 2] = (uint8_t)(v >> 8), row[(x * 3 + c) * 2 + 1] = (uint8_t)v;
        }
}

static void row_palette(int y, int w, uint8_t *row, void *user) {
    (void)user;
    for (int x = 0; x < w; x++) row[x] = (uint8_t)bc_palette_index(x, y);
}

static void row_rgb8(int y, int w, uint8_t *row, void *user) {
    (void)user;
    for (int x = 0; x < w; x++)
        for (int c = 0; c < 3; c++) row[x * 3 + c] = bc_rgb8_value(x, y, c);
}

static void row_big(int y, int w, uint8_t *row, void *user) {
    const int *wh = user;
    for (int x = 0; x < w; x++)
        for (int c = 0; c < 3; c++) row[x * 3 + c] = bc_big_value(x, y, c, wh[0], wh[1]);
}

static int write_png_rgb8(const char *path, int w, int h) {
    png_spec s = {w, h, PNG_COLOR_TYPE_RGB, 8, NULL, 0, 0};
    return bc_png_write(path, &s, row_rgb8, NULL);
}

/* ---------------------------------------------------------------- JPEG */

/* A JPEG of bc_rgb8_value() (or CMYK bc_cmyk_value()); *out is tjAlloc'd. */
static int jpeg_encode(int w, int h, int cmyk, int subsamp, int flags, uint8_t **out,
                       unsigned long *size) {
    int ch = cmyk ? 4 : 3;
    uint8_t *px = malloc((size_t)w * h * ch);
    if (!px) return -1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < ch; c++)
                px[((size_t)y * w + x) * ch + c] = cmyk ? bc_cmyk_value(x, y, c) : bc_rgb8_value(x, y, c);
    tjhandle tj = tjInitCompress();
    *out = NULL, *size = 0;
    int rc = tj ? tjCompress2(tj, px, w, 0, h, cmyk ? TJPF_CMYK : TJPF_RGB, out, size, subsamp,
                              BC_JPEG_QUALITY, flags)
                : -1;
    if (rc != 0) fprintf(stderr, "TurboJPEG: %s\n", tjGetErrorStr2(tj));
    if (tj) tjDestroy(tj);
    free(px);
    return rc == 0 ? 0 : -1;
}

static int write_jpeg(const char *path, int w, int h, int cmyk, int subsamp, int flags) {
    uint8_t *j;
    unsigned long n;
    if (jpeg_encode(w, h, cmyk, subsamp, flags, &j, &n) != 0) return -1;
    int rc = write_bytes(path, j, n);
    tjFree(j);
    return rc;
}

/* The JPEG with an APP1 Exif segment right after SOI whose only tag is Orientation
 * (0x0112) = `orientation` (6: "rotate 90 degrees clockwise to display"). */
static int write_jpeg_exif(const char *path, const uint8_t *jpeg, size_t n, int orientation) {
    static const uint8_t app1_head[] = {
        0xFF, 0xE1, 0x00, 34,              /* APP1, length 34 (itself + 32) */
        'E', 'x', 'i', 'f', 0, 0,          /* Exif identifier */
        'M', 'M', 0x00, 0x2A, 0, 0, 0, 8,  /* TIFF header, big-endian, IFD at 8 */
        0x00, 0x01,                        /* one entry */
        0x01, 0x12, 0x00, 0x03,            /* Orientation, SHORT */
        0, 0, 0, 1};                       /* count 1 */
    uint8_t *buf = malloc(n + sizeof app1_head + 8);
    if (!buf) return -1;
    size_t k = 0;
    buf[k++] = jpeg[0], buf[k++] = jpeg[1]; /* SOI */
    memcpy(buf + k, app1_head, sizeof app1_head);
    k += sizeof app1_head;
    buf[k++] = 0, buf[k++] = (uint8_t)orientation, buf[k++] = 0, buf[k++] = 0; /* value */
    buf[k++] = 0, buf[k++] = 0, buf[k++] = 0, buf[k++] = 0;                    /* no next IFD */
    memcpy(buf + k, jpeg + 2, n - 2);
    k += n - 2;
    int rc = write_bytes(path, buf, k);
    free(buf);
    return rc;
}

/* The JPEG with its SOF0 frame size replaced by w x h (everything else valid). */
static int write_jpeg_claiming(const char *path, const uint8_t *jpeg, size_t n, int w, int h) {
    uint8_t *buf = malloc(n);
    if (!buf) return -1;
    memcpy(buf, jpeg, n);
    int done = 0;
    for (size_t i = 2; i + 9 < n && !done; i++)
        if (buf[i] == 0xFF && buf[i + 1] == 0xC0) {
            buf[i + 5] = (uint8_t)(h >> 8), buf[i + 6] = (uint8_t)h;
            buf[i + 7] = (uint8_t)(w >> 8), buf[i + 8] = (uint8_t)w;
            done = 1;
        }
    int rc = done ? write_bytes(path, buf, n) : -1;
    free(buf);
    return rc;
}

/* A PNG whose IHDR claims w x h (CRC recomputed) followed by a tiny IDAT and IEND. */
static int write_png_claiming(const char *path, uint32_t w, uint32_t h) {
    uint8_t b[8 + 25 + 12 + 12] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    size_t k = 8;
    uint8_t ihdr[17] = {'I', 'H', 'D', 'R', (uint8_t)(w >> 24), (uint8_t)(w >> 16), (uint8_t)(w >> 8),
                        (uint8_t)w, (uint8_t)(h >> 24), (uint8_t)(h >> 16), (uint8_t)(h >> 8),
                        (uint8_t)h, 8, 2, 0, 0, 0};
    b[k++] = 0, b[k++] = 0, b[k++] = 0, b[k++] = 13;
    memcpy(b + k, ihdr, 17);
    k += 17;
    uint32_t crc = (uint32_t)crc32(0, ihdr, 17);
    b[k++] = (uint8_t)(crc >> 24), b[k++] = (uint8_t)(crc >> 16), b[k++] = (uint8_t)(crc >> 8), b[k++] = (uint8_t)crc;
    /* IDAT of zero length, then IEND */
    const uint8_t tail[] = {0, 0, 0, 0, 'I', 'D', 'A', 'T', 0x35, 0xAF, 0x06, 0x1E,
                            0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82};
    memcpy(b + k, tail, sizeof tail);
    k += sizeof tail;
    return write_bytes(path, b, k);
}

/* ---------------------------------------------------------------- the image corpus */

static int make_images(const char *dir) {
    if (mkdir_p(dir) != 0) return -1;
    int rc = 0;
    /* refused */
    rc |= write_bytes(join(dir, "empty.jpg"), "", 0);
    uint8_t *j;
    unsigned long n;
    if (jpeg_encode(BC_W, BC_H, 0, TJSAMP_420, 0, &j, &n) != 0) return -1;
    rc |= write_bytes(join(dir, "truncated.jpg"), j, n / 2);
    size_t sos = 2;
    while (sos + 1 < n && !(j[sos] == 0xFF && j[sos + 1] == 0xDA)) sos++;
    rc |= write_bytes(join(dir, "truncated_scan.jpg"), j, sos + (n - sos) / 2); /* cut in the scan */
    /* 65500: the largest frame libjpeg-turbo decodes (JPEG's own field allows 65535) */
    rc |= write_jpeg_claiming(join(dir, "huge_65500x65500.jpg"), j, n, 65500, 65500);
    uint8_t rnd[2048];
    uint64_t s = 0x9E3779B97F4A7C15ULL;
    for (size_t i = 0; i < sizeof rnd; i++) rnd[i] = (uint8_t)(rng_next(&s) >> 56);
    rc |= write_bytes(join(dir, "random.jpg"), rnd, sizeof rnd);
    rc |= write_png_claiming(join(dir, "huge_100000x100000.png"), 100000, 100000);
    static const uint8_t gif[] = {'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0, 0x80, 0, 0, 0, 0, 0,
                                  255, 255, 255, ',', 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 'D', 1, 0, ';'};
    rc |= write_bytes(join(dir, "image.gif"), gif, sizeof gif);
    static const uint8_t bmp[58] = {'B', 'M', 58, 0, 0, 0, 0, 0, 0, 0, 54, 0, 0, 0, 40, 0, 0, 0,
                                    1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 24, 0, 0, 0, 0, 0, 4, 0, 0, 0,
                                    0x13, 0x0B, 0, 0, 0x13, 0x0B, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                    0, 0, 255, 0};
    rc |= write_bytes(join(dir, "image.bmp"), bmp, sizeof bmp);

    /* accepted */
    rc |= write_bytes(join(dir, "baseline.jpg"), j, n);
    rc |= write_jpeg_exif(join(dir, "exif_orientation6.jpg"), j, n, 6);
    tjFree(j);
    rc |= write_jpeg(join(dir, "progressive.jpg"), BC_W, BC_H, 0, TJSAMP_420, TJFLAG_PROGRESSIVE);
    rc |= write_jpeg(join(dir, "cmyk.jpg"), BC_W, BC_H, 1, TJSAMP_444, 0);
    rc |= write_jpeg(join(dir, "one_pixel.jpg"), 1, 1, 0, TJSAMP_444, 0);
    rc |= write_png_rgb8(join(dir, "one_pixel.png"), 1, 1);
    rc |= write_png_rgb8(join(dir, "png_named.jpg"), BC_W, BC_H);
    png_spec s16 = {BC_W, BC_H, PNG_COLOR_TYPE_RGB, 16, NULL, 0, 0};
    rc |= bc_png_write(join(dir, "rgb16.png"), &s16, row_rgb16, NULL);
    png_color pal[BC_PALETTE_SIZE];
    for (int i = 0; i < BC_PALETTE_SIZE; i++) {
        uint8_t c[3];
        bc_palette_color(i, c);
        pal[i].red = c[0], pal[i].green = c[1], pal[i].blue = c[2];
    }
    png_spec sp = {BC_W, BC_H, PNG_COLOR_TYPE_PALETTE, 8, pal, BC_PALETTE_SIZE, 0};
    rc |= bc_png_write(join(dir, "palette.png"), &sp, row_palette, NULL);
    return rc ? -1 : 0;
}

static int make_big(const char *path, int w, int h) {
    int wh[2] = {w, h};
    png_spec s = {w, h, PNG_COLOR_TYPE_RGB, 8, NULL, 0, 1};
    return bc_png_write(path, &s, row_big, wh);
}

/* ---------------------------------------------------------------- the data set */

/* Class k's images: a flat colour with a little per-image variation. */
static void row_class(int y, int w, uint8_t *row, void *user) {
    const int *ki = user;
    for (int x = 0; x < w; x++)
        for (int c = 0; c < 3; c++)
            row[x * 3 + c] = (uint8_t)((c == ki[0] ? 200 : 40) + ((x + y + ki[1]) % 9));
}

static int make_dataset(const char *dir) {
    static const char *splits[] = {"train", "validation", "test"};
    static const char *classes[] = {"glass", "metal", "paper"};
    for (int s = 0; s < 3; s++)
        for (int k = 0; k < 3; k++) {
            char sub[4096];
            snprintf(sub, sizeof sub, "%s/%s/%s", dir, splits[s], classes[k]);
            if (mkdir_p(sub) != 0) return -1;
            for (int i = 0; i < 8; i++) {
                char name[64];
                snprintf(name, sizeof name, "img%02d.png", i);
                int ki[2] = {k, i + 8 * s};
                png_spec sp = {24, 20, PNG_COLOR_TYPE_RGB, 8, NULL, 0, 0};
                if (bc_png_write(join(sub, name), &sp, row_class, ki) != 0) return -1;
            }
        }
    return 0;
}

/* ---------------------------------------------------------------- weights */

/* A weight file read back into writable memory: the layers of wn_h5_write(). */
typedef struct h5_copy {
    int n;
    wn_h5_out_layer layers[64];
    wn_h5_out_weight weights[64][8];
    float *data[64][8];
    char names[64][8][160];
    char lnames[64][160];
} h5_copy;

static int h5_copy_read(h5_copy *c, const char *path) {
    memset(c, 0, sizeof *c);
    wn_h5_file *f;
    if (wn_h5_open(path, &f) != WN_OK) return fprintf(stderr, "%s\n", wn_last_error()), -1;
    if (f->n_layers > 64) return wn_h5_close(f), -1;
    c->n = f->n_layers;
    for (int l = 0; l < f->n_layers; l++) {
        const wn_h5_layer *L = &f->layers[l];
        if (L->n_weights > 8) return wn_h5_close(f), -1;
        snprintf(c->lnames[l], sizeof c->lnames[l], "%s", L->name);
        c->layers[l] = (wn_h5_out_layer){c->lnames[l], L->n_weights, c->weights[l]};
        for (int k = 0; k < L->n_weights; k++) {
            const wn_h5_weight *W = &L->weights[k];
            c->data[l][k] = malloc((W->count ? W->count : 1) * sizeof(float));
            if (!c->data[l][k] || wn_h5_weight_read(f, l, k, c->data[l][k], W->count) != WN_OK)
                return wn_h5_close(f), -1;
            snprintf(c->names[l][k], sizeof c->names[l][k], "%s", W->name);
            wn_h5_out_weight *o = &c->weights[l][k];
            o->name = c->names[l][k];
            o->rank = W->rank;
            for (int r = 0; r < W->rank; r++) o->dims[r] = W->dims[r];
            o->data = c->data[l][k];
        }
    }
    wn_h5_close(f);
    return 0;
}

static void h5_copy_free(h5_copy *c) {
    for (int l = 0; l < c->n; l++)
        for (int k = 0; k < 8; k++) free(c->data[l][k]);
}

static int h5_copy_find(const h5_copy *c, const char *name) {
    for (int l = 0; l < c->n; l++)
        if (!strcmp(c->lnames[l], name)) return l;
    return -1;
}

static int h5_copy_write(const h5_copy *c, const char *path) {
    if (wn_h5_write(path, c->layers, c->n, NULL) != WN_OK) return fprintf(stderr, "%s\n", wn_last_error()), -1;
    return 0;
}

/* A copy of `src` in which every dataset of layer group `layer` is stored as float64
 * (same values), through the raw HDF5 API since wn_h5_write() writes float32 only. */
static int bc_write_f64_copy(const char *src, const char *dst, const char *layer) {
    size_t n;
    uint8_t *bytes = read_bytes(src, &n);
    if (!bytes || write_bytes(dst, bytes, n) != 0) return free(bytes), -1;
    free(bytes);
    hid_t file = H5Fopen(dst, H5F_ACC_RDWR, H5P_DEFAULT);
    if (file < 0) return -1;
    char path[512];
    snprintf(path, sizeof path, "/%s/%s/kernel:0", layer, layer);
    hid_t d = H5Dopen2(file, path, H5P_DEFAULT);
    hid_t space = d >= 0 ? H5Dget_space(d) : -1;
    hssize_t count = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
    double *v = count > 0 ? malloc((size_t)count * sizeof *v) : NULL;
    int rc = v && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0 ? 0 : -1;
    if (d >= 0) H5Dclose(d);
    if (rc == 0 && H5Ldelete(file, path, H5P_DEFAULT) >= 0) {
        hid_t d2 = H5Dcreate2(file, path, H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        rc = d2 >= 0 && H5Dwrite(d2, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0 ? 0 : -1;
        if (d2 >= 0) H5Dclose(d2);
    } else {
        rc = -1;
    }
    if (space >= 0) H5Sclose(space);
    free(v);
    H5Fclose(file);
    if (rc) fprintf(stderr, "make_bad_corpus: cannot rewrite %s in %s as float64\n", path, dst);
    return rc;
}

/* The files, from a notop (flat, Keras-named) file of the tiny_cnn backbone. */
static int make_weights(const char *dir) {
    if (mkdir_p(dir) != 0) return -1;
    wn_model m;
    if (wn_model_create(&m, BC_MODEL, BC_IMAGE, BC_IMAGE, BC_CLASSES, 7) != WN_OK)
        return fprintf(stderr, "%s\n", wn_last_error()), -1;
    int rc = 0;
    char whole[4096], notop[4096]; /* own copies: join()'s buffers are reused */
    snprintf(whole, sizeof whole, "%s", join(dir, "good_whole.h5"));
    snprintf(notop, sizeof notop, "%s", join(dir, "good_notop.h5"));
    if (wn_model_weights_save(&m, whole, WN_WEIGHTS_WHOLE_MODEL) != WN_OK ||
        wn_model_weights_save(&m, notop, WN_WEIGHTS_BACKBONE_ONLY) != WN_OK) {
        fprintf(stderr, "%s\n", wn_last_error());
        wn_model_free(&m);
        return -1;
    }
    wn_model_free(&m);

    size_t n;
    uint8_t *bytes = read_bytes(whole, &n);
    if (!bytes) return -1;
    rc |= write_bytes(join(dir, "truncated.h5"), bytes, n / 2);
    free(bytes);
    const char text[] = "this is a text file, not HDF5\n";
    rc |= write_bytes(join(dir, "not_hdf5.h5"), text, sizeof text - 1);
    rc |= write_bytes(join(dir, "empty.h5"), "", 0);

    static h5_copy c;
    if (h5_copy_read(&c, notop) != 0) return -1;
    int conv = h5_copy_find(&c, BC_CONV_LAYER), bn = h5_copy_find(&c, BC_BN_LAYER);
    if (conv < 0 || bn < 0 || c.layers[conv].n_weights < 1 || c.weights[conv][0].rank != 4) {
        fprintf(stderr, "make_bad_corpus: %s has no layers '%s' and '%s' (did tiny_cnn change?)\n",
                notop, BC_CONV_LAYER, BC_BN_LAYER);
        h5_copy_free(&c);
        return -1;
    }
    /* wrong shape: the conv kernel's output channels one more (data: enough floats) */
    wn_h5_out_weight saved = c.weights[conv][0];
    size_t count = 1;
    for (int r = 0; r < 4; r++) count *= (size_t)saved.dims[r];
    float *wide = calloc(count / (size_t)saved.dims[3] * (size_t)(saved.dims[3] + 1), sizeof *wide);
    c.weights[conv][0].dims[3] += 1;
    c.weights[conv][0].data = wide;
    rc |= h5_copy_write(&c, join(dir, "wrong_shape.h5"));
    c.weights[conv][0] = saved;
    free(wide);
    /* NaN and Inf in the batch norm's moving variance (its last weight) */
    int last = c.layers[bn].n_weights - 1;
    float keep = c.data[bn][last][0];
    c.data[bn][last][0] = NAN;
    rc |= h5_copy_write(&c, join(dir, "nan.h5"));
    c.data[bn][last][0] = INFINITY;
    rc |= h5_copy_write(&c, join(dir, "inf.h5"));
    c.data[bn][last][0] = keep;
    /* an extra layer (Keras-style name, one kernel) at the end */
    static wn_h5_out_weight extra = {"extra_conv/kernel:0", 4, {1, 1, 2, 2}, NULL};
    static const float extra_data[4] = {1, 0, 0, 1};
    extra.data = extra_data;
    c.layers[c.n] = (wn_h5_out_layer){"extra_conv", 1, &extra};
    c.n++;
    rc |= h5_copy_write(&c, join(dir, "extra_layer.h5"));
    c.n--;
    /* a missing layer: the batch norm dropped */
    wn_h5_out_layer all[64];
    memcpy(all, c.layers, sizeof all);
    memmove(&c.layers[bn], &c.layers[bn + 1], (size_t)(c.n - bn - 1) * sizeof c.layers[0]);
    c.n--;
    rc |= h5_copy_write(&c, join(dir, "missing_layer.h5"));
    c.n++;
    memcpy(c.layers, all, sizeof all);
    rc |= h5_copy_write(&c, join(dir, "rewritten_notop.h5")); /* control: the copy itself loads */
    h5_copy_free(&c);

    /* wrong dtype: the conv kernel as float64 (raw HDF5, since wn_h5_write is float32) */
    rc |= bc_write_f64_copy(notop, join(dir, "wrong_dtype.h5"), BC_CONV_LAYER);
    return rc ? -1 : 0;
}

/* ---------------------------------------------------------------- fuzz seeds */

static int make_fuzz_seeds(const char *dir) {
    if (mkdir_p(dir) != 0) return -1;
    int rc = 0;
    rc |= write_jpeg(join(dir, "rgb420.jpg"), 9, 7, 0, TJSAMP_420, 0);
    rc |= write_jpeg(join(dir, "rgb444.jpg"), 9, 7, 0, TJSAMP_444, 0);
    rc |= write_jpeg(join(dir, "rgb422_progressive.jpg"), 9, 7, 0, TJSAMP_422, TJFLAG_PROGRESSIVE);
    rc |= write_jpeg(join(dir, "gray.jpg"), 9, 7, 0, TJSAMP_GRAY, 0);
    rc |= write_jpeg(join(dir, "cmyk.jpg"), 9, 7, 1, TJSAMP_444, 0);
    uint8_t *j;
    unsigned long n;
    if (jpeg_encode(9, 7, 0, TJSAMP_420, 0, &j, &n) != 0) return -1;
    rc |= write_jpeg_exif(join(dir, "exif.jpg"), j, n, 6);
    tjFree(j);
    rc |= write_png_rgb8(join(dir, "rgb8.png"), 9, 7);
    png_spec s16 = {9, 7, PNG_COLOR_TYPE_RGB, 16, NULL, 0, 0};
    rc |= bc_png_write(join(dir, "rgb16.png"), &s16, row_rgb16, NULL);
    png_color pal[BC_PALETTE_SIZE];
    for (int i = 0; i < BC_PALETTE_SIZE; i++) {
        uint8_t c[3];
        bc_palette_color(i, c);
        pal[i].red = c[0], pal[i].green = c[1], pal[i].blue = c[2];
    }
    png_spec sp = {9, 7, PNG_COLOR_TYPE_PALETTE, 8, pal, BC_PALETTE_SIZE, 0};
    rc |= bc_png_write(join(dir, "palette.png"), &sp, row_palette, NULL);
    return rc ? -1 : 0;
}

/* Small Keras weight files for the HDF5 fuzzer: both string layouts, a weightless
 * layer, a layer with a "/" in a weight name, a rank-0 and a rank-4 weight. */
static int make_fuzz_seeds_h5(const char *dir) {
    if (mkdir_p(dir) != 0) return -1;
    static const float k[8] = {1, -2, 3, -4, 5, -6, 7, -8}, b[2] = {0.5f, -0.5f}, s0[1] = {3};
    const wn_h5_out_weight conv[2] = {{"conv2d/kernel:0", 4, {1, 1, 2, 2}, k},
                                      {"conv2d/bias:0", 1, {2}, b}};
    const wn_h5_out_weight dense[2] = {{"dense/kernel:0", 2, {2, 2}, k},
                                       {"dense/sub/bias:0", 1, {2}, b}};
    const wn_h5_out_weight scalar[1] = {{"norm/count:0", 0, {0}, s0}};
    const wn_h5_out_layer layers[4] = {{"input_1", 0, NULL}, {"conv2d", 2, conv},
                                       {"dense", 2, dense}, {"norm", 1, scalar}};
    wn_h5_write_opts fixed = {"2.0.8", "tensorflow", 1, 1, NULL};
    int rc = 0;
    if (wn_h5_write(join(dir, "vlen_strings.h5"), layers, 4, NULL) != WN_OK ||
        wn_h5_write(join(dir, "fixed_strings_keras208.h5"), layers, 3, &fixed) != WN_OK ||
        wn_h5_write(join(dir, "one_layer.h5"), layers + 1, 1, NULL) != WN_OK)
        rc = -1, fprintf(stderr, "%s\n", wn_last_error());
    return rc;
}

int main(int argc, char **argv) {
    int rc = 2;
    if (argc == 3 && !strcmp(argv[1], "images")) rc = make_images(argv[2]);
    else if (argc == 5 && !strcmp(argv[1], "big")) rc = make_big(argv[2], atoi(argv[3]), atoi(argv[4]));
    else if (argc == 3 && !strcmp(argv[1], "weights")) rc = make_weights(argv[2]);
    else if (argc == 3 && !strcmp(argv[1], "dataset")) rc = make_dataset(argv[2]);
    else if (argc == 3 && !strcmp(argv[1], "fuzz-seeds")) rc = make_fuzz_seeds(argv[2]);
    else if (argc == 3 && !strcmp(argv[1], "fuzz-seeds-h5")) rc = make_fuzz_seeds_h5(argv[2]);
    if (rc == 2) {
        fprintf(stderr, "usage: make_bad_corpus images DIR | big FILE W H | weights DIR | "
                        "dataset DIR | fuzz-seeds DIR | fuzz-seeds-h5 DIR\n");
        return 2;
    }
    if (rc != 0) fprintf(stderr, "make_bad_corpus %s: failed\n", argv[1]);
    return rc ? 1 : 0;
}
