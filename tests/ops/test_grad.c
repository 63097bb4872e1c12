/* tests/ops/test_grad.c — gradient checks of every non-convolution op of the CPU
 * backend against central finite differences (the method and its tolerance are
 * explained in ops_test.h), on random odd shapes; plus each op's `accumulate`
 * contract (0 overwrites, 1 adds onto what is there) and that gradient outputs
 * which must not be touched are not.
 */
#include "tests/ops/ops_test.h"

static wn_backend *be;
static const float H = 0.0625f; /* 2^-4: x +- H is exact for |x| < 8 */
static const double RTOL = 1e-3;

/* Checks dx(accumulate=1) == base + dx(accumulate=0) bit for bit (one float add). */
static void check_accumulate(const char *name, const float *over, const float *base,
                             const float *acc, size_t n) {
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        if (acc[i] != base[i] + over[i]) bad++;
    CHECK(bad == 0, "%s: accumulate=1 differs from base + gradient at %d of %zu elements", name,
          bad, n);
}

/* ---------------------------------------------------------------- affine + act */

typedef struct {
    size_t count;
    int c;
    float *x, *scale, *shift;
    wn_activation act;
} aff_ctx;

static void aff_fwd(void *p, float *y) {
    aff_ctx *a = p;
    OK(wn_op_affine_act_forward(be, a->count, a->c, a->x, a->scale, a->shift, a->act, y, "aff"));
}

static void test_affine_act(wn_activation act, int with_affine) {
    int c = rng_int(1, 9), pixels = rng_int(3, 40);
    size_t n = (size_t)pixels * c;
    aff_ctx a = {n, c, alloc_f(n), NULL, NULL, act};
    if (with_affine) a.scale = rand_f((size_t)c, 0.5f, 2.0f), a.shift = rand_f((size_t)c, -1, 1);
    /* Keep the pre-activation at least 4H away from the kinks 0 and 6 so x +- H
     * never crosses one (scale <= 2 moves it by at most 2H). */
    for (size_t i = 0; i < n; i++) {
        int ch = (int)(i % c);
        float s = a.scale ? a.scale[ch] : 1.0f, b = a.shift ? a.shift[ch] : 0.0f, v, x;
        do {
            x = rng_uniform(-3.5f, 7.5f) / s;
            v = x * s + b;
        } while (fabsf(v) < 4 * H || fabsf(v - 6.0f) < 4 * H || fabsf(x) > 7.5f);
        a.x[i] = x;
    }
    float *y = alloc_f(n), *r = rand_f(n, -1, 1), *dx = alloc_f(n);
    float *dshift = alloc_f((size_t)c);
    poison(y, n);
    aff_fwd(&a, y);
    CHECK(all_finite(y, n), "affine_act forward left unwritten outputs");
    poison(dx, n);
    OK(wn_op_affine_act_backward(be, n, c, y, r, a.scale, act, dx, 0, a.shift ? dshift : NULL, "aff"));
    char name[64];
    snprintf(name, sizeof name, "affine_act(act %d, affine %d) dx", (int)act, with_affine);
    fd_spec s = {name, a.x, n, dx, y, n, r, aff_fwd, &a, H, RTOL, 0};
    fd_check(&s);
    if (a.shift) {
        snprintf(name, sizeof name, "affine_act(act %d) dshift", (int)act);
        s.name = name, s.param = a.shift, s.count = (size_t)c, s.analytic = dshift;
        fd_check(&s);
    }
    /* accumulate, and dx == NULL (frozen below) still gives dshift */
    float *base = rand_f(n, -1, 1), *acc = alloc_f(n), *dshift2 = alloc_f((size_t)c);
    memcpy(acc, base, n * sizeof(float));
    OK(wn_op_affine_act_backward(be, n, c, y, r, a.scale, act, acc, 1, NULL, "aff"));
    check_accumulate("affine_act", dx, base, acc, n);
    if (a.shift) {
        OK(wn_op_affine_act_backward(be, n, c, y, r, a.scale, act, NULL, 0, dshift2, "aff"));
        CHECK(memcmp(dshift, dshift2, (size_t)c * sizeof(float)) == 0,
              "affine_act: dshift differs when dx is NULL");
    }
    free(a.x), free(a.scale), free(a.shift), free(y), free(r), free(dx), free(dshift);
    free(base), free(acc), free(dshift2);
}

