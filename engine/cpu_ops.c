/* engine/cpu_ops.c — the CPU backend's memory-bound ops: per-channel affine +
 * activation, max/average pooling, channel concatenation, the residual scale,
 * global average pooling and dropout.
 *
 * Each is an OpenMP loop over the element functions in kernels/ (one header per family), the same
 * formulas the CUDA kernels run. Reductions (dbeta, GAP) keep per-thread partial
 * sums in double in a reusable buffer and combine them in thread order, so a
 * result does not depend on timing (static schedules, fixed thread count).
 */
#include <omp.h>
#include <string.h>

#include "engine/cpu_internal.h"
#include "engine/error.h"
#include "kernels/affine_act.h"
#include "kernels/dropout.h"
#include "kernels/pool.h"
#include "kernels/residual.h"

/* ---------------------------------------------------------------- affine + act */

static int check_act(wn_activation act, const char *who) {
    if (act != WN_ACT_NONE && act != WN_ACT_RELU && act != WN_ACT_RELU6)
        return wn_fail("%s: unknown activation %d", who, (int)act);
    return WN_OK;
}

int wn_cpu_affine_act_forward(wn_backend *be, size_t count, int c, const float *x,
                              const float *scale, const float *shift, wn_activation act,
                              float *y, const char *layer) {
    (void)be;
    const char *who = layer ? layer : "affine_act_forward";
    if (c < 1 || count % (size_t)c) return wn_fail("%s: %zu elements are not a multiple of %d channels", who, count, c);
    if (check_act(act, who) != WN_OK) return WN_ERR;
    size_t pixels = count / (size_t)c;
    int a = (int)act;
#pragma omp parallel for schedule(static)
    for (size_t p = 0; p < pixels; p++) {
        const float *xp = x + p * c;
        float *yp = y + p * c;
        if (scale || shift) {
            for (int ch = 0; ch < c; ch++)
                yp[ch] = wn_affine_act_forward(xp[ch], scale ? scale[ch] : 1.0f,
                                               shift ? shift[ch] : 0.0f, a);
        } else {
            for (int ch = 0; ch < c; ch++) yp[ch] = wn_act_apply(xp[ch], a);
        }
    }
    return WN_OK;
}

int wn_cpu_affine_act_backward(wn_backend *be, size_t count, int c, const float *y,
                               const float *dy, const float *scale, wn_activation act,
                               float *dx, int accumulate, float *dshift, const char *layer) {
    const char *who = layer ? layer : "affine_act_backward";
    if (c < 1 || count % (size_t)c) return wn_fail("%s: %zu elements are not a multiple of %d channels", who, count, c);
    if (check_act(act, who) != WN_OK) return WN_ERR;
    wn_cpu_ctx *ctx = be->ctx;
    size_t pixels = count / (size_t)c;
    int a = (int)act, max_threads = omp_get_max_threads();
    double *partial = NULL;
    if (dshift) {
        if (wn_cpu_buffer_reserve(&ctx->partial, (size_t)max_threads * c * sizeof(double),
                                  "reduction") != WN_OK)
            return wn_fail_context("%s: ", who);
        partial = ctx->partial.p;
        memset(partial, 0, (size_t)max_threads * c * sizeof(double));
    }
#pragma omp parallel
    {
        double *acc = partial ? partial + (size_t)omp_get_thread_num() * c : NULL;
#pragma omp for schedule(static)
        for (size_t p = 0; p < pixels; p++) {
            const float *yp = y + p * c, *gp = dy + p * c;
            float *dxp = dx ? dx + p * c : NULL;
            for (int ch = 0; ch < c; ch++) {
                float g = wn_act_grad(yp[ch], gp[ch], a);
                if (acc) acc[ch] += g;
                if (dxp) {
                    float v = wn_affine_act_dx(g, scale ? scale[ch] : 1.0f);
                    dxp[ch] = accumulate ? dxp[ch] + v : v;
                }
            }
        }
    }
    if (dshift) {
        for (int ch = 0; ch < c; ch++) {
            double s = 0.0;
            for (int t = 0; t < max_threads; t++) s += partial[(size_t)t * c + ch];
            dshift[ch] = (float)s;
        }
    }
    return WN_OK;
}

/* ---------------------------------------------------------------- pooling */

static int check_pool(const wn_window *win, wn_pool_kind kind, const char *who) {
    if (kind != WN_POOL_MAX && kind != WN_POOL_AVG)
        return wn_fail("%s: unknown pooling kind %d", who, (int)kind);
    if (win->oh < 1 || win->ow < 1 || win->pad_top >= win->kh || win->pad_left >= win->kw)
        return wn_fail("%s: invalid pooling geometry (output %dx%d, padding %d/%d for a %dx%d "
                       "window)", who, win->oh, win->ow, win->pad_top, win->pad_left, win->kh,
                       win->kw);
    return WN_OK;
}

