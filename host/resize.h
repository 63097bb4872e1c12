/* host/resize.h — bilinear resize exactly as tf.image.resize(method='bilinear',
 * antialias=False) computes it (ResizeBilinear with half_pixel_centers=True,
 * tensorflow/core/kernels/image/resize_bilinear_op.cc), in float32:
 *
 *   scale = (float)in / (float)out
 *   src   = ((float)i + 0.5f) * scale - 0.5f
 *   lo    = max(floor(src), 0);  hi = min(ceil(src), in - 1);  frac = src - floor(src)
 *   top   = TL + (TR - TL) * fx;  bot = BL + (BR - BL) * fx;  out = top + (bot - top) * fy
 *
 * Same size: the pixels are only converted to float. The aspect ratio is not kept.
 *
 * Keras keeps the float result (0..255, not rounded). wastenet caches uint8, rounding
 * each value to the nearest integer (halves up), so a cached pixel differs from
 * Keras's float by at most 0.5 (0.5/127.5 = 0.0039 after preprocess_input's
 * x/127.5 - 1); tests/host/test_resize_tf.py measures it on the data set.
 */
#ifndef WN_RESIZE_H
#define WN_RESIZE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Reusable work space for one thread: the interpolation plans of both axes and
 * two horizontally interpolated source rows. */
typedef struct wn_resizer wn_resizer;

wn_resizer *wn_resizer_new(void);
void wn_resizer_free(wn_resizer *r);

/* src [in_h, in_w, 3] uint8 -> dst [out_h, out_w, 3] float32, TensorFlow's values. */
int wn_resize_bilinear_f32(wn_resizer *r, const uint8_t *src, int in_h, int in_w, float *dst,
                           int out_h, int out_w);

/* The same values rounded to the nearest integer (x.5 up) as uint8. */
int wn_resize_bilinear_u8(wn_resizer *r, const uint8_t *src, int in_h, int in_w, uint8_t *dst,
                          int out_h, int out_w);

#ifdef __cplusplus
}
#endif
#endif