/* ---------------------------------------------------------------- pooling */

typedef struct {
    wn_window win;
    wn_pool_kind kind;
    float *x;
} pool_ctx;

static void pool_fwd(void *p, float *y) {
    pool_ctx *q = p;
    OK(wn_op_pool_forward(be, &q->win, q->kind, q->x, y, "pool"));
}

static void test_pool(wn_pool_kind kind, int n, int h, int w, int c, int k, int s, wn_padding pad) {
    pool_ctx q;
    q.kind = kind;
    OK(wn_window_init(&q.win, n, h, w, c, k, k, s, s, pad, "pool"));
    size_t nx = (size_t)n * h * w * c, ny = (size_t)n * q.win.oh * q.win.ow * c;
    /* Max: distinct values 0.25 = 4H apart (a shuffled ramp), so there are no ties and
     * x +- H cannot change which cell is the maximum; max copies values, so the
     * outputs carry no rounding at all. Average: small random values (rounding of a
     * sum of <= 25 terms of size <= 2 is ~1e-6, far inside the tolerance). */
    q.x = alloc_f(nx);
    if (kind == WN_POOL_MAX) {
        for (size_t i = 0; i < nx; i++) q.x[i] = (float)i;
        for (size_t i = nx - 1; i > 0; i--) {
            size_t j = (size_t)(rng_u64() % (i + 1));
            float t = q.x[i];
            q.x[i] = q.x[j], q.x[j] = t;
        }
        for (size_t i = 0; i < nx; i++) q.x[i] = 0.25f * q.x[i] - 0.125f * (float)nx;
    } else {
        for (size_t i = 0; i < nx; i++) q.x[i] = rng_uniform(-2, 2);
    }
    float *y = alloc_f(ny), *r = rand_f(ny, -1, 1), *dx = alloc_f(nx);
    poison(y, ny);
    pool_fwd(&q, y);
    poison(dx, nx);
    OK(wn_op_pool_backward(be, &q.win, kind, q.x, y, r, dx, 0, "pool"));
    char name[96];
    snprintf(name, sizeof name, "%s pool %dx%dx%dx%d k%d s%d %s dx", kind == WN_POOL_MAX ? "max" : "avg",
             n, h, w, c, k, s, pad == WN_PAD_SAME ? "same" : "valid");
    fd_spec sp = {name, q.x, nx, dx, y, ny, r, pool_fwd, &q, H, RTOL, 0};
    fd_check(&sp);
    float *base = rand_f(nx, -1, 1), *acc = alloc_f(nx);
    memcpy(acc, base, nx * sizeof(float));
    OK(wn_op_pool_backward(be, &q.win, kind, q.x, y, r, acc, 1, "pool"));
    check_accumulate(name, dx, base, acc, nx);
    free(q.x), free(y), free(r), free(dx), free(base), free(acc);
}

/* ---------------------------------------------------------------- concat */

typedef struct {
    size_t pixels;
    int n_in;
    float *x[4];
    int ch[4];
} cat_ctx;

static void cat_fwd(void *p, float *y) {
    cat_ctx *q = p;
    OK(wn_op_concat_forward(be, q->pixels, q->n_in, (const float *const *)q->x, q->ch, y, "cat"));
}

