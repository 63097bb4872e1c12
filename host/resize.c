/* host/resize.c — tf.image.resize's bilinear rule (see host/resize.h).
 *
 * TensorFlow computes, per output pixel, top = TL + (TR-TL)*fx from source row lo
 * and bot = BL + (BR-BL)*fx from source row hi, then top + (bot-top)*fy. The
 * horizontal lerp of a source row does not depend on the output row, so it is done
 * once per source row (two rows cached) and reused by every output row that reads
 * it: the same float operations in the same order, hence bit-identical results, at
 * about half the work.
 *
 * Floating-point contraction (a*b+c fused into one FMA) would change the last bit
 * of some results compared with TensorFlow's separate multiply and add, so it is
 * turned off for this file. */
#pragma GCC optimize("fp-contract=off")
#include "host/resize.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "host/base/error.h"

typedef struct resize_axis {
    int in, out;       /* the sizes this plan is for */
    int32_t *lo, *hi;  /* [out] source index below/above (clamped to [0, in-1]) */
    float *frac;       /* [out] weight of hi: src - floor(src), taken before clamping */
} resize_axis;

struct wn_resizer {
    resize_axis x, y;
    float *row[2];     /* [2][out_w*3] horizontally interpolated source rows */
    int row_src[2];    /* source row held by row[k], -1 if none */
    int row_cap;       /* floats allocated per row */
};

wn_resizer *wn_resizer_new(void) {
    wn_resizer *r = calloc(1, sizeof *r);
    if (!r) wn_fail("out of memory creating a resizer");
    return r;
}

static void axis_free(resize_axis *a) {
    free(a->lo), free(a->hi), free(a->frac);
    memset(a, 0, sizeof *a);
}

void wn_resizer_free(wn_resizer *r) {
    if (!r) return;
    axis_free(&r->x), axis_free(&r->y);
    free(r->row[0]), free(r->row[1]);
    free(r);
}

/* compute_interpolation_weights() with HalfPixelScaler, in TensorFlow's types. */
static int axis_plan(resize_axis *a, int in, int out) {
    if (a->in == in && a->out == out && a->lo) return WN_OK;
    axis_free(a);
    a->lo = malloc((size_t)out * sizeof *a->lo);
    a->hi = malloc((size_t)out * sizeof *a->hi);
    a->frac = malloc((size_t)out * sizeof *a->frac);
    if (!a->lo || !a->hi || !a->frac) {
        axis_free(a);
        return wn_fail("out of memory planning a resize to %d", out);
    }
    const float scale = (float)in / (float)out;
    for (int i = 0; i < out; i++) {
        const float src = ((float)i + 0.5f) * scale - 0.5f;
        const float src_floor = floorf(src);
        long lo = (long)src_floor, hi = (long)ceilf(src);
        a->lo[i] = (int32_t)(lo < 0 ? 0 : lo);
        a->hi[i] = (int32_t)(hi > in - 1 ? in - 1 : hi);
        a->frac[i] = src - src_floor;
    }
    a->in = in, a->out = out;
    return WN_OK;
}

static int resizer_prepare(wn_resizer *r, int in_h, int in_w, int out_h, int out_w) {
    if (in_h <= 0 || in_w <= 0 || out_h <= 0 || out_w <= 0)
        return wn_fail("resize from %dx%d to %dx%d: sizes must be positive", in_w, in_h, out_w,
                       out_h);
    if (axis_plan(&r->x, in_w, out_w) != WN_OK || axis_plan(&r->y, in_h, out_h) != WN_OK)
        return WN_ERR;
    int need = out_w * 3;
    if (need > r->row_cap) {
        free(r->row[0]), free(r->row[1]);
        r->row[0] = malloc((size_t)need * sizeof(float));
        r->row[1] = malloc((size_t)need * sizeof(float));
        r->row_cap = need;
        if (!r->row[0] || !r->row[1]) {
            free(r->row[0]), free(r->row[1]);
            r->row[0] = r->row[1] = NULL;
            r->row_cap = 0;
            return wn_fail("out of memory resizing to %dx%d", out_w, out_h);
        }
    }
    r->row_src[0] = r->row_src[1] = -1;
    return WN_OK;
}

