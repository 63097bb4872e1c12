/* tests/ops/test_pool.c — pooling semantics that finite differences cannot see:
 * the average's divisor excludes padded cells (4 at a 3x3 'same' corner, 6 on an
 * edge, 9 inside, as TensorFlow), TF's asymmetric 'same' padding, max-pool ties
 * sending the gradient to the first maximum in scan order, and the backend equal
 * bit for bit to the kernels/pool.h element functions (which the CUDA kernels run)
 * and to a naive loop written from the definition; wn_nhwc_coords (a CUDA thread's
 * element) inverts wn_nhwc_index.
 */
#include "engine/backends/cpu/backend_cpu.h"
#include "kernels/pool/pool.h"
#include "tests/ops/ops_test.h"

/* Naive pooling from the definition: window cell (ky, kx) of output (oy, ox) is
 * input (oy*sh - pad_top + ky, ox*sw - pad_left + kx); outside cells are skipped. */
static void naive_pool(const wn_window *v, wn_pool_kind kind, const float *x, float *y,
                       int *count_out) {
    for (int n = 0; n < v->n; n++)
        for (int oy = 0; oy < v->oh; oy++)
            for (int ox = 0; ox < v->ow; ox++)
                for (int c = 0; c < v->c; c++) {
                    float acc = kind == WN_POOL_MAX ? -INFINITY : 0.0f;
                    int cnt = 0;
                    for (int ky = 0; ky < v->kh; ky++)
                        for (int kx = 0; kx < v->kw; kx++) {
                            int iy = oy * v->sh - v->pad_top + ky, ix = ox * v->sw - v->pad_left + kx;
                            if (iy < 0 || iy >= v->h || ix < 0 || ix >= v->w) continue;
                            float val = x[(((size_t)n * v->h + iy) * v->w + ix) * v->c + c];
                            if (kind == WN_POOL_MAX) acc = val > acc ? val : acc;
                            else acc += val;
                            cnt++;
                        }
                    size_t o = (((size_t)n * v->oh + oy) * v->ow + ox) * v->c + c;
                    y[o] = kind == WN_POOL_MAX ? acc : acc / (float)cnt;
                    if (count_out) count_out[o] = cnt;
                }
}

static void test_divisor_irv2(wn_backend *be) {
    /* mixed_5b's AveragePooling2D(3, strides=1, padding='same') on a 37x37 map */
    wn_window v;
    OK(wn_window_init(&v, 1, 37, 37, 2, 3, 3, 1, 1, WN_PAD_SAME, "avg"));
    CHECK(v.oh == 37 && v.ow == 37 && v.pad_top == 1 && v.pad_bottom == 1 && v.pad_left == 1 &&
              v.pad_right == 1, "3x3 s1 'same' on 37: out %dx%d pads %d/%d/%d/%d", v.oh, v.ow,
          v.pad_top, v.pad_bottom, v.pad_left, v.pad_right);
    CHECK(wn_pool_avg_divisor(&v, 0, 0) == 4 && wn_pool_avg_divisor(&v, 36, 36) == 4 &&
              wn_pool_avg_divisor(&v, 0, 36) == 4 && wn_pool_avg_divisor(&v, 36, 0) == 4,
          "corner divisor is not 4");
    CHECK(wn_pool_avg_divisor(&v, 0, 5) == 6 && wn_pool_avg_divisor(&v, 5, 0) == 6 &&
              wn_pool_avg_divisor(&v, 36, 17) == 6 && wn_pool_avg_divisor(&v, 17, 36) == 6,
          "edge divisor is not 6");
    CHECK(wn_pool_avg_divisor(&v, 1, 1) == 9 && wn_pool_avg_divisor(&v, 18, 20) == 9,
          "interior divisor is not 9");
    /* A constant image averages to the constant everywhere only if padding is
     * excluded (counting it would give 4/9 at corners, 6/9 on edges). */
    size_t n = 37 * 37 * 2;
    float *x = alloc_f(n), *y = alloc_f(n);
    for (size_t i = 0; i < n; i++) x[i] = 3.0f;
    OK(wn_op_pool_forward(be, &v, WN_POOL_AVG, x, y, "avg"));
    int bad = 0;
    for (size_t i = 0; i < n; i++) bad += y[i] != 3.0f;
    CHECK(bad == 0, "average of a constant image differs from the constant at %d cells", bad);
    /* Corner value by hand: cells (0,0),(0,1),(1,0),(1,1) of a ramp. */
    for (size_t i = 0; i < n; i++) x[i] = (float)(i / 2); /* pixel index, both channels */
    OK(wn_op_pool_forward(be, &v, WN_POOL_AVG, x, y, "avg"));
    float corner = (0.0f + 1.0f + 37.0f + 38.0f) / 4.0f;
    float edge = (0.0f + 1.0f + 2.0f + 37.0f + 38.0f + 39.0f) / 6.0f; /* output (0, 1) */
    CHECK(y[0] == corner && y[1] == corner, "corner average %g, want %g", (double)y[0], (double)corner);
    CHECK(y[2] == edge, "edge average %g, want %g", (double)y[2], (double)edge);
    free(x), free(y);
}