int wn_cpu_pool_forward(wn_backend *be, const wn_window *win, wn_pool_kind kind,
                        const float *x, float *y, const char *layer) {
    (void)be;
    const char *who = layer ? layer : "pool_forward";
    if (check_pool(win, kind, who) != WN_OK) return WN_ERR;
    const int C = win->c;
    /* Vectorised over channels; per channel this is exactly wn_pool_max_at /
     * wn_pool_avg_at (same first cell, same scan order, same final division). */
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < win->n; n++)
        for (int oy = 0; oy < win->oh; oy++) {
            int y0, y1;
            wn_pool_span(oy, win->sh, win->pad_top, win->kh, win->h, &y0, &y1);
            for (int ox = 0; ox < win->ow; ox++) {
                int x0, x1;
                wn_pool_span(ox, win->sw, win->pad_left, win->kw, win->w, &x0, &x1);
                float *out = y + wn_nhwc_index(n, oy, ox, 0, win->oh, win->ow, C);
                if (kind == WN_POOL_MAX) {
                    const float *first = x + wn_nhwc_index(n, y0, x0, 0, win->h, win->w, C);
                    for (int ch = 0; ch < C; ch++) out[ch] = first[ch];
                    for (int iy = y0; iy < y1; iy++)
                        for (int ix = x0; ix < x1; ix++) {
                            const float *in = x + wn_nhwc_index(n, iy, ix, 0, win->h, win->w, C);
                            for (int ch = 0; ch < C; ch++)
                                if (in[ch] > out[ch]) out[ch] = in[ch];
                        }
                } else {
                    for (int ch = 0; ch < C; ch++) out[ch] = 0.0f;
                    for (int iy = y0; iy < y1; iy++)
                        for (int ix = x0; ix < x1; ix++) {
                            const float *in = x + wn_nhwc_index(n, iy, ix, 0, win->h, win->w, C);
                            for (int ch = 0; ch < C; ch++) out[ch] += in[ch];
                        }
                    float div = (float)wn_pool_avg_divisor(win, oy, ox);
                    for (int ch = 0; ch < C; ch++) out[ch] /= div;
                }
            }
        }
    return WN_OK;
}

int wn_cpu_pool_backward(wn_backend *be, const wn_window *win, wn_pool_kind kind,
                         const float *x, const float *y, const float *dy, float *dx,
                         int accumulate, const char *layer) {
    (void)be, (void)y;
    const char *who = layer ? layer : "pool_backward";
    if (check_pool(win, kind, who) != WN_OK) return WN_ERR;
    const int C = win->c;
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < win->n; n++)
        for (int iy = 0; iy < win->h; iy++)
            for (int ix = 0; ix < win->w; ix++) {
                float *out = dx + wn_nhwc_index(n, iy, ix, 0, win->h, win->w, C);
                for (int ch = 0; ch < C; ch++) {
                    float g = kind == WN_POOL_MAX ? wn_pool_max_dx_at(win, x, dy, n, iy, ix, ch)
                                                  : wn_pool_avg_dx_at(win, dy, n, iy, ix, ch);
                    out[ch] = accumulate ? out[ch] + g : g;
                }
            }
    return WN_OK;
}

/* ---------------------------------------------------------------- concatenation */

int wn_cpu_concat_forward(wn_backend *be, size_t pixels, int n_in, const float *const *x,
                          const int *channels, float *y, const char *layer) {
    (void)be;
    const char *who = layer ? layer : "concat_forward";
    int total = 0;
    for (int i = 0; i < n_in; i++) {
        if (channels[i] < 1) return wn_fail("%s: input %d has %d channels", who, i, channels[i]);
        total += channels[i];
    }
#pragma omp parallel for schedule(static)
    for (size_t p = 0; p < pixels; p++) {
        float *out = y + p * total;
        for (int i = 0; i < n_in; i++) {
            memcpy(out, x[i] + p * channels[i], (size_t)channels[i] * sizeof(float));
            out += channels[i];
        }
    }
    return WN_OK;
}

int wn_cpu_concat_backward(wn_backend *be, size_t pixels, int n_in, const float *dy,
                           const int *channels, float *const *dx, int accumulate,
                           const char *layer) {
    (void)be;
    const char *who = layer ? layer : "concat_backward";
    int total = 0;
    for (int i = 0; i < n_in; i++) {
        if (channels[i] < 1) return wn_fail("%s: input %d has %d channels", who, i, channels[i]);
        total += channels[i];
    }
#pragma omp parallel for schedule(static)
    for (size_t p = 0; p < pixels; p++) {
        const float *g = dy + p * total;
        for (int i = 0; i < n_in; i++) {
            int ci = channels[i];
            if (dx[i]) {
                float *out = dx[i] + p * ci;
                if (accumulate)
                    for (int ch = 0; ch < ci; ch++) out[ch] += g[ch];
                else
                    memcpy(out, g, (size_t)ci * sizeof(float));
            }
            g += ci;
        }
    }
    return WN_OK;
}

