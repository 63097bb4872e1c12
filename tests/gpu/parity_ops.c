/* tests/gpu/parity_ops.c — parity cases of our own kernels: affine + activation,
 * the BN gamma gradient, pooling, concatenation, the residual scale, global average pooling, dropout, the
 * fused loss, Adam and the fused augmentation. Every output is poisoned with NaN
 * before the op, every gradient with `accumulate` is also run on top of random
 * values, and every optional output is run present and absent. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "host/base/error.h"
#include "tests/gpu/parity.h"

/* ---------------------------------------------------------------- affine + act */

void parity_affine_act(parity_suite *s) {
    if (!parity_selected(s, "affine_act")) return;
    struct { size_t pixels; int c; int quick; } shapes[] = {
        {1, 1, 1}, {37 * 5, 33, 1}, {64 * 9 * 9, 320, 0}, {2 * 17 * 17, 1088, 0}, {1000, 3, 1}};
    const char *act_name[] = {"none", "relu", "relu6"};
    for (unsigned t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
        if (s->quick && !shapes[t].quick) continue;
        int c = shapes[t].c;
        size_t count = shapes[t].pixels * c;
        pbuf x = {0}, scale = {0}, shift = {0}, y = {0}, dy = {0}, dx = {0}, dshift = {0};
        if (pbuf_new(s, &x, count * 4) || pbuf_new(s, &scale, c * 4) || pbuf_new(s, &shift, c * 4) ||
            pbuf_new(s, &y, count * 4) || pbuf_new(s, &dy, count * 4) || pbuf_new(s, &dx, count * 4) ||
            pbuf_new(s, &dshift, c * 4))
            goto next;
        /* inputs wide enough that ReLU6 clamps at both ends */
        if (pbuf_random(s, &x, -8, 8) || pbuf_random(s, &scale, 0.5f, 1.5f) ||
            pbuf_random(s, &shift, -1, 1) || pbuf_random(s, &dy, -1, 1))
            goto next;
        for (int act = 0; act < 3; act++)
            for (int form = 0; form < 3; form++) { /* BN (scale+shift), bias (shift), bare */
                char shape[96];
                snprintf(shape, sizeof shape, "%zux%d %s %s", shapes[t].pixels, c, act_name[act],
                         form == 0 ? "scale+shift" : form == 1 ? "shift" : "bare");
                const int sc = form == 0, sh = form < 2;
                pbuf_poison(s, &y);
                if (!ON_BOTH(s, "affine_act_forward", shape,
                             wn_op_affine_act_forward(be, count, c, F(x), sc ? F(scale) : NULL,
                                                    sh ? F(shift) : NULL, (wn_activation)act, F(y),
                                                    "parity_bn")))
                    continue;
                parity_compare(s, "affine_act_forward", shape, &y, s->tol_elementwise);
                /* backward reads the forward output: give both sides the CPU's y */
                if (wn_backend_copy_to_host(s->cpu, y.host, y.cpu, y.bytes) || pbuf_upload(s, &y))
                    continue;
                for (int variant = 0; variant < 4; variant++) {
                    int want_dx = variant != 1, want_dshift = variant >= 1, acc = variant == 3;
                    char vshape[128];
                    snprintf(vshape, sizeof vshape, "%s%s%s%s", shape, want_dx ? " dx" : "",
                             acc ? "+=" : "", want_dshift ? " dshift" : "");
                    if (acc) pbuf_random(s, &dx, -1, 1);
                    else pbuf_poison(s, &dx);
                    pbuf_poison(s, &dshift);
                    if (!ON_BOTH(s, "affine_act_backward", vshape,
                                 wn_op_affine_act_backward(be, count, c, F(y), F(dy),
                                                         sc ? F(scale) : NULL, (wn_activation)act,
                                                         want_dx ? F(dx) : NULL, acc,
                                                         want_dshift ? F(dshift) : NULL,
                                                         "parity_bn")))
                        continue;
                    if (want_dx) parity_compare(s, "affine_act_backward dx", vshape, &dx, s->tol_elementwise);
                    if (want_dshift)
                        parity_compare(s, "affine_act_backward dshift", vshape, &dshift,
                                       s->tol_elementwise);
                }
            }
    next:
        pbuf_free(s, &x), pbuf_free(s, &scale), pbuf_free(s, &shift), pbuf_free(s, &y);
        pbuf_free(s, &dy), pbuf_free(s, &dx), pbuf_free(s, &dshift);
    }
}

