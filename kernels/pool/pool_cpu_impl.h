/* kernels/pool/pool_cpu_impl.h — the CPU backend's pooling loops, written once for both
 * storage types: pool_cpu.c (float32) and pool_bf16_cpu.c (bf16 storage, float32 math)
 * each define the macros below and include this file once.
 *
 *   WN_POOL_T                  element type in memory (float, wn_bf16)
 *   WN_POOL_LOAD(v)            element -> float (exact)
 *   WN_POOL_STORE(p, i, v)     p[i] = v (bf16: rounded once)
 *   WN_POOL_STORE_GRAD(p, i, g, acc)  p[i] = g, or p[i] + g when accumulating
 *   WN_POOL_DIRECT             1 when the backward may scatter straight into dx
 *                              (float32 without accumulation), else 0
 *   WN_POOL_NAME(name)         name with the type's suffix (the entry points are
 *                              WN_POOL_NAME(wn_cpu_pool_forward), ..._backward)
 *
 * Results equal the element functions of kernels/pool/pool.h bit for bit (what the
 * CUDA kernels run; tests/ops/test_pool_exact.c):
 *  - forward: per channel the same first cell, the same row-major scan and, for the
 *    average, the same sum from 0 and one division;
 *  - backward: wn_pool_max_dx_at / wn_pool_avg_dx_at sum each input cell's
 *    contributions from 0 in increasing (oy, ox) order, then store g or dx + g once.
 *    The scatter below walks the outputs in that order, adding to a zeroed float32
 *    image (dx itself, or per-thread scratch), then stores once: the same additions
 *    in the same order, with the window's argmax found once per output instead of
 *    once per covering output and input cell.
 * The inner loops run over channels (independent lanes, no reassociation), so GCC
 * vectorises them in each WN_CPU_CLONES copy (one output row, one image's channel
 * block); the entry points' OpenMP loops call those.
 */
#include <omp.h>
#include <stddef.h>

#include "host/base/error.h"
#include "kernels/common/cpu_ctx.h"
#include "kernels/common/cpu_simd.h"
#include "kernels/pool/pool.h"

#ifndef WN_POOL_CB
/* channels per stack block of the per-output accumulators */
#define WN_POOL_CB 64
#endif

/* One output row (n, oy) of the forward pass. */
WN_CPU_CLONES static void WN_POOL_NAME(pool_fwd_row)(const wn_window *win, wn_pool_kind kind,
                                                     const WN_POOL_T *x, WN_POOL_T *y, int n,
                                                     int oy) {
    const int C = win->c;
    int y0, y1;
    wn_pool_span(oy, win->sh, win->pad_top, win->kh, win->h, &y0, &y1);
    for (int ox = 0; ox < win->ow; ox++) {
        int x0, x1;
        wn_pool_span(ox, win->sw, win->pad_left, win->kw, win->w, &x0, &x1);
        WN_POOL_T *out = y + wn_nhwc_index(n, oy, ox, 0, win->oh, win->ow, C);
        float div = (float)((y1 - y0) * (x1 - x0)); /* wn_pool_avg_divisor */
        for (int c0 = 0; c0 < C; c0 += WN_POOL_CB) {
            const int cn = C - c0 < WN_POOL_CB ? C - c0 : WN_POOL_CB;
            float acc[WN_POOL_CB];
            if (kind == WN_POOL_MAX) {
                const WN_POOL_T *first = x + wn_nhwc_index(n, y0, x0, c0, win->h, win->w, C);
                for (int j = 0; j < cn; j++) acc[j] = WN_POOL_LOAD(first[j]);
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++) {
                        const WN_POOL_T *in = x + wn_nhwc_index(n, iy, ix, c0, win->h, win->w, C);
                        for (int j = 0; j < cn; j++) {
                            float v = WN_POOL_LOAD(in[j]);
                            acc[j] = v > acc[j] ? v : acc[j]; /* NaN never replaces */
                        }
                    }
                for (int j = 0; j < cn; j++) WN_POOL_STORE(out, c0 + j, acc[j]);
            } else {
                for (int j = 0; j < cn; j++) acc[j] = 0.0f;
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++) {
                        const WN_POOL_T *in = x + wn_nhwc_index(n, iy, ix, c0, win->h, win->w, C);
                        for (int j = 0; j < cn; j++) acc[j] += WN_POOL_LOAD(in[j]);
                    }
                for (int j = 0; j < cn; j++) WN_POOL_STORE(out, c0 + j, acc[j] / div);
            }
        }
    }
}

/* Backward of image n, channels [c0, c0 + cn): scatter into t (pixel p's channel j at
 * t[p * ts + j]); `direct`: t is dx itself, else scratch then stored into dx. */
