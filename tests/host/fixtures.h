/* tests/host/fixtures.h — images and trees the host tests generate at run time:
 * PNG in every colour type and bit depth, JPEG (RGB, gray, CMYK), the bad-input
 * cases of issue 2 (item 6), and small class-folder trees. Each PNG's pixels follow
 * fx_sample() so a test can compute what the decoder must return independently of
 * the decoder. */
#ifndef WN_TESTS_HOST_FIXTURES_H
#define WN_TESTS_HOST_FIXTURES_H

#include <stddef.h>
#include <stdint.h>

/* The 8-bit sample at (x, y, channel c) of the synthetic PNGs. */
static inline uint8_t fx_sample(int x, int y, int c) { return (uint8_t)((x * 37 + y * 11 + c * 85) & 255); }

/* One PNG variant: its file name and what decoding must give at (x, y). */
typedef struct fx_png_case {
    const char *name;   /* file name inside the fixture folder */
    int color_type;     /* PNG_COLOR_TYPE_* */
    int bit_depth;
    int interlace;      /* 1: Adam7 */
    int trns;           /* palette with a tRNS chunk */
} fx_png_case;

extern const fx_png_case fx_png_cases[];
extern const int fx_png_case_count;
enum { FX_PNG_W = 23, FX_PNG_H = 17 }; /* odd sizes: no accidental alignment */

/* The RGB value fx_png_cases[k] must decode to at (x, y). */
void fx_png_expected(const fx_png_case *pc, int x, int y, uint8_t rgb[3]);

int fx_write_png_case(const char *dir, const fx_png_case *pc);
/* An 8-bit RGB PNG of w x h with the given pixels [h, w, 3]. */
int fx_write_png_rgb(const char *path, int w, int h, const uint8_t *rgb);
/* A JPEG from pixels in TurboJPEG pixel format pf (TJPF_RGB, TJPF_GRAY, TJPF_CMYK). */
int fx_write_jpeg(const char *path, int w, int h, const uint8_t *pixels, int pf, int subsamp,
                  int quality);
int fx_write_bytes(const char *path, const void *data, size_t n);
/* Reads a whole file (malloc'd, *n its size); NULL on failure. */
uint8_t *fx_read_file(const char *path, size_t *n);

/* Writes every PNG case plus jpeg_rgb444.jpg, jpeg_rgb420.jpg, jpeg_gray.jpg,
 * jpeg_cmyk.jpg (a smooth pattern) and png_named.jpg (a PNG with a .jpg name). */
int fx_write_format_set(const char *dir);

/* The bad inputs, each as <dir>/<name>: empty.jpg (0 bytes), truncated.jpg (half of
 * a valid JPEG), random.jpg (random bytes), huge.jpg (a valid JPEG whose header
 * claims 65000x65000, the most a JPEG frame can say), huge.png (IHDR of
 * 100000x100000 with a valid CRC), image.gif, image.bmp (refused formats). */
int fx_write_bad_set(const char *dir);

/* mkdir -p; rm -rf; a fresh folder under $TMPDIR (or /tmp). */
int fx_mkdirs(const char *path);
int fx_remove_tree(const char *path);
int fx_temp_dir(char *out, size_t size, const char *tag);

#endif