/* ---------------------------------------------------------------- BN gamma gradient */

/* bn_gamma_backward (scale=True BN, e.g. EfficientNet-Lite fine-tuning): dgamma[c] =
 * sum of act-masked dy * (x - mean) * inv_std, a per-channel reduction like dshift. */
void parity_bn_gamma(parity_suite *s) {
    if (!parity_selected(s, "bn_gamma")) return;
    struct { size_t pixels; int c; int quick; } shapes[] = {
        {1, 1, 1}, {37 * 5, 33, 1}, {64 * 10 * 10, 1280, 0}, {8 * 40 * 40, 40, 0}, {1000, 3, 1}};
    const char *act_name[] = {"none", "relu", "relu6"};
    for (unsigned t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
        if (s->quick && !shapes[t].quick) continue;
        int c = shapes[t].c;
        size_t count = shapes[t].pixels * c;
        pbuf x = {0}, mean = {0}, inv_std = {0}, scale = {0}, shift = {0}, y = {0}, dy = {0},
             dgamma = {0};
        if (pbuf_new(s, &x, count * 4) || pbuf_new(s, &mean, c * 4) ||
            pbuf_new(s, &inv_std, c * 4) || pbuf_new(s, &scale, c * 4) ||
            pbuf_new(s, &shift, c * 4) || pbuf_new(s, &y, count * 4) ||
            pbuf_new(s, &dy, count * 4) || pbuf_new(s, &dgamma, c * 4))
            goto next;
        /* y = act(x*scale + shift) spans both ReLU6 clamps, as in a real BN + ReLU6 */
        if (pbuf_random(s, &x, -8, 8) || pbuf_random(s, &mean, -1, 1) ||
            pbuf_random(s, &inv_std, 0.5f, 2.0f) || pbuf_random(s, &scale, 0.5f, 1.5f) ||
            pbuf_random(s, &shift, -1, 1) || pbuf_random(s, &dy, -1, 1))
            goto next;
        for (int act = 0; act < 3; act++) {
            char shape[96];
            snprintf(shape, sizeof shape, "%zux%d %s", shapes[t].pixels, c, act_name[act]);
            /* the mask input y: the CPU's forward output, the same bytes on both sides */
            wn_backend *cpu = s->cpu;
            if (wn_op_affine_act_forward(cpu, count, c, (float *)x.cpu, (float *)scale.cpu,
                                        (float *)shift.cpu, (wn_activation)act, (float *)y.cpu,
                                        "parity_bn_gamma") != WN_OK ||
                wn_backend_copy_to_host(cpu, y.host, y.cpu, y.bytes) != WN_OK || pbuf_upload(s, &y)) {
                parity_fail(s, "bn_gamma_backward", shape, wn_last_error());
                continue;
            }
            pbuf_poison(s, &dgamma);
            if (ON_BOTH(s, "bn_gamma_backward", shape,
                        wn_op_bn_gamma_backward(be, count, c, F(x), F(y), F(dy), F(mean),
                                              F(inv_std), (wn_activation)act, F(dgamma),
                                              "parity_bn_gamma")))
                parity_compare(s, "bn_gamma_backward", shape, &dgamma, s->tol_elementwise);
        }
    next:
        pbuf_free(s, &x), pbuf_free(s, &mean), pbuf_free(s, &inv_std), pbuf_free(s, &scale);
        pbuf_free(s, &shift), pbuf_free(s, &y), pbuf_free(s, &dy), pbuf_free(s, &dgamma);
    }
}

/* ---------------------------------------------------------------- pooling */