static void test_concat(void) {
    cat_ctx q;
    q.pixels = (size_t)rng_int(1, 30), q.n_in = rng_int(2, 4);
    int total = 0;
    for (int i = 0; i < q.n_in; i++) {
        q.ch[i] = rng_int(1, 7), total += q.ch[i];
        q.x[i] = rand_f(q.pixels * q.ch[i], -2, 2);
    }
    size_t ny = q.pixels * total;
    float *y = alloc_f(ny), *r = rand_f(ny, -1, 1), *dx[4] = {0}, *base[4] = {0};
    for (int i = 0; i < q.n_in; i++) dx[i] = alloc_f(q.pixels * q.ch[i]);
    poison(y, ny);
    cat_fwd(&q, y);
    OK(wn_op_concat_backward(be, q.pixels, q.n_in, r, q.ch, dx, 0, "cat"));
    for (int i = 0; i < q.n_in; i++) {
        fd_spec s = {"concat dx", q.x[i], q.pixels * q.ch[i], dx[i], y, ny, r, cat_fwd, &q, H, RTOL, 0};
        fd_check(&s);
    }
    /* accumulate; a NULL entry (frozen producer) is skipped */
    float *acc[4] = {0};
    for (int i = 0; i < q.n_in; i++) {
        size_t m = q.pixels * q.ch[i];
        base[i] = rand_f(m, -1, 1), acc[i] = alloc_f(m);
        memcpy(acc[i], base[i], m * sizeof(float));
    }
    float *saved = acc[0];
    acc[0] = NULL;
    OK(wn_op_concat_backward(be, q.pixels, q.n_in, r, q.ch, acc, 1, "cat"));
    acc[0] = saved;
    CHECK(memcmp(acc[0], base[0], q.pixels * q.ch[0] * sizeof(float)) == 0,
          "concat: a NULL gradient entry was written");
    for (int i = 1; i < q.n_in; i++) check_accumulate("concat", dx[i], base[i], acc[i], q.pixels * q.ch[i]);
    for (int i = 0; i < q.n_in; i++) free(q.x[i]), free(dx[i]), free(base[i]), free(acc[i]);
    free(y), free(r);
}

/* ---------------------------------------------------------------- residual */

typedef struct {
    size_t n;
    float *x, *r;
    float scale;
} res_ctx;

static void res_fwd(void *p, float *y) {
    res_ctx *q = p;
    OK(wn_op_scaled_add(be, q->n, q->x, q->r, q->scale, y, "res"));
}

static void test_residual(float scale) {
    res_ctx q = {(size_t)rng_int(1, 200), NULL, NULL, scale};
    q.x = rand_f(q.n, -3, 3), q.r = rand_f(q.n, -3, 3);
    float *y = alloc_f(q.n), *g = rand_f(q.n, -1, 1), *dx = alloc_f(q.n), *dr = alloc_f(q.n);
    poison(y, q.n);
    res_fwd(&q, y);
    OK(wn_op_scaled_add_backward(be, q.n, g, scale, dx, dr, 0, "res"));
    fd_spec s = {"residual dx", q.x, q.n, dx, y, q.n, g, res_fwd, &q, H, RTOL, 0};
    fd_check(&s);
    s.name = "residual dr", s.param = q.r, s.analytic = dr;
    fd_check(&s);
    float *bx = rand_f(q.n, -1, 1), *br = rand_f(q.n, -1, 1), *ax = alloc_f(q.n), *ar = alloc_f(q.n);
    memcpy(ax, bx, q.n * sizeof(float)), memcpy(ar, br, q.n * sizeof(float));
    OK(wn_op_scaled_add_backward(be, q.n, g, scale, ax, ar, 1, "res"));
    check_accumulate("residual dx", dx, bx, ax, q.n);
    check_accumulate("residual dr", dr, br, ar, q.n);
    /* in place: the gradient flows through dx == dy */
    float *inplace = alloc_f(q.n);
    memcpy(inplace, g, q.n * sizeof(float));
    OK(wn_op_scaled_add_backward(be, q.n, inplace, scale, inplace, ar, 0, "res"));
    CHECK(memcmp(inplace, g, q.n * sizeof(float)) == 0 && memcmp(ar, dr, q.n * sizeof(float)) == 0,
          "residual backward in place (dx == dy) differs");
    free(q.x), free(q.r), free(y), free(g), free(dx), free(dr), free(bx), free(br), free(ax);
    free(ar), free(inplace);
}

/* ---------------------------------------------------------------- GAP */

typedef struct {
    int n, hw, c;
    float *x;
} gap_ctx;

static void gap_fwd(void *p, float *y) {
    gap_ctx *q = p;
    OK(wn_op_gap_forward(be, q->n, q->hw, q->c, q->x, y, "gap"));
}