/* ---------------------------------------------------------------- residual */

int wn_cpu_residual_forward(wn_backend *be, size_t count, const float *x, const float *r,
                            float scale, float *y, const char *layer) {
    (void)be, (void)layer;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < count; i++) y[i] = wn_residual_forward(x[i], r[i], scale);
    return WN_OK;
}

int wn_cpu_residual_backward(wn_backend *be, size_t count, const float *dy, float scale,
                             float *dx, float *dr, int accumulate, const char *layer) {
    (void)be, (void)layer;
    /* dr first: dx may alias dy (the gradient passes through unchanged). */
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < count; i++) {
        float g = dy[i];
        if (dr) dr[i] = accumulate ? dr[i] + wn_residual_dr(g, scale) : wn_residual_dr(g, scale);
        if (dx) dx[i] = accumulate ? dx[i] + g : g;
    }
    return WN_OK;
}

/* ---------------------------------------------------------------- global average pooling */

int wn_cpu_gap_forward(wn_backend *be, int n, int hw, int c, const float *x, float *y,
                       const char *layer) {
    const char *who = layer ? layer : "gap_forward";
    if (n < 1 || hw < 1 || c < 1) return wn_fail("%s: invalid shape %dx%dx%d", who, n, hw, c);
    wn_cpu_ctx *ctx = be->ctx;
    int max_threads = omp_get_max_threads();
    if (wn_cpu_buffer_reserve(&ctx->partial, (size_t)max_threads * c * sizeof(double),
                              "reduction") != WN_OK)
        return wn_fail_context("%s: ", who);
    double *partial = ctx->partial.p;
#pragma omp parallel
    {
        double *acc = partial + (size_t)omp_get_thread_num() * c;
#pragma omp for schedule(static)
        for (int i = 0; i < n; i++) {
            for (int ch = 0; ch < c; ch++) acc[ch] = 0.0;
            const float *xi = x + (size_t)i * hw * c;
            for (int p = 0; p < hw; p++)
                for (int ch = 0; ch < c; ch++) acc[ch] += xi[(size_t)p * c + ch];
            for (int ch = 0; ch < c; ch++) y[(size_t)i * c + ch] = (float)(acc[ch] / hw);
        }
    }
    return WN_OK;
}

int wn_cpu_gap_backward(wn_backend *be, int n, int hw, int c, const float *dy, float *dx,
                        int accumulate, const char *layer) {
    (void)be;
    const char *who = layer ? layer : "gap_backward";
    if (n < 1 || hw < 1 || c < 1) return wn_fail("%s: invalid shape %dx%dx%d", who, n, hw, c);
    float fhw = (float)hw;
#pragma omp parallel for collapse(2) schedule(static)
    for (int i = 0; i < n; i++)
        for (int p = 0; p < hw; p++) {
            const float *g = dy + (size_t)i * c;
            float *out = dx + ((size_t)i * hw + p) * c;
            for (int ch = 0; ch < c; ch++) {
                float v = g[ch] / fhw;
                out[ch] = accumulate ? out[ch] + v : v;
            }
        }
    return WN_OK;
}

/* ---------------------------------------------------------------- dropout */

static int check_rate(float rate, const char *who) {
    if (!(rate >= 0.0f && rate < 1.0f))
        return wn_fail("%s: dropout rate %g is outside [0, 1)", who, (double)rate);
    return WN_OK;
}

int wn_cpu_dropout_forward(wn_backend *be, size_t count, float rate, uint64_t seed,
                           uint64_t offset, const float *x, float *y, const char *layer) {
    (void)be;
    const char *who = layer ? layer : "dropout_forward";
    if (check_rate(rate, who) != WN_OK) return WN_ERR;
    float scale = wn_dropout_scale(rate);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < count; i++) y[i] = wn_dropout_apply(x[i], seed, offset + i, rate, scale);
    return WN_OK;
}

int wn_cpu_dropout_backward(wn_backend *be, size_t count, float rate, uint64_t seed,
                            uint64_t offset, const float *dy, float *dx, int accumulate,
                            const char *layer) {
    (void)be;
    const char *who = layer ? layer : "dropout_backward";
    if (check_rate(rate, who) != WN_OK) return WN_ERR;
    float scale = wn_dropout_scale(rate);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < count; i++) {
        float v = wn_dropout_apply(dy[i], seed, offset + i, rate, scale);
        dx[i] = accumulate ? dx[i] + v : v;
    }
    return WN_OK;
}
