/* kernels/pool/pool.h — index math and element functions of MaxPooling2D and
 * AveragePooling2D with TensorFlow's 'valid'/'same' geometry (kernels/common/backend_ops.h's
 * wn_window), NHWC.
 *
 * Padded cells never take part: max ignores them (TF pads with -inf), and average
 * divides by the number of in-image cells of the window (TF's AvgPoolMeanReducer,
 * cuDNN's COUNT_EXCLUDE_PADDING): 4 at a 3x3 'same' corner, 6 on an edge, 9 inside.
 *
 * Backward is written as a gather (one input element per call, summing the outputs
 * whose windows cover it), so a GPU thread per input element needs no atomics.
 * Max pooling sends the gradient to the first maximum of the window in row-major
 * scan order, as TensorFlow's MaxPoolGrad does.
 */
#ifndef WN_KERNELS_POOL_H
#define WN_KERNELS_POOL_H

#include <stddef.h>

#include "kernels/common/backend_ops.h"
#include "kernels/common/bf16.h"
#include "kernels/common/hd.h"

/* Input rows (or columns) [*lo, *hi) inside the image that output index o's
 * window covers along one axis. */
WN_HD static inline void wn_pool_span(int o, int stride, int pad_before, int k, int in,
                                      int *lo, int *hi) {
    int a = o * stride - pad_before, b = a + k;
    *lo = a < 0 ? 0 : a;
    *hi = b > in ? in : b;
}

/* Output indices [*lo, *hi) whose windows cover input index i along one axis:
 * o*s - p <= i < o*s - p + k. */
WN_HD static inline void wn_pool_out_span(int i, int stride, int pad_before, int k,
                                          int out, int *lo, int *hi) {
    int t = i + pad_before - k; /* o*s > t */
    int a = t < 0 ? 0 : t / stride + 1;
    int b = (i + pad_before) / stride + 1;
    *lo = a;
    *hi = b > out ? out : b;
}

/* Number of in-image cells of output (oy, ox)'s window: the average's divisor. */
WN_HD static inline int wn_pool_avg_divisor(const wn_window *win, int oy, int ox) {
    int y0, y1, x0, x1;
    wn_pool_span(oy, win->sh, win->pad_top, win->kh, win->h, &y0, &y1);
    wn_pool_span(ox, win->sw, win->pad_left, win->kw, win->w, &x0, &x1);
    return (y1 - y0) * (x1 - x0);
}

/* Offset of element (n, y, x, c) of an NHWC tensor with H, W, C = h, w, c. */
WN_HD static inline size_t wn_nhwc_index(int n, int y, int x, int c, int h, int w, int cc) {
    return (((size_t)n * h + y) * w + x) * cc + c;
}

/* The inverse of wn_nhwc_index: the (n, y, x, c) of flat index i in an [N, h, w, cc]
 * tensor (a GPU thread's element). */
WN_HD static inline void wn_nhwc_coords(size_t i, int h, int w, int cc, int *n, int *y, int *x,
                                        int *c) {
    *c = (int)(i % cc);
    i /= cc;
    *x = (int)(i % w);
    i /= w;
    *y = (int)(i % h);
    *n = (int)(i / h);
}

/* Pixel index (y * W + x) of the first maximum in output (oy, ox)'s window,
 * channel c of image n. */
WN_HD static inline int wn_pool_max_argmax(const wn_window *win, const float *x, int n,
                                           int oy, int ox, int c) {
    int y0, y1, x0, x1;
    wn_pool_span(oy, win->sh, win->pad_top, win->kh, win->h, &y0, &y1);
    wn_pool_span(ox, win->sw, win->pad_left, win->kw, win->w, &x0, &x1);
    int best = y0 * win->w + x0;
    float m = x[wn_nhwc_index(n, y0, x0, c, win->h, win->w, win->c)];
    for (int iy = y0; iy < y1; iy++)
        for (int ix = x0; ix < x1; ix++) {
            float v = x[wn_nhwc_index(n, iy, ix, c, win->h, win->w, win->c)];
            if (v > m) m = v, best = iy * win->w + ix;
        }
    return best;
}

/* Max over output (oy, ox)'s window, channel c of image n. */
WN_HD static inline float wn_pool_max_at(const wn_window *win, const float *x, int n, int oy,
                                         int ox, int c) {
    int y0, y1, x0, x1;
    wn_pool_span(oy, win->sh, win->pad_top, win->kh, win->h, &y0, &y1);
    wn_pool_span(ox, win->sw, win->pad_left, win->kw, win->w, &x0, &x1);
    float m = x[wn_nhwc_index(n, y0, x0, c, win->h, win->w, win->c)];
    for (int iy = y0; iy < y1; iy++)
        for (int ix = x0; ix < x1; ix++) {
            float v = x[wn_nhwc_index(n, iy, ix, c, win->h, win->w, win->c)];
            if (v > m) m = v;
        }
    return m;
}

