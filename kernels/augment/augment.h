/* kernels/augment/augment.h — the training augmentation + preprocess, element functions
 * shared by the CPU and CUDA backends (KERAS_SEMANTICS §4, §5). The layers run in
 * this order, each as its own Keras layer would:
 *
 *   1. RandomFlip('horizontal'): the image is mirrored left-right when flip != 0;
 *   2. RandomRotation: output pixel (x, y) samples the (flipped) image at
 *        xi = a0*x + a1*y + a2,  yi = b0*x + b1*y + b2
 *      (TensorFlow's ImageProjectiveTransformV3 with Keras's rotation matrix), each
 *      coordinate mapped by the reflect rule, then bilinear interpolation;
 *   3. RandomZoom (optional): the same resampling of the rotated float image with
 *      Keras's zoom matrix (get_zoom_matrix);
 *   4. RandomTranslation (optional): the same with the translation matrix;
 *   5. RandomContrast (optional): per image and channel, (v - mean) * factor + mean
 *      with the mean over the image's height and width, clipped to [0, 255];
 *   6. the backbone's preprocess_input (keras.applications.imagenet_utils), `mode`:
 *        WN_AUG_PRE_TF     v / 127.5 - 1                      (Xception, MobileNetV2, IRv2)
 *        WN_AUG_PRE_CAFFE  RGB -> BGR, v - [103.939, 116.779, 123.68]   (ResNet50)
 *        WN_AUG_PRE_TORCH  (v / 255 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
 *                                                             (DenseNet121)
 *      each in float32, operation by operation as Keras computes it.
 *
 * Keras applies layers 2-4 as separate resamplings (each bilinear, each with its
 * own reflect fill), not as one composed transform; so does this code: 3 and 4
 * read the float output of the layer before them. Without 3-5 the flip/rotation
 * and preprocess are fused into one pass over the uint8 image, as before.
 *
 * The arithmetic follows TensorFlow's kernel (core/kernels/image/image_ops.h)
 * operation by operation in float32. On the GPU every operation is written with
 * round-to-nearest intrinsics so nvcc cannot fuse multiply-adds: the CPU and the
 * GPU then produce the same bits from the same transform.
 */
#ifndef WN_KERNELS_AUGMENT_H
#define WN_KERNELS_AUGMENT_H

#include <math.h>
#include <stdint.h>

#include "kernels/common/backend_ops.h"
#include "kernels/common/hd.h"

#ifdef __CUDA_ARCH__
#define WN_AUG_MUL(a, b) __fmul_rn((a), (b))
#define WN_AUG_ADD(a, b) __fadd_rn((a), (b))
#define WN_AUG_SUB(a, b) __fsub_rn((a), (b))
#define WN_AUG_DIV(a, b) __fdiv_rn((a), (b))
#else
#define WN_AUG_MUL(a, b) ((a) * (b))
#define WN_AUG_ADD(a, b) ((a) + (b))
#define WN_AUG_SUB(a, b) ((a) - (b))
#define WN_AUG_DIV(a, b) ((a) / (b))
#endif

/* Output-to-input map of one image: xi = a0*x + a1*y + a2, yi = b0*x + b1*y + b2. */
typedef struct wn_augment_xform {
    float a0, a1, a2, b0, b1, b2;
} wn_augment_xform;

/* Host side, once per image: Keras's get_rotation_matrix for `angle` radians
 * (positive = counter-clockwise) about the pixel-index centre, in float32:
 *   [cos, -sin, ((W-1) - (cos(W-1) - sin(H-1)))/2, sin, cos, ((H-1) - (sin(W-1) + cos(H-1)))/2]
 * angle 0 gives the identity exactly. */
static inline wn_augment_xform wn_augment_rotation(float angle, int h, int w) {
    float c = cosf(angle), s = sinf(angle);
    float wm1 = (float)w - 1.0f, hm1 = (float)h - 1.0f;
    wn_augment_xform t;
    t.a0 = c;
    t.a1 = -s;
    t.a2 = (wm1 - (c * wm1 - s * hm1)) / 2.0f;
    t.b0 = s;
    t.b1 = c;
    t.b2 = (hm1 - (s * wm1 + c * hm1)) / 2.0f;
    return t;
}

/* Host side: Keras's RandomZoom matrix (get_zoom_matrix, the same in Keras 3 and
 * tf-keras 2) for zooms zx (width) and zy (height), in float32:
 *   [zx, 0, (W-1)/2 * (1-zx), 0, zy, (H-1)/2 * (1-zy)]
 * (zoom > 1 samples a larger region: zooms out). */
