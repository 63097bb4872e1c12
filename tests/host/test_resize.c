/* tests/host/test_resize.c — bilinear resize against values computed by hand, against
 * a naive per-pixel transcription of TensorFlow's kernel (bit-exact, many sizes, up
 * and down), and the uint8 rounding bound (|u8 - float| <= 0.5). The comparison with
 * TensorFlow itself is in test_host_tf.py. */
#pragma GCC optimize("fp-contract=off")
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "host/base/error.h"
#include "host/resize.h"
#include "tests/common/rng.h"

/* resize_bilinear_op.cc, one output value at a time, no caching: the reference. */
static float naive(const uint8_t *src, int in_h, int in_w, int out_h, int out_w, int y, int x,
                   int c) {
    const float sy = (float)in_h / (float)out_h, sx = (float)in_w / (float)out_w;
    const float fy_src = ((float)y + 0.5f) * sy - 0.5f, fx_src = ((float)x + 0.5f) * sx - 0.5f;
    const float fy0 = floorf(fy_src), fx0 = floorf(fx_src);
    long y0 = (long)fy0 < 0 ? 0 : (long)fy0, x0 = (long)fx0 < 0 ? 0 : (long)fx0;
    long y1 = (long)ceilf(fy_src) > in_h - 1 ? in_h - 1 : (long)ceilf(fy_src);
    long x1 = (long)ceilf(fx_src) > in_w - 1 ? in_w - 1 : (long)ceilf(fx_src);
    const float ly = fy_src - fy0, lx = fx_src - fx0;
#define AT(yy, xx) ((float)src[((size_t)(yy) * in_w + (size_t)(xx)) * 3 + c])
    const float tl = AT(y0, x0), tr = AT(y0, x1), bl = AT(y1, x0), br = AT(y1, x1);
#undef AT
    const float top = tl + (tr - tl) * lx, bottom = bl + (br - bl) * lx;
    return top + (bottom - top) * ly;
}

static void test_by_hand(wn_resizer *r) {
    /* 2x2 -> 4x4: source positions -0.25, 0.25, 0.75, 1.25 on each axis, so the
     * weights of the second pixel are 0 (clamped), 0.25, 0.75, 1 (clamped). */
    const uint8_t a = 0, b = 100, cc = 200, d = 40;
    uint8_t src[2 * 2 * 3];
    const uint8_t v[4] = {a, b, cc, d};
    for (int i = 0; i < 4; i++) src[3 * i] = src[3 * i + 1] = src[3 * i + 2] = v[i];
    const float w[4] = {0, 0.25f, 0.75f, 1};
    float out[4 * 4 * 3];
    CHECK(wn_resize_bilinear_f32(r, src, 2, 2, out, 4, 4) == WN_OK, "%s", wn_last_error());
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++) {
            double top = a + (b - a) * w[x], bot = cc + (d - cc) * w[x];
            double want = top + (bot - top) * w[y];
            CHECK(fabs(out[(y * 4 + x) * 3 + 1] - want) < 1e-4, "2x2->4x4 at (%d,%d): %f want %f",
                  x, y, out[(y * 4 + x) * 3 + 1], want);
        }
    /* 4 -> 3 along x (one row): scale 4/3; sources 1/6, 3/2, 17/6:
     * [0,30,60,90] -> 0+30/6 = 5, 30+15 = 45, 60+30*5/6 = 85. */
    uint8_t row[4 * 3];
    for (int i = 0; i < 4; i++) row[3 * i] = row[3 * i + 1] = row[3 * i + 2] = (uint8_t)(30 * i);
    float o3[3 * 3];
    CHECK(wn_resize_bilinear_f32(r, row, 1, 4, o3, 1, 3) == WN_OK, "%s", wn_last_error());
    const float want3[3] = {5, 45, 85};
    for (int i = 0; i < 3; i++)
        CHECK(fabsf(o3[3 * i] - want3[i]) < 1e-3f, "4->3 at %d: %f want %f", i, o3[3 * i], want3[i]);
    /* 4x4 -> 1x1: source 1.5 on both axes: the mean of the four centre pixels. */
    uint8_t sq[4 * 4 * 3];
    for (int i = 0; i < 16; i++) sq[3 * i] = sq[3 * i + 1] = sq[3 * i + 2] = (uint8_t)(i * 10);
    float o1[3];
    CHECK(wn_resize_bilinear_f32(r, sq, 4, 4, o1, 1, 1) == WN_OK, "%s", wn_last_error());
    CHECK(fabsf(o1[0] - (50 + 60 + 90 + 100) / 4.0f) < 1e-4f, "4x4->1x1: %f want 75", o1[0]);
    /* Same size: only a cast, like tf.image.resize. */
    float same[4 * 4 * 3];
    CHECK(wn_resize_bilinear_f32(r, sq, 4, 4, same, 4, 4) == WN_OK, "%s", wn_last_error());
    int cast_ok = 1;
    for (int i = 0; i < 48; i++) cast_ok &= same[i] == (float)sq[i];
    CHECK(cast_ok, "same size must only cast");
    /* Bad sizes are errors, not crashes. */
    CHECK(wn_resize_bilinear_f32(r, sq, 4, 4, same, 0, 4) == WN_ERR, "size 0 accepted");
}

