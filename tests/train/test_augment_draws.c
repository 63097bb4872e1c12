/* tests/train/test_augment_draws.c — the draws of --zoom, --translate and --contrast
 * (engine/train/augment_draws.h): without them the stream is exactly the flip/angle
 * stream of before (runs and checkpoints of older recipes are unchanged); with them
 * each image takes one zoom (both axes), a height then a width shift scaled by the
 * image size, and a contrast factor, each in Keras's range, U[1-f, 1+f) and
 * U[-f, f) * size, and each layer's draw is skipped when its array is NULL. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/train/augment_draws.h"
#include "tests/common/check.h"

#define N 4000

int main(void) {
    static uint8_t f1[N], f2[N];
    static float a1[N], a2[N], zoom[2 * N], shift[2 * N], contrast[N];
    wn_rng r1, r2;

    /* 1. The old draw and the layered draw with the new layers off: the same stream. */
    wn_rng_seed(&r1, 42, 1), wn_rng_seed(&r2, 42, 1);
    wn_augment_draw(&r1, N, 0.2f, f1, a1);
    wn_augment_factors off = {0.2f, 0.3f, 0.1f, 0.4f, 37, 45};
    wn_augment_draw_layers(&r2, N, &off, f2, a2, NULL, NULL, NULL);
    CHECK(!memcmp(f1, f2, sizeof f1) && !memcmp(a1, a2, sizeof a1),
          "layered draw with zoom/shift/contrast off differs from wn_augment_draw");
    CHECK(!memcmp(&r1, &r2, sizeof r1), "the RNG ends in another state");

    /* 2. All layers on: ranges, symmetry, both zoom axes equal, six draws per image. */
    const float fz = 0.3f, ft = 0.1f, fc = 0.4f;
    const int h = 37, w = 45;
    wn_augment_factors on = {0.2f, fz, ft, fc, h, w};
    wn_rng_seed(&r1, 7, 0), wn_rng_seed(&r2, 7, 0);
    wn_augment_draw_layers(&r1, N, &on, f1, a1, zoom, shift, contrast);
    for (int k = 0; k < 6 * N; k++) (void)wn_rng_next(&r2);
    CHECK(!memcmp(&r1, &r2, sizeof r1), "expected exactly 6 draws per image");
    double mz = 0, mx = 0, my = 0, mc = 0;
    float zlo = 9, zhi = -9, xlo = 1e9f, xhi = -1e9f, ylo = 1e9f, yhi = -1e9f, clo = 9, chi = -9;
    int bad = 0;
    for (int i = 0; i < N; i++) {
        float z = zoom[2 * i], dx = shift[2 * i], dy = shift[2 * i + 1], c = contrast[i];
        bad += zoom[2 * i + 1] != z;
        bad += !(z >= (float)(1.0 - fz) && z < (float)(1.0 + fz));
        bad += !(dx >= -ft * w && dx < ft * w) + !(dy >= -ft * h && dy < ft * h);
        bad += !(c >= (float)(1.0 - fc) && c < (float)(1.0 + fc));
        mz += z, mx += dx, my += dy, mc += c;
        zlo = fminf(zlo, z), zhi = fmaxf(zhi, z), clo = fminf(clo, c), chi = fmaxf(chi, c);
        xlo = fminf(xlo, dx), xhi = fmaxf(xhi, dx), ylo = fminf(ylo, dy), yhi = fmaxf(yhi, dy);
    }
    CHECK(bad == 0, "%d draws outside Keras's ranges (or unequal zoom axes)", bad);
    mz /= N, mx /= N, my /= N, mc /= N;
    CHECK(fabs(mz - 1) < 0.01 && fabs(mc - 1) < 0.015 && fabs(mx) < 0.2 && fabs(my) < 0.15,
          "means: zoom %.4f contrast %.4f dx %.3f dy %.3f", mz, mc, mx, my);
    /* the ranges are covered: the extremes within 1% of their bounds */
    CHECK(zlo < 1 - 0.99 * fz && zhi > 1 + 0.99 * fz && clo < 1 - 0.99 * fc && chi > 1 + 0.99 * fc,
          "zoom [%g, %g], contrast [%g, %g] do not cover the ranges", zlo, zhi, clo, chi);
    CHECK(xlo < -0.99 * ft * w && xhi > 0.99 * ft * w && ylo < -0.99 * ft * h && yhi > 0.99 * ft * h,
          "shifts x [%g, %g], y [%g, %g] do not cover +-%g x (%d, %d)", xlo, xhi, ylo, yhi, ft, w, h);
    /* the flips and angles are still drawn first for each image: image 0's flip and
     * angle are those of a plain draw from the same state */
    uint8_t fl;
    float an;
    wn_rng_seed(&r2, 7, 0);
    wn_augment_draw(&r2, 1, 0.2f, &fl, &an);
    CHECK(fl == f1[0] && an == a1[0], "image 0: flip/angle not drawn first");
    return test_finish("test_augment_draws");
}