static inline wn_augment_xform wn_augment_zoom(float zx, float zy, int h, int w) {
    wn_augment_xform t;
    t.a0 = zx;
    t.a1 = 0.0f;
    t.a2 = (((float)w - 1.0f) / 2.0f) * (1.0f - zx);
    t.b0 = 0.0f;
    t.b1 = zy;
    t.b2 = (((float)h - 1.0f) / 2.0f) * (1.0f - zy);
    return t;
}

/* Host side: RandomTranslation's matrix [1, 0, -dx, 0, 1, -dy] for a shift of dx
 * pixels right and dy pixels down. */
static inline wn_augment_xform wn_augment_translation(float dx, float dy) {
    wn_augment_xform t = {1.0f, 0.0f, -dx, 0.0f, 1.0f, -dy};
    return t;
}

/* TensorFlow's FILL_REFLECT coordinate map on an axis of `len` cells:
 * "d c b a | a b c d | d c b a", i.e. half-sample symmetric about -0.5 and
 * len - 0.5, then clamped to [0, len - 1]. */
WN_HD static inline float wn_augment_reflect(float coord, int len) {
    float c = coord;
    if (c < 0.0f) {
        if (len <= 1) {
            c = 0.0f;
        } else {
            long long sz2 = 2LL * len;
            /* TF: in_coord = sz2 * (int64)(-in_coord / sz2) + in_coord */
            long long k = (long long)WN_AUG_DIV(-c, (float)sz2);
            c = WN_AUG_ADD((float)(sz2 * k), c);
            c = (c < (float)(-len)) ? WN_AUG_ADD(c, (float)sz2) : WN_AUG_SUB(-c, 1.0f);
        }
    } else if (c > (float)(len - 1)) {
        if (len <= 1) {
            c = 0.0f;
        } else {
            long long sz2 = 2LL * len;
            long long k = (long long)WN_AUG_DIV(c, (float)sz2);
            c = WN_AUG_SUB(c, (float)(sz2 * k));
            if (c >= (float)len) c = WN_AUG_SUB(WN_AUG_SUB((float)sz2, c), 1.0f);
        }
    }
    float hi = (float)(len - 1);
    return c < 0.0f ? 0.0f : (c > hi ? hi : c);
}

/* Channel ch of pixel (y, x) of the horizontally flipped (flip != 0) or original
 * image img[h][w][c]; cells outside the image read 0 (TF's fill value, only ever
 * used with weight 0 after the reflect clamp). */
WN_HD static inline float wn_augment_read(const uint8_t *img, int h, int w, int c, int flip,
                                          long long y, long long x, int ch) {
    if (y < 0 || y >= h || x < 0 || x >= w) return 0.0f;
    long long sx = flip ? (long long)w - 1 - x : x;
    return (float)img[(y * w + sx) * c + ch];
}

/* Channel ch of pixel (y, x) of a float image img[h][w][c] (the output of an
 * earlier layer); outside reads 0, as wn_augment_read. */
WN_HD static inline float wn_augment_read_f(const float *img, int h, int w, int c, long long y,
                                            long long x, int ch) {
    if (y < 0 || y >= h || x < 0 || x >= w) return 0.0f;
    return img[(y * w + x) * c + ch];
}

/* TF's bilinear mix of the four neighbours v00 (y0, x0), v01 (y0, x1), v10, v11 of
 * (yf, xf), in its order of operations. */
WN_HD static inline float wn_augment_mix(float yf, float xf, float y0, float x0, float v00,
                                         float v01, float v10, float v11) {
    float y1 = WN_AUG_ADD(y0, 1.0f), x1 = WN_AUG_ADD(x0, 1.0f);
    float wx1 = WN_AUG_SUB(x1, xf), wx0 = WN_AUG_SUB(xf, x0);
    float top = WN_AUG_ADD(WN_AUG_MUL(wx1, v00), WN_AUG_MUL(wx0, v01));
    float bot = WN_AUG_ADD(WN_AUG_MUL(wx1, v10), WN_AUG_MUL(wx0, v11));
    return WN_AUG_ADD(WN_AUG_MUL(WN_AUG_SUB(y1, yf), top), WN_AUG_MUL(WN_AUG_SUB(yf, y0), bot));
}

