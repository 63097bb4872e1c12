/* kernels/pool/pool_bf16_cpu.c — the CPU backend's bf16 max/average pooling.
 *
 * Forward: pool_cpu.c's loop loading bf16 (max picks a stored value, so it is exact;
 * the average sums in float in scan order and rounds once). Backward: the element
 * functions of kernels/pool/pool.h read float arrays, so x and dy are widened to
 * float32 staging copies (exact) and the per-element gathers run unchanged, each
 * result rounded to bf16 once. Pooling layers are a handful per backbone; the copies
 * cost less than a second set of index functions would in upkeep. */
#include "host/base/error.h"
#include "kernels/common/bf16.h"
#include "kernels/common/cpu_ctx.h"
#include "kernels/pool/pool.h"

int wn_cpu_pool_forward_bf16(wn_backend *be, const wn_window *win, wn_pool_kind kind,
                             const wn_bf16 *x, wn_bf16 *y, const char *layer) {
    (void)be, (void)layer;
    const int C = win->c;
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < win->n; n++)
        for (int oy = 0; oy < win->oh; oy++) {
            int y0, y1;
            wn_pool_span(oy, win->sh, win->pad_top, win->kh, win->h, &y0, &y1);
            for (int ox = 0; ox < win->ow; ox++) {
                int x0, x1;
                wn_pool_span(ox, win->sw, win->pad_left, win->kw, win->w, &x0, &x1);
                wn_bf16 *out = y + wn_nhwc_index(n, oy, ox, 0, win->oh, win->ow, C);
                float div = (float)wn_pool_avg_divisor(win, oy, ox);
                for (int ch = 0; ch < C; ch++) {
                    float m = wn_bf16_to_f32(x[wn_nhwc_index(n, y0, x0, ch, win->h, win->w, C)]);
                    float s = 0.0f;
                    for (int iy = y0; iy < y1; iy++)
                        for (int ix = x0; ix < x1; ix++) {
                            float v = wn_bf16_to_f32(x[wn_nhwc_index(n, iy, ix, ch, win->h, win->w, C)]);
                            if (v > m) m = v;
                            s += v;
                        }
                    out[ch] = wn_bf16_from_f32(kind == WN_POOL_MAX ? m : s / div);
                }
            }
        }
    return WN_OK;
}

int wn_cpu_pool_backward_bf16(wn_backend *be, const wn_window *win, wn_pool_kind kind,
                              const wn_bf16 *x, const wn_bf16 *y, const wn_bf16 *dy,
                              wn_bf16 *dx, int accumulate, const char *layer) {
    const char *who = layer ? layer : "pool_backward";
    (void)y;
    wn_cpu_ctx *ctx = be->ctx;
    const int C = win->c;
    size_t nx = (size_t)win->n * win->h * win->w * C, ny = (size_t)win->n * win->oh * win->ow * C;
    if (wn_cpu_buffer_reserve(&ctx->stage[0], nx * sizeof(float), "bf16 staging") != WN_OK ||
        wn_cpu_buffer_reserve(&ctx->stage[1], ny * sizeof(float), "bf16 staging") != WN_OK)
        return wn_fail_context("%s: ", who);
    float *xf = ctx->stage[0].p, *dyf = ctx->stage[1].p;
    if (kind == WN_POOL_MAX) {
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < nx; i++) xf[i] = wn_bf16_to_f32(x[i]);
    }
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < ny; i++) dyf[i] = wn_bf16_to_f32(dy[i]);
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < win->n; n++)
        for (int iy = 0; iy < win->h; iy++)
            for (int ix = 0; ix < win->w; ix++) {
                size_t base = wn_nhwc_index(n, iy, ix, 0, win->h, win->w, C);
                for (int ch = 0; ch < C; ch++) {
                    float g = kind == WN_POOL_MAX ? wn_pool_max_dx_at(win, xf, dyf, n, iy, ix, ch)
                                                  : wn_pool_avg_dx_at(win, dyf, n, iy, ix, ch);
                    wn_bf16_store(dx, base + ch, g, accumulate);
                }
            }
    return WN_OK;
}
