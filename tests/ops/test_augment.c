/* tests/ops/test_augment.c — the fused flip + rotation (reflect, bilinear) +
 * preprocess against expectations computed independently of kernels/augment.h:
 *
 *  - 0 degrees and flips: exact pixel copies (x/127.5 - 1 of the source pixel);
 *  - +-90 and 180 degrees: integer pixel permutations (with reflection where a
 *    non-square image's rotated frame leaves the image);
 *  - any angle: a double-precision model that reflects the *image* (period 2n,
 *    "d c b a | a b c d | d c b a", integer indices) and samples it bilinearly,
 *    instead of reflecting the coordinate as TensorFlow's kernel does. Linear
 *    interpolation commutes with this half-sample-symmetric reflection, so both are
 *    the same function; only float rounding of the coordinates differs;
 *  - the reflect map itself on integer and half-integer coordinates past every
 *    border, several periods out.
 *
 * Tolerance for rotations: TF computes coordinates in float (|coord| < 40 here, so
 * ~4e-6 error, and cosf(pi/2) = -4e-8 rather than 0), moving a bilinear sample by at
 * most 255 * 1e-5 before /127.5: 1e-4 in output units is above that and 80x below
 * one grey level (2/255 = 0.0078).
 */
#include <math.h>

#include "engine/backends/cpu/backend_cpu.h"
#include "kernels/augment/augment.h"
#include "tests/ops/ops_test.h"

/* Integer reflection into [0, n): period 2n, mirrored halves. */
static int reflect_int(long long i, int n) {
    long long p = 2LL * n, m = ((i % p) + p) % p;
    return (int)(m < n ? m : p - 1 - m);
}

/* Pixel (y, x, ch) of the infinitely reflected image. */
static double px(const uint8_t *img, int h, int w, int c, long long y, long long x, int ch) {
    return img[((size_t)reflect_int(y, h) * w + reflect_int(x, w)) * c + ch];
}

/* The independent model: rotation about the pixel-index centre in double, bilinear
 * sampling of the reflected image. Returns the preprocessed value. */
static double model(const uint8_t *img, int h, int w, int c, double angle, int y, int x, int ch) {
    double co = cos(angle), si = sin(angle);
    double cx = (w - 1) / 2.0, cy = (h - 1) / 2.0;
    /* inverse map: rotate the output offset from the centre by +angle */
    double xi = co * (x - cx) - si * (y - cy) + cx;
    double yi = si * (x - cx) + co * (y - cy) + cy;
    double x0 = floor(xi), y0 = floor(yi), fx = xi - x0, fy = yi - y0;
    long long ix = (long long)x0, iy = (long long)y0;
    double v = (1 - fy) * ((1 - fx) * px(img, h, w, c, iy, ix, ch) + fx * px(img, h, w, c, iy, ix + 1, ch)) +
               fy * ((1 - fx) * px(img, h, w, c, iy + 1, ix, ch) + fx * px(img, h, w, c, iy + 1, ix + 1, ch));
    return v / 127.5 - 1.0;
}

static uint8_t *random_image(int n, int h, int w, int c) {
    size_t len = (size_t)n * h * w * c;
    uint8_t *p = malloc(len);
    for (size_t i = 0; i < len; i++) p[i] = (uint8_t)(rng_u64() >> 56);
    return p;
}

static void flip_image(const uint8_t *img, int h, int w, int c, uint8_t *out) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int ch = 0; ch < c; ch++)
                out[((size_t)y * w + x) * c + ch] = img[((size_t)y * w + (w - 1 - x)) * c + ch];
}

static void test_reflect_map(void) {
    int bad = 0;
    for (int n = 1; n <= 6; n++)
        for (int i = -5 * n; i <= 5 * n; i++) {
            float got = wn_augment_reflect((float)i, n);
            bad += got != (float)reflect_int(i, n);
            /* half-integers between two mirrored cells: the reflected coordinate
             * is the midpoint of their reflections, or the border cell when both
             * reflect onto it (clamped) */
            float h = wn_augment_reflect((float)i + 0.5f, n);
            int a = reflect_int(i, n), b = reflect_int(i + 1, n);
            float want = a == b ? (float)a : 0.5f * (float)(a + b);
            bad += h != want;
        }
    CHECK(bad == 0, "reflect map: %d coordinates differ from the integer reflection", bad);
    CHECK(wn_augment_reflect(-0.25f, 4) == 0.0f && wn_augment_reflect(3.25f, 4) == 3.0f,
          "reflect map must clamp just outside the border to the border cell");
}