static uint32_t next(void) { return (uint32_t)(rng_u64() >> 32); }

static void test_against_naive(wn_resizer *r) {
    const int sizes[][4] = {{288, 384, 320, 320}, {288, 384, 299, 299}, {17, 23, 5, 7},
                            {5, 7, 17, 23},       {1, 1, 3, 2},         {3, 1, 1, 4},
                            {64, 48, 64, 96},     {100, 100, 33, 200},  {2, 9, 9, 2}};
    double max_dev = 0;
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        const int ih = sizes[k][0], iw = sizes[k][1], oh = sizes[k][2], ow = sizes[k][3];
        uint8_t *src = malloc((size_t)ih * iw * 3), *u8 = malloc((size_t)oh * ow * 3);
        float *f = malloc((size_t)oh * ow * 3 * sizeof(float));
        for (size_t i = 0; i < (size_t)ih * iw * 3; i++) src[i] = (uint8_t)(next() >> 24);
        CHECK(wn_resize_bilinear_f32(r, src, ih, iw, f, oh, ow) == WN_OK, "%s", wn_last_error());
        CHECK(wn_resize_bilinear_u8(r, src, ih, iw, u8, oh, ow) == WN_OK, "%s", wn_last_error());
        int mismatches = 0, rounding = 0;
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++)
                for (int c = 0; c < 3; c++) {
                    size_t i = ((size_t)y * ow + x) * 3 + c;
                    float want = naive(src, ih, iw, oh, ow, y, x, c);
                    if (memcmp(&f[i], &want, sizeof want) != 0 && mismatches++ == 0)
                        CHECK(0, "%dx%d->%dx%d at (%d,%d,%d): %.9g want %.9g", iw, ih, ow, oh, x,
                              y, c, f[i], want);
                    double dev = fabs((double)u8[i] - (double)want);
                    if (dev > max_dev) max_dev = dev;
                    /* round half up: floor(want + 0.5) computed in double (exact) */
                    if (u8[i] != (uint8_t)floor((double)want + 0.5)) rounding++;
                }
        CHECK(mismatches == 0, "%dx%d->%dx%d: %d values differ from the naive kernel", iw, ih,
              ow, oh, mismatches);
        CHECK(rounding == 0, "%dx%d->%dx%d: %d uint8 values not rounded half up", iw, ih, ow, oh,
              rounding);
        free(src), free(u8), free(f);
    }
    CHECK(max_dev <= 0.5, "uint8 deviation %.6f > 0.5", max_dev);
    printf("  max |uint8 - float| over random images: %.6f (bound 0.5)\n", max_dev);
}

int main(void) {
    wn_resizer *r = wn_resizer_new();
    test_by_hand(r);
    test_against_naive(r);
    wn_resizer_free(r);
    return CHECK_DONE("test_resize");
}