WN_CPU_CLONES static void WN_POOL_NAME(pool_bwd_block)(const wn_window *win, wn_pool_kind kind,
                                                       const WN_POOL_T *x, const WN_POOL_T *dy,
                                                       WN_POOL_T *dx, int accumulate, int n,
                                                       int c0, int cn, float *t, size_t ts,
                                                       int direct) {
    const int C = win->c, H = win->h, W = win->w;
    for (size_t p = 0; p < (size_t)H * W; p++)
        for (int j = 0; j < cn; j++) t[p * ts + j] = 0.0f;
    for (int oy = 0; oy < win->oh; oy++) {
        int y0, y1;
        wn_pool_span(oy, win->sh, win->pad_top, win->kh, H, &y0, &y1);
        for (int ox = 0; ox < win->ow; ox++) {
            int x0, x1;
            wn_pool_span(ox, win->sw, win->pad_left, win->kw, W, &x0, &x1);
            const WN_POOL_T *g = dy + wn_nhwc_index(n, oy, ox, c0, win->oh, win->ow, C);
            float div = (float)((y1 - y0) * (x1 - x0)); /* wn_pool_avg_divisor */
            for (int b0 = 0; b0 < cn; b0 += WN_POOL_CB) {
                const int bn = cn - b0 < WN_POOL_CB ? cn - b0 : WN_POOL_CB;
                if (kind == WN_POOL_MAX) {
                    /* wn_pool_max_argmax per lane: the first maximum in scan order */
                    float m[WN_POOL_CB];
                    int best[WN_POOL_CB];
                    const WN_POOL_T *first = x + wn_nhwc_index(n, y0, x0, c0 + b0, H, W, C);
                    for (int j = 0; j < bn; j++) m[j] = WN_POOL_LOAD(first[j]), best[j] = y0 * W + x0;
                    for (int iy = y0; iy < y1; iy++)
                        for (int ix = x0; ix < x1; ix++) {
                            const WN_POOL_T *in = x + wn_nhwc_index(n, iy, ix, c0 + b0, H, W, C);
                            const int here = iy * W + ix;
                            for (int j = 0; j < bn; j++) {
                                float v = WN_POOL_LOAD(in[j]);
                                int gt = v > m[j];
                                m[j] = gt ? v : m[j];
                                best[j] = gt ? here : best[j];
                            }
                        }
                    for (int j = 0; j < bn; j++)
                        t[(size_t)best[j] * ts + b0 + j] += WN_POOL_LOAD(g[b0 + j]);
                } else {
                    /* dy / divisor per term, as wn_pool_avg_dx_at adds it */
                    float q[WN_POOL_CB];
                    for (int j = 0; j < bn; j++) q[j] = WN_POOL_LOAD(g[b0 + j]) / div;
                    for (int iy = y0; iy < y1; iy++)
                        for (int ix = x0; ix < x1; ix++) {
                            float *o = t + (size_t)(iy * W + ix) * ts + b0;
                            for (int j = 0; j < bn; j++) o[j] += q[j];
                        }
                }
            }
        }
    }
    if (direct) return;
    for (size_t p = 0; p < (size_t)H * W; p++) {
        WN_POOL_T *out = dx + ((size_t)n * H * W + p) * C + c0;
        const float *s = t + p * ts;
        for (int j = 0; j < cn; j++) WN_POOL_STORE_GRAD(out, j, s[j], accumulate);
    }
}

int WN_POOL_NAME(wn_cpu_pool_forward)(wn_backend *be, const wn_window *win, wn_pool_kind kind,
                                      const WN_POOL_T *x, WN_POOL_T *y, const char *layer) {
    (void)be, (void)layer;
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < win->n; n++)
        for (int oy = 0; oy < win->oh; oy++) WN_POOL_NAME(pool_fwd_row)(win, kind, x, y, n, oy);
    return WN_OK;
}

/* Work items are (image, channel block); a block is a multiple of 16 channels, split
 * only as far as needed to give every thread an item (a batch of 1 still runs on all
 * threads). No two items write the same dx element. */
int WN_POOL_NAME(wn_cpu_pool_backward)(wn_backend *be, const wn_window *win, wn_pool_kind kind,
                                       const WN_POOL_T *x, const WN_POOL_T *y,
                                       const WN_POOL_T *dy, WN_POOL_T *dx, int accumulate,
                                       const char *layer) {
    (void)y; /* the argmax is found again from x: y is not needed */
    const int C = win->c, N = win->n, threads = omp_get_max_threads();
    int blocks = (threads + N - 1) / N, most = (C + 15) / 16;
    if (blocks > most) blocks = most;
    if (blocks < 1) blocks = 1;
    int cb = (C + blocks - 1) / blocks;
    if (blocks > 1) cb = (cb + 15) / 16 * 16;
    blocks = (C + cb - 1) / cb;
    const size_t pixels = (size_t)win->h * win->w;
    float *scratch = NULL;
    if (!WN_POOL_DIRECT || accumulate) {
        wn_cpu_ctx *ctx = be->ctx;
        /* stage[] holds nothing between ops: op-local scratch */
        if (wn_cpu_buffer_reserve(&ctx->stage[0], (size_t)threads * pixels * cb * sizeof(float),
                                  "pooling gradient scratch") != WN_OK)
            return wn_fail_context("%s: ", layer ? layer : "pool_backward");
        scratch = ctx->stage[0].p;
    }
    const int items = N * blocks;
#pragma omp parallel for schedule(static)
    for (int it = 0; it < items; it++) {
        int n = it / blocks, c0 = it % blocks * cb, cn = C - c0 < cb ? C - c0 : cb;
        float *t = NULL;
        size_t ts = (size_t)cn;
        if (scratch) t = scratch + (size_t)omp_get_thread_num() * pixels * cb;
#if WN_POOL_DIRECT
        else t = dx + wn_nhwc_index(n, 0, 0, c0, win->h, win->w, C), ts = (size_t)C;
#endif
        WN_POOL_NAME(pool_bwd_block)(win, kind, x, dy, dx, accumulate, n, c0, cn, t, ts,
                                     scratch == NULL);
    }
    return WN_OK;
}
