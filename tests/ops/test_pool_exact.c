/* tests/ops/test_pool_exact.c — the CPU backend's pooling (kernels/pool/pool_cpu_impl.h:
 * channel-vectorised loops, backward as a per-image scatter) equal bit for bit to the
 * element-function gathers of kernels/pool/pool.h, which the CUDA kernels run:
 *   float32: y = wn_pool_max_at / wn_pool_avg_at, dx = g or dx + g with
 *            g = wn_pool_max_dx_at / wn_pool_avg_dx_at;
 *   bf16:    the same gathers on the widened values, each result rounded once
 *            (wn_bf16_store).
 * Inputs are integers in [-2, 2] with zeros of both signs, so windows tie often (the
 * gradient must go to the first maximum in scan order, and +0 vs -0 must keep the
 * first); dy spans several magnitudes, so summing an input cell's contributions in
 * another order, or dividing otherwise, changes bits. Shapes: 'same' and 'valid' and
 * zero-padded (asymmetric pads), stride 1/2, 2x2 and 3x3, n = 1 and 3, channels 1, 7,
 * 16, 33, 80 (more than one 64-channel block), accumulate on and off, on 1, 2 and 5
 * threads (the backward splits channels into blocks when images are fewer than
 * threads).
 */
#include <omp.h>

#include "engine/backends/cpu/backend_cpu.h"
#include "engine/runtime/backend_bf16.h"
#include "kernels/pool/pool.h"
#include "tests/ops/ops_test.h"

static float tie_value(void) {
    int v = rng_int(-2, 2);
    return v == 0 && rng_int(0, 1) ? -0.0f : (float)v;
}

/* Magnitudes 2^-6 .. 2^6 with 24 random mantissa bits: order-sensitive sums. */
static float grad_value(void) {
    return rng_uniform(-1.0f, 1.0f) * ldexpf(1.0f, rng_int(-6, 6));
}

static size_t count_bits_differ(const void *a, const void *b, size_t n, size_t elem,
                                size_t *first) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        if (memcmp((const char *)a + i * elem, (const char *)b + i * elem, elem)) {
            if (!bad) *first = i;
            bad++;
        }
    return bad;
}