static void test_same_asymmetric(void) {
    wn_window v;
    /* even input, odd kernel, stride 2: total padding 1 goes after (TF) */
    OK(wn_window_init(&v, 1, 8, 8, 1, 3, 3, 2, 2, WN_PAD_SAME, "p"));
    CHECK(v.oh == 4 && v.pad_top == 0 && v.pad_bottom == 1, "3x3 s2 'same' on 8: out %d pads %d/%d",
          v.oh, v.pad_top, v.pad_bottom);
    CHECK(wn_pool_avg_divisor(&v, 0, 0) == 9 && wn_pool_avg_divisor(&v, 3, 3) == 4 &&
              wn_pool_avg_divisor(&v, 3, 0) == 6,
          "divisors with asymmetric padding: %d %d %d", wn_pool_avg_divisor(&v, 0, 0),
          wn_pool_avg_divisor(&v, 3, 3), wn_pool_avg_divisor(&v, 3, 0));
    /* 'valid' max pool of IRV2's stem: 157 -> 78, 76 -> 37 */
    OK(wn_window_init(&v, 1, 157, 157, 1, 3, 3, 2, 2, WN_PAD_VALID, "p"));
    CHECK(v.oh == 78 && v.ow == 78, "157 -> %d", v.oh);
    OK(wn_window_init(&v, 1, 76, 76, 1, 3, 3, 2, 2, WN_PAD_VALID, "p"));
    CHECK(v.oh == 37, "76 -> %d", v.oh);
}

/* Every flat index of a small odd-sized tensor maps back to its own coordinates. */
static void test_nhwc_coords(void) {
    const int nn = 3, h = 5, w = 7, c = 2;
    size_t i = 0;
    for (int n = 0; n < nn; n++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int ch = 0; ch < c; ch++, i++) {
                    int gn, gy, gx, gc;
                    wn_nhwc_coords(i, h, w, c, &gn, &gy, &gx, &gc);
                    CHECK(wn_nhwc_index(n, y, x, ch, h, w, c) == i && gn == n && gy == y &&
                              gx == x && gc == ch,
                          "index %zu: coords (%d %d %d %d), want (%d %d %d %d)", i, gn, gy, gx,
                          gc, n, y, x, ch);
                }
}

/* ZeroPadding2D folded into a 'valid' window (ResNet50's and DenseNet121's pool1_pad 1 +
 * pool1 3x3/2): explicit pads that no 'same' window has, and pads as large as the
 * window (windows with no input cell) refused rather than read past the row. */
