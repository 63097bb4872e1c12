/* tests/gpu/parity_conv.c — parity cases of the matrix ops: convolution forward,
 * backward-data (overwrite and accumulate) and backward-filter (with and without db),
 * ordinary, grouped and depthwise, and Dense forward/backward.
 *
 * Shapes: odd sizes; TensorFlow's asymmetric 'same' padding at stride 1 and 2 (the
 * padded-copy path of cuda_conv.cu); 'valid' stride-2 edges; a stride larger than
 * the kernel; InceptionResNetV2's 1x7/7x1 kernels; batch 1 and 64. */
#include <math.h>
#include <stdio.h>

#include "host/base/error.h"
#include "tests/gpu/parity.h"

typedef struct conv_case {
    int n, h, w, c, k, kh, kw, sh, sw;
    wn_padding pad;
    int groups;
    int quick; /* part of the small set for compute-sanitizer runs */
} conv_case;

static const conv_case conv_cases[] = {
    {1, 7, 9, 3, 5, 3, 3, 1, 1, WN_PAD_SAME, 1, 1},
    {2, 8, 10, 4, 6, 3, 3, 2, 2, WN_PAD_SAME, 1, 1},   /* asymmetric: 0 before, 1 after */
    {3, 11, 11, 5, 7, 3, 3, 2, 2, WN_PAD_VALID, 1, 1}, /* stride-2 'valid' edge */
    {2, 6, 7, 5, 9, 2, 2, 1, 1, WN_PAD_SAME, 1, 1},    /* asymmetric at stride 1 */
    {1, 5, 5, 3, 4, 1, 1, 2, 2, WN_PAD_VALID, 1, 0},   /* stride > kernel */
    {2, 9, 8, 6, 8, 1, 7, 1, 1, WN_PAD_SAME, 1, 0},    /* block17 1x7 */
    {2, 9, 8, 8, 6, 7, 1, 1, 1, WN_PAD_SAME, 1, 0},    /* block17 7x1 */
    {1, 13, 13, 3, 4, 5, 5, 1, 1, WN_PAD_SAME, 1, 0},
    {1, 12, 11, 4, 4, 5, 5, 2, 2, WN_PAD_SAME, 1, 0},  /* 5x5 stride 2, asymmetric */
    {2, 9, 9, 6, 6, 3, 3, 1, 1, WN_PAD_SAME, 6, 1},    /* depthwise */
    {1, 10, 10, 6, 6, 3, 3, 2, 2, WN_PAD_SAME, 6, 0},  /* depthwise, asymmetric */
    {2, 7, 7, 8, 12, 3, 3, 1, 1, WN_PAD_SAME, 4, 0},   /* grouped */
    {64, 17, 17, 32, 48, 3, 3, 1, 1, WN_PAD_SAME, 1, 0},
    {64, 9, 9, 64, 96, 1, 1, 1, 1, WN_PAD_SAME, 1, 0},
    {64, 19, 19, 3, 8, 3, 3, 2, 2, WN_PAD_VALID, 1, 0}, /* the stem's first layer */
    {1, 37, 37, 64, 96, 3, 3, 1, 1, WN_PAD_SAME, 1, 0},
};

static void conv_one(parity_suite *s, const conv_case *cc, int with_bias) {
    wn_conv_desc d = {.k = cc->k, .groups = cc->groups};
    if (wn_window_init(&d.win, cc->n, cc->h, cc->w, cc->c, cc->kh, cc->kw, cc->sh, cc->sw,
                       cc->pad, "parity") != WN_OK) {
        parity_fail(s, "conv2d", "setup", wn_last_error());
        return;
    }
    char shape[128];
    snprintf(shape, sizeof shape, "n%d %dx%dx%d k%d %dx%d s%d%s g%d%s", cc->n, cc->h, cc->w,
             cc->c, cc->k, cc->kh, cc->kw, cc->sh, cc->pad == WN_PAD_SAME ? " same" : " valid",
             cc->groups, with_bias ? " +b" : "");
    size_t nx = (size_t)cc->n * cc->h * cc->w * cc->c;
    size_t ny = (size_t)cc->n * d.win.oh * d.win.ow * cc->k;
    size_t nw = (size_t)cc->kh * cc->kw * (cc->c / cc->groups) * cc->k;
    float ws = 1.0f / sqrtf((float)(cc->kh * cc->kw * (cc->c / cc->groups)));
    pbuf x = {0}, w = {0}, b = {0}, y = {0}, dy = {0}, dx = {0}, dw = {0}, db = {0};
    if (pbuf_new(s, &x, nx * 4) || pbuf_new(s, &w, nw * 4) || pbuf_new(s, &b, cc->k * 4) ||
        pbuf_new(s, &y, ny * 4) || pbuf_new(s, &dy, ny * 4) || pbuf_new(s, &dx, nx * 4) ||
        pbuf_new(s, &dw, nw * 4) || pbuf_new(s, &db, cc->k * 4))
        goto done;
    if (pbuf_random(s, &x, -1, 1) || pbuf_random(s, &w, -ws, ws) || pbuf_random(s, &b, -1, 1) ||
        pbuf_random(s, &dy, -1, 1))
        goto done;

    if (parity_selected(s, "conv2d_forward")) {
        pbuf_poison(s, &y);
        if (ON_BOTH(s, "conv2d_forward", shape,
                    wn_op_conv2d_forward(be, &d, F(x), F(w), with_bias ? F(b) : NULL, F(y),
                                       "parity_conv")))
            parity_compare(s, "conv2d_forward", shape, &y, s->tol_matmul);
    }
    if (parity_selected(s, "conv2d_backward_data")) {
        pbuf_poison(s, &dx);
        if (ON_BOTH(s, "conv2d_backward_data", shape,
                    wn_op_conv2d_backward_data(be, &d, F(dy), F(w), F(dx), 0, "parity_conv")))
            parity_compare(s, "conv2d_backward_data", shape, &dx, s->tol_matmul);
        /* accumulate onto the same random values on both sides */
        pbuf_random(s, &dx, -1, 1);
        if (ON_BOTH(s, "conv2d_backward_data+=", shape,
                    wn_op_conv2d_backward_data(be, &d, F(dy), F(w), F(dx), 1, "parity_conv")))
            parity_compare(s, "conv2d_backward_data+=", shape, &dx, s->tol_matmul);
    }
    if (parity_selected(s, "conv2d_backward_filter")) {
        pbuf_poison(s, &dw);
        pbuf_poison(s, &db);
        if (ON_BOTH(s, "conv2d_backward_filter", shape,
                    wn_op_conv2d_backward_filter(be, &d, F(x), F(dy), F(dw),
                                               with_bias ? F(db) : NULL, "parity_conv"))) {
            parity_compare(s, "conv2d_backward_filter", shape, &dw, s->tol_matmul);
            if (with_bias) parity_compare(s, "conv2d_backward_filter db", shape, &db, s->tol_matmul);
        }
    }
done:
    pbuf_free(s, &x), pbuf_free(s, &w), pbuf_free(s, &b), pbuf_free(s, &y);
    pbuf_free(s, &dy), pbuf_free(s, &dx), pbuf_free(s, &dw), pbuf_free(s, &db);
}

