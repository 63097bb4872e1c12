/* tests/host/fixtures.c — see fixtures.h. */
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE
#include "fixtures.h"

#include <errno.h>
#include <ftw.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>
#include <zlib.h>

const fx_png_case fx_png_cases[] = {
    {"rgb8.png", PNG_COLOR_TYPE_RGB, 8, 0, 0},
    {"rgb16.png", PNG_COLOR_TYPE_RGB, 16, 0, 0},
    {"rgba8.png", PNG_COLOR_TYPE_RGB_ALPHA, 8, 0, 0},
    {"rgba16.png", PNG_COLOR_TYPE_RGB_ALPHA, 16, 0, 0},
    {"gray1.png", PNG_COLOR_TYPE_GRAY, 1, 0, 0},
    {"gray2.png", PNG_COLOR_TYPE_GRAY, 2, 0, 0},
    {"gray4.png", PNG_COLOR_TYPE_GRAY, 4, 0, 0},
    {"gray8.png", PNG_COLOR_TYPE_GRAY, 8, 0, 0},
    {"gray16.png", PNG_COLOR_TYPE_GRAY, 16, 0, 0},
    {"gray_alpha8.png", PNG_COLOR_TYPE_GRAY_ALPHA, 8, 0, 0},
    {"gray_alpha16.png", PNG_COLOR_TYPE_GRAY_ALPHA, 16, 0, 0},
    {"palette8.png", PNG_COLOR_TYPE_PALETTE, 8, 0, 0},
    {"palette4.png", PNG_COLOR_TYPE_PALETTE, 4, 0, 0},
    {"palette8_trns.png", PNG_COLOR_TYPE_PALETTE, 8, 0, 1},
    {"rgb8_interlaced.png", PNG_COLOR_TYPE_RGB, 8, 1, 0},
};
const int fx_png_case_count = (int)(sizeof fx_png_cases / sizeof fx_png_cases[0]);

static void palette_entry(int i, uint8_t rgb[3]) {
    rgb[0] = (uint8_t)(i * 6), rgb[1] = (uint8_t)(255 - i * 5), rgb[2] = (uint8_t)((i * i) & 255);
}

static int palette_index(const fx_png_case *pc, int x, int y) {
    return pc->bit_depth == 4 ? (x + y) % 16 : (x * 3 + y) % 40;
}

/* The value stored in the file for (x, y, c), at the case's bit depth. */
static unsigned stored(const fx_png_case *pc, int x, int y, int c) {
    if (pc->color_type == PNG_COLOR_TYPE_PALETTE) return (unsigned)palette_index(pc, x, y);
    if (pc->color_type == PNG_COLOR_TYPE_GRAY && pc->bit_depth < 8) {
        if (pc->bit_depth == 1) return (unsigned)((x ^ y) & 1);
        if (pc->bit_depth == 2) return (unsigned)((x + y) & 3);
        return (unsigned)((x + 2 * y) & 15);
    }
    unsigned s8 = fx_sample(x, y, c);
    if (pc->bit_depth == 16) return (s8 << 8) | (unsigned)((x * 13 + y * 7 + c) & 255);
    return s8;
}

void fx_png_expected(const fx_png_case *pc, int x, int y, uint8_t rgb[3]) {
    if (pc->color_type == PNG_COLOR_TYPE_PALETTE) {
        palette_entry(palette_index(pc, x, y), rgb);
        return;
    }
    int gray = pc->color_type == PNG_COLOR_TYPE_GRAY || pc->color_type == PNG_COLOR_TYPE_GRAY_ALPHA;
    for (int c = 0; c < 3; c++) {
        unsigned v = stored(pc, x, y, gray ? 0 : c);
        if (pc->bit_depth == 16) v >>= 8;                         /* low byte dropped */
        else if (pc->bit_depth < 8) v = v * 255 / ((1u << pc->bit_depth) - 1); /* scaled up */
        rgb[c] = (uint8_t)v;
    }
}