/* Runs the backend op on one image with the given flip and angle. */
static void run_op(wn_backend *be, const uint8_t *img, int h, int w, int c, int flip, float angle,
                   float *y) {
    uint8_t f = (uint8_t)flip;
    poison(y, (size_t)h * w * c);
    OK(wn_op_augment_preprocess(be, 1, h, w, c, img, &f, &angle, y, WN_AUG_PRE_TF));
}

static void test_identity_and_flip(wn_backend *be) {
    int h = 5, w = 7, c = 3;
    uint8_t *img = random_image(1, h, w, c);
    img[0] = 0, img[1] = 255; /* the ends of the range */
    size_t n = (size_t)h * w * c;
    float *y = alloc_f(n);
    for (int flip = 0; flip < 2; flip++) {
        run_op(be, img, h, w, c, flip, 0.0f, y);
        int bad = 0;
        for (int yy = 0; yy < h; yy++)
            for (int x = 0; x < w; x++)
                for (int ch = 0; ch < c; ch++) {
                    int sx = flip ? w - 1 - x : x;
                    float want = (float)img[((size_t)yy * w + sx) * c + ch] / 127.5f - 1.0f;
                    bad += y[((size_t)yy * w + x) * c + ch] != want;
                }
        CHECK(bad == 0, "0 degrees, flip %d: %d values are not the (flipped) pixel / 127.5 - 1", flip, bad);
        /* the general (rotation) path at angle 0 gives the same bits */
        wn_augment_xform t = wn_augment_rotation(0.0f, h, w);
        bad = 0;
        for (int yy = 0; yy < h; yy++)
            for (int x = 0; x < w; x++)
                for (int ch = 0; ch < c; ch++)
                    bad += wn_augment_pixel(img, h, w, c, flip, &t, yy, x, ch, WN_AUG_PRE_TF) != y[((size_t)yy * w + x) * c + ch];
        CHECK(bad == 0, "angle 0 through the bilinear path differs at %d values", bad);
    }
    CHECK(y[0] == (float)img[(w - 1) * c] / 127.5f - 1.0f, "flip: first pixel");
    run_op(be, img, h, w, c, 0, 0.0f, y);
    CHECK(y[0] == -1.0f && y[1] == 1.0f, "preprocess of 0 and 255: %g %g", (double)y[0], (double)y[1]);
    /* NULL flip / angle arrays: plain preprocessing */
    OK(wn_op_augment_preprocess(be, 1, h, w, c, img, NULL, NULL, y, WN_AUG_PRE_TF));
    CHECK(y[0] == -1.0f && y[1] == 1.0f && y[5] == (float)img[5] / 127.5f - 1.0f, "NULL flip/angle");
    free(img), free(y);
}

/* Right angles as integer permutations. Rotation by +90 (counter-clockwise):
 * output (x, y) reads input (xi, yi) = (-(y - cy) + cx, (x - cx) + cy); for H and W
 * of equal parity these are integers; reflect_int folds the ones outside. */
static void test_right_angles(wn_backend *be) {
    const int shapes[][3] = {{5, 5, 3}, {6, 8, 2}, {7, 3, 1}, {4, 4, 3}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int h = shapes[s][0], w = shapes[s][1], c = shapes[s][2];
        uint8_t *img = random_image(1, h, w, c), *flipped = malloc((size_t)h * w * c);
        flip_image(img, h, w, c, flipped);
        float *y = alloc_f((size_t)h * w * c);
        const int quarter[] = {1, -1, 2};
        for (int q = 0; q < 3; q++)
            for (int flip = 0; flip < 2; flip++) {
                float angle = (float)(quarter[q] * M_PI / 2);
                run_op(be, img, h, w, c, flip, angle, y);
                const uint8_t *src = flip ? flipped : img;
                double worst = 0;
                for (int yy = 0; yy < h; yy++)
                    for (int x = 0; x < w; x++) {
                        /* twice the centre offsets, in integers */
                        int dx2 = 2 * x - (w - 1), dy2 = 2 * yy - (h - 1), sx2, sy2;
                        if (quarter[q] == 1) sx2 = -dy2, sy2 = dx2;
                        else if (quarter[q] == -1) sx2 = dy2, sy2 = -dx2;
                        else sx2 = -dx2, sy2 = -dy2;
                        int sx = (sx2 + (w - 1)) / 2, sy = (sy2 + (h - 1)) / 2;
                        for (int ch = 0; ch < c; ch++) {
                            double want = src[((size_t)reflect_int(sy, h) * w + reflect_int(sx, w)) * c + ch] / 127.5 - 1.0;
                            double e = fabs(y[((size_t)yy * w + x) * c + ch] - want);
                            if (!(e <= worst)) worst = e;
                        }
                    }
                CHECK(worst <= 1e-4, "%d x 90 degrees, flip %d, %dx%d: max error %.3g", quarter[q], flip,
                      h, w, worst);
            }
        free(img), free(flipped), free(y);
    }
}