/* Bilinear sample at mapped, in-range coordinates (yf, xf), TF's formula and order. */
WN_HD static inline float wn_augment_bilinear(const uint8_t *img, int h, int w, int c,
                                              int flip, float yf, float xf, int ch) {
    float y0 = floorf(yf), x0 = floorf(xf);
    long long iy0 = (long long)y0, ix0 = (long long)x0, iy1 = iy0 + 1, ix1 = ix0 + 1;
    return wn_augment_mix(yf, xf, y0, x0, wn_augment_read(img, h, w, c, flip, iy0, ix0, ch),
                          wn_augment_read(img, h, w, c, flip, iy0, ix1, ch),
                          wn_augment_read(img, h, w, c, flip, iy1, ix0, ch),
                          wn_augment_read(img, h, w, c, flip, iy1, ix1, ch));
}

/* The same on a float image. */
WN_HD static inline float wn_augment_bilinear_f(const float *img, int h, int w, int c, float yf,
                                                float xf, int ch) {
    float y0 = floorf(yf), x0 = floorf(xf);
    long long iy0 = (long long)y0, ix0 = (long long)x0, iy1 = iy0 + 1, ix1 = ix0 + 1;
    return wn_augment_mix(yf, xf, y0, x0, wn_augment_read_f(img, h, w, c, iy0, ix0, ch),
                          wn_augment_read_f(img, h, w, c, iy0, ix1, ch),
                          wn_augment_read_f(img, h, w, c, iy1, ix0, ch),
                          wn_augment_read_f(img, h, w, c, iy1, ix1, ch));
}

/* The input coordinates (reflected into the image) that output (y, x) samples. */
WN_HD static inline void wn_augment_source(const wn_augment_xform *t, int h, int w, int y, int x,
                                           float *ym, float *xm) {
    float fx = (float)x, fy = (float)y;
    /* (a0*x + a1*y + a2) / 1.0f: TF divides by the projection, exactly 1 here. */
    float xi = WN_AUG_ADD(WN_AUG_ADD(WN_AUG_MUL(t->a0, fx), WN_AUG_MUL(t->a1, fy)), t->a2);
    float yi = WN_AUG_ADD(WN_AUG_ADD(WN_AUG_MUL(t->b0, fx), WN_AUG_MUL(t->b1, fy)), t->b2);
    *xm = wn_augment_reflect(xi, w);
    *ym = wn_augment_reflect(yi, h);
}

/* The augmented, rotated value of output (y, x, ch) before preprocessing, in [0, 255]. */
WN_HD static inline float wn_augment_value(const uint8_t *img, int h, int w, int c, int flip,
                                           const wn_augment_xform *t, int y, int x, int ch) {
    float xm, ym;
    wn_augment_source(t, h, w, y, x, &ym, &xm);
    return wn_augment_bilinear(img, h, w, c, flip, ym, xm, ch);
}

/* Output (y, x, ch) of a later geometric layer (zoom, translation) applied to the
 * float image img: ImageProjectiveTransformV3, reflect fill, bilinear. */
WN_HD static inline float wn_augment_resample(const float *img, int h, int w, int c,
                                              const wn_augment_xform *t, int y, int x, int ch) {
    float xm, ym;
    wn_augment_source(t, h, w, y, x, &ym, &xm);
    return wn_augment_bilinear_f(img, h, w, c, ym, xm, ch);
}

/* RandomContrast of one value: (v - mean) * factor + mean, clipped to [0, 255]
 * (Keras 3's _adjust_contrast then numpy.clip to value_range; tf-keras 2's
 * tf.image.adjust_contrast then clip_by_value(0, 255)). */
WN_HD static inline float wn_augment_contrast(float v, float mean, float factor) {
    float o = WN_AUG_ADD(WN_AUG_MUL(WN_AUG_SUB(v, mean), factor), mean);
    return o < 0.0f ? 0.0f : (o > 255.0f ? 255.0f : o);
}

/* Sum of channel ch over row `row` of a float image, in double, left to right: the
 * first half of the contrast mean, in one fixed order on every backend. */
WN_HD static inline double wn_augment_row_sum(const float *img, int w, int c, int row, int ch) {
    double s = 0.0;
    const float *p = img + (size_t)row * w * c + ch;
    for (int x = 0; x < w; x++) s += (double)p[(size_t)x * c];
    return s;
}

/* The contrast mean of one channel from its h row sums (top to bottom), float32. */
WN_HD static inline float wn_augment_mean_of_rows(const double *row_sums, int h, int w) {
    double s = 0.0;
    for (int y = 0; y < h; y++) s += row_sums[y];
    return (float)(s / ((double)h * (double)w));
}

/* preprocess_input modes (imagenet_utils.preprocess_input's `mode`). */
enum { WN_AUG_PRE_TF = 0, WN_AUG_PRE_CAFFE = 1, WN_AUG_PRE_TORCH = 2 };