static void test_gap(void) {
    gap_ctx q = {rng_int(1, 4), rng_int(1, 7) * rng_int(1, 7), rng_int(1, 11), NULL};
    size_t nx = (size_t)q.n * q.hw * q.c, ny = (size_t)q.n * q.c;
    q.x = rand_f(nx, -2, 2);
    float *y = alloc_f(ny), *r = rand_f(ny, -1, 1), *dx = alloc_f(nx);
    poison(y, ny);
    gap_fwd(&q, y);
    OK(wn_op_gap_backward(be, q.n, q.hw, q.c, r, dx, 0, "gap"));
    fd_spec s = {"gap dx", q.x, nx, dx, y, ny, r, gap_fwd, &q, H, RTOL, 0};
    fd_check(&s);
    float *base = rand_f(nx, -1, 1), *acc = alloc_f(nx);
    memcpy(acc, base, nx * sizeof(float));
    OK(wn_op_gap_backward(be, q.n, q.hw, q.c, r, acc, 1, "gap"));
    check_accumulate("gap", dx, base, acc, nx);
    free(q.x), free(y), free(r), free(dx), free(base), free(acc);
}

/* ---------------------------------------------------------------- dropout */

typedef struct {
    size_t n;
    float rate, *x;
    uint64_t seed, offset;
} drop_ctx;

static void drop_fwd(void *p, float *y) {
    drop_ctx *q = p;
    OK(wn_op_dropout_forward(be, q->n, q->rate, q->seed, q->offset, q->x, y, "drop"));
}

static void test_dropout_grad(float rate) {
    drop_ctx q = {(size_t)rng_int(50, 300), rate, NULL, rng_u64(), rng_u64() >> 20};
    q.x = rand_f(q.n, -3, 3);
    float *y = alloc_f(q.n), *r = rand_f(q.n, -1, 1), *dx = alloc_f(q.n);
    poison(y, q.n);
    drop_fwd(&q, y);
    OK(wn_op_dropout_backward(be, q.n, rate, q.seed, q.offset, r, dx, 0, "drop"));
    fd_spec s = {"dropout dx", q.x, q.n, dx, y, q.n, r, drop_fwd, &q, H, RTOL, 0};
    fd_check(&s);
    float *base = rand_f(q.n, -1, 1), *acc = alloc_f(q.n);
    memcpy(acc, base, q.n * sizeof(float));
    OK(wn_op_dropout_backward(be, q.n, rate, q.seed, q.offset, r, acc, 1, "drop"));
    check_accumulate("dropout", dx, base, acc, q.n);
    free(q.x), free(y), free(r), free(dx), free(base), free(acc);
}

/* ---------------------------------------------------------------- dense */

typedef struct {
    int n, in, out;
    float *x, *w, *b;
} dense_ctx;

static void dense_fwd(void *p, float *y) {
    dense_ctx *q = p;
    OK(wn_op_dense_forward(be, q->n, q->in, q->out, q->x, q->w, q->b, y, "dense"));
}

static void test_dense(int with_bias) {
    dense_ctx q = {rng_int(1, 9), rng_int(1, 37), rng_int(1, 9), NULL, NULL, NULL};
    size_t nx = (size_t)q.n * q.in, nw = (size_t)q.in * q.out, ny = (size_t)q.n * q.out;
    q.x = rand_f(nx, -2, 2), q.w = rand_f(nw, -1, 1);
    if (with_bias) q.b = rand_f((size_t)q.out, -1, 1);
    float *y = alloc_f(ny), *r = rand_f(ny, -1, 1), *dx = alloc_f(nx), *dw = alloc_f(nw);
    float *db = alloc_f((size_t)q.out);
    poison(y, ny);
    dense_fwd(&q, y);
    poison(dx, nx), poison(dw, nw), poison(db, (size_t)q.out);
    OK(wn_op_dense_backward(be, q.n, q.in, q.out, q.x, q.w, r, dx, dw, db, "dense"));
    fd_spec s = {"dense dx", q.x, nx, dx, y, ny, r, dense_fwd, &q, H, RTOL, 0};
    fd_check(&s);
    s.name = "dense dw", s.param = q.w, s.count = nw, s.analytic = dw;
    fd_check(&s);
    if (q.b) {
        s.name = "dense db", s.param = q.b, s.count = (size_t)q.out, s.analytic = db;
        fd_check(&s);
    }
    free(q.x), free(q.w), free(q.b), free(y), free(r), free(dx), free(dw), free(db);
}

