/* host/image_decode.c — JPEG (TurboJPEG) and PNG (libpng) to 8-bit RGB, matching
 * tf.image.decode_image(channels=3). See host/image_decode.h for the rules. */
#include "host/image_decode.h"

#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>

#include "host/base/error.h"
#include "host/regular_file.h"

struct wn_image_decoder {
    tjhandle tj;
    uint8_t *file;       /* [file_cap] the file's bytes */
    size_t file_cap;
    uint8_t *pixels;     /* [pixels_cap] decoded RGB (or CMYK before conversion) */
    size_t pixels_cap;
    uint8_t **rows;      /* [rows_cap] row pointers for libpng */
    size_t rows_cap;
};

wn_image_decoder *wn_image_decoder_new(void) {
    wn_image_decoder *d = calloc(1, sizeof *d);
    if (!d) {
        wn_fail("out of memory creating an image decoder");
        return NULL;
    }
    d->tj = tjInitDecompress();
    if (!d->tj) {
        wn_fail("cannot initialise TurboJPEG: %s", tjGetErrorStr2(NULL));
        free(d);
        return NULL;
    }
    return d;
}

void wn_image_decoder_free(wn_image_decoder *d) {
    if (!d) return;
    if (d->tj) tjDestroy(d->tj);
    free(d->file);
    free(d->pixels);
    free(d->rows);
    free(d);
}

static int grow(void **buf, size_t *cap, size_t need, const char *name) {
    if (need <= *cap) return WN_OK;
    void *p = realloc(*buf, need);
    if (!p) return wn_fail("%s: out of memory (%zu bytes)", name, need);
    *buf = p, *cap = need;
    return WN_OK;
}

wn_image_format wn_image_sniff(const uint8_t *b, size_t n) {
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return WN_IMAGE_JPEG;
    if (n >= 8 && !memcmp(b, png_sig, 8)) return WN_IMAGE_PNG;
    if (n >= 4 && !memcmp(b, "GIF8", 4)) return WN_IMAGE_GIF;
    if (n >= 2 && b[0] == 'B' && b[1] == 'M') return WN_IMAGE_BMP;
    return WN_IMAGE_UNKNOWN;
}

const char *wn_image_format_name(wn_image_format f) {
    switch (f) {
    case WN_IMAGE_JPEG: return "JPEG";
    case WN_IMAGE_PNG: return "PNG";
    case WN_IMAGE_GIF: return "GIF";
    case WN_IMAGE_BMP: return "BMP";
    default: return "unknown";
    }
}

static int check_pixels(const char *name, const char *fmt, size_t w, size_t h,
                        size_t max_pixels) {
    if (w == 0 || h == 0) return wn_fail("%s: %s header says %zux%zu pixels", name, fmt, w, h);
    if (w > max_pixels / h)
        return wn_fail("%s: %s of %zux%zu pixels is over the limit of %zu pixels "
                       "(raise it with --max-pixels, or shrink the image)",
                       name, fmt, w, h, max_pixels);
    return WN_OK;
}

/* ------------------------------------------------------------ JPEG */

/* What the markers before the first SOS say: whether an APP14 "Adobe" marker is
 * present (libjpeg's saw_Adobe_marker, which TurboJPEG does not expose; Adobe writes
 * CMYK inverted) and the frame type (0xC0..0xCF, 0 if none was found). */
static void jpeg_scan_markers(const uint8_t *b, size_t n, int *adobe, int *sof) {
    *adobe = 0, *sof = 0;
    size_t i = 2;
    while (i + 4 <= n) {
        if (b[i] != 0xFF) return;
        uint8_t m = b[i + 1];
        if (m == 0xFF) { /* fill byte */
            i++;
            continue;
        }
        if (m == 0xDA || m == 0xD9) return; /* SOS, EOI */
        size_t len = ((size_t)b[i + 2] << 8) | b[i + 3];
        if (m == 0xEE && len >= 7 && i + 4 + 5 <= n && !memcmp(b + i + 4, "Adobe", 5)) *adobe = 1;
        if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC && !*sof) *sof = m;
        i += 2 + len;
    }
}

/* After a failed call a TurboJPEG 2.1 handle can keep the aborted decoder's state and
 * misread the next header (seen as a 0 x garbage size), so a failure replaces it. */
static int jpeg_fail_reset(wn_image_decoder *d, int rc) {
    tjDestroy(d->tj);
    d->tj = tjInitDecompress();
    if (!d->tj) return wn_fail("cannot initialise TurboJPEG: %s", tjGetErrorStr2(NULL));
    return rc;
}

