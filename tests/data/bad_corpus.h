/* tests/data/bad_corpus.h — what the files of the bad-input corpus hold
 * (tests/data/make_bad_corpus.c writes them, tests/reliability/ checks them): the
 * pixel formulas of the synthetic images, so a test computes what a decoder must
 * return without trusting the decoder, and the model the weight files are for. */
#ifndef WN_TESTS_BAD_CORPUS_H
#define WN_TESTS_BAD_CORPUS_H

#include <stdint.h>

/* The corpus images: BC_W x BC_H, odd and not square (a rotation would show). */
enum { BC_W = 24, BC_H = 15, BC_JPEG_QUALITY = 92, BC_PALETTE_SIZE = 37 };

/* 8-bit RGB sample (x, y, channel c) of the JPEG sources and 8-bit PNGs: a smooth
 * ramp (no wrap-around within BC_W x BC_H), so JPEG keeps it within a few levels. */
static inline uint8_t bc_rgb8_value(int x, int y, int c) {
    return (uint8_t)(40 + ((x * 4 + y * 5 + c * 20) % 210));
}

/* CMYK sample of the CMYK JPEG (smooth, ink in every channel). */
static inline uint8_t bc_cmyk_value(int x, int y, int c) {
    return (uint8_t)(30 + ((x * 3 + y * 4 + c * 30) % 220));
}

/* 16-bit RGB value of rgb16.png: decoding keeps the high byte (TensorFlow's rule). */
static inline unsigned bc_rgb16_value(int x, int y, int c) {
    return ((unsigned)bc_rgb8_value(x, y, c) << 8) | (unsigned)((x * 31 + y * 17 + c * 7) & 255);
}

/* palette.png: index per pixel and the colour of each index. */
static inline int bc_palette_index(int x, int y) { return (x * 3 + y * 5) % BC_PALETTE_SIZE; }
static inline void bc_palette_color(int i, uint8_t rgb[3]) {
    rgb[0] = (uint8_t)(i * 7), rgb[1] = (uint8_t)(250 - i * 6), rgb[2] = (uint8_t)((i * i * 3) & 255);
}

/* The big PNG (made at test time): 8x8 tiles of constant colour across the image,
 * so it deflates to ~1 MB and a resize to 320x320 is checkable cell by cell. */
static inline uint8_t bc_big_value(int x, int y, int c, int w, int h) {
    int tx = (int)((int64_t)x * 8 / w), ty = (int)((int64_t)y * 8 / h);
    return (uint8_t)((tx * 29 + ty * 53 + c * 80) & 255);
}

/* The weight files are for this model (engine/models/tiny_cnn.c) at this size. */
#define BC_MODEL "tiny_cnn"
enum { BC_IMAGE = 32, BC_CLASSES = 3 };
#define BC_CONV_LAYER "conv2d_1"             /* kernel made too wide / float64 */
#define BC_BN_LAYER "batch_normalization_1"  /* dropped; NaN/Inf in its moving variance */

#endif
