/* kernels/pool/pool_cpu.c — the CPU backend's max/average pooling (TensorFlow windows; average excludes padding): an OpenMP loop over the
 * element functions of kernels/pool/pool.h, the formulas the CUDA kernel runs too. */
#include <omp.h>
#include <string.h>

#include "host/base/error.h"
#include "kernels/common/cpu_ctx.h"
#include "kernels/pool/pool.h"

int wn_cpu_pool_forward(wn_backend *be, const wn_window *win, wn_pool_kind kind,
                        const float *x, float *y, const char *layer) {
    (void)be;
    (void)layer;
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
    (void)layer;
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