static int decode_jpeg(wn_image_decoder *d, const uint8_t *data, size_t size,
                       const char *name, size_t max_pixels, wn_image *out) {
    int w, h, subsamp, colorspace;
    if (!d->tj && jpeg_fail_reset(d, WN_OK) != WN_OK) return WN_ERR;
    if (tjDecompressHeader3(d->tj, data, (unsigned long)size, &w, &h, &subsamp, &colorspace) != 0)
        return jpeg_fail_reset(d, wn_fail("%s: bad or truncated JPEG header (%s)", name,
                                          tjGetErrorStr2(d->tj)));
    if (check_pixels(name, "JPEG", (size_t)w, (size_t)h, max_pixels) != WN_OK) return WN_ERR;
    int adobe, sof;
    jpeg_scan_markers(data, size, &adobe, &sof);
    /* Huffman-coded scans spend at least one bit per 8x8 luma block, so a file smaller
     * than that is truncated: refuse it before allocating (a 20 KB file claiming
     * 65000x65000 would otherwise make libjpeg fill 12 GB with grey). Arithmetic-coded
     * frames (0xC9..0xCF) can go below a bit per block and are not checked. */
    size_t blocks = (((size_t)w + 7) / 8) * (((size_t)h + 7) / 8);
    if (sof && sof < 0xC9 && size < blocks / 8)
        return wn_fail("%s: bad or truncated JPEG (%zu bytes cannot hold %dx%d pixels)", name,
                       size, w, h);
    int cmyk = colorspace == TJCS_CMYK || colorspace == TJCS_YCCK;
    size_t px = (size_t)w * (size_t)h;
    if (grow((void **)&d->pixels, &d->pixels_cap, px * (cmyk ? 4 : 3), name) != WN_OK) return WN_ERR;
    /* TensorFlow's decode_jpeg default (dct_method ""): the fast integer DCT,
     * JDCT_IFAST ("sacrificing decoding image quality for speed", decode_image_op.cc),
     * with fancy upsampling. The accurate DCT would differ from Keras's pixels by up
     * to ~7 levels on the bundled photos. */
    if (tjDecompress2(d->tj, data, (unsigned long)size, d->pixels, w, 0, h,
                      cmyk ? TJPF_CMYK : TJPF_RGB, TJFLAG_FASTDCT) != 0) {
        const char *msg = tjGetErrorStr2(d->tj);
        /* Truncation is only a libjpeg warning (a fake EOI is inserted and the rest is
         * grey); TensorFlow refuses such files, so do we. Other warnings (extraneous
         * bytes before a marker) leave a complete image, which TensorFlow accepts. */
        if (tjGetErrorCode(d->tj) != TJERR_WARNING || strstr(msg, "remature end"))
            return jpeg_fail_reset(d, wn_fail("%s: bad or truncated JPEG (%s)", name, msg));
    }
    if (cmyk) {
        /* TensorFlow's jpeg_mem.cc conversion, in place (3 bytes written behind 4 read). */
        const int inverted = adobe;
        uint8_t *p = d->pixels;
        for (size_t i = 0; i < px; i++) {
            int c = p[4 * i], m = p[4 * i + 1], y = p[4 * i + 2], k = p[4 * i + 3];
            int r, g, b;
            if (inverted) {
                r = k * c / 255, g = k * m / 255, b = k * y / 255;
            } else {
                r = (255 - k) * (255 - c) / 255;
                g = (255 - k) * (255 - m) / 255;
                b = (255 - k) * (255 - y) / 255;
            }
            p[3 * i] = (uint8_t)r, p[3 * i + 1] = (uint8_t)g, p[3 * i + 2] = (uint8_t)b;
        }
    }
    out->pixels = d->pixels;
    out->width = w, out->height = h;
    out->format = WN_IMAGE_JPEG;
    out->channels_in_file = colorspace == TJCS_GRAY ? 1 : cmyk ? 4 : 3;
    return WN_OK;
}

/* ------------------------------------------------------------ PNG */

typedef struct png_source {
    const uint8_t *data;
    size_t size, pos;
    char message[256]; /* libpng's error text */
} png_source;

static void png_read_memory(png_structp png, png_bytep dst, png_size_t n) {
    png_source *s = png_get_io_ptr(png);
    if (n > s->size - s->pos) png_error(png, "file is truncated");
    memcpy(dst, s->data + s->pos, n);
    s->pos += n;
}