int fx_write_png_case(const char *dir, const fx_png_case *pc) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, pc->name);
    FILE *fp = fopen(path, "wb");
    if (!fp) return -1;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(fp);
        return -1;
    }
    png_init_io(png, fp);
    const int w = FX_PNG_W, h = FX_PNG_H;
    png_set_IHDR(png, info, w, h, pc->bit_depth, pc->color_type,
                 pc->interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (pc->color_type == PNG_COLOR_TYPE_PALETTE) {
        png_color pal[40];
        for (int i = 0; i < 40; i++) {
            uint8_t rgb[3];
            palette_entry(i, rgb);
            pal[i].red = rgb[0], pal[i].green = rgb[1], pal[i].blue = rgb[2];
        }
        png_set_PLTE(png, info, pal, pc->bit_depth == 4 ? 16 : 40);
        if (pc->trns) {
            png_byte alpha[40];
            for (int i = 0; i < 40; i++) alpha[i] = (png_byte)(i * 6);
            png_set_tRNS(png, info, alpha, 40, NULL);
        }
    }
    png_write_info(png, info);
    int channels = pc->color_type == PNG_COLOR_TYPE_RGB         ? 3
                   : pc->color_type == PNG_COLOR_TYPE_RGB_ALPHA  ? 4
                   : pc->color_type == PNG_COLOR_TYPE_GRAY_ALPHA ? 2
                                                                 : 1;
    size_t rowbytes = ((size_t)w * channels * pc->bit_depth + 7) / 8;
    png_bytep *rows = calloc((size_t)h, sizeof *rows);
    for (int y = 0; y < h; y++) {
        rows[y] = calloc(rowbytes, 1);
        for (int x = 0; x < w; x++)
            for (int c = 0; c < channels; c++) {
                /* alpha channels get their own pattern: it must not reach the output */
                int alpha = (channels == 4 && c == 3) || (channels == 2 && c == 1);
                unsigned v = alpha ? (unsigned)((x * y + 3) & 255) * (pc->bit_depth == 16 ? 257u : 1u)
                                   : stored(pc, x, y, c);
                size_t bit = ((size_t)x * channels + c) * pc->bit_depth;
                if (pc->bit_depth == 16) {
                    rows[y][bit / 8] = (png_byte)(v >> 8), rows[y][bit / 8 + 1] = (png_byte)v;
                } else if (pc->bit_depth == 8) {
                    rows[y][bit / 8] = (png_byte)v;
                } else { /* packed, most significant bits first */
                    int shift = 8 - pc->bit_depth - (int)(bit % 8);
                    rows[y][bit / 8] |= (png_byte)(v << shift);
                }
            }
    }
    png_write_image(png, rows);
    png_write_end(png, NULL);
    for (int y = 0; y < h; y++) free(rows[y]);
    free(rows);
    png_destroy_write_struct(&png, &info);
    return fclose(fp) == 0 ? 0 : -1;
}

int fx_write_png_rgb(const char *path, int w, int h, const uint8_t *rgb) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return -1;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(fp);
        return -1;
    }
    png_init_io(png, fp);
    png_set_compression_level(png, 1);
    png_set_IHDR(png, info, w, h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < h; y++) png_write_row(png, rgb + (size_t)y * w * 3);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return fclose(fp) == 0 ? 0 : -1;
}

int fx_write_bytes(const char *path, const void *data, size_t n) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return -1;
    size_t put = n ? fwrite(data, 1, n, fp) : 0;
    return fclose(fp) == 0 && put == n ? 0 : -1;
}

uint8_t *fx_read_file(const char *path, size_t *n) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)size + 1);
    if (buf && fread(buf, 1, (size_t)size, fp) != (size_t)size) {
        free(buf);
        buf = NULL;
    }
    fclose(fp);
    *n = (size_t)size;
    return buf;
}

int fx_write_jpeg(const char *path, int w, int h, const uint8_t *pixels, int pf, int subsamp,
                  int quality) {
    tjhandle tj = tjInitCompress();
    unsigned char *jpeg = NULL;
    unsigned long size = 0;
    int rc = tjCompress2(tj, pixels, w, 0, h, pf, &jpeg, &size, subsamp, quality, 0);
    if (rc == 0) rc = fx_write_bytes(path, jpeg, size);
    tjFree(jpeg);
    tjDestroy(tj);
    return rc;
}

/* A smooth pattern that survives JPEG well: [h, w, ch]. */
static uint8_t *smooth(int w, int h, int ch) {
    uint8_t *p = malloc((size_t)w * h * ch);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < ch; c++)
                p[((size_t)y * w + x) * ch + c] = (uint8_t)(40 + (x * 150) / w + (y * 50) / h - c * 10);
    return p;
}

int fx_write_format_set(const char *dir) {
    char path[4096];
    int rc = fx_mkdirs(dir);
    for (int k = 0; rc == 0 && k < fx_png_case_count; k++) rc = fx_write_png_case(dir, &fx_png_cases[k]);
    const int w = 61, h = 45;
    uint8_t *rgb = smooth(w, h, 3), *gray = smooth(w, h, 1), *cmyk = smooth(w, h, 4);
#define PATH(name) (snprintf(path, sizeof path, "%s/%s", dir, name), path)
    if (rc == 0) rc = fx_write_jpeg(PATH("jpeg_rgb444.jpg"), w, h, rgb, TJPF_RGB, TJSAMP_444, 95);
    if (rc == 0) rc = fx_write_jpeg(PATH("jpeg_rgb420.jpg"), w, h, rgb, TJPF_RGB, TJSAMP_420, 90);
    if (rc == 0) rc = fx_write_jpeg(PATH("jpeg_gray.jpg"), w, h, gray, TJPF_GRAY, TJSAMP_GRAY, 95);
    if (rc == 0) rc = fx_write_jpeg(PATH("jpeg_cmyk.jpg"), w, h, cmyk, TJPF_CMYK, TJSAMP_444, 95);
    if (rc == 0) rc = fx_write_png_rgb(PATH("png_named.jpg"), w, h, rgb);
#undef PATH
    free(rgb), free(gray), free(cmyk);
    return rc;
}

/* Puts a 16-bit big-endian value. */
static void put16(uint8_t *p, unsigned v) { p[0] = (uint8_t)(v >> 8), p[1] = (uint8_t)v; }

