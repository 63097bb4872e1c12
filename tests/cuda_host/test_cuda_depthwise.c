/* tests/cuda_host/test_cuda_depthwise.c — the index math of our depthwise kernels
 * (kernels/depthwise.h, the fallback of the CUDA backend when cuDNN has no algorithm
 * for grouped NHWC) on the CPU: every element function against the double-precision
 * reference convolution (engine/conv_reference.c), over shapes with stride 1 and 2,
 * TensorFlow's asymmetric 'same' padding, 'valid', odd sizes, kernels 1x1 to 5x5 and
 * depth multipliers 1 and 2. Tolerance: 1e-5 relative to the largest |reference|
 * (the element functions sum at most 25 * 2 float products, or N*OH*OW for dw, in
 * float32; the reference sums in double).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/conv/conv_reference.h"
#include "host/base/error.h"
#include "kernels/conv/depthwise.h"

static int failures;

static uint64_t rng = 0x243F6A8885A308D3ull;
static float urand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0) * 2.0f - 1.0f;
}

static void fill(float *p, size_t n) {
    for (size_t i = 0; i < n; i++) p[i] = urand();
}

static void compare(const char *what, const char *shape, const float *ref, const float *got,
                    size_t n) {
    double scale = 0.0, worst = 0.0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(ref[i]));
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]);
        if (!(d <= worst)) worst = d, at = i;
    }
    double rel = scale > 0 ? worst / scale : worst;
    if (!(rel <= 1e-5)) {
        failures++;
        printf("FAIL %-16s %s: element %zu: %.9g vs reference %.9g (%.2e of max |ref|)\n", what,
               shape, at, got[at], ref[at], rel);
    }
}

static void one_shape(int n, int h, int w, int c, int mult, int kh, int kw, int s,
                      wn_padding pad) {
    wn_conv_desc d = {.k = c * mult, .groups = c};
    if (wn_window_init(&d.win, n, h, w, c, kh, kw, s, s, pad, "dw") != WN_OK) {
        failures++;
        printf("FAIL window %dx%dx%dx%d k%dx%d s%d\n", n, h, w, c, kh, kw, s);
        return;
    }
    const wn_window *win = &d.win;
    int k = d.k;
    char shape[120];
    snprintf(shape, sizeof shape, "%dx%dx%dx%d x%d k%dx%d s%d %s (pad %d/%d, %d/%d)", n, h, w, c,
             mult, kh, kw, s, pad == WN_PAD_SAME ? "same" : "valid", win->pad_top,
             win->pad_bottom, win->pad_left, win->pad_right);
    if (!wn_dw_applies(d.groups, c, k)) {
        failures++;
        printf("FAIL %s: wn_dw_applies refused a depthwise shape\n", shape);
        return;
    }
    size_t nx = (size_t)n * h * w * c, ny = (size_t)n * win->oh * win->ow * k,
           nw = (size_t)kh * kw * k, positions = (size_t)n * win->oh * win->ow;
    float *x = malloc(nx * sizeof *x), *wt = malloc(nw * sizeof *wt), *dy = malloc(ny * sizeof *dy);
    float *ref = malloc((nx > ny ? (nx > nw ? nx : nw) : (ny > nw ? ny : nw)) * sizeof *ref);
    float *got = malloc((nx > ny ? (nx > nw ? nx : nw) : (ny > nw ? ny : nw)) * sizeof *got);
    if (!x || !wt || !dy || !ref || !got) {
        failures++;
        printf("FAIL out of memory\n");
        goto out;
    }
    fill(x, nx), fill(wt, nw), fill(dy, ny);

    wn_conv_reference_forward(&d, x, wt, NULL, ref);
    for (size_t i = 0; i < ny; i++) got[i] = wn_dw_forward_at(x, wt, win, k, i);
    compare("forward", shape, ref, got, ny);

    wn_conv_reference_backward_data(&d, dy, wt, ref);
    for (size_t i = 0; i < nx; i++) got[i] = wn_dw_backward_data_at(dy, wt, win, k, i);
    compare("backward data", shape, ref, got, nx);

    wn_conv_reference_backward_filter(&d, x, dy, ref, NULL);
    for (size_t j = 0; j < nw; j++) {
        float acc = 0.0f;
        for (size_t p = 0; p < positions; p++) acc += wn_dw_filter_term(x, dy, win, k, j, p);
        got[j] = acc;
    }
    compare("backward filter", shape, ref, got, nw);
out:
    free(x), free(wt), free(dy), free(ref), free(got);
}

int main(void) {
    /* not depthwise: ordinary and grouped-but-not-depthwise convolutions are refused */
    if (wn_dw_applies(1, 8, 8) || wn_dw_applies(2, 8, 8) || wn_dw_applies(8, 8, 12) ||
        !wn_dw_applies(8, 8, 16)) {
        failures++;
        printf("FAIL wn_dw_applies: wrong answer for (groups, C, K)\n");
    }
    int shapes = 0;
    const int ks[] = {1, 3, 5};
    for (int ki = 0; ki < 3; ki++)
        for (int s = 1; s <= 2; s++)
            for (int mult = 1; mult <= 2; mult++)
                for (int p = 0; p < 2; p++) {
                    wn_padding pad = p ? WN_PAD_VALID : WN_PAD_SAME;
                    /* odd and even sizes: asymmetric 'same' padding at stride 2 */
                    one_shape(2, 9, 8, 3, mult, ks[ki], ks[ki], s, pad);
                    one_shape(1, 6, 7, 5, mult, ks[ki], ks[ki], s, pad);
                    shapes += 2;
                }
    one_shape(2, 11, 11, 4, 1, 3, 5, 2, WN_PAD_SAME); /* non-square kernel */
    shapes++;
    printf("%d depthwise shapes, %d failures\n", shapes, failures);
    return failures ? 1 : 0;
}
