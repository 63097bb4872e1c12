/* tests/ops/test_conv.c — the CPU backend's oneDNN Conv2D against the double
 * reference (engine/conv_reference.c) in all three directions, and against central
 * finite differences, over 'same'/'valid', strides 1 and 2 (asymmetric TF padding on
 * even inputs), 1x1, 3x3, 1x7, 7x1, 5x5 kernels, grouped and depthwise convolution,
 * with and without bias, overwrite and accumulate. The float32 backward-filter of an
 * ungrouped convolution is im2col + sgemm (kernels/conv/conv_gemm_cpu.c; the last
 * fixed case spans several of its 8 MiB im2col blocks) or oneDNN's primitive, chosen
 * by CPU; ctest runs the cases again with each forced (ops_test_conv_gemm_filter,
 * ops_test_conv_onednn_filter: WN_CONV_BWD_FILTER=gemm / onednn).
 *
 * Tolerance vs the reference: |cpu - ref| <= 2e-5 * (|ref| + rms(ref)). A float sum of
 * T products of O(1) values has rounding error ~ sqrt(T) * 2^-24 * |terms| (~1e-6 here
 * for T <= 1600); 2e-5 leaves room for oneDNN's blocked summation order while an
 * indexing error (a wrong or missing term, error ~ 1/T of the value at least) fails.
 */
#include "engine/backends/cpu/backend_cpu.h"
#include "kernels/conv/conv_reference.h"
#include "tests/ops/ops_test.h"

typedef struct conv_case {
    int n, h, w, c, k, kh, kw, sh, sw;
    wn_padding pad;
    int groups, bias;
} conv_case;

typedef struct conv_fd_ctx {
    wn_backend *be;
    const wn_conv_desc *d;
    float *x, *w, *b;
} conv_fd_ctx;

static void conv_fd_forward(void *p, float *y) {
    conv_fd_ctx *c = p;
    OK(wn_op_conv2d_forward(c->be, c->d, c->x, c->w, c->b, y, "fd"));
}

static void compare(const char *what, const conv_case *cc, const float *got, const float *ref,
                    size_t n) {
    size_t at;
    double err = max_rel_err(got, ref, n, rms_f(ref, n), &at);
    CHECK(err <= 2e-5 && all_finite(got, n),
          "%s, case %dx%dx%dx%d k%d %dx%d s%dx%d %s g%d bias%d: rel err %.3g at %zu (%g vs %g)",
          what, cc->n, cc->h, cc->w, cc->c, cc->k, cc->kh, cc->kw, cc->sh, cc->sw,
          cc->pad == WN_PAD_SAME ? "same" : "valid", cc->groups, cc->bias, err, at,
          (double)got[at], (double)ref[at]);
}

static void run_case(wn_backend *be, const conv_case *cc, int fd_samples) {
    wn_conv_desc d;
    memset(&d, 0, sizeof d);
    OK(wn_window_init(&d.win, cc->n, cc->h, cc->w, cc->c, cc->kh, cc->kw, cc->sh, cc->sw, cc->pad,
                      "test"));
    d.k = cc->k, d.groups = cc->groups;
    const wn_window *v = &d.win;
    size_t nx = (size_t)v->n * v->h * v->w * v->c, ny = (size_t)v->n * v->oh * v->ow * d.k;
    size_t nw = (size_t)v->kh * v->kw * (v->c / cc->groups) * d.k;
    float *x = rand_f(nx, -1, 1), *w = rand_f(nw, -1, 1);
    float *b = cc->bias ? rand_f((size_t)d.k, -1, 1) : NULL;
    float *y = alloc_f(ny), *yref = alloc_f(ny), *dy = rand_f(ny, -1, 1);
    float *dx = alloc_f(nx), *dxref = alloc_f(nx), *dw = alloc_f(nw), *dwref = alloc_f(nw);
    float *db = alloc_f((size_t)d.k), *dbref = alloc_f((size_t)d.k);

    /* forward, twice: the second call runs the cached primitive */
    wn_conv_reference_forward(&d, x, w, b, yref);
    for (int rep = 0; rep < 2; rep++) {
        poison(y, ny);
        OK(wn_op_conv2d_forward(be, &d, x, w, b, y, "test"));
        compare(rep ? "forward (cached)" : "forward", cc, y, yref, ny);
    }

    /* backward data: overwrite, then accumulate onto a known base */
    wn_conv_reference_backward_data(&d, dy, w, dxref);
    poison(dx, nx);
    OK(wn_op_conv2d_backward_data(be, &d, dy, w, dx, 0, "test"));
    compare("backward data", cc, dx, dxref, nx);
    float *base = rand_f(nx, -1, 1), *want = alloc_f(nx);
    for (size_t i = 0; i < nx; i++) dx[i] = base[i], want[i] = base[i] + dxref[i];
    OK(wn_op_conv2d_backward_data(be, &d, dy, w, dx, 1, "test"));
    compare("backward data (accumulate)", cc, dx, want, nx);

    /* backward filter (+ bias) */
    wn_conv_reference_backward_filter(&d, x, dy, dwref, dbref);
    poison(dw, nw), poison(db, (size_t)d.k);
    OK(wn_op_conv2d_backward_filter(be, &d, x, dy, dw, cc->bias ? db : NULL, "test"));
    compare("backward filter", cc, dw, dwref, nw);
    if (cc->bias) compare("backward bias", cc, db, dbref, (size_t)d.k);

    /* finite differences through the oneDNN forward, analytic from oneDNN backward */
    if (fd_samples) {
        OK(wn_op_conv2d_backward_data(be, &d, dy, w, dx, 0, "test"));
        conv_fd_ctx ctx = {be, &d, x, w, b};
        fd_spec s = {"conv dx", x, nx, dx, y, ny, dy, conv_fd_forward, &ctx, 0.0625f, 1e-3,
                     (size_t)fd_samples};
        fd_check(&s);
        s.name = "conv dw", s.param = w, s.count = nw, s.analytic = dw;
        fd_check(&s);
        if (b) {
            s.name = "conv db", s.param = b, s.count = (size_t)d.k, s.analytic = db, s.max_checks = 0;
            fd_check(&s);
        }
    }
    free(x), free(w), free(b), free(y), free(yref), free(dy), free(dx), free(dxref);
    free(dw), free(dwref), free(db), free(dbref), free(base), free(want);
}