void parity_pool(parity_suite *s) {
    if (!parity_selected(s, "pool")) return;
    struct { int n, h, w, c, k, st; wn_padding pad; int quick; } cases[] = {
        {1, 7, 7, 3, 3, 2, WN_PAD_VALID, 1},   {64, 9, 9, 32, 3, 2, WN_PAD_VALID, 0},
        {2, 8, 8, 5, 3, 1, WN_PAD_SAME, 1},    {1, 9, 10, 4, 2, 2, WN_PAD_SAME, 1},
        {3, 35, 35, 16, 3, 1, WN_PAD_SAME, 0}, {2, 10, 9, 7, 3, 2, WN_PAD_SAME, 0},
    };
    for (unsigned t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        if (s->quick && !cases[t].quick) continue;
        wn_window win;
        if (wn_window_init(&win, cases[t].n, cases[t].h, cases[t].w, cases[t].c, cases[t].k,
                           cases[t].k, cases[t].st, cases[t].st, cases[t].pad, "parity") != WN_OK) {
            parity_fail(s, "pool", "setup", wn_last_error());
            continue;
        }
        size_t nx = (size_t)win.n * win.h * win.w * win.c, ny = (size_t)win.n * win.oh * win.ow * win.c;
        pbuf x = {0}, y = {0}, dy = {0}, dx = {0};
        if (pbuf_new(s, &x, nx * 4) || pbuf_new(s, &y, ny * 4) || pbuf_new(s, &dy, ny * 4) ||
            pbuf_new(s, &dx, nx * 4) || pbuf_random(s, &x, -1, 1) || pbuf_random(s, &dy, -1, 1))
            goto next;
        for (int kind = 0; kind < 2; kind++) {
            char shape[96];
            snprintf(shape, sizeof shape, "%s n%d %dx%dx%d %dx%d s%d %s", kind ? "avg" : "max",
                     win.n, win.h, win.w, win.c, win.kh, win.kw, win.sh,
                     cases[t].pad == WN_PAD_SAME ? "same" : "valid");
            pbuf_poison(s, &y);
            if (!ON_BOTH(s, "pool_forward", shape,
                         wn_op_pool_forward(be, &win, (wn_pool_kind)kind, F(x), F(y), "parity_pool")))
                continue;
            parity_compare(s, "pool_forward", shape, &y, s->tol_elementwise);
            for (int acc = 0; acc < 2; acc++) {
                if (acc) pbuf_random(s, &dx, -1, 1);
                else pbuf_poison(s, &dx);
                if (ON_BOTH(s, "pool_backward", shape,
                            wn_op_pool_backward(be, &win, (wn_pool_kind)kind, F(x), F(y), F(dy), F(dx),
                                              acc, "parity_pool")))
                    parity_compare(s, acc ? "pool_backward+=" : "pool_backward", shape, &dx,
                                   s->tol_elementwise);
            }
        }
    next:
        pbuf_free(s, &x), pbuf_free(s, &y), pbuf_free(s, &dy), pbuf_free(s, &dx);
    }
}

/* ---------------------------------------------------------------- concatenation */