static void test_zero_padded(wn_backend *be) {
    wn_window v;
    OK(wn_window_init_zero_padded(&v, 1, 32, 32, 1, 3, 3, 2, 2, 1, 1, 1, 1, "pool1"));
    CHECK(v.oh == 16 && v.pad_top == 1 && v.pad_bottom == 0 && v.pad_left == 1 &&
              v.pad_right == 0,
          "pad 1 + 3x3 s2 on 32: out %d pads %d/%d/%d/%d", v.oh, v.pad_top, v.pad_bottom,
          v.pad_left, v.pad_right);
    OK(wn_window_init_zero_padded(&v, 1, 33, 31, 1, 3, 3, 2, 2, 1, 1, 1, 1, "pool1"));
    CHECK(v.oh == 17 && v.ow == 16 && v.pad_bottom == 1 && v.pad_right == 1,
          "pad 1 + 3x3 s2 on 33x31: out %dx%d pads bottom %d right %d", v.oh, v.ow,
          v.pad_bottom, v.pad_right);
    CHECK(wn_window_init_zero_padded(&v, 1, 4, 4, 1, 3, 3, 1, 1, -1, 0, 0, 0, "p") == WN_ERR,
          "a negative zero padding is refused");
    float x[16], y[64], dy[64], dx[16];
    for (int i = 0; i < 16; i++) x[i] = (float)i;
    for (int i = 0; i < 64; i++) dy[i] = 1.0f;
    OK(wn_window_init_zero_padded(&v, 1, 4, 4, 1, 3, 3, 1, 1, 0, 3, 0, 0, "deep_pad"));
    CHECK(v.pad_bottom == 3 &&
              wn_op_pool_forward(be, &v, WN_POOL_MAX, x, y, "deep_pad") == WN_ERR &&
              strstr(wn_last_error(), "deep_pad") &&
              wn_op_pool_backward(be, &v, WN_POOL_MAX, x, y, dy, dx, 0, "deep_pad") == WN_ERR,
          "a bottom pad as large as the window (a window with no input cell) is refused: %s",
          wn_last_error());
}

static void test_max_ties(wn_backend *be) {
    /* All-equal input: each output's gradient goes to its window's first cell. */
    wn_window v;
    OK(wn_window_init(&v, 1, 5, 5, 1, 3, 3, 2, 2, WN_PAD_VALID, "p"));
    float x[25] = {0}, y[4], dy[4] = {1.0f, 2.0f, 4.0f, 8.0f}, dx[25];
    OK(wn_op_pool_forward(be, &v, WN_POOL_MAX, x, y, "p"));
    OK(wn_op_pool_backward(be, &v, WN_POOL_MAX, x, y, dy, dx, 0, "p"));
    float want[25] = {0};
    want[0] = 1.0f, want[2] = 2.0f, want[10] = 4.0f, want[12] = 8.0f;
    CHECK(memcmp(dx, want, sizeof want) == 0, "max-pool ties: gradient not at the first maximum");
    /* Overlapping windows share the middle column/row: (0,2) is first for output
     * (0,1) only; a larger value at (2,2) takes all four outputs. */
    x[12] = 1.0f;
    OK(wn_op_pool_forward(be, &v, WN_POOL_MAX, x, y, "p"));
    OK(wn_op_pool_backward(be, &v, WN_POOL_MAX, x, y, dy, dx, 0, "p"));
    memset(want, 0, sizeof want);
    want[12] = 15.0f;
    CHECK(memcmp(dx, want, sizeof want) == 0, "max-pool: shared maximum should collect 15, got %g",
          (double)dx[12]);
}

