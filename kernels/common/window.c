/* kernels/common/window.c — TensorFlow's 'valid'/'same' output size and padding rule, and
 * the 'valid' window over a ZeroPadding2D's output. */
#include "kernels/common/op_types.h"
#include "host/base/error.h"

int wn_window_init(wn_window *win, int n, int h, int w, int c, int kh, int kw, int sh,
                   int sw, wn_padding pad, const char *layer) {
    const char *who = layer ? layer : "window";
    if (n < 1 || h < 1 || w < 1 || c < 1 || kh < 1 || kw < 1 || sh < 1 || sw < 1)
        return wn_fail("%s: invalid geometry (input %dx%dx%dx%d, window %dx%d, stride %dx%d)",
                       who, n, h, w, c, kh, kw, sh, sw);
    win->n = n, win->h = h, win->w = w, win->c = c;
    win->kh = kh, win->kw = kw, win->sh = sh, win->sw = sw;
    if (pad == WN_PAD_VALID) {
        if (h < kh || w < kw)
            return wn_fail("%s: input %dx%d is smaller than the %dx%d window ('valid' padding);"
                           " use a larger --image-size",
                           who, h, w, kh, kw);
        win->oh = (h - kh) / sh + 1;
        win->ow = (w - kw) / sw + 1;
        win->pad_top = win->pad_bottom = win->pad_left = win->pad_right = 0;
    } else {
        win->oh = (h + sh - 1) / sh;
        win->ow = (w + sw - 1) / sw;
        int th = (win->oh - 1) * sh + kh - h, tw = (win->ow - 1) * sw + kw - w;
        if (th < 0) th = 0;
        if (tw < 0) tw = 0;
        win->pad_top = th / 2, win->pad_bottom = th - th / 2;
        win->pad_left = tw / 2, win->pad_right = tw - tw / 2;
    }
    return WN_OK;
}

int wn_window_init_zero_padded(wn_window *win, int n, int h, int w, int c, int kh, int kw,
                               int sh, int sw, int top, int bottom, int left, int right,
                               const char *layer) {
    if (top < 0 || bottom < 0 || left < 0 || right < 0)
        return wn_fail("%s: zero padding (%d, %d, %d, %d) is negative", layer ? layer : "window",
                       top, bottom, left, right);
    if (wn_window_init(win, n, h + top + bottom, w + left + right, c, kh, kw, sh, sw,
                       WN_PAD_VALID, layer) != WN_OK)
        return WN_ERR;
    win->h = h, win->w = w;
    win->pad_top = top, win->pad_left = left;
    int reach_h = (win->oh - 1) * sh + kh - h - top;
    int reach_w = (win->ow - 1) * sw + kw - w - left;
    win->pad_bottom = reach_h < 0 ? 0 : (reach_h < bottom ? reach_h : bottom);
    win->pad_right = reach_w < 0 ? 0 : (reach_w < right ? reach_w : right);
    return WN_OK;
}