int fx_write_bad_set(const char *dir) {
    char path[4096];
    int rc = fx_mkdirs(dir);
#define PATH(name) (snprintf(path, sizeof path, "%s/%s", dir, name), path)
    /* Big and busy enough that the entropy-coded data dominates the file, so that
     * half of it ends inside the scan (a truncated photo), not inside the headers. */
    const int w = 256, h = 192;
    uint8_t *rgb = smooth(w, h, 3);
    for (int i = 0; i < w * h * 3; i++) rgb[i] = (uint8_t)(rgb[i] + ((i * 7919) % 61));
    tjhandle tj = tjInitCompress();
    unsigned char *jpeg = NULL;
    unsigned long size = 0;
    if (rc == 0) rc = tjCompress2(tj, rgb, w, 0, h, TJPF_RGB, &jpeg, &size, TJSAMP_420, 90, 0);
    if (rc == 0) rc = fx_write_bytes(PATH("empty.jpg"), "", 0);
    if (rc == 0) rc = fx_write_bytes(PATH("truncated.jpg"), jpeg, size / 2);
    if (rc == 0) {
        uint8_t noise[4096];
        uint32_t s = 12345;
        for (size_t i = 0; i < sizeof noise; i++) s = s * 1103515245u + 12345u, noise[i] = (uint8_t)(s >> 16);
        noise[0] = 0x4e; /* not a JPEG/PNG/GIF/BMP signature by construction */
        rc = fx_write_bytes(PATH("random.jpg"), noise, sizeof noise);
    }
    if (rc == 0) { /* patch the SOF0 frame size to 65000 x 65000 */
        uint8_t *j = malloc(size);
        memcpy(j, jpeg, size);
        for (size_t i = 2; i + 9 < size; i++)
            if (j[i] == 0xFF && j[i + 1] == 0xC0) {
                put16(j + i + 5, 65000), put16(j + i + 7, 65000);
                break;
            }
        rc = fx_write_bytes(PATH("huge.jpg"), j, size);
        free(j);
    }
    if (rc == 0) { /* signature + IHDR 100000 x 100000 RGB8 (valid CRC) + a tiny IDAT + IEND */
        uint8_t png[8 + 25 + 12 + 12] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
        uint8_t *c = png + 8;
        c[0] = 0, c[1] = 0, c[2] = 0, c[3] = 13;
        memcpy(c + 4, "IHDR", 4);
        uint32_t side = 100000;
        for (int k = 0; k < 2; k++)
            c[8 + 4 * k] = (uint8_t)(side >> 24), c[9 + 4 * k] = (uint8_t)(side >> 16),
                      c[10 + 4 * k] = (uint8_t)(side >> 8), c[11 + 4 * k] = (uint8_t)side;
        c[16] = 8, c[17] = 2, c[18] = 0, c[19] = 0, c[20] = 0;
        uint32_t crc = (uint32_t)crc32(0, c + 4, 17);
        c[21] = (uint8_t)(crc >> 24), c[22] = (uint8_t)(crc >> 16), c[23] = (uint8_t)(crc >> 8), c[24] = (uint8_t)crc;
        uint8_t *d = c + 25; /* empty IDAT */
        memcpy(d + 4, "IDAT", 4);
        crc = (uint32_t)crc32(0, d + 4, 4);
        d[8] = (uint8_t)(crc >> 24), d[9] = (uint8_t)(crc >> 16), d[10] = (uint8_t)(crc >> 8), d[11] = (uint8_t)crc;
        uint8_t *e = d + 12;
        memcpy(e + 4, "IEND", 4);
        crc = (uint32_t)crc32(0, e + 4, 4);
        e[8] = (uint8_t)(crc >> 24), e[9] = (uint8_t)(crc >> 16), e[10] = (uint8_t)(crc >> 8), e[11] = (uint8_t)crc;
        rc = fx_write_bytes(PATH("huge.png"), png, sizeof png);
    }
    if (rc == 0) rc = fx_write_bytes(PATH("image.gif"), "GIF89a\x01\x00\x01\x00\x00\x00\x00;", 14);
    if (rc == 0) {
        uint8_t bmp[58] = {'B', 'M', 58};
        rc = fx_write_bytes(PATH("image.bmp"), bmp, sizeof bmp);
    }
#undef PATH
    tjFree(jpeg);
    tjDestroy(tj);
    free(rgb);
    return rc;
}

int fx_mkdirs(const char *path) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
            *p = '/';
        }
    return mkdir(buf, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    chmod(path, 0755); /* folders made unreadable by a test */
    return remove(path);
}

int fx_remove_tree(const char *path) {
    chmod(path, 0755);
    return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int fx_temp_dir(char *out, size_t size, const char *tag) {
    const char *tmp = getenv("TMPDIR");
    snprintf(out, size, "%s/wn_%s_XXXXXX", tmp && *tmp ? tmp : "/tmp", tag);
    if (!mkdtemp(out)) return -1;
    chmod(out, 0755); /* a test may drop root to check unreadable files */
    return 0;
}