static void test_against_definitions(wn_backend *be) {
    for (int t = 0; t < 40; t++) {
        int n = rng_int(1, 2), h = rng_int(1, 12), w = rng_int(1, 12), c = rng_int(1, 5);
        int k = rng_int(1, 4), s = rng_int(1, 3);
        wn_padding pad = rng_int(0, 1) ? WN_PAD_SAME : WN_PAD_VALID;
        if (pad == WN_PAD_VALID && (h < k || w < k)) pad = WN_PAD_SAME;
        wn_window v;
        OK(wn_window_init(&v, n, h, w, c, k, k, s, s, pad, "p"));
        size_t nx = (size_t)n * h * w * c, ny = (size_t)n * v.oh * v.ow * c;
        float *x = rand_f(nx, -4, 4), *y = alloc_f(ny), *yref = alloc_f(ny), *dy = rand_f(ny, -1, 1);
        float *dx = alloc_f(nx), *dxe = alloc_f(nx);
        double *dxref = calloc(nx, sizeof(double));
        int *cnt = malloc(ny * sizeof(int));
        for (int kind = 0; kind < 2; kind++) {
            poison(y, ny);
            OK(wn_op_pool_forward(be, &v, (wn_pool_kind)kind, x, y, "p"));
            naive_pool(&v, (wn_pool_kind)kind, x, yref, cnt);
            CHECK(memcmp(y, yref, ny * sizeof(float)) == 0,
                  "%s pool %dx%dx%dx%d k%d s%d pad%d differs from the definition",
                  kind ? "avg" : "max", n, h, w, c, k, s, (int)pad);
            /* element functions, as the CUDA kernels call them */
            int bad = 0;
            for (int b = 0; b < n; b++)
                for (int oy = 0; oy < v.oh; oy++)
                    for (int ox = 0; ox < v.ow; ox++)
                        for (int ch = 0; ch < c; ch++) {
                            float e = kind ? wn_pool_avg_at(&v, x, b, oy, ox, ch)
                                           : wn_pool_max_at(&v, x, b, oy, ox, ch);
                            bad += e != y[wn_nhwc_index(b, oy, ox, ch, v.oh, v.ow, c)];
                        }
            CHECK(bad == 0, "%s pool: %d outputs differ from the element function", kind ? "avg" : "max", bad);
            /* backward vs a scatter from the definition (in double) */
            memset(dxref, 0, nx * sizeof(double));
            for (int b = 0; b < n; b++)
                for (int oy = 0; oy < v.oh; oy++)
                    for (int ox = 0; ox < v.ow; ox++)
                        for (int ch = 0; ch < c; ch++) {
                            size_t o = wn_nhwc_index(b, oy, ox, ch, v.oh, v.ow, c);
                            int first = -1;
                            float best = 0;
                            for (int ky = 0; ky < k; ky++)
                                for (int kx = 0; kx < k; kx++) {
                                    int iy = oy * s - v.pad_top + ky, ix = ox * s - v.pad_left + kx;
                                    if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                                    size_t i = wn_nhwc_index(b, iy, ix, ch, h, w, c);
                                    if (kind) dxref[i] += (double)dy[o] / cnt[o];
                                    else if (first < 0 || x[i] > best) first = (int)i, best = x[i];
                                }
                            if (!kind) dxref[first] += dy[o];
                        }
            OK(wn_op_pool_backward(be, &v, (wn_pool_kind)kind, x, y, dy, dx, 0, "p"));
            double worst = 0;
            for (size_t i = 0; i < nx; i++) {
                double e = fabs(dx[i] - dxref[i]);
                if (!(e <= worst)) worst = e;
            }
            CHECK(worst <= 1e-6, "%s pool backward: max abs error %.3g vs the definition",
                  kind ? "avg" : "max", worst);
        }
        free(x), free(y), free(yref), free(dy), free(dx), free(dxe), free(dxref), free(cnt);
    }
}

int main(void) {
    rng_seed(5);
    wn_backend *be = wn_backend_cpu();
    if (!be) {
        fprintf(stderr, "FAIL: %s\n", wn_last_error());
        return 1;
    }
    test_divisor_irv2(be);
    test_same_asymmetric();
    test_nhwc_coords();
    test_zero_padded(be);
    test_max_ties(be);
    test_against_definitions(be);
    wn_backend_destroy(be);
    return test_finish("test_pool");
}