/* preprocess_input mode 'tf': x / 127.5 - 1 (a true division, then a subtraction). */
WN_HD static inline float wn_preprocess_tf(float v) {
    return WN_AUG_SUB(WN_AUG_DIV(v, 127.5f), 1.0f);
}

/* The input channel that output channel ch of `mode` reads: 'caffe' flips RGB to
 * BGR (x[..., ::-1]); the others keep the order. */
WN_HD static inline int wn_preprocess_source(int mode, int c, int ch) {
    return mode == WN_AUG_PRE_CAFFE ? c - 1 - ch : ch;
}

/* preprocess_input of value v (already read from wn_preprocess_source's channel) for
 * output channel ch (0..2 for 'caffe' and 'torch'). 'caffe': v - mean[ch] (BGR
 * means); 'torch': (v / 255 - mean[ch]) / std[ch]; float32 constants, as Keras's
 * float32 arithmetic rounds the Python floats. */
WN_HD static inline float wn_preprocess_value(int mode, float v, int ch) {
    if (mode == WN_AUG_PRE_CAFFE) {
        float mean = ch == 0 ? 103.939f : ch == 1 ? 116.779f : 123.68f;
        return WN_AUG_SUB(v, mean);
    }
    if (mode == WN_AUG_PRE_TORCH) {
        float mean = ch == 0 ? 0.485f : ch == 1 ? 0.456f : 0.406f;
        float std = ch == 0 ? 0.229f : ch == 1 ? 0.224f : 0.225f;
        return WN_AUG_DIV(WN_AUG_SUB(WN_AUG_DIV(v, 255.0f), mean), std);
    }
    return wn_preprocess_tf(v);
}

/* preprocess_input of one float pixel px[c] in place (after the float layers):
 * 'caffe' reads the channels in reverse order, so all are read first. */
WN_HD static inline void wn_preprocess_pixel(int mode, float *px, int c) {
    float v[4];
    int k = c < 4 ? c : 4;
    if (mode == WN_AUG_PRE_TF || c > 4) {
        for (int ch = 0; ch < c; ch++) px[ch] = wn_preprocess_tf(px[ch]);
        return;
    }
    for (int ch = 0; ch < k; ch++) v[ch] = px[ch];
    for (int ch = 0; ch < k; ch++)
        px[ch] = wn_preprocess_value(mode, v[wn_preprocess_source(mode, c, ch)], ch);
}

/* Whether a batch uses a layer after the rotation (zoom, translation, contrast):
 * then the layers run one after the other on float images. */
static inline int wn_augment_has_float_layers(const wn_augment_batch *a) {
    return a && (a->zoom || a->shift || a->contrast);
}

/* One output element of the fused op: flip, rotate (reflect, bilinear), preprocess.
 * img is one image [h][w][c]; t is that image's transform. */
WN_HD static inline float wn_augment_pixel(const uint8_t *img, int h, int w, int c, int flip,
                                           const wn_augment_xform *t, int y, int x, int ch,
                                           int mode) {
    int src = wn_preprocess_source(mode, c, ch);
    return wn_preprocess_value(mode, wn_augment_value(img, h, w, c, flip, t, y, x, src), ch);
}

/* The most temporary memory one augment_preprocess call of n images of h x w x c takes,
 * on either backend, when every layer is on: the second float image of the zoom and
 * translation resamplings, the contrast's per-row double sums, per-channel means and
 * per-image factors, and per-image transforms and flags; each part rounded up to
 * `align` bytes (the backend's allocation rounding). The executor's memory check
 * counts it beside the convolutions' scratch (never both at once). */
static inline size_t wn_augment_scratch_bytes(int n, int h, int w, int c, size_t align) {
    size_t nn = (size_t)n, a = align ? align : 1;
    size_t parts[5] = {nn * h * w * c * sizeof(float), nn * c * h * sizeof(double),
                       nn * c * sizeof(float), nn * sizeof(float),
                       nn * (sizeof(wn_augment_xform) + 2 * sizeof(int) + 1)};
    size_t total = 0;
    for (int i = 0; i < 5; i++) total += (parts[i] + a - 1) / a * a;
    return total;
}

#ifdef __cplusplus
extern "C" {
#endif
/* ---- entry points: augment_cpu.c (CPU backend), augment.cu (CUDA backend) ---- */
int wn_cpu_augment_preprocess(wn_backend *be, int n, int h, int w, int c, const uint8_t *x,
                              const wn_augment_batch *aug, float *y, int mode);
int wn_cuda_augment_preprocess(wn_backend *be, int n, int h, int w, int c, const uint8_t *x,
                               const wn_augment_batch *aug, float *y, int mode);
#ifdef __cplusplus
}
#endif

#endif