void parity_concat(parity_suite *s) {
    if (!parity_selected(s, "concat")) return;
    struct { size_t pixels; int n_in; int ch[4]; int quick; } cases[] = {
        {1, 2, {1, 1}, 1}, {37, 4, {3, 5, 1, 7}, 1}, {64 * 8 * 8, 3, {192, 224, 256}, 0},
        {2 * 35 * 35, 4, {96, 64, 96, 64}, 0},
    };
    for (unsigned t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        if (s->quick && !cases[t].quick) continue;
        int n_in = cases[t].n_in, total = 0;
        size_t pixels = cases[t].pixels;
        pbuf x[4] = {{0}}, dx[4] = {{0}}, y = {0}, dy = {0};
        int ok = 1;
        for (int i = 0; i < n_in; i++) {
            total += cases[t].ch[i];
            ok = ok && !pbuf_new(s, &x[i], pixels * cases[t].ch[i] * 4) &&
                 !pbuf_new(s, &dx[i], pixels * cases[t].ch[i] * 4) && !pbuf_random(s, &x[i], -1, 1);
        }
        ok = ok && !pbuf_new(s, &y, pixels * total * 4) && !pbuf_new(s, &dy, pixels * total * 4) &&
             !pbuf_random(s, &dy, -1, 1);
        if (ok) {
            char shape[96];
            snprintf(shape, sizeof shape, "%zu px, %d inputs -> %d ch", pixels, n_in, total);
            const float *xs[2][4];
            float *dxs[2][4];
            for (int side = 0; side < 2; side++)
                for (int i = 0; i < n_in; i++) {
                    xs[side][i] = (const float *)(side ? x[i].gpu : x[i].cpu);
                    /* input 1's gradient is not wanted (a frozen branch) */
                    dxs[side][i] = i == 1 ? NULL : (float *)(side ? dx[i].gpu : dx[i].cpu);
                }
            pbuf_poison(s, &y);
            if (ON_BOTH(s, "concat_forward", shape,
                        wn_op_concat_forward(be, pixels, n_in, xs[side_], cases[t].ch, F(y),
                                           "parity_concat")))
                parity_compare(s, "concat_forward", shape, &y, 0.0);
            for (int acc = 0; acc < 2; acc++) {
                for (int i = 0; i < n_in; i++) {
                    if (acc) pbuf_random(s, &dx[i], -1, 1);
                    else pbuf_poison(s, &dx[i]);
                }
                if (!ON_BOTH(s, "concat_backward", shape,
                             wn_op_concat_backward(be, pixels, n_in, F(dy), cases[t].ch, dxs[side_],
                                                 acc, "parity_concat")))
                    continue;
                for (int i = 0; i < n_in; i++) {
                    if (i == 1) {
                        /* untouched: still NaN (or the random values) on both sides */
                        if (acc) parity_compare(s, "concat_backward skipped input", shape, &dx[i], 0.0);
                        continue;
                    }
                    parity_compare(s, acc ? "concat_backward+=" : "concat_backward", shape, &dx[i],
                                   acc ? s->tol_elementwise : 0.0);
                }
            }
        }
        for (int i = 0; i < n_in; i++) pbuf_free(s, &x[i]), pbuf_free(s, &dx[i]);
        pbuf_free(s, &y), pbuf_free(s, &dy);
    }
}

/* ---------------------------------------------------------------- residual */

void parity_residual(parity_suite *s) {
    if (!parity_selected(s, "residual")) return;
    size_t counts[] = {1, 1001, 2 * 17 * 17 * 1088};
    float scales[] = {0.17f, 0.1f, 1.0f};
    for (int t = 0; t < 3; t++) {
        if (s->quick && t == 2) continue;
        size_t count = counts[t];
        float scale = scales[t];
        char shape[64];
        snprintf(shape, sizeof shape, "%zu scale %g", count, (double)scale);
        pbuf x = {0}, r = {0}, y = {0}, dy = {0}, dx = {0}, dr = {0};
        if (pbuf_new(s, &x, count * 4) || pbuf_new(s, &r, count * 4) || pbuf_new(s, &y, count * 4) ||
            pbuf_new(s, &dy, count * 4) || pbuf_new(s, &dx, count * 4) || pbuf_new(s, &dr, count * 4) ||
            pbuf_random(s, &x, -2, 2) || pbuf_random(s, &r, -2, 2) || pbuf_random(s, &dy, -1, 1))
            goto next;
        pbuf_poison(s, &y);
        if (ON_BOTH(s, "residual_forward", shape,
                    wn_op_scaled_add(be, count, F(x), F(r), scale, F(y), "parity_res")))
            parity_compare(s, "residual_forward", shape, &y, s->tol_elementwise);
        for (int variant = 0; variant < 4; variant++) { /* both, dx only, dr only, both += */
            int acc = variant == 3, want_dx = variant != 2, want_dr = variant != 1;
            if (acc) pbuf_random(s, &dx, -1, 1), pbuf_random(s, &dr, -1, 1);
            else pbuf_poison(s, &dx), pbuf_poison(s, &dr);
            if (!ON_BOTH(s, "residual_backward", shape,
                         wn_op_scaled_add_backward(be, count, F(dy), scale, want_dx ? F(dx) : NULL,
                                               want_dr ? F(dr) : NULL, acc, "parity_res")))
                continue;
            if (want_dx) parity_compare(s, acc ? "residual_backward dx+=" : "residual_backward dx", shape, &dx, s->tol_elementwise);
            if (want_dr) parity_compare(s, acc ? "residual_backward dr+=" : "residual_backward dr", shape, &dr, s->tol_elementwise);
        }
        /* dx aliasing dy (the executor passes the gradient through in place) */
        pbuf_poison(s, &dr);
        if (ON_BOTH(s, "residual_backward alias", shape,
                    wn_op_scaled_add_backward(be, count, F(dy), scale, F(dy), F(dr), 0, "parity_res"))) {
            parity_compare(s, "residual_backward alias dr", shape, &dr, s->tol_elementwise);
            parity_compare(s, "residual_backward alias dx", shape, &dy, 0.0);
        }
    next:
        pbuf_free(s, &x), pbuf_free(s, &r), pbuf_free(s, &y), pbuf_free(s, &dy);
        pbuf_free(s, &dx), pbuf_free(s, &dr);
    }
}