static void check_shape(wn_backend *be, const wn_window *v, const char *what) {
    const size_t nx = (size_t)v->n * v->h * v->w * v->c, ny = (size_t)v->n * v->oh * v->ow * v->c;
    float *x = alloc_f(nx), *dy = alloc_f(ny), *dx0 = alloc_f(nx);
    float *y = alloc_f(ny), *yref = alloc_f(ny), *dx = alloc_f(nx), *dxref = alloc_f(nx);
    wn_bf16 *xb = malloc(nx * 2), *dyb = malloc(ny * 2), *dx0b = malloc(nx * 2);
    wn_bf16 *yb = malloc(ny * 2), *ybref = malloc(ny * 2), *dxb = malloc(nx * 2),
            *dxbref = malloc(nx * 2);
    float *xw = alloc_f(nx), *dyw = alloc_f(ny); /* the bf16 values, widened */
    for (size_t i = 0; i < nx; i++) {
        x[i] = tie_value(), dx0[i] = grad_value();
        xb[i] = wn_bf16_from_f32(x[i]), dx0b[i] = wn_bf16_from_f32(dx0[i]);
        xw[i] = wn_bf16_to_f32(xb[i]);
    }
    for (size_t i = 0; i < ny; i++) {
        dy[i] = grad_value();
        dyb[i] = wn_bf16_from_f32(dy[i]);
        dyw[i] = wn_bf16_to_f32(dyb[i]);
    }
    for (int kind = 0; kind < 2; kind++) {
        const char *kn = kind == WN_POOL_MAX ? "max" : "avg";
        for (int b = 0; b < v->n; b++)
            for (int oy = 0; oy < v->oh; oy++)
                for (int ox = 0; ox < v->ow; ox++)
                    for (int ch = 0; ch < v->c; ch++) {
                        size_t o = wn_nhwc_index(b, oy, ox, ch, v->oh, v->ow, v->c);
                        yref[o] = kind == WN_POOL_MAX ? wn_pool_max_at(v, x, b, oy, ox, ch)
                                                      : wn_pool_avg_at(v, x, b, oy, ox, ch);
                        ybref[o] = wn_bf16_from_f32(kind == WN_POOL_MAX
                                                        ? wn_pool_max_at(v, xw, b, oy, ox, ch)
                                                        : wn_pool_avg_at(v, xw, b, oy, ox, ch));
                    }
        poison(y, ny);
        memset(yb, 0xff, ny * 2); /* NaN */
        OK(wn_op_pool_forward(be, v, (wn_pool_kind)kind, x, y, what));
        OK(wn_op_bf16_pool_forward(be, v, (wn_pool_kind)kind, xb, yb, what));
        size_t at = 0, bad = count_bits_differ(y, yref, ny, 4, &at);
        CHECK(bad == 0, "%s %s float32 forward: %zu of %zu outputs differ from the element "
              "function (first at %zu: %g vs %g)", kn, what, bad, ny, at,
              bad ? (double)y[at] : 0.0, bad ? (double)yref[at] : 0.0);
        bad = count_bits_differ(yb, ybref, ny, 2, &at);
        CHECK(bad == 0, "%s %s bf16 forward: %zu of %zu outputs differ from the rounded "
              "element function (first at %zu)", kn, what, bad, ny, at);
        for (int acc = 0; acc < 2; acc++) {
            for (int b = 0; b < v->n; b++)
                for (int iy = 0; iy < v->h; iy++)
                    for (int ix = 0; ix < v->w; ix++)
                        for (int ch = 0; ch < v->c; ch++) {
                            size_t i = wn_nhwc_index(b, iy, ix, ch, v->h, v->w, v->c);
                            float g = kind == WN_POOL_MAX
                                          ? wn_pool_max_dx_at(v, x, dy, b, iy, ix, ch)
                                          : wn_pool_avg_dx_at(v, dy, b, iy, ix, ch);
                            dxref[i] = acc ? dx0[i] + g : g;
                            float gw = kind == WN_POOL_MAX
                                           ? wn_pool_max_dx_at(v, xw, dyw, b, iy, ix, ch)
                                           : wn_pool_avg_dx_at(v, dyw, b, iy, ix, ch);
                            dxbref[i] = dx0b[i];
                            wn_bf16_store(dxbref, i, gw, acc);
                        }
            if (acc) memcpy(dx, dx0, nx * 4), memcpy(dxb, dx0b, nx * 2);
            else poison(dx, nx), memset(dxb, 0xff, nx * 2);
            OK(wn_op_pool_backward(be, v, (wn_pool_kind)kind, x, y, dy, dx, acc, what));
            OK(wn_op_bf16_pool_backward(be, v, (wn_pool_kind)kind, xb, yb, dyb, dxb, acc, what));
            bad = count_bits_differ(dx, dxref, nx, 4, &at);
            CHECK(bad == 0, "%s %s float32 backward%s: %zu of %zu elements differ from the "
                  "gather (first at %zu: %.9g vs %.9g)", kn, what, acc ? " +=" : "", bad, nx,
                  at, bad ? (double)dx[at] : 0.0, bad ? (double)dxref[at] : 0.0);
            bad = count_bits_differ(dxb, dxbref, nx, 2, &at);
            CHECK(bad == 0, "%s %s bf16 backward%s: %zu of %zu elements differ from the "
                  "rounded gather (first at %zu)", kn, what, acc ? " +=" : "", bad, nx, at);
        }
    }
    free(x), free(dy), free(dx0), free(y), free(yref), free(dx), free(dxref);
    free(xb), free(dyb), free(dx0b), free(yb), free(ybref), free(dxb), free(dxbref);
    free(xw), free(dyw);
}

int main(void) {
    rng_seed(11);
    wn_backend *be = wn_backend_cpu();
    if (!be) {
        fprintf(stderr, "FAIL: %s\n", wn_last_error());
        return 1;
    }
    OK(wn_backend_bf16_check(be));
    static const int threads[] = {1, 2, 5}, channels[] = {1, 7, 16, 33, 80};
    int shapes = 0;
    for (int t = 0; t < 3; t++) {
        omp_set_num_threads(threads[t]);
        for (int ci = 0; ci < 5; ci++)
            for (int n = 1; n <= 3; n += 2)
                for (int k = 2; k <= 3; k++)
                    for (int s = 1; s <= 2; s++)
                        for (int p = 0; p < 3; p++) {
                            /* 9x8: odd and even sides, so 'same' pads asymmetrically */
                            const int h = 9, w = 8, c = channels[ci];
                            wn_window v;
                            if (p < 2)
                                OK(wn_window_init(&v, n, h, w, c, k, k, s, s,
                                                  p ? WN_PAD_SAME : WN_PAD_VALID, "exact"));
                            else /* ZeroPadding2D (1, 0), (k - 1, 1) folded into 'valid' */
                                OK(wn_window_init_zero_padded(&v, n, h, w, c, k, k, s, s, 1, 0,
                                                              k - 1, 1, "exact"));
                            char what[96];
                            snprintf(what, sizeof what, "n%d %dx%dx%d k%d s%d %s, %d threads", n,
                                     h, w, c, k, s, p == 0 ? "valid" : p == 1 ? "same" : "zero-padded",
                                     threads[t]);
                            check_shape(be, &v, what);
                            shapes++;
                        }
    }
    printf("%d shapes, float32 and bf16, max and avg, accumulate on and off\n", shapes);
    wn_backend_destroy(be);
    return test_finish("test_pool_exact");
}
