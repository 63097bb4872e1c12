/* kernels/conv/depthwise.h — our own depthwise convolution, the fallback when cuDNN offers
 * no algorithm for a grouped NHWC convolution (EfficientNet-Lite's depthwise layers
 * through the legacy API), or when WN_CUDA_DEPTHWISE=own asks for it.
 *
 * Shapes: groups == C input channels, K = C * mult output channels (Keras's
 * DepthwiseConv2D with depth_multiplier mult; output channel k reads input channel
 * k / mult); x NHWC [N, H, W, C]; weights HWIO [kh, kw, 1, K] as Keras keeps them (no
 * transpose); y NHWC [N, OH, OW, K]. Padding is TensorFlow's own (pad_top, pad_left
 * of wn_window, asymmetric 'same' included), so no padded copy is needed.
 *
 * One element function per output element, __host__ __device__: the CUDA kernels
 * (kernels/depthwise.cu) call them per thread, and tests/cuda_host checks them on
 * the CPU against the reference convolution (engine/conv_reference.c). Sums run in a
 * fixed order, so the results are deterministic.
 */
#ifndef WN_KERNELS_DEPTHWISE_H
#define WN_KERNELS_DEPTHWISE_H

#include <stddef.h>

#include "kernels/common/backend_ops.h"
#include "kernels/common/hd.h"

/* 1 when (groups, C, K) is a depthwise convolution these functions compute. */
WN_HD static inline int wn_dw_applies(int groups, int c, int k) {
    return groups > 1 && groups == c && k % c == 0;
}

/* y[i], i over [N, OH, OW, K]. */
WN_HD static inline float wn_dw_forward_at(const float *x, const float *w, const wn_window *win,
                                           int k_out, size_t i) {
    int k = (int)(i % (size_t)k_out);
    size_t t = i / (size_t)k_out;
    int ox = (int)(t % (size_t)win->ow);
    t /= (size_t)win->ow;
    int oy = (int)(t % (size_t)win->oh);
    size_t n = t / (size_t)win->oh;
    int c = k / (k_out / win->c);
    float acc = 0.0f;
    for (int r = 0; r < win->kh; r++) {
        int iy = oy * win->sh - win->pad_top + r;
        if (iy < 0 || iy >= win->h) continue;
        for (int s = 0; s < win->kw; s++) {
            int ix = ox * win->sw - win->pad_left + s;
            if (ix < 0 || ix >= win->w) continue;
            acc += x[((n * win->h + iy) * win->w + ix) * win->c + c] *
                   w[((size_t)r * win->kw + s) * k_out + k];
        }
    }
    return acc;
}

/* dx[i], i over [N, H, W, C]: every output element whose window covers input
 * element i, over the mult output channels of its input channel. */
WN_HD static inline float wn_dw_backward_data_at(const float *dy, const float *w,
                                                 const wn_window *win, int k_out, size_t i) {
    int c = (int)(i % (size_t)win->c);
    size_t t = i / (size_t)win->c;
    int ix = (int)(t % (size_t)win->w);
    t /= (size_t)win->w;
    int iy = (int)(t % (size_t)win->h);
    size_t n = t / (size_t)win->h;
    int mult = k_out / win->c;
    float acc = 0.0f;
    for (int r = 0; r < win->kh; r++) {
        int ty = iy + win->pad_top - r; /* = oy * sh */
        if (ty < 0 || ty % win->sh) continue;
        int oy = ty / win->sh;
        if (oy >= win->oh) continue;
        for (int s = 0; s < win->kw; s++) {
            int tx = ix + win->pad_left - s;
            if (tx < 0 || tx % win->sw) continue;
            int ox = tx / win->sw;
            if (ox >= win->ow) continue;
            for (int m = 0; m < mult; m++) {
                int k = c * mult + m;
                acc += dy[((n * win->oh + oy) * win->ow + ox) * k_out + k] *
                       w[((size_t)r * win->kw + s) * k_out + k];
            }
        }
    }
    return acc;
}

/* One term of dw[j] (j over [kh, kw, 1, K]): output position p over [N, OH, OW];
 * dw[j] is the sum of the terms over every p (the kernel reduces them in a block). */
WN_HD static inline float wn_dw_filter_term(const float *x, const float *dy, const wn_window *win,
                                            int k_out, size_t j, size_t p) {
    int k = (int)(j % (size_t)k_out);
    size_t t = j / (size_t)k_out;
    int s = (int)(t % (size_t)win->kw);
    int r = (int)(t / (size_t)win->kw);
    int ox = (int)(p % (size_t)win->ow);
    size_t q = p / (size_t)win->ow;
    int oy = (int)(q % (size_t)win->oh);
    size_t n = q / (size_t)win->oh;
    int iy = oy * win->sh - win->pad_top + r, ix = ox * win->sw - win->pad_left + s;
    if (iy < 0 || iy >= win->h || ix < 0 || ix >= win->w) return 0.0f;
    int c = k / (k_out / win->c);
    return x[((n * win->h + iy) * win->w + ix) * win->c + c] * dy[p * k_out + k];
}

#endif