/* ---------------------------------------------------------------- GAP */

void parity_gap(parity_suite *s) {
    if (!parity_selected(s, "gap")) return;
    struct { int n, hw, c, quick; } cases[] = {
        {1, 1, 1, 1}, {3, 17 * 17, 33, 1}, {2, 64, 1536, 0}, {64, 64, 1536, 0}, {64, 100, 1536, 0}};
    for (unsigned t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        if (s->quick && !cases[t].quick) continue;
        int n = cases[t].n, hw = cases[t].hw, c = cases[t].c;
        size_t nx = (size_t)n * hw * c, ny = (size_t)n * c;
        char shape[64];
        snprintf(shape, sizeof shape, "n%d hw%d c%d", n, hw, c);
        pbuf x = {0}, y = {0}, dy = {0}, dx = {0};
        if (pbuf_new(s, &x, nx * 4) || pbuf_new(s, &y, ny * 4) || pbuf_new(s, &dy, ny * 4) ||
            pbuf_new(s, &dx, nx * 4) || pbuf_random(s, &x, -1, 3) || pbuf_random(s, &dy, -1, 1))
            goto next;
        pbuf_poison(s, &y);
        if (ON_BOTH(s, "gap_forward", shape, wn_op_gap_forward(be, n, hw, c, F(x), F(y), "parity_gap")))
            parity_compare(s, "gap_forward", shape, &y, s->tol_elementwise);
        for (int acc = 0; acc < 2; acc++) {
            if (acc) pbuf_random(s, &dx, -1, 1);
            else pbuf_poison(s, &dx);
            if (ON_BOTH(s, "gap_backward", shape,
                        wn_op_gap_backward(be, n, hw, c, F(dy), F(dx), acc, "parity_gap")))
                parity_compare(s, acc ? "gap_backward+=" : "gap_backward", shape, &dx,
                               s->tol_elementwise);
        }
    next:
        pbuf_free(s, &x), pbuf_free(s, &y), pbuf_free(s, &dy), pbuf_free(s, &dx);
    }
}

/* ---------------------------------------------------------------- dropout */

