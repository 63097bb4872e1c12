/* kernels/conv/conv_cuda_plan.h — the CUDA convolution's host-side decisions, in plain C
 * so that they compile and are unit-tested (tests/cuda_host) on machines without a GPU:
 *  - padding: TensorFlow's 'same' padding may put one more row/column after than
 *    before; cuDNN's legacy descriptor pads symmetrically. wn_conv_pad_plan decides
 *    how a convolution is handed to cuDNN (see the comment at the struct).
 *  - layouts: NHWC tensor dims/strides in cuDNN's NCHW dimension order, and the
 *    HWIO -> KRSC (cuDNN's NHWC filter) index map used by the transpose kernels.
 *  - the convolution algorithm cache: one entry per (direction, shape without the
 *    batch, precision, determinism); a batch no larger than the one searched reuses
 *    the choice.
 */
#ifndef WN_CONV_CUDA_PLAN_H
#define WN_CONV_CUDA_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/common/hd.h"
#include "kernels/common/backend_ops.h"
#include "kernels/common/bf16.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- padding
 * Decision: when TensorFlow's padding is asymmetric, x is copied into a buffer that
 * holds the extra rows/columns as explicit zeros, and cuDNN pads the rest
 * symmetrically. With pad_top = t, pad_bottom = b (TF: b = t or t + 1):
 *   sym = min(t, b); extra_top = t - sym; extra_bottom = b - sym
 * and likewise for columns. Window i then starts at row -t + i*s in both the TF and
 * the cuDNN view, and cuDNN's output size floor((h' + 2*sym - k)/s) + 1 equals TF's.
 * (The alternative, a larger symmetric padding and a crop of the output, only lines
 * the windows up for stride 1, and TF's asymmetric case is most common at stride 2.)
 * The copy costs one pass over x, only in layers whose padding is asymmetric (none
 * in InceptionResNetV2 at 299 or 320: its stride-2 layers are all 'valid').
 * Backward data computes dx into the padded shape and crops (adds) into dx;
 * backward filter reads the padded copy of x. */
typedef struct wn_conv_pad_plan {
    int pad_h, pad_w;        /* symmetric padding handed to cuDNN */
    int extra_top, extra_bottom; /* zero rows stored explicitly in the padded copy */
    int extra_left, extra_right; /* zero columns stored explicitly */
    int in_h, in_w;          /* H, W of the tensor cuDNN reads (h + extra rows, ...) */
    int needs_copy;          /* 1 when any extra_* > 0 */
} wn_conv_pad_plan;

void wn_conv_pad_plan_make(const wn_window *win, wn_conv_pad_plan *plan);

/* cuDNN's output size along one axis for a symmetrically padded input. */
static inline int wn_conv_out_size(int in, int pad, int k, int stride) {
    return (in + 2 * pad - k) / stride + 1;
}

/* Element (n, y, x, c) of the padded buffer [N, in_h, in_w, C] maps to x's element
 * (n, y - extra_top, x - extra_left, c), or to an explicit zero (returns -1). */
WN_HD static inline long long wn_conv_pad_source(long long padded_index, int c, int in_w,
                                                 int in_h, int h, int w, int extra_top,
                                                 int extra_left) {
    long long t = padded_index;
    int ch = (int)(t % c);
    t /= c;
    int px = (int)(t % in_w);
    t /= in_w;
    int py = (int)(t % in_h);
    long long n = t / in_h;
    int y = py - extra_top, x = px - extra_left;
    if (y < 0 || y >= h || x < 0 || x >= w) return -1;
    return ((n * h + y) * w + x) * c + ch;
}

/* Element i of x [N, h, w, C] sits at this index of the padded buffer. */
WN_HD static inline long long wn_conv_pad_target(long long index, int c, int h, int w,
                                                 int in_h, int in_w, int extra_top,
                                                 int extra_left) {
    long long t = index;
    int ch = (int)(t % c);
    t /= c;
    int x = (int)(t % w);
    t /= w;
    int y = (int)(t % h);
    long long n = t / h;
    return ((n * in_h + y + extra_top) * in_w + x + extra_left) * c + ch;
}

/* ---------------------------------------------------------------- layouts */

/* An NHWC tensor as cuDNN's Nd descriptor wants it: dims and strides in N, C, H, W
 * order. */
void wn_nhwc_dims_strides(int n, int h, int w, int c, int dims[4], int strides[4]);

/* Element (r, s, ci, k) of a HWIO kernel [R, S, Cg, K] lives at this index; in the
 * KRSC layout (cuDNN's CUDNN_TENSOR_NHWC filter, Keras's OHWI) at the second. */
WN_HD static inline size_t wn_hwio_index(int r, int s, int ci, int k, int S, int Cg, int K) {
    return (((size_t)r * S + s) * Cg + ci) * K + k;
}
WN_HD static inline size_t wn_krsc_index(int r, int s, int ci, int k, int R, int S, int Cg) {
    return (((size_t)k * R + r) * S + s) * Cg + ci;
}

/* For element i of a KRSC kernel, the index of the same weight in HWIO. Both
 * transposes (HWIO->KRSC before a call, KRSC->HWIO for dw after) use this map, one
 * thread per KRSC element. */
WN_HD static inline size_t wn_krsc_to_hwio(size_t i, int R, int S, int Cg, int K) {
    int ci = (int)(i % (size_t)Cg);
    size_t t = i / (size_t)Cg;
    int s = (int)(t % (size_t)S);
    t /= (size_t)S;
    int r = (int)(t % (size_t)R);
    int k = (int)(t / (size_t)R);
    return wn_hwio_index(r, s, ci, k, S, Cg, K);
}

/* ---------------------------------------------------------------- algorithm cache */

typedef enum {
    WN_CONV_FWD = 0,
    WN_CONV_BWD_DATA = 1,
    WN_CONV_BWD_FILTER = 2
} wn_conv_direction;

/* Everything that changes cuDNN's choice of algorithm; all int32, no padding bytes,
 * so two keys compare with memcmp. Shapes are those cuDNN sees (after the padding
 * plan). The batch is NOT part of it (wn_conv_key_make leaves n 0): the short last
 * batch of an epoch and each evaluation split reuse the full batch's choice instead
 * of repeating the timed search (see wn_conv_cache_action). */
typedef struct wn_conv_key {
    int32_t direction;         /* wn_conv_direction */
    int32_t n, h, w, c;        /* input as cuDNN sees it; n is 0 from wn_conv_key_make */
    int32_t k, kh, kw;         /* filters */
    int32_t sh, sw, ph, pw;    /* strides, symmetric padding */
    int32_t groups;
    int32_t precision;         /* wn_precision */
    int32_t accumulate;        /* beta = 1: some algorithms do not support it */
    int32_t deterministic;     /* 1: only algorithms cuDNN reports deterministic */
} wn_conv_key;

void wn_conv_key_make(wn_conv_key *key, wn_conv_direction dir, const wn_conv_desc *d,
                      const wn_conv_pad_plan *plan, wn_precision precision, int accumulate,
                      int deterministic);
uint64_t wn_conv_key_hash(const wn_conv_key *key);
int wn_conv_key_equal(const wn_conv_key *a, const wn_conv_key *b);

/* The cached choice: cuDNN's algorithm enum value and math type (cudnnMathType_t)
 * as ints, so that this file needs no cuDNN header. */
typedef struct wn_conv_choice {
    int algo;         /* -1: no cuDNN algorithm; our own kernel (depthwise only) */
    int math_type;
    size_t workspace; /* bytes, at the batch searched */
    int searched_n;   /* the batch the timed search ran at */
} wn_conv_choice;

/* Whether a call at batch n may take the cached choice (hit, or NULL when none) or
 * must search: it reuses for any n up to the batch searched (cuDNN's ranking is
 * made for the full batch, the one that costs; the workspace is asked again for
 * the actual shape), and searches again, once, when a larger batch comes. */
typedef enum { WN_CONV_REUSE = 0, WN_CONV_SEARCH = 1 } wn_conv_action;
wn_conv_action wn_conv_cache_action(const wn_conv_choice *hit, int n);

/* cuDNN algorithm families allowed at FP32 (--precision fp32): the GEMM family
 * only, whose float32 error stays within the FP32 op tolerance (1e-5); FFT and
 * Winograd transform the data and lose bits. The enum values are cuDNN's
 * (cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t), passed as ints so that this file
 * needs no cuDNN header; kernels/conv/conv.cu static_asserts them against cudnn.h. */
int wn_conv_algo_is_gemm_family(wn_conv_direction dir, int algo);

/* Open-addressing hash table (linear probing, power-of-two capacity, load <= 1/2). */
typedef struct wn_conv_cache {
    size_t cap, count;
    struct wn_conv_cache_slot {
        int used;
        wn_conv_key key;
        wn_conv_choice choice;
    } *slots;
} wn_conv_cache;

void wn_conv_cache_init(wn_conv_cache *cache);
void wn_conv_cache_free(wn_conv_cache *cache);
/* The cached choice for key, or NULL. */
const wn_conv_choice *wn_conv_cache_find(const wn_conv_cache *cache, const wn_conv_key *key);
/* Inserts or replaces; WN_ERR when memory runs out. */
int wn_conv_cache_put(wn_conv_cache *cache, const wn_conv_key *key,
                      const wn_conv_choice *choice);

/* ---------------------------------------------------------------- scratch */

/* The most temporary device memory one cuDNN convolution call of kernels/conv/conv.cu
 * takes from the arena with activations of type dt: the KRSC copy of the weights, the
 * padded copy of x (or of dx) where TF's 'same' padding is asymmetric, and the search
 * output of an accumulating backward-data call (for bf16, the scratch dx the sum is
 * formed from); for a bf16 depthwise shape, at least the float32 copies our depthwise
 * fallback stages through. */
size_t wn_conv_cuda_scratch_bytes(wn_conv_call call, const wn_conv_desc *d, int accumulate,
                                  wn_dtype dt);

#ifdef __cplusplus
}
#endif
#endif
