/* tests/cuda_host/test_cuda_pad_plan.c — the CUDA backend's padding decision, on
 * the CPU.
 *
 * For thousands of random geometries (odd sizes, strides 1-3, 'same' and 'valid',
 * kernels wider than strides and narrower), a naive convolution with TensorFlow's
 * asymmetric padding is compared with what the CUDA path computes: x copied into the
 * planned padded buffer (through wn_conv_pad_source, the kernel's index map), then a
 * convolution with the planned *symmetric* padding, the only kind cuDNN's descriptor
 * takes. They must agree exactly (same products, same order). The backward-data crop
 * map (wn_conv_pad_target) must invert the copy, and cuDNN's output-size formula
 * must give TF's output size. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/conv/conv_cuda_plan.h"
#include "host/base/error.h"
#include "tests/common/check.h"
#include "tests/common/rng.h"

static unsigned rnd(unsigned n) { return (unsigned)(rng_u64() % n); }
static float rnd_float(void) { return (float)rnd(2001) / 1000.0f - 1.0f; }

/* y[n, oh, ow, k] of x[n, h, w, c] with kernel HWIO and explicit per-side padding. */
static void conv_naive(const float *x, int n, int h, int w, int c, const float *k_hwio, int kh,
                       int kw, int k, int sh, int sw, int pt, int pl, int oh, int ow, float *y) {
    for (int b = 0; b < n; b++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++)
                for (int ko = 0; ko < k; ko++) {
                    float s = 0.0f;
                    for (int r = 0; r < kh; r++)
                        for (int q = 0; q < kw; q++) {
                            int iy = oy * sh - pt + r, ix = ox * sw - pl + q;
                            if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                            for (int ci = 0; ci < c; ci++)
                                s += x[((b * h + iy) * w + ix) * c + ci] *
                                     k_hwio[wn_hwio_index(r, q, ci, ko, kw, c, k)];
                        }
                    y[((b * oh + oy) * ow + ox) * k + ko] = s;
                }
}


static void check_one(int n, int h, int w, int c, int k, int kh, int kw, int sh, int sw,
                      wn_padding pad) {
    wn_window win;
    if (wn_window_init(&win, n, h, w, c, kh, kw, sh, sw, pad, "test") != WN_OK) return;
    wn_conv_pad_plan plan;
    wn_conv_pad_plan_make(&win, &plan);

    /* the plan's invariants */
    CHECK(plan.pad_h >= 0 && plan.pad_w >= 0 && plan.extra_top >= 0 && plan.extra_bottom >= 0 &&
              plan.extra_left >= 0 && plan.extra_right >= 0,
          "negative padding");
    CHECK(plan.pad_h + plan.extra_top == win.pad_top &&
              plan.pad_h + plan.extra_bottom == win.pad_bottom,
          "rows do not add up");
    CHECK(plan.pad_w + plan.extra_left == win.pad_left &&
              plan.pad_w + plan.extra_right == win.pad_right,
          "columns do not add up");
    int symmetric = win.pad_top == win.pad_bottom && win.pad_left == win.pad_right;
    CHECK(plan.needs_copy == !symmetric, "copy decision wrong for %dx%d k%dx%d s%dx%d", h, w, kh,
          kw, sh, sw);
    /* TF's own rule never pads more before than after, so extra rows go at the end */
    CHECK(plan.extra_top == 0 && plan.extra_left == 0, "TF padding put extra rows first");
    CHECK(wn_conv_out_size(plan.in_h, plan.pad_h, kh, sh) == win.oh &&
              wn_conv_out_size(plan.in_w, plan.pad_w, kw, sw) == win.ow,
          "cuDNN output %dx%d != TF %dx%d (in %dx%d k%dx%d s%dx%d %s)",
          wn_conv_out_size(plan.in_h, plan.pad_h, kh, sh),
          wn_conv_out_size(plan.in_w, plan.pad_w, kw, sw), win.oh, win.ow, h, w, kh, kw, sh, sw,
          pad == WN_PAD_SAME ? "same" : "valid");

    size_t nx = (size_t)n * h * w * c, nk = (size_t)kh * kw * c * k;
    size_t ny = (size_t)n * win.oh * win.ow * k;
    size_t np = (size_t)n * plan.in_h * plan.in_w * c;
    float *x = malloc(nx * sizeof *x), *kern = malloc(nk * sizeof *kern);
    float *y_tf = malloc(ny * sizeof *y_tf), *y_plan = malloc(ny * sizeof *y_plan);
    float *xp = malloc(np * sizeof *xp), *back = malloc(nx * sizeof *back);
    for (size_t i = 0; i < nx; i++) x[i] = rnd_float();
    for (size_t i = 0; i < nk; i++) kern[i] = rnd_float();

    conv_naive(x, n, h, w, c, kern, kh, kw, k, sh, sw, win.pad_top, win.pad_left, win.oh, win.ow,
               y_tf);
    /* the CUDA path: padded copy (one thread per padded element), symmetric conv */
    for (size_t i = 0; i < np; i++) {
        long long src = wn_conv_pad_source((long long)i, c, plan.in_w, plan.in_h, h, w,
                                           plan.extra_top, plan.extra_left);
        xp[i] = src < 0 ? 0.0f : x[src];
    }
    int oh = wn_conv_out_size(plan.in_h, plan.pad_h, kh, sh);
    int ow = wn_conv_out_size(plan.in_w, plan.pad_w, kw, sw);
    if (oh == win.oh && ow == win.ow) {
        conv_naive(xp, n, plan.in_h, plan.in_w, c, kern, kh, kw, k, sh, sw, plan.pad_h,
                   plan.pad_w, oh, ow, y_plan);
        CHECK(memcmp(y_tf, y_plan, ny * sizeof *y_tf) == 0,
              "planned convolution differs (in %dx%d k%dx%d s%dx%d %s)", h, w, kh, kw, sh, sw,
              pad == WN_PAD_SAME ? "same" : "valid");
    }
    /* backward data crops the padded dx: target() must invert source() */
    for (size_t i = 0; i < nx; i++) back[i] = -1.0f;
    for (size_t i = 0; i < nx; i++) {
        long long t = wn_conv_pad_target((long long)i, c, h, w, plan.in_h, plan.in_w,
                                         plan.extra_top, plan.extra_left);
        CHECK(t >= 0 && (size_t)t < np, "crop index out of range");
        if (t >= 0 && (size_t)t < np) back[i] = xp[t];
    }
    CHECK(memcmp(back, x, nx * sizeof *x) == 0, "crop does not invert the padded copy");
    free(x), free(kern), free(y_tf), free(y_plan), free(xp), free(back);
}