static void png_on_error(png_structp png, png_const_charp msg) {
    png_source *s = png_get_error_ptr(png);
    snprintf(s->message, sizeof s->message, "%s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) {
    (void)png, (void)msg; /* warnings (e.g. a bad iCCP profile) do not stop decoding */
}

static int decode_png(wn_image_decoder *d, const uint8_t *data, size_t size, const char *name,
                      size_t max_pixels, wn_image *out) {
    png_source src = {.data = data, .size = size, .pos = 0, .message = ""};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_on_error,
                                             png_on_warning);
    if (!png) return wn_fail("%s: out of memory (libpng)", name);
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return wn_fail("%s: out of memory (libpng)", name);
    }
    /* Every variable written between here and the longjmp target and read after it is
     * volatile or lives in d / src (memory, not registers). */
    volatile int rc = WN_OK;
    if (setjmp(png_jmpbuf(png))) {
        rc = wn_fail("%s: bad or truncated PNG (%s)", name, src.message);
        goto done;
    }
    png_set_read_fn(png, &src, png_read_memory);
    /* libpng's own limits must not be lower than ours. */
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    if (check_pixels(name, "PNG", w, h, max_pixels) != WN_OK) {
        rc = WN_ERR;
        goto done;
    }
    int color = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    /* Deflate cannot compress better than 1032:1, so a file this small cannot hold the
     * image its header claims: refuse it before allocating the pixels. */
    size_t raw = (size_t)h * (1 + ((size_t)w * png_get_channels(png, info) * depth + 7) / 8);
    if (size < raw / 1032) {
        rc = wn_fail("%s: bad or truncated PNG (%zu bytes cannot hold %ux%u pixels)", name, size,
                     (unsigned)w, (unsigned)h);
        goto done;
    }
    out->channels_in_file = png_get_channels(png, info);
    if (color == PNG_COLOR_TYPE_PALETTE) out->channels_in_file = png_get_valid(png, info, PNG_INFO_tRNS) ? 4 : 3;
    png_set_expand(png); /* palette -> RGB, gray < 8 bit -> 8 bit, tRNS -> alpha */
    if (depth == 16) png_set_strip_16(png);
    if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
    png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_rowbytes(png, info) != (size_t)w * 3) png_error(png, "unexpected row layout");
    if (grow((void **)&d->pixels, &d->pixels_cap, (size_t)w * h * 3, name) != WN_OK ||
        grow((void **)&d->rows, &d->rows_cap, (size_t)h * sizeof(uint8_t *), name) != WN_OK) {
        rc = WN_ERR;
        goto done;
    }
    for (size_t y = 0; y < h; y++) d->rows[y] = d->pixels + y * (size_t)w * 3;
    png_read_image(png, d->rows);
    png_read_end(png, NULL);
    out->pixels = d->pixels;
    out->width = (int)w, out->height = (int)h;
    out->format = WN_IMAGE_PNG;
done:
    png_destroy_read_struct(&png, &info, NULL);
    return rc;
}

/* ------------------------------------------------------------ entry points */

int wn_image_decode_memory(wn_image_decoder *d, const uint8_t *data, size_t size,
                           const char *name, size_t max_pixels, wn_image *out) {
    memset(out, 0, sizeof *out);
    if (!max_pixels) max_pixels = WN_DEFAULT_MAX_PIXELS;
    if (size == 0) return wn_fail("%s: empty file (0 bytes)", name);
    wn_image_format f = wn_image_sniff(data, size);
    switch (f) {
    case WN_IMAGE_JPEG: return decode_jpeg(d, data, size, name, max_pixels, out);
    case WN_IMAGE_PNG: return decode_png(d, data, size, name, max_pixels, out);
    case WN_IMAGE_GIF:
    case WN_IMAGE_BMP:
        return wn_fail("%s: %s images are not supported; convert it to PNG or JPEG "
                       "(e.g. `convert in.%s out.png`)",
                       name, wn_image_format_name(f), f == WN_IMAGE_GIF ? "gif" : "bmp");
    default: break;
    }
    char head[64] = "";
    size_t n = size < 8 ? size : 8;
    for (size_t i = 0; i < n; i++) snprintf(head + 3 * i, sizeof head - 3 * i, "%02x ", data[i]);
    if (n) head[3 * n - 1] = '\0';
    return wn_fail("%s: not an image (%zu bytes starting %s; expected JPEG or PNG content)",
                   name, size, head);
}

int wn_image_decode_file(wn_image_decoder *d, const char *path, size_t max_pixels,
                         wn_image *out) {
    memset(out, 0, sizeof *out);
    if (!max_pixels) max_pixels = WN_DEFAULT_MAX_PIXELS;
    const char *why;
    FILE *fp = wn_fopen_regular(path, "rb", &why); /* a named pipe would block fopen */
    if (!fp) return wn_fail("%s: cannot open (%s)", path, why);
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(fp);
        return wn_fail("%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    /* Never read more than a valid image within the pixel limit can need. */
    size_t max_bytes = max_pixels > (SIZE_MAX - ((size_t)16 << 20)) / 8
                           ? SIZE_MAX
                           : max_pixels * 8 + ((size_t)16 << 20);
    if (size > max_bytes) {
        fclose(fp);
        return wn_fail("%s: file of %zu bytes is larger than any image within the limit of "
                       "%zu pixels (raise it with --max-pixels)",
                       path, size, max_pixels);
    }
    if (grow((void **)&d->file, &d->file_cap, size ? size : 1, path) != WN_OK) {
        fclose(fp);
        return WN_ERR;
    }
    size_t got = size ? fread(d->file, 1, size, fp) : 0;
    int read_error = ferror(fp);
    fclose(fp);
    if (got != size || read_error)
        return wn_fail("%s: read error (%s)", path, read_error ? strerror(errno) : "short read");
    return wn_image_decode_memory(d, d->file, size, path, max_pixels, out);
}