void parity_dropout(parity_suite *s) {
    if (!parity_selected(s, "dropout")) return;
    size_t counts[] = {1, 1000, 64 * 1536};
    float rates[] = {0.2f, 0.5f, 0.0f};
    for (int t = 0; t < 3; t++) {
        size_t count = counts[t];
        pbuf x = {0}, y = {0}, dy = {0}, dx = {0};
        if (pbuf_new(s, &x, count * 4) || pbuf_new(s, &y, count * 4) || pbuf_new(s, &dy, count * 4) ||
            pbuf_new(s, &dx, count * 4) || pbuf_random(s, &x, -1, 1) || pbuf_random(s, &dy, -1, 1))
            goto next;
        for (int r = 0; r < 3; r++) {
            uint64_t seed = parity_rand_u64(), offset = r == 1 ? 123457 : 0;
            char shape[96];
            snprintf(shape, sizeof shape, "%zu rate %.1f offset %llu", count, (double)rates[r],
                     (unsigned long long)offset);
            pbuf_poison(s, &y);
            /* the masks must agree exactly: a different mask is a large error */
            if (ON_BOTH(s, "dropout_forward", shape,
                        wn_op_dropout_forward(be, count, rates[r], seed, offset, F(x), F(y),
                                            "parity_dropout")))
                parity_compare(s, "dropout_forward", shape, &y, s->tol_elementwise);
            for (int acc = 0; acc < 2; acc++) {
                if (acc) pbuf_random(s, &dx, -1, 1);
                else pbuf_poison(s, &dx);
                if (ON_BOTH(s, "dropout_backward", shape,
                            wn_op_dropout_backward(be, count, rates[r], seed, offset, F(dy), F(dx),
                                                 acc, "parity_dropout")))
                    parity_compare(s, acc ? "dropout_backward+=" : "dropout_backward", shape, &dx,
                                   s->tol_elementwise);
            }
        }
    next:
        pbuf_free(s, &x), pbuf_free(s, &y), pbuf_free(s, &dy), pbuf_free(s, &dx);
    }
}

/* ---------------------------------------------------------------- loss */

void parity_softmax_xent(parity_suite *s) {
    if (!parity_selected(s, "softmax_xent")) return;
    struct { int n, k; } cases[] = {{1, 6}, {7, 6}, {64, 6}, {64, 1000}, {300, 6}};
    for (unsigned t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        int n = cases[t].n, k = cases[t].k;
        size_t nz = (size_t)n * k;
        pbuf z = {0}, labels = {0}, probs = {0}, dz = {0}, stats = {0};
        if (pbuf_new(s, &z, nz * 4) || pbuf_new(s, &labels, n * 4) || pbuf_new(s, &probs, nz * 4) ||
            pbuf_new(s, &dz, nz * 4) || pbuf_new(s, &stats, 2 * 4) || pbuf_random(s, &z, -5, 5))
            goto next;
        int32_t *lab = (int32_t *)labels.host;
        for (int i = 0; i < n; i++) lab[i] = (int32_t)(parity_rand_u64() % (uint64_t)k);
        if (pbuf_upload(s, &labels)) goto next;
        for (int variant = 0; variant < 3; variant++) {
            char shape[64];
            snprintf(shape, sizeof shape, "n%d k%d%s", n, k,
                     variant == 1 ? " (loss only)" : variant == 2 ? " (label smoothing 0.1)" : "");
            /* stats accumulate: start from the same non-zero totals */
            float *st = (float *)stats.host;
            st[0] = 1.5f, st[1] = 2.0f;
            pbuf_upload(s, &stats);
            pbuf_poison(s, &probs), pbuf_poison(s, &dz);
            if (!ON_BOTH(s, "softmax_xent", shape,
                         wn_op_softmax_xent(be, n, k, F(z), (const int32_t *)P(labels),
                                          variant == 2 ? 0.1f : 0.0f, (float)n,
                                          variant == 1 ? NULL : F(probs),
                                          variant == 1 ? NULL : F(dz), F(stats))))
                continue;
            parity_compare(s, "softmax_xent stats", shape, &stats, s->tol_elementwise);
            if (variant != 1) {
                parity_compare(s, "softmax_xent probs", shape, &probs, s->tol_elementwise);
                parity_compare(s, "softmax_xent dlogits", shape, &dz, s->tol_elementwise);
            }
        }
    next:
        pbuf_free(s, &z), pbuf_free(s, &labels), pbuf_free(s, &probs), pbuf_free(s, &dz);
        pbuf_free(s, &stats);
    }
}