/* A hand-made window that pads more before than after still plans correctly. */
static void check_leading_extra(void) {
    wn_window win = {.n = 1, .h = 5, .w = 6, .c = 2, .kh = 3, .kw = 2, .sh = 2, .sw = 1,
                     .pad_top = 2, .pad_bottom = 1, .pad_left = 1, .pad_right = 0};
    win.oh = (win.h + win.pad_top + win.pad_bottom - win.kh) / win.sh + 1;
    win.ow = (win.w + win.pad_left + win.pad_right - win.kw) / win.sw + 1;
    wn_conv_pad_plan plan;
    wn_conv_pad_plan_make(&win, &plan);
    CHECK(plan.pad_h == 1 && plan.extra_top == 1 && plan.extra_bottom == 0, "leading rows");
    CHECK(plan.pad_w == 0 && plan.extra_left == 1 && plan.extra_right == 0, "leading columns");
    CHECK(wn_conv_out_size(plan.in_h, plan.pad_h, win.kh, win.sh) == win.oh &&
              wn_conv_out_size(plan.in_w, plan.pad_w, win.kw, win.sw) == win.ow,
          "leading-extra output size");
}

int main(void) {
    /* the InceptionResNetV2 cases are symmetric: no copy anywhere */
    wn_window win;
    wn_conv_pad_plan plan;
    wn_window_init(&win, 2, 37, 37, 4, 3, 3, 1, 1, WN_PAD_SAME, "irv2");
    wn_conv_pad_plan_make(&win, &plan);
    CHECK(!plan.needs_copy && plan.pad_h == 1 && plan.pad_w == 1, "3x3 same s1");
    wn_window_init(&win, 2, 18, 18, 4, 1, 7, 1, 1, WN_PAD_SAME, "irv2");
    wn_conv_pad_plan_make(&win, &plan);
    CHECK(!plan.needs_copy && plan.pad_h == 0 && plan.pad_w == 3, "1x7 same");
    /* a known asymmetric case: 3x3 stride 2 'same' on 160 pads 0 before, 1 after */
    wn_window_init(&win, 1, 160, 160, 3, 3, 3, 2, 2, WN_PAD_SAME, "asym");
    wn_conv_pad_plan_make(&win, &plan);
    CHECK(plan.needs_copy && plan.pad_h == 0 && plan.extra_bottom == 1 && plan.in_h == 161,
          "3x3 s2 same on 160");
    check_leading_extra();

    int cases = 0;
    for (int t = 0; t < 3000; t++) {
        int n = 1 + (int)rnd(2), h = 1 + (int)rnd(11), w = 1 + (int)rnd(11);
        int c = 1 + (int)rnd(3), k = 1 + (int)rnd(3);
        int kh = 1 + (int)rnd(5), kw = 1 + (int)rnd(5), sh = 1 + (int)rnd(3), sw = 1 + (int)rnd(3);
        check_one(n, h, w, c, k, kh, kw, sh, sw, rnd(2) ? WN_PAD_SAME : WN_PAD_VALID);
        cases++;
    }
    if (test_failures) {
        fprintf(stderr, "%d failures\n", test_failures);
        return 1;
    }
    printf("padding plan: %d random geometries agree with TF's asymmetric padding\n", cases);
    return 0;
}