int main(void) {
    rng_seed(17);
    wn_backend *be = wn_backend_cpu();
    if (!be) {
        fprintf(stderr, "FAIL: %s\n", wn_last_error());
        return 1;
    }
    const conv_case cases[] = {
        /* n  h   w  c  k kh kw sh sw pad          g bias */
        {2, 7, 9, 3, 5, 3, 3, 1, 1, WN_PAD_SAME, 1, 1},
        {2, 7, 9, 3, 5, 3, 3, 2, 2, WN_PAD_SAME, 1, 0},   /* odd input, stride 2 */
        {1, 8, 10, 4, 6, 3, 3, 2, 2, WN_PAD_SAME, 1, 1},  /* even: pad 0 before, 1 after */
        {1, 8, 10, 4, 6, 3, 3, 2, 2, WN_PAD_VALID, 1, 0}, /* leftover row/column unused */
        {2, 9, 7, 3, 4, 1, 7, 1, 1, WN_PAD_SAME, 1, 0},
        {2, 9, 7, 3, 4, 7, 1, 1, 1, WN_PAD_SAME, 1, 1},
        {1, 11, 9, 2, 3, 5, 5, 1, 1, WN_PAD_SAME, 1, 0},
        {1, 10, 12, 2, 3, 5, 5, 2, 2, WN_PAD_SAME, 1, 1}, /* 5x5 s2 on even: 1 before, 2 after */
        {2, 12, 11, 3, 2, 5, 5, 2, 2, WN_PAD_VALID, 1, 0},
        {2, 6, 8, 5, 7, 1, 1, 2, 2, WN_PAD_SAME, 1, 1},   /* negative total padding clamps */
        {1, 7, 7, 4, 4, 3, 3, 1, 2, WN_PAD_SAME, 1, 0},   /* unequal strides */
        {2, 7, 9, 6, 6, 3, 3, 1, 1, WN_PAD_SAME, 6, 1},   /* depthwise */
        {1, 9, 8, 5, 5, 5, 5, 2, 2, WN_PAD_SAME, 5, 0},   /* depthwise 5x5 s2 */
        {1, 7, 6, 4, 6, 3, 3, 1, 1, WN_PAD_SAME, 2, 1},   /* 2 groups */
        {2, 13, 13, 32, 48, 3, 3, 1, 1, WN_PAD_SAME, 1, 0}, /* blocked jit paths */
        {1, 9, 9, 64, 40, 1, 7, 1, 1, WN_PAD_SAME, 1, 1},
        {1, 17, 17, 16, 24, 3, 3, 2, 2, WN_PAD_VALID, 1, 0},
        /* 1x1 stride 1: the weight gradient is one sgemm on the input itself */
        {2, 7, 9, 5, 6, 1, 1, 1, 1, WN_PAD_SAME, 1, 1},
        {3, 9, 9, 64, 40, 1, 1, 1, 1, WN_PAD_VALID, 1, 0},
        {2, 8, 8, 96, 130, 1, 1, 1, 1, WN_PAD_SAME, 1, 1},
        /* 7x7 x 96 channels = 18 KiB an im2col row: 4 blocks of 8 MiB over 1,600 rows */
        {1, 40, 40, 96, 6, 7, 7, 1, 1, WN_PAD_SAME, 1, 1},
    };
    int n_cases = (int)(sizeof cases / sizeof cases[0]);
    for (int i = 0; i < n_cases; i++) run_case(be, &cases[i], i < 14 ? 60 : 20);

    /* random odd shapes */
    for (int t = 0; t < 6; t++) {
        conv_case cc;
        int ks[] = {1, 3, 5, 7};
        cc.n = rng_int(1, 2), cc.h = rng_int(5, 13), cc.w = rng_int(5, 13);
        cc.kh = ks[rng_int(0, 3)], cc.kw = ks[rng_int(0, 3)];
        cc.sh = rng_int(1, 2), cc.sw = rng_int(1, 2);
        cc.pad = (cc.h >= cc.kh && cc.w >= cc.kw && rng_int(0, 1)) ? WN_PAD_VALID : WN_PAD_SAME;
        cc.c = rng_int(1, 9), cc.k = rng_int(1, 9), cc.groups = 1, cc.bias = rng_int(0, 1);
        run_case(be, &cc, 30);
    }
    wn_backend_destroy(be);
    return test_finish("test_conv");
}