/* ---------------------------------------------------------------- Adam */

void parity_adam(parity_suite *s) {
    if (!parity_selected(s, "adam")) return;
    size_t counts[] = {1, 1001, 100003};
    long steps[] = {1, 7};
    for (int t = 0; t < 3; t++)
        for (int si = 0; si < 2; si++) {
            size_t count = counts[t];
            char shape[64];
            snprintf(shape, sizeof shape, "%zu params t=%ld", count, steps[si]);
            pbuf p = {0}, g = {0}, m = {0}, v = {0};
            if (pbuf_new(s, &p, count * 4) || pbuf_new(s, &g, count * 4) ||
                pbuf_new(s, &m, count * 4) || pbuf_new(s, &v, count * 4) ||
                pbuf_random(s, &p, -1, 1) || pbuf_random(s, &g, -0.1f, 0.1f) ||
                pbuf_random(s, &m, -0.01f, 0.01f) || pbuf_random(s, &v, 0, 1e-4f))
                goto next;
            if (ON_BOTH(s, "adam_update", shape,
                        wn_op_adam_update(be, count, F(p), F(g), F(m), F(v),
                                          &WN_ADAM_KERAS(1e-4f), steps[si]))) {
                parity_compare(s, "adam_update p", shape, &p, s->tol_elementwise);
                parity_compare(s, "adam_update m", shape, &m, s->tol_elementwise);
                parity_compare(s, "adam_update v", shape, &v, s->tol_elementwise);
            }
        next:
            pbuf_free(s, &p), pbuf_free(s, &g), pbuf_free(s, &m), pbuf_free(s, &v);
        }
}

/* ---------------------------------------------------------------- augmentation */

void parity_augment(parity_suite *s) {
    if (!parity_selected(s, "augment")) return;
    struct { int n, h, w, c, quick; } cases[] = {
        {1, 5, 7, 3, 1}, {3, 32, 33, 3, 1}, {4, 75, 75, 3, 0}, {2, 320, 320, 3, 0}};
    for (unsigned t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        if (s->quick && !cases[t].quick) continue;
        int n = cases[t].n, h = cases[t].h, w = cases[t].w, c = cases[t].c;
        size_t count = (size_t)n * h * w * c;
        pbuf x = {0}, y = {0};
        if (pbuf_new(s, &x, count) || pbuf_new(s, &y, count * 4)) goto next;
        uint8_t *px = (uint8_t *)x.host;
        for (size_t i = 0; i < count; i++) px[i] = (uint8_t)(parity_rand_u64() & 255);
        if (pbuf_upload(s, &x)) goto next;
        uint8_t flips[8];
        float angles[8];
        for (int i = 0; i < n; i++) {
            flips[i] = (uint8_t)(parity_rand_u64() & 1);
            /* image 0 unrotated (the copy path), the rest in Keras's +-0.2 turn */
            angles[i] = i == 0 ? 0.0f : parity_uniform(-1.2566371f, 1.2566371f);
        }
        /* flips+angles, no angles, neither; each preprocess_input mode */
        for (int variant = 0; variant < 9; variant++) {
            int mode = variant / 3, v = variant % 3;
            static const char *modes[] = {"tf", "caffe", "torch"};
            char shape[96];
            snprintf(shape, sizeof shape, "n%d %dx%dx%d %s %s", n, h, w, c,
                     v == 0 ? "flip+rotate" : v == 1 ? "flip only" : "preprocess only",
                     modes[mode]);
            pbuf_poison(s, &y);
            /* one transform, two launchers: the same bits are required */
            if (ON_BOTH(s, "augment_preprocess", shape,
                        wn_op_augment_preprocess(be, n, h, w, c, (const uint8_t *)P(x),
                                               v < 2 ? flips : NULL, v == 0 ? angles : NULL,
                                               F(y), mode)))
                parity_compare(s, "augment_preprocess", shape, &y, 0.0);
        }
    next:
        pbuf_free(s, &x), pbuf_free(s, &y);
    }
}