/* The horizontal lerp of source row `sy` (TL + (TR-TL)*fx for every output column). */
static const float *source_row(wn_resizer *r, const uint8_t *src, int in_w, int sy) {
    for (int k = 0; k < 2; k++)
        if (r->row_src[k] == sy) return r->row[k];
    /* Rows are requested in increasing order: replace the older (lower) one. */
    int k = r->row_src[0] < r->row_src[1] ? 0 : 1;
    const uint8_t *s = src + (size_t)sy * (size_t)in_w * 3;
    const int32_t *lo = r->x.lo, *hi = r->x.hi;
    const float *fx = r->x.frac;
    float *d = r->row[k];
    for (int x = 0; x < r->x.out; x++) {
        const uint8_t *a = s + 3 * lo[x], *b = s + 3 * hi[x];
        for (int c = 0; c < 3; c++) {
            const float left = (float)a[c], right = (float)b[c];
            d[3 * x + c] = left + (right - left) * fx[x];
        }
    }
    r->row_src[k] = sy;
    return d;
}

/* One output row of floats into dst. */
static void output_row(wn_resizer *r, const uint8_t *src, int in_w, int y, float *dst) {
    const float *top = source_row(r, src, in_w, r->y.lo[y]);
    const float *bot = source_row(r, src, in_w, r->y.hi[y]);
    const float fy = r->y.frac[y];
    const int n = r->x.out * 3;
    for (int i = 0; i < n; i++) dst[i] = top[i] + (bot[i] - top[i]) * fy;
}

int wn_resize_bilinear_f32(wn_resizer *r, const uint8_t *src, int in_h, int in_w, float *dst,
                           int out_h, int out_w) {
    if (in_h == out_h && in_w == out_w) { /* TensorFlow only casts */
        for (size_t i = 0, n = (size_t)in_h * in_w * 3; i < n; i++) dst[i] = (float)src[i];
        return WN_OK;
    }
    if (resizer_prepare(r, in_h, in_w, out_h, out_w) != WN_OK) return WN_ERR;
    for (int y = 0; y < out_h; y++) output_row(r, src, in_w, y, dst + (size_t)y * out_w * 3);
    return WN_OK;
}

int wn_resize_bilinear_u8(wn_resizer *r, const uint8_t *src, int in_h, int in_w, uint8_t *dst,
                          int out_h, int out_w) {
    if (in_h == out_h && in_w == out_w) {
        memcpy(dst, src, (size_t)in_h * in_w * 3);
        return WN_OK;
    }
    if (resizer_prepare(r, in_h, in_w, out_h, out_w) != WN_OK) return WN_ERR;
    const int n = out_w * 3;
    for (int y = 0; y < out_h; y++) {
        const float *top = source_row(r, src, in_w, r->y.lo[y]);
        const float *bot = source_row(r, src, in_w, r->y.hi[y]);
        const float fy = r->y.frac[y];
        uint8_t *d = dst + (size_t)y * n;
        for (int i = 0; i < n; i++) {
            /* The float value exactly as wn_resize_bilinear_f32 computes it, then
             * rounded half up, exactly: v >= 0, so truncation is floor and v - floor(v)
             * is exact in float; the result is within 0.5 of v (v + 0.5f could round
             * up from just below .5). No clamping: every value is a convex combination
             * of 0..255. Branch-free so that the loop vectorises. */
            const float v = top[i] + (bot[i] - top[i]) * fy;
            const int f = (int)v;
            d[i] = (uint8_t)(f + (v - (float)f >= 0.5f));
        }
    }
    return WN_OK;
}