/* Arbitrary angles (small, large, negative) against the double model, including
 * flips and images whose corners reflect past every border. */
static void test_angles(wn_backend *be) {
    const float angles[] = {0.05f, -0.05f, 0.3f, -0.7f, 1.2566f, -1.2566f, 2.5f, 0.7853982f};
    const int shapes[][3] = {{7, 9, 3}, {9, 7, 1}, {12, 12, 3}, {1, 5, 2}, {5, 1, 1}, {2, 2, 3}};
    int n_img = 2;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int h = shapes[s][0], w = shapes[s][1], c = shapes[s][2];
        size_t per = (size_t)h * w * c;
        uint8_t *img = random_image(n_img, h, w, c), *flipped = malloc(per);
        float *y = alloc_f(per * n_img);
        for (size_t a = 0; a < sizeof angles / sizeof angles[0]; a++) {
            /* batch of 2: image 0 unflipped, image 1 flipped, different angles */
            uint8_t flips[2] = {0, 1};
            float ang[2] = {angles[a], -angles[a] * 0.5f};
            poison(y, per * n_img);
            OK(wn_op_augment_preprocess(be, n_img, h, w, c, img, flips, ang, y, WN_AUG_PRE_TF));
            double worst = 0;
            for (int i = 0; i < n_img; i++) {
                const uint8_t *src = img + per * i;
                if (flips[i]) flip_image(src, h, w, c, flipped), src = flipped;
                for (int yy = 0; yy < h; yy++)
                    for (int x = 0; x < w; x++)
                        for (int ch = 0; ch < c; ch++) {
                            double want = model(src, h, w, c, ang[i], yy, x, ch);
                            double e = fabs(y[per * i + ((size_t)yy * w + x) * c + ch] - want);
                            if (!(e <= worst)) worst = e;
                        }
            }
            CHECK(worst <= 1e-4, "angle %g, %dx%dx%d: max error %.3g vs the double model",
                  (double)angles[a], h, w, c, worst);
        }
        free(img), free(flipped), free(y);
    }
}

/* A small angle on a ramp: the sample positions fall between pixels, so the
 * result is a blend (not a copy), and the blend weights are checked. */
static void test_small_angle_blend(wn_backend *be) {
    int h = 9, w = 9, c = 1;
    uint8_t img[81];
    for (int i = 0; i < 81; i++) img[i] = (uint8_t)(3 * i);
    float y[81];
    run_op(be, img, h, w, c, 0, 0.1f, y);
    /* The centre pixel is the rotation's fixed point. */
    CHECK(y[40] == (float)img[40] / 127.5f - 1.0f, "centre pixel moved under rotation: %g", (double)y[40]);
    /* Elsewhere the ramp value is linear in the coordinates, so away from the
     * borders the blend equals 3*(9*yi + xi) exactly in real arithmetic. */
    double co = cos(0.1), si = sin(0.1), worst = 0;
    for (int yy = 2; yy < 7; yy++)
        for (int x = 2; x < 7; x++) {
            double xi = co * (x - 4) - si * (yy - 4) + 4, yi = si * (x - 4) + co * (yy - 4) + 4;
            double want = 3 * (9 * yi + xi) / 127.5 - 1;
            double e = fabs(y[yy * 9 + x] - want);
            if (!(e <= worst)) worst = e;
        }
    CHECK(worst <= 1e-4, "small angle on a ramp: max error %.3g", worst);
}

int main(void) {
    rng_seed(99);
    wn_backend *be = wn_backend_cpu();
    if (!be) {
        fprintf(stderr, "FAIL: %s\n", wn_last_error());
        return 1;
    }
    test_reflect_map();
    test_identity_and_flip(be);
    test_right_angles(be);
    test_angles(be);
    test_small_angle_blend(be);
    wn_backend_destroy(be);
    return test_finish("test_augment");
}