/* ---------------------------------------------------------------- softmax-xent */

typedef struct {
    int n, k;
    float *z;
    int32_t *labels;
    float smoothing; /* Keras's label_smoothing */
} xent_ctx;

/* Here y is one element: the summed loss from stats[0]. */
static void xent_fwd(void *p, float *y) {
    xent_ctx *q = p;
    float stats[2] = {0, 0};
    OK(wn_op_softmax_xent(be, q->n, q->k, q->z, q->labels, q->smoothing, (float)q->n, NULL, NULL, stats));
    y[0] = stats[0] / (float)q->n; /* the batch-mean loss Keras differentiates */
}

static void test_xent_grad(float smoothing) {
    xent_ctx q = {rng_int(1, 7), rng_int(2, 9), NULL, NULL, smoothing};
    size_t nz = (size_t)q.n * q.k;
    q.z = rand_f(nz, -3, 3);
    q.labels = malloc((size_t)q.n * sizeof(int32_t));
    for (int i = 0; i < q.n; i++) q.labels[i] = rng_int(0, q.k - 1);
    float *dz = alloc_f(nz), stats[2] = {0, 0}, one = 1.0f, y;
    poison(dz, nz);
    OK(wn_op_softmax_xent(be, q.n, q.k, q.z, q.labels, q.smoothing, (float)q.n, NULL, dz, stats));
    /* Curved: the central difference's truncation error is h^2/6 * |L'''| and the
     * third derivative of logsumexp is below 1/4 per sample (1/n in the mean), so
     * h = 2^-6 bounds it by 7e-5 / n; the float loss rounds at ~2e-7 * |L|, giving
     * ~1e-5 / 2h = 4e-4 ... against gradients of size 1/n. The relative tolerance
     * is therefore 1e-2 here, still 20x below a dropped 1/n or a wrong sign. */
    fd_spec s = {smoothing ? "softmax_xent dz (label smoothing)" : "softmax_xent dz", q.z, nz, dz, &y, 1, &one, xent_fwd, &q, 0.015625f, 1e-2, 0};
    fd_check(&s);
    free(q.z), free(q.labels), free(dz);
}

int main(void) {
    rng_seed(2024);
    be = wn_backend_cpu();
    if (!be) {
        fprintf(stderr, "FAIL: %s\n", wn_last_error());
        return 1;
    }
    for (int rep = 0; rep < 3; rep++)
        for (int act = 0; act < 3; act++) {
            test_affine_act((wn_activation)act, 0);
            test_affine_act((wn_activation)act, 1);
        }
    const int pools[][6] = {
        /* n h  w  c  k  s */
        {1, 7, 9, 3, 3, 2},  {2, 8, 8, 2, 3, 2}, {1, 5, 7, 4, 3, 1}, {2, 9, 6, 3, 2, 2},
        {1, 6, 5, 2, 5, 3},  {1, 1, 1, 3, 3, 1}, {2, 4, 7, 1, 3, 1}, {1, 10, 11, 2, 3, 2},
    };
    for (size_t i = 0; i < sizeof pools / sizeof pools[0]; i++)
        for (int kind = 0; kind < 2; kind++)
            for (int pad = 0; pad < 2; pad++) {
                const int *p = pools[i];
                if (pad == WN_PAD_VALID && (p[1] < p[4] || p[2] < p[4])) continue;
                test_pool((wn_pool_kind)kind, p[0], p[1], p[2], p[3], p[4], p[5], (wn_padding)pad);
            }
    for (int rep = 0; rep < 5; rep++) test_concat();
    test_residual(0.17f), test_residual(0.1f), test_residual(0.2f), test_residual(1.0f);
    for (int rep = 0; rep < 5; rep++) test_gap();
    test_dropout_grad(0.0f), test_dropout_grad(0.2f), test_dropout_grad(0.5f);
    for (int rep = 0; rep < 4; rep++) test_dense(rep & 1);
    for (int rep = 0; rep < 6; rep++) test_xent_grad(0.0f), test_xent_grad(0.1f);
    wn_backend_destroy(be);
    return test_finish("test_grad");
}
