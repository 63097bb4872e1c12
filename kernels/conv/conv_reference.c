/* kernels/conv/conv_reference.c — the double-precision reference convolution (tests only).
 *
 * Each function loops over its *output* element and sums every term that touches it
 * in double, so the three directions are independent formulations of the same
 * index relation: input row iy = oy*sh - pad_top + ky, column ix = ox*sw - pad_left + kx,
 * input channel g*(C/G) + ci feeds output channel g*(K/G) + ko.
 */
#include "kernels/conv/conv_reference.h"

#include <stddef.h>

static int groups_of(const wn_conv_desc *d) { return d->groups < 1 ? 1 : d->groups; }

void wn_conv_reference_forward(const wn_conv_desc *d, const float *x, const float *w,
                               const float *bias, float *y) {
    const wn_window *v = &d->win;
    int G = groups_of(d), cg = v->c / G, kg = d->k / G;
    for (int n = 0; n < v->n; n++)
        for (int oy = 0; oy < v->oh; oy++)
            for (int ox = 0; ox < v->ow; ox++)
                for (int k = 0; k < d->k; k++) {
                    int g = k / kg;
                    double s = bias ? bias[k] : 0.0;
                    for (int ky = 0; ky < v->kh; ky++) {
                        int iy = oy * v->sh - v->pad_top + ky;
                        if (iy < 0 || iy >= v->h) continue;
                        for (int kx = 0; kx < v->kw; kx++) {
                            int ix = ox * v->sw - v->pad_left + kx;
                            if (ix < 0 || ix >= v->w) continue;
                            for (int ci = 0; ci < cg; ci++) {
                                double xv = x[(((size_t)n * v->h + iy) * v->w + ix) * v->c + g * cg + ci];
                                double wv = w[(((size_t)ky * v->kw + kx) * cg + ci) * d->k + k];
                                s += xv * wv;
                            }
                        }
                    }
                    y[(((size_t)n * v->oh + oy) * v->ow + ox) * d->k + k] = (float)s;
                }
}

void wn_conv_reference_backward_data(const wn_conv_desc *d, const float *dy, const float *w,
                                     float *dx) {
    const wn_window *v = &d->win;
    int G = groups_of(d), cg = v->c / G, kg = d->k / G;
    for (int n = 0; n < v->n; n++)
        for (int iy = 0; iy < v->h; iy++)
            for (int ix = 0; ix < v->w; ix++)
                for (int c = 0; c < v->c; c++) {
                    int g = c / cg, ci = c % cg;
                    double s = 0.0;
                    for (int ky = 0; ky < v->kh; ky++) {
                        /* iy = oy*sh - pad_top + ky  =>  oy = (iy + pad_top - ky) / sh */
                        int t = iy + v->pad_top - ky;
                        if (t < 0 || t % v->sh) continue;
                        int oy = t / v->sh;
                        if (oy >= v->oh) continue;
                        for (int kx = 0; kx < v->kw; kx++) {
                            int u = ix + v->pad_left - kx;
                            if (u < 0 || u % v->sw) continue;
                            int ox = u / v->sw;
                            if (ox >= v->ow) continue;
                            for (int ko = 0; ko < kg; ko++) {
                                int k = g * kg + ko;
                                double gv = dy[(((size_t)n * v->oh + oy) * v->ow + ox) * d->k + k];
                                double wv = w[(((size_t)ky * v->kw + kx) * cg + ci) * d->k + k];
                                s += gv * wv;
                            }
                        }
                    }
                    dx[(((size_t)n * v->h + iy) * v->w + ix) * v->c + c] = (float)s;
                }
}

void wn_conv_reference_backward_filter(const wn_conv_desc *d, const float *x, const float *dy,
                                       float *dw, float *db) {
    const wn_window *v = &d->win;
    int G = groups_of(d), cg = v->c / G, kg = d->k / G;
    for (int ky = 0; ky < v->kh; ky++)
        for (int kx = 0; kx < v->kw; kx++)
            for (int ci = 0; ci < cg; ci++)
                for (int k = 0; k < d->k; k++) {
                    int g = k / kg;
                    double s = 0.0;
                    for (int n = 0; n < v->n; n++)
                        for (int oy = 0; oy < v->oh; oy++) {
                            int iy = oy * v->sh - v->pad_top + ky;
                            if (iy < 0 || iy >= v->h) continue;
                            for (int ox = 0; ox < v->ow; ox++) {
                                int ix = ox * v->sw - v->pad_left + kx;
                                if (ix < 0 || ix >= v->w) continue;
                                double xv = x[(((size_t)n * v->h + iy) * v->w + ix) * v->c + g * cg + ci];
                                double gv = dy[(((size_t)n * v->oh + oy) * v->ow + ox) * d->k + k];
                                s += xv * gv;
                            }
                        }
                    dw[(((size_t)ky * v->kw + kx) * cg + ci) * d->k + k] = (float)s;
                }
    if (db)
        for (int k = 0; k < d->k; k++) {
            double s = 0.0;
            for (size_t p = 0; p < (size_t)v->n * v->oh * v->ow; p++) s += dy[p * d->k + k];
            db[k] = (float)s;
        }
}