void parity_conv(parity_suite *s) {
    if (!parity_selected(s, "conv2d")) return;
    int n = (int)(sizeof conv_cases / sizeof conv_cases[0]);
    for (int i = 0; i < n; i++) {
        if (s->quick && !conv_cases[i].quick) continue;
        conv_one(s, &conv_cases[i], i % 2 == 0);
    }
}

typedef struct dense_case {
    int n, in, out, quick;
} dense_case;

static const dense_case dense_cases[] = {
    {1, 1536, 6, 1}, {7, 33, 5, 1}, {64, 1536, 6, 0}, {64, 1536, 1000, 0}, {3, 1, 1, 1},
};

void parity_dense(parity_suite *s) {
    if (!parity_selected(s, "dense")) return;
    int count = (int)(sizeof dense_cases / sizeof dense_cases[0]);
    for (int t = 0; t < count; t++) {
        const dense_case *c = &dense_cases[t];
        if (s->quick && !c->quick) continue;
        char shape[96];
        snprintf(shape, sizeof shape, "n%d %d->%d", c->n, c->in, c->out);
        size_t nx = (size_t)c->n * c->in, ny = (size_t)c->n * c->out, nw = (size_t)c->in * c->out;
        float ws = 1.0f / sqrtf((float)c->in);
        pbuf x = {0}, w = {0}, b = {0}, y = {0}, dy = {0}, dx = {0}, dw = {0}, db = {0};
        if (pbuf_new(s, &x, nx * 4) || pbuf_new(s, &w, nw * 4) || pbuf_new(s, &b, c->out * 4) ||
            pbuf_new(s, &y, ny * 4) || pbuf_new(s, &dy, ny * 4) || pbuf_new(s, &dx, nx * 4) ||
            pbuf_new(s, &dw, nw * 4) || pbuf_new(s, &db, c->out * 4))
            goto next;
        if (pbuf_random(s, &x, -1, 1) || pbuf_random(s, &w, -ws, ws) ||
            pbuf_random(s, &b, -1, 1) || pbuf_random(s, &dy, -1, 1))
            goto next;
        for (int bias = 0; bias < 2; bias++) {
            pbuf_poison(s, &y);
            if (ON_BOTH(s, "dense_forward", shape,
                        wn_op_dense_forward(be, c->n, c->in, c->out, F(x), F(w), bias ? F(b) : NULL,
                                          F(y), "parity_dense")))
                parity_compare(s, bias ? "dense_forward +b" : "dense_forward", shape, &y,
                               s->tol_matmul);
        }
        pbuf_poison(s, &dx), pbuf_poison(s, &dw), pbuf_poison(s, &db);
        if (ON_BOTH(s, "dense_backward", shape,
                    wn_op_dense_backward(be, c->n, c->in, c->out, F(x), F(w), F(dy), F(dx), F(dw),
                                       F(db), "parity_dense"))) {
            parity_compare(s, "dense_backward dx", shape, &dx, s->tol_matmul);
            parity_compare(s, "dense_backward dw", shape, &dw, s->tol_matmul);
            parity_compare(s, "dense_backward db", shape, &db, s->tol_matmul);
        }
        /* no data gradient below the head: dx NULL must leave nothing half-done */
        pbuf_poison(s, &dw), pbuf_poison(s, &db);
        if (ON_BOTH(s, "dense_backward (no dx)", shape,
                    wn_op_dense_backward(be, c->n, c->in, c->out, F(x), F(w), F(dy), NULL, F(dw),
                                       F(db), "parity_dense")))
            parity_compare(s, "dense_backward (no dx) dw", shape, &dw, s->tol_matmul);
    next:
        pbuf_free(s, &x), pbuf_free(s, &w), pbuf_free(s, &b), pbuf_free(s, &y);
        pbuf_free(s, &dy), pbuf_free(s, &dx), pbuf_free(s, &dw), pbuf_free(s, &db);
    }
}