/* Average over the in-image cells of output (oy, ox)'s window: sum in scan order,
 * then one division, as TensorFlow does. */
WN_HD static inline float wn_pool_avg_at(const wn_window *win, const float *x, int n, int oy,
                                         int ox, int c) {
    int y0, y1, x0, x1;
    wn_pool_span(oy, win->sh, win->pad_top, win->kh, win->h, &y0, &y1);
    wn_pool_span(ox, win->sw, win->pad_left, win->kw, win->w, &x0, &x1);
    float s = 0.0f;
    for (int iy = y0; iy < y1; iy++)
        for (int ix = x0; ix < x1; ix++) s += x[wn_nhwc_index(n, iy, ix, c, win->h, win->w, win->c)];
    return s / (float)((y1 - y0) * (x1 - x0));
}

/* dx at input (n, iy, ix, c) of max pooling: the sum of dy over the outputs whose
 * first maximum is this cell. x is the forward input, dy is [N, OH, OW, C]. */
WN_HD static inline float wn_pool_max_dx_at(const wn_window *win, const float *x,
                                            const float *dy, int n, int iy, int ix, int c) {
    int oy0, oy1, ox0, ox1;
    wn_pool_out_span(iy, win->sh, win->pad_top, win->kh, win->oh, &oy0, &oy1);
    wn_pool_out_span(ix, win->sw, win->pad_left, win->kw, win->ow, &ox0, &ox1);
    int self = iy * win->w + ix;
    float g = 0.0f;
    for (int oy = oy0; oy < oy1; oy++)
        for (int ox = ox0; ox < ox1; ox++)
            if (wn_pool_max_argmax(win, x, n, oy, ox, c) == self)
                g += dy[wn_nhwc_index(n, oy, ox, c, win->oh, win->ow, win->c)];
    return g;
}

/* dx at input (n, iy, ix, c) of average pooling: sum of dy / divisor over the
 * outputs whose windows cover this cell. */
WN_HD static inline float wn_pool_avg_dx_at(const wn_window *win, const float *dy, int n,
                                            int iy, int ix, int c) {
    int oy0, oy1, ox0, ox1;
    wn_pool_out_span(iy, win->sh, win->pad_top, win->kh, win->oh, &oy0, &oy1);
    wn_pool_out_span(ix, win->sw, win->pad_left, win->kw, win->ow, &ox0, &ox1);
    float g = 0.0f;
    for (int oy = oy0; oy < oy1; oy++)
        for (int ox = ox0; ox < ox1; ox++)
            g += dy[wn_nhwc_index(n, oy, ox, c, win->oh, win->ow, win->c)] /
                 (float)wn_pool_avg_divisor(win, oy, ox);
    return g;
}


#ifdef __cplusplus
extern "C" {
#endif
/* ---- entry points: pool_cpu.c (CPU backend), pool.cu (CUDA backend) ---- */
int wn_cpu_pool_forward(wn_backend *be, const wn_window *win, wn_pool_kind kind,
                        const float *x, float *y, const char *layer);
int wn_cpu_pool_backward(wn_backend *be, const wn_window *win, wn_pool_kind kind,
                         const float *x, const float *y, const float *dy, float *dx,
                         int accumulate, const char *layer);
int wn_cuda_pool_forward(wn_backend *be, const wn_window *win, wn_pool_kind kind,
                         const float *x, float *y, const char *layer);
int wn_cuda_pool_backward(wn_backend *be, const wn_window *win, wn_pool_kind kind,
                          const float *x, const float *y, const float *dy, float *dx,
                          int accumulate, const char *layer);
/* ---- bf16 (kernels/common/backend_bf16_ops.h): pool_bf16_cpu.c, pool_bf16.cu ---- */
int wn_cpu_pool_forward_bf16(wn_backend *be, const wn_window *win, wn_pool_kind kind,
                             const wn_bf16 *x, wn_bf16 *y, const char *layer);
int wn_cpu_pool_backward_bf16(wn_backend *be, const wn_window *win, wn_pool_kind kind,
                              const wn_bf16 *x, const wn_bf16 *y, const wn_bf16 *dy,
                              wn_bf16 *dx, int accumulate, const char *layer);
int wn_cuda_pool_forward_bf16(wn_backend *be, const wn_window *win, wn_pool_kind kind,
                              const wn_bf16 *x, wn_bf16 *y, const char *layer);
int wn_cuda_pool_backward_bf16(wn_backend *be, const wn_window *win, wn_pool_kind kind,
                               const wn_bf16 *x, const wn_bf16 *y, const wn_bf16 *dy,
                               wn_bf16 *dx, int accumulate, const char *layer);
#ifdef __cplusplus
}
#endif

#endif
