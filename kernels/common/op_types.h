/* kernels/common/op_types.h — the vocabulary every op shares: padding, activation and
 * pooling kinds, the precision, and the geometry of window ops (convolution, pooling).
 * A leaf header: the ops of kernels/, the backends and the graph all speak it.
 */
#ifndef WN_OP_TYPES_H
#define WN_OP_TYPES_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { WN_PAD_VALID = 0, WN_PAD_SAME = 1 } wn_padding;

typedef enum { WN_ACT_NONE = 0, WN_ACT_RELU = 1, WN_ACT_RELU6 = 2 } wn_activation;

typedef enum { WN_POOL_MAX = 0, WN_POOL_AVG = 1 } wn_pool_kind;

typedef enum {
    WN_PRECISION_FP32 = 0, /* strict float32 everywhere */
    WN_PRECISION_TF32 = 1, /* tensor-core TF32 convolutions/GEMMs (CUDA default) */
    WN_PRECISION_BF16 = 2  /* bf16 activations, float32 master weights */
} wn_precision;

/* Geometry of a 2-D window op (convolution or pooling), TensorFlow semantics:
 * 'valid' out = floor((in - k) / s) + 1; 'same' out = ceil(in / s) with
 * total padding max((out-1)*s + k - in, 0), floor(total/2) before, rest after. */
typedef struct wn_window {
    int n, h, w, c;          /* input  N, H, W, C */
    int kh, kw, sh, sw;      /* window size and strides */
    int pad_top, pad_bottom; /* rows of padding, TF 'same' rule (may differ by 1) */
    int pad_left, pad_right; /* columns of padding */
    int oh, ow;              /* output H, W */
} wn_window;

/* Fills the geometry; fails (naming `layer`) when the window does not fit. */
int wn_window_init(wn_window *win, int n, int h, int w, int c, int kh, int kw, int sh,
                   int sw, wn_padding pad, const char *layer);
/* The 'valid' window over the input zero-padded by (top, bottom, left, right) rows and
 * columns (ZeroPadding2D), expressed on the unpadded h x w input with explicit pads:
 * bottom/right pads the window never reaches are dropped (ResNet50's pool1_pad 1 on an
 * even size keeps pad_top 1, pad_bottom 0, which no 'same' window has). */
int wn_window_init_zero_padded(wn_window *win, int n, int h, int w, int c, int kh, int kw,
                               int sh, int sw, int top, int bottom, int left, int right,
                               const char *layer);

typedef struct wn_conv_desc {
    wn_window win;
    int k;      /* output channels */
    int groups; /* 1 for ordinary convolution; C (== K) for depthwise */
} wn_conv_desc;

/* What a convolution may apply to its result before storing it: the per-channel
 * affine + activation of the inference BatchNormalization (and activation) that reads
 * it, y = act(conv * scale + shift) in float32, rounded once to the output type. The
 * plan fuses it only where nothing needs the convolution's own output (frozen layers,
 * engine/runtime/plan.c). scale, shift: [K] float32, or NULL for none. */
typedef struct wn_conv_epilogue {
    const float *scale, *shift;
    wn_activation act;
} wn_conv_epilogue;

#ifdef __cplusplus
}
#endif
#endif
