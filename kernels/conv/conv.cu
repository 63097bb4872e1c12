/* kernels/conv/conv.cu — every cuDNN call of wastenet: NHWC convolution forward,
 * backward-data and backward-filter (ordinary, grouped and depthwise), float32
 * storage, TF32 tensor cores by default (CUDNN_TENSOR_OP_MATH) and strict FMA
 * float32 for --precision fp32 (CUDNN_FMA_MATH).
 *
 * API: cuDNN 9's legacy convolution functions (cudnnConvolutionForward & co.). They
 * are marked deprecated in cuDNN 9 (silent unless CUDNN_WARN_DEPRECATED is defined)
 * but fully supported; the graph API would replace this one file if they go.
 *
 * Decisions (host-side logic in kernels/conv/conv_cuda_plan.c, unit-tested on the CPU):
 *  - Weights: Keras keeps HWIO [kh, kw, C/groups, K]; cuDNN's NHWC filter format is
 *    KRSC (OHWI). We transpose per call into a scratch buffer instead of keeping a
 *    transposed copy: weights change every Adam step, and the transpose is one pass
 *    over the weights (all of InceptionResNetV2's 54M floats move in well under a
 *    millisecond on a current GPU), far below the convolutions' cost. dw comes back
 *    KRSC and is transposed into the caller's HWIO dw.
 *  - Asymmetric 'same' padding: see wn_conv_pad_plan — the extra row/column is made
 *    explicit in a padded copy of x, cuDNN pads the rest symmetrically, and backward
 *    data crops the padded dx back (adding when accumulating).
 *  - Algorithms: chosen once per (direction, shape without the batch, precision,
 *    determinism) with cudnnFind*AlgorithmEx (timed on the real buffers; a scratch
 *    output where the real one must not be clobbered), and cached in
 *    ctx->conv_cache. A smaller batch (an epoch's short last batch, an evaluation
 *    split) reuses the full batch's choice and only asks cuDNN for that algorithm's
 *    workspace at its shape (wn_conv_cache_action); a larger batch searches once
 *    more. The search gets a temporary workspace of up to WN_CUDNN_WORKSPACE_MB
 *    (halved until cudaMalloc succeeds); the chosen algorithm's own workspace then
 *    comes from the arena, grown to the largest any layer needs.
 *  - Which results may be chosen (pick): FP32 takes only FMA/default math and only
 *    the GEMM family (wn_conv_algo_is_gemm_family: FFT and Winograd lose bits beyond
 *    the FP32 tolerance); deterministic mode (wn_backend_set_deterministic) only
 *    results whose determinism field is CUDNN_DETERMINISTIC.
 *  - Depthwise convolutions that cuDNN has no algorithm for (grouped NHWC through
 *    the legacy API), or all of them with WN_CUDA_DEPTHWISE=own: our own kernels
 *    (kernels/depthwise.cu), cached as algo -1 so the search is not repeated.
 *  - Bias: added by the affine kernel (scale NULL, shift = bias), summed for db by a
 *    GEMV with a ones vector (cuda_dense.cu).
 *  - Data type (the call's wn_dtype): float32, or bf16 for the bf16 ops
 *    (kernels/common/backend_bf16_ops.h, entry points in conv_bf16.h). A bf16 call hands
 *    cuDNN CUDNN_DATA_BFLOAT16 tensors and filters with a float32 compute type
 *    (cuDNN's PSEUDO_BFLOAT16 configuration: float accumulation, one rounding per
 *    output), tensor-op math, and keys the algorithm cache with WN_PRECISION_BF16.
 *    The legacy API keeps dw in the filter's type, so a bf16 weight gradient is rounded
 *    to bf16 once (relative 2^-9 per element, what Keras's mixed_bfloat16 policy does
 *    too) and widened into the float32 HWIO dw by the transpose. Bias and db are
 *    float32 (kernels/common/cuda_bias.cu's bf16 helpers). Where cuDNN has no bf16
 *    algorithm for a shape (grouped NHWC depthwise through the legacy API, or any shape
 *    it answers "not supported"), the bf16 operands are widened into float32 scratch,
 *    the float32 convolution runs (cuDNN's, or our depthwise kernels), and the result
 *    is rounded once (dw and db stay float32); cached as algo -1 like the depthwise
 *    fallback, so the search is not repeated.
 */
#include <string.h>

#include "kernels/common/cuda_bf16.h"
#include "kernels/common/cuda_ctx.h"
#include "kernels/conv/conv.h"
#include "kernels/conv/conv_bf16.h"
#include "kernels/conv/conv_cuda_plan.h"
#include "kernels/conv/depthwise.h"
/* kernels/conv/conv_cuda_plan.c names cuDNN's algorithms by number (it includes no cuDNN header). */
static_assert(CUDNN_CONVOLUTION_FWD_ALGO_GEMM == 2 && CUDNN_CONVOLUTION_FWD_ALGO_FFT == 4,
              "cuDNN forward algorithm numbers moved: update wn_conv_algo_is_gemm_family");
static_assert(CUDNN_CONVOLUTION_BWD_DATA_ALGO_1 == 1 && CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT == 2,
              "cuDNN backward-data algorithm numbers moved: update wn_conv_algo_is_gemm_family");
static_assert(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3 == 3 &&
                  CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT == 2 &&
                  CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED == 5,
              "cuDNN backward-filter algorithm numbers moved: update wn_conv_algo_is_gemm_family");

/* ================================================================ layout kernels */

/* The layout kernels are templates over the element type T (float or wn_bf16): they
 * move elements, except where a bf16 one is widened (dw) or added (accumulate). */

/* w_krsc[i] = w_hwio[map(i)]: one thread per KRSC element, coalesced writes. */
template <typename T>
static __global__ void hwio_to_krsc_kernel(const T *__restrict__ hwio, T *__restrict__ krsc,
                                           size_t count, int R, int S, int Cg, int K) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x)
        krsc[i] = hwio[wn_krsc_to_hwio(i, R, S, Cg, K)];
}

/* float32 HWIO dw from cuDNN's KRSC dw of type T. */
template <typename T>
static __global__ void krsc_to_hwio_kernel(const T *__restrict__ krsc, float *__restrict__ hwio,
                                           size_t count, int R, int S, int Cg, int K) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x)
        hwio[wn_krsc_to_hwio(i, R, S, Cg, K)] = wn_ld(krsc, i);
}

/* xp [N, in_h, in_w, C] = x with the plan's explicit zero rows/columns (T(0) is +0.0
 * in both types). */
template <typename T>
static __global__ void pad_copy_kernel(const T *__restrict__ x, T *__restrict__ xp,
                                       size_t count, int c, int in_h, int in_w, int h, int w,
                                       int extra_top, int extra_left) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x) {
        long long src = wn_conv_pad_source((long long)i, c, in_w, in_h, h, w, extra_top, extra_left);
        xp[i] = src < 0 ? (T)0 : x[src];
    }
}

/* dx [N, h, w, C] (+)= the in-image part of dxp [N, in_h, in_w, C]. */
template <typename T>
static __global__ void crop_kernel(const T *__restrict__ dxp, T *__restrict__ dx,
                                   size_t count, int c, int h, int w, int in_h, int in_w,
                                   int extra_top, int extra_left, int accumulate) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x) {
        size_t src = (size_t)wn_conv_pad_target((long long)i, c, h, w, in_h, in_w, extra_top,
                                                extra_left);
        if (accumulate) wn_st(dx, i, wn_ld(dxp, src), 1);
        else dx[i] = dxp[src];
    }
}

/* The staged depthwise fallback of a bf16 call: y = float(x), and y (+)= bf16(x). */
static __global__ void widen_kernel(size_t count, const wn_bf16 *__restrict__ x,
                                    float *__restrict__ y) {
    WN_GRID_LOOP(i, count) y[i] = wn_ld(x, i);
}

static __global__ void narrow_kernel(size_t count, const float *__restrict__ x,
                                     wn_bf16 *__restrict__ y, int accumulate) {
    WN_GRID_LOOP(i, count) wn_st(y, i, x[i], accumulate);
}

/* ================================================================ one call's state */

typedef struct conv_call {
    const wn_conv_desc *d;
    const char *layer;
    wn_dtype dt;                    /* x, w, y, dy, dx (dw and bias are float32) */
    wn_conv_pad_plan plan;
    int groups, cg;                 /* groups, input channels per group */
    cudnnTensorDescriptor_t xd, yd; /* x as cuDNN sees it (padded), y/dy */
    cudnnFilterDescriptor_t wd;     /* KRSC */
    cudnnConvolutionDescriptor_t cd;
    void *w_krsc;                   /* scratch [K, kh, kw, Cg] of type dt */
    void *x_pad;                    /* scratch [N, in_h, in_w, C] when plan.needs_copy */
    void *out_tmp;                  /* scratch output (padded dx, dw KRSC, search output) */
    float *staged[3];               /* float32 copies for the bf16 depthwise fallback */
} conv_call;

static size_t elem_size(const conv_call *cc) { return wn_dtype_size(cc->dt); }

static cudnnDataType_t cudnn_type(const conv_call *cc) {
    return cc->dt == WN_DTYPE_BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
}

/* The precision this call runs at: the backend's for float32, bf16 for a bf16 call (the
 * algorithm cache's key, the math type, which algorithms may be picked). */
static wn_precision call_precision(const wn_cuda_ctx *ctx, const conv_call *cc) {
    return cc->dt == WN_DTYPE_BF16 ? WN_PRECISION_BF16 : ctx->precision;
}

/* The math type a call sets before choosing: strict FMA only for FP32; TF32 and bf16
 * let cuDNN use tensor cores. */
static cudnnMathType_t setup_math(const wn_cuda_ctx *ctx, const conv_call *cc) {
    return call_precision(ctx, cc) == WN_PRECISION_FP32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH;
}

static int conv_call_setup(wn_backend *be, conv_call *cc) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    const wn_conv_desc *d = cc->d;
    const char *layer = cc->layer;
    wn_conv_pad_plan_make(&d->win, &cc->plan);
    cc->groups = d->groups < 1 ? 1 : d->groups;
    cc->cg = d->win.c / cc->groups;

    CUDNN_CHECK(cudnnCreateTensorDescriptor(&cc->xd), layer);
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&cc->yd), layer);
    CUDNN_CHECK(cudnnCreateFilterDescriptor(&cc->wd), layer);
    CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&cc->cd), layer);
    int dims[4], strides[4];
    wn_nhwc_dims_strides(d->win.n, cc->plan.in_h, cc->plan.in_w, d->win.c, dims, strides);
    CUDNN_CHECK(cudnnSetTensor4dDescriptorEx(cc->xd, cudnn_type(cc), dims[0], dims[1], dims[2],
                                             dims[3], strides[0], strides[1], strides[2],
                                             strides[3]),
                layer);
    wn_nhwc_dims_strides(d->win.n, d->win.oh, d->win.ow, d->k, dims, strides);
    CUDNN_CHECK(cudnnSetTensor4dDescriptorEx(cc->yd, cudnn_type(cc), dims[0], dims[1], dims[2],
                                             dims[3], strides[0], strides[1], strides[2],
                                             strides[3]),
                layer);
    CUDNN_CHECK(cudnnSetFilter4dDescriptor(cc->wd, cudnn_type(cc), CUDNN_TENSOR_NHWC, d->k,
                                           cc->cg, d->win.kh, d->win.kw),
                layer);
    CUDNN_CHECK(cudnnSetConvolution2dDescriptor(cc->cd, cc->plan.pad_h, cc->plan.pad_w,
                                                d->win.sh, d->win.sw, 1, 1,
                                                CUDNN_CROSS_CORRELATION,
                                                CUDNN_DATA_FLOAT /* compute type */),
                layer);
    CUDNN_CHECK(cudnnSetConvolutionGroupCount(cc->cd, cc->groups), layer);
    CUDNN_CHECK(cudnnSetConvolutionMathType(cc->cd, setup_math(ctx, cc)), layer);
    /* The plan promises cuDNN's output size equals TensorFlow's: hold it to that. */
    int on, oc, oh, ow;
    CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(cc->cd, cc->xd, cc->wd, &on, &oc, &oh, &ow),
                layer);
    if (on != d->win.n || oc != d->k || oh != d->win.oh || ow != d->win.ow)
        return wn_fail("layer '%s': cuDNN's output %dx%dx%dx%d differs from TensorFlow's "
                       "%dx%dx%dx%d (padding plan bug)",
                       layer ? layer : "?", on, oh, ow, oc, d->win.n, d->win.oh, d->win.ow, d->k);
    return WN_OK;
}

/* Frees the call's descriptors and scratch; WN_ERR (reason set) when cuDNN refuses a
 * destroy. */
static int conv_call_teardown(wn_backend *be, conv_call *cc) {
    cudnnStatus_t st[4] = {CUDNN_STATUS_SUCCESS, CUDNN_STATUS_SUCCESS, CUDNN_STATUS_SUCCESS,
                           CUDNN_STATUS_SUCCESS};
    if (cc->xd) st[0] = cudnnDestroyTensorDescriptor(cc->xd);
    if (cc->yd) st[1] = cudnnDestroyTensorDescriptor(cc->yd);
    if (cc->wd) st[2] = cudnnDestroyFilterDescriptor(cc->wd);
    if (cc->cd) st[3] = cudnnDestroyConvolutionDescriptor(cc->cd);
    /* stream order: frees after the last launch that reads them */
    wn_cuda_scratch_free(be, cc->w_krsc);
    wn_cuda_scratch_free(be, cc->x_pad);
    wn_cuda_scratch_free(be, cc->out_tmp);
    for (int i = 0; i < 3; i++) wn_cuda_scratch_free(be, cc->staged[i]);
    for (int i = 0; i < 4; i++)
        if (st[i] != CUDNN_STATUS_SUCCESS)
            return wn_cuda_fail_cudnn(st[i], "cudnnDestroy*Descriptor", __FILE__, __LINE__,
                                      cc->layer);
    return WN_OK;
}

/* The end of an op: the body's status first (its reason stands), then teardown's. */
static int conv_call_finish(wn_backend *be, conv_call *cc, int body_rc, const char *what) {
    int td = conv_call_teardown(be, cc);
    if (body_rc != WN_OK || td != WN_OK) return WN_ERR;
    return wn_cuda_op_done(be, what, cc->layer);
}

static int depthwise(const conv_call *cc) {
    return wn_dw_applies(cc->groups, cc->d->win.c, cc->d->k);
}

static size_t weight_count(const conv_call *cc) {
    return (size_t)cc->d->k * cc->d->win.kh * cc->d->win.kw * cc->cg;
}

static size_t x_count(const conv_call *cc, int padded) {
    const wn_window *win = &cc->d->win;
    return (size_t)win->n * (padded ? cc->plan.in_h : win->h) * (padded ? cc->plan.in_w : win->w) *
           win->c;
}

template <typename T>
static void launch_hwio_to_krsc(const wn_cuda_ctx *ctx, const conv_call *cc, const void *w,
                                size_t count) {
    hwio_to_krsc_kernel<<<wn_cuda_blocks(ctx, count), WN_CUDA_THREADS, 0, ctx->stream>>>(
        (const T *)w, (T *)cc->w_krsc, count, cc->d->win.kh, cc->d->win.kw, cc->cg, cc->d->k);
}

/* w_krsc = transpose(w). */
static int stage_weights(wn_backend *be, conv_call *cc, const void *w) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    size_t count = weight_count(cc);
    cc->w_krsc = wn_cuda_scratch(be, count * elem_size(cc), "KRSC weights", cc->layer);
    if (!cc->w_krsc) return WN_ERR;
    if (cc->dt == WN_DTYPE_BF16) launch_hwio_to_krsc<wn_bf16>(ctx, cc, w, count);
    else launch_hwio_to_krsc<float>(ctx, cc, w, count);
    CUDA_CHECK_LAUNCH(cc->layer);
    return WN_OK;
}

template <typename T>
static void launch_pad_copy(const wn_cuda_ctx *ctx, const conv_call *cc, const void *x,
                            size_t count) {
    const wn_window *win = &cc->d->win;
    pad_copy_kernel<<<wn_cuda_blocks(ctx, count), WN_CUDA_THREADS, 0, ctx->stream>>>(
        (const T *)x, (T *)cc->x_pad, count, win->c, cc->plan.in_h, cc->plan.in_w, win->h, win->w,
        cc->plan.extra_top, cc->plan.extra_left);
}

/* The x cuDNN reads: x itself, or its padded copy. */
static int stage_input(wn_backend *be, conv_call *cc, const void *x, const void **xs) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    *xs = x;
    if (!cc->plan.needs_copy) return WN_OK;
    size_t count = x_count(cc, 1);
    cc->x_pad = wn_cuda_scratch(be, count * elem_size(cc), "padded input", cc->layer);
    if (!cc->x_pad) return WN_ERR;
    if (cc->dt == WN_DTYPE_BF16) launch_pad_copy<wn_bf16>(ctx, cc, x, count);
    else launch_pad_copy<float>(ctx, cc, x, count);
    CUDA_CHECK_LAUNCH(cc->layer);
    *xs = cc->x_pad;
    return WN_OK;
}

/* Staging slot `slot` of the bf16 depthwise fallback: `count` floats, filled with the
 * widened src when src is not NULL. */
static float *staged(wn_backend *be, conv_call *cc, int slot, const wn_bf16 *src, size_t count) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    float *p = (float *)wn_cuda_scratch(be, (count ? count : 1) * sizeof(float),
                                        "bf16 depthwise staging", cc->layer);
    cc->staged[slot] = p;
    if (!p || !src || !count) return p;
    widen_kernel<<<wn_cuda_blocks(ctx, count), WN_CUDA_THREADS, 0, ctx->stream>>>(count, src, p);
    if (cudaGetLastError() != cudaSuccess) {
        wn_fail("layer '%s': launching the bf16 widening kernel failed",
                cc->layer ? cc->layer : "?");
        return NULL;
    }
    return p;
}

static int narrow(wn_backend *be, conv_call *cc, const float *x, wn_bf16 *y, size_t count,
                  int accumulate) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    if (!count) return WN_OK;
    narrow_kernel<<<wn_cuda_blocks(ctx, count), WN_CUDA_THREADS, 0, ctx->stream>>>(count, x, y,
                                                                                 accumulate);
    CUDA_CHECK_LAUNCH(cc->layer);
    return WN_OK;
}

static size_t y_count(const conv_call *cc) {
    const wn_window *win = &cc->d->win;
    return (size_t)win->n * win->oh * win->ow * cc->d->k;
}

/* y (+)= bias, and db = column sums of dy, in the call's type (bias and db float32). */
static int add_bias(wn_backend *be, conv_call *cc, const float *bias, void *y) {
    const wn_window *win = &cc->d->win;
    size_t rows = (size_t)win->n * win->oh * win->ow;
    if (cc->dt == WN_DTYPE_BF16)
        return wn_cuda_bias_add_bf16(be, rows, cc->d->k, bias, (wn_bf16 *)y, cc->layer);
    return wn_cuda_bias_add(be, rows, cc->d->k, bias, (float *)y, cc->layer);
}

static int bias_grad(wn_backend *be, conv_call *cc, const void *dy, float *db) {
    const wn_window *win = &cc->d->win;
    size_t rows = (size_t)win->n * win->oh * win->ow;
    if (cc->dt == WN_DTYPE_BF16)
        return wn_cuda_column_sums_bf16(be, rows, cc->d->k, (const wn_bf16 *)dy, db, cc->layer);
    return wn_cuda_column_sums(be, rows, cc->d->k, (const float *)dy, db, cc->layer);
}

/* Where cuDNN is not used for this call (algo -1 in the cache): our depthwise kernels
 * for a float32 call; for a bf16 call, the float32 convolution on widened copies of the
 * operands (exact), its result rounded to bf16 once — the float32 call then takes its
 * own way (cuDNN float32, or our depthwise kernels), and adds the bias or sums db in
 * float32 itself. A bf16 shape lands here when cuDNN offers no bf16 algorithm for it
 * (a depthwise shape through the legacy API; any other shape it refuses). */
static int own_forward(wn_backend *be, conv_call *cc, const void *x, const void *w,
                       const float *bias, void *y) {
    if (cc->dt == WN_DTYPE_F32) {
        if (wn_cuda_depthwise_forward(be, cc->d, (const float *)x, (const float *)w, (float *)y,
                                      cc->layer) != WN_OK)
            return WN_ERR;
        return bias ? add_bias(be, cc, bias, y) : WN_OK;
    }
    float *xf = staged(be, cc, 0, (const wn_bf16 *)x, x_count(cc, 0));
    float *wf = xf ? staged(be, cc, 1, (const wn_bf16 *)w, weight_count(cc)) : NULL;
    float *yf = wf ? staged(be, cc, 2, NULL, y_count(cc)) : NULL;
    if (!yf || wn_cuda_conv2d_forward(be, cc->d, xf, wf, bias, yf, cc->layer) != WN_OK)
        return WN_ERR;
    return narrow(be, cc, yf, (wn_bf16 *)y, y_count(cc), 0);
}

static int own_backward_data(wn_backend *be, conv_call *cc, const void *dy, const void *w,
                             void *dx, int accumulate) {
    if (cc->dt == WN_DTYPE_F32)
        return wn_cuda_depthwise_backward_data(be, cc->d, (const float *)dy, (const float *)w,
                                               (float *)dx, accumulate, cc->layer);
    float *dyf = staged(be, cc, 0, (const wn_bf16 *)dy, y_count(cc));
    float *wf = dyf ? staged(be, cc, 1, (const wn_bf16 *)w, weight_count(cc)) : NULL;
    float *dxf = wf ? staged(be, cc, 2, NULL, x_count(cc, 0)) : NULL;
    if (!dxf || wn_cuda_conv2d_backward_data(be, cc->d, dyf, wf, dxf, 0, cc->layer) != WN_OK)
        return WN_ERR;
    return narrow(be, cc, dxf, (wn_bf16 *)dx, x_count(cc, 0), accumulate);
}

static int own_backward_filter(wn_backend *be, conv_call *cc, const void *x, const void *dy,
                               float *dw, float *db) {
    if (cc->dt == WN_DTYPE_F32) {
        if (wn_cuda_depthwise_backward_filter(be, cc->d, (const float *)x, (const float *)dy, dw,
                                              cc->layer) != WN_OK)
            return WN_ERR;
        return db ? bias_grad(be, cc, dy, db) : WN_OK;
    }
    float *xf = staged(be, cc, 0, (const wn_bf16 *)x, x_count(cc, 0));
    float *dyf = xf ? staged(be, cc, 1, (const wn_bf16 *)dy, y_count(cc)) : NULL;
    if (!dyf) return WN_ERR;
    return wn_cuda_conv2d_backward_filter(be, cc->d, xf, dyf, dw, db, cc->layer);
}

/* ================================================================ algorithm search */

/* A temporary workspace for the search: WN_CUDNN_WORKSPACE_MB, halved until the
 * driver gives it (0 bytes still finds the algorithms that need none). */
static void *search_workspace(wn_cuda_ctx *ctx, size_t *bytes) {
    size_t want = ctx->workspace_limit;
    while (want >= ((size_t)1 << 20)) {
        void *p = NULL;
        if (cudaMalloc(&p, want) == cudaSuccess) {
            *bytes = want;
            return p;
        }
        (void)cudaGetLastError();
        want /= 2;
    }
    *bytes = 0;
    return NULL;
}

/* Picks the fastest successful result allowed by the precision and mode. Under FP32
 * the descriptor asks for FMA math; a result that reports tensor-op math, or one
 * outside the GEMM family, is refused; in deterministic mode so is any result cuDNN
 * does not report deterministic. */
template <typename Perf>
static int pick(const Perf *perf, int n, const wn_cuda_ctx *ctx, wn_precision precision,
                wn_conv_direction dir, size_t ws_bytes, wn_conv_choice *out) {
    for (int i = 0; i < n; i++) {
        if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > ws_bytes) continue;
        if (precision == WN_PRECISION_FP32 &&
            ((perf[i].mathType != CUDNN_FMA_MATH && perf[i].mathType != CUDNN_DEFAULT_MATH) ||
             !wn_conv_algo_is_gemm_family(dir, (int)perf[i].algo)))
            continue;
        if (ctx->deterministic && perf[i].determinism != CUDNN_DETERMINISTIC) continue;
        out->algo = (int)perf[i].algo;
        out->math_type = (int)perf[i].mathType;
        out->workspace = perf[i].memory;
        return 1;
    }
    return 0;
}

static const char *dir_name(wn_conv_direction dir) {
    return dir == WN_CONV_FWD ? "forward" : dir == WN_CONV_BWD_DATA ? "backward-data"
                                                                    : "backward-filter";
}

static void key_of(const wn_cuda_ctx *ctx, const conv_call *cc, wn_conv_direction dir,
                   int accumulate, wn_conv_key *key) {
    wn_conv_key_make(key, dir, cc->d, &cc->plan, call_precision(ctx, cc), accumulate,
                     ctx->deterministic);
}

/* 1 when this call goes to our depthwise kernels without touching cuDNN: asked for
 * (WN_CUDA_DEPTHWISE=own), or cuDNN was found to have nothing for this shape. */
static int own_depthwise_now(wn_backend *be, const conv_call *cc, wn_conv_direction dir,
                             int accumulate) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    if (!depthwise(cc) && cc->dt != WN_DTYPE_BF16) return 0;
    if (depthwise(cc) && ctx->own_depthwise) return 1;
    wn_conv_key key;
    key_of(ctx, cc, dir, accumulate, &key);
    const wn_conv_choice *hit = wn_conv_cache_find(ctx->conv_cache, &key);
    return hit && hit->algo < 0;
}

/* The workspace a cached algorithm needs at this call's shape (a smaller batch than
 * the one searched); a status other than success when the algorithm does not apply
 * there. */
static cudnnStatus_t workspace_at_shape(wn_cuda_ctx *ctx, conv_call *cc, wn_conv_direction dir,
                                        const wn_conv_choice *c, size_t *bytes) {
    cudnnMathType_t math = call_precision(ctx, cc) == WN_PRECISION_FP32
                               ? CUDNN_FMA_MATH
                               : (cudnnMathType_t)c->math_type;
    cudnnStatus_t st = cudnnSetConvolutionMathType(cc->cd, math);
    if (st != CUDNN_STATUS_SUCCESS) return st;
    if (dir == WN_CONV_FWD)
        return cudnnGetConvolutionForwardWorkspaceSize(ctx->cudnn, cc->xd, cc->wd, cc->cd, cc->yd,
                                                       (cudnnConvolutionFwdAlgo_t)c->algo, bytes);
    if (dir == WN_CONV_BWD_DATA)
        return cudnnGetConvolutionBackwardDataWorkspaceSize(
            ctx->cudnn, cc->wd, cc->yd, cc->cd, cc->xd, (cudnnConvolutionBwdDataAlgo_t)c->algo,
            bytes);
    return cudnnGetConvolutionBackwardFilterWorkspaceSize(
        ctx->cudnn, cc->xd, cc->yd, cc->cd, cc->wd, (cudnnConvolutionBwdFilterAlgo_t)c->algo,
        bytes);
}

/* The choice for this call: the cached one when its batch was at least this one's
 * (the workspace asked again for this shape), else a timed search. `a`/`b`/`out`
 * are the buffers the search may read and overwrite (direction-specific). A
 * depthwise shape cuDNN has nothing for comes back as algo -1 (our kernels). */
static int choose(wn_backend *be, conv_call *cc, wn_conv_direction dir, int accumulate,
                  const void *a, const void *b, void *out, wn_conv_choice *choice) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    wn_conv_key key;
    key_of(ctx, cc, dir, accumulate, &key);
    const wn_conv_choice *hit = wn_conv_cache_find(ctx->conv_cache, &key);
    int n = cc->d->win.n;
    /* a batch whose shape the cached algorithm did not fit has its own entry */
    wn_conv_key exact = key;
    exact.n = n;
    const wn_conv_choice *own_entry = hit ? wn_conv_cache_find(ctx->conv_cache, &exact) : NULL;
    if (own_entry) {
        *choice = *own_entry;
        return WN_OK;
    }
    wn_conv_key *store_key = &key;
    if (wn_conv_cache_action(hit, n) == WN_CONV_REUSE) {
        *choice = *hit;
        if (hit->algo < 0 || n == hit->searched_n) return WN_OK;
        size_t bytes = 0;
        if (workspace_at_shape(ctx, cc, dir, hit, &bytes) == CUDNN_STATUS_SUCCESS) {
            choice->workspace = bytes;
            return WN_OK;
        }
        /* the algorithm does not apply at this batch: search, and keep the result
         * under this batch (the full batches keep theirs) */
        store_key = &exact;
    }
    if (depthwise(cc) && ctx->own_depthwise) {
        choice->algo = -1, choice->math_type = 0, choice->workspace = 0, choice->searched_n = n;
        return wn_conv_cache_put(ctx->conv_cache, store_key, choice);
    }
    size_t ws_bytes = 0;
    void *ws = search_workspace(ctx, &ws_bytes);
    wn_precision prec = call_precision(ctx, cc);
    int found = 0, returned = 0;
    cudnnStatus_t st = CUDNN_STATUS_SUCCESS;
    if (dir == WN_CONV_FWD) {
        cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
        st = cudnnFindConvolutionForwardAlgorithmEx(ctx->cudnn, cc->xd, a, cc->wd, b, cc->cd,
                                                    cc->yd, out, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                                    &returned, perf, ws, ws_bytes);
        if (st == CUDNN_STATUS_SUCCESS) found = pick(perf, returned, ctx, prec, dir, ws_bytes, choice);
    } else if (dir == WN_CONV_BWD_DATA) {
        cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
        st = cudnnFindConvolutionBackwardDataAlgorithmEx(
            ctx->cudnn, cc->wd, a, cc->yd, b, cc->cd, cc->xd, out,
            CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &returned, perf, ws, ws_bytes);
        if (st == CUDNN_STATUS_SUCCESS) found = pick(perf, returned, ctx, prec, dir, ws_bytes, choice);
    } else {
        cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
        st = cudnnFindConvolutionBackwardFilterAlgorithmEx(
            ctx->cudnn, cc->xd, a, cc->yd, b, cc->cd, cc->wd, out,
            CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &returned, perf, ws, ws_bytes);
        if (st == CUDNN_STATUS_SUCCESS) found = pick(perf, returned, ctx, prec, dir, ws_bytes, choice);
    }
    if (ws) CUDA_CHECK(cudaFree(ws), cc->layer);
    /* cuDNN 9's "not supported" family: 3000 and its sub-codes */
    int unsupported = st == CUDNN_STATUS_SUCCESS ||
                      (st >= CUDNN_STATUS_NOT_SUPPORTED && st < CUDNN_STATUS_NOT_SUPPORTED + 1000);
    if ((st != CUDNN_STATUS_SUCCESS || !found) &&
        (depthwise(cc) || (cc->dt == WN_DTYPE_BF16 && unsupported))) {
        /* grouped NHWC: cuDNN may have nothing (or refuse the shape); ours always applies.
         * bf16 that cuDNN refuses: the float32 convolution on widened operands. */
        choice->algo = -1, choice->math_type = 0, choice->workspace = 0;
        st = CUDNN_STATUS_SUCCESS, found = 1;
    }
    if (st != CUDNN_STATUS_SUCCESS)
        return wn_cuda_fail_cudnn(st, "cudnnFindConvolution*AlgorithmEx", __FILE__, __LINE__,
                                  cc->layer);
    if (!found) {
        const wn_window *w = &cc->d->win;
        return wn_fail("layer '%s': cuDNN has no %s algorithm for %dx%dx%dx%d -> %d filters "
                       "%dx%d stride %dx%d groups %d at %s precision (workspace %zu MiB)",
                       cc->layer ? cc->layer : "?", dir_name(dir), w->n, w->h, w->w, w->c,
                       cc->d->k, w->kh, w->kw, w->sh, w->sw, cc->groups,
                       prec == WN_PRECISION_FP32 ? "fp32" : prec == WN_PRECISION_BF16 ? "bf16" : "tf32",
                       ws_bytes >> 20);
    }
    choice->searched_n = n;
    return wn_conv_cache_put(ctx->conv_cache, store_key, choice);
}

/* Sets the chosen math type and makes the workspace large enough. */
static int prepare(wn_backend *be, conv_call *cc, const wn_conv_choice *choice) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    cudnnMathType_t math = call_precision(ctx, cc) == WN_PRECISION_FP32
                               ? CUDNN_FMA_MATH
                               : (cudnnMathType_t)choice->math_type;
    CUDNN_CHECK(cudnnSetConvolutionMathType(cc->cd, math), cc->layer);
    return wn_cuda_workspace(be, choice->workspace, cc->layer);
}

/* ================================================================ the three ops */

static int forward_body(wn_backend *be, conv_call *cc, const void *x, const void *w,
                        const float *bias, void *y) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    if (conv_call_setup(be, cc) != WN_OK) return WN_ERR;
    int own = own_depthwise_now(be, cc, WN_CONV_FWD, 0);
    if (!own) {
        const void *xs;
        if (stage_weights(be, cc, w) != WN_OK || stage_input(be, cc, x, &xs) != WN_OK)
            return WN_ERR;
        wn_conv_choice choice;
        if (choose(be, cc, WN_CONV_FWD, 0, xs, cc->w_krsc, y, &choice) != WN_OK) return WN_ERR;
        own = choice.algo < 0;
        if (!own) {
            if (prepare(be, cc, &choice) != WN_OK) return WN_ERR;
            const float one = 1.0f, zero = 0.0f;
            CUDNN_CHECK(cudnnConvolutionForward(ctx->cudnn, &one, cc->xd, xs, cc->wd, cc->w_krsc,
                                                cc->cd, (cudnnConvolutionFwdAlgo_t)choice.algo,
                                                ctx->workspace, choice.workspace, &zero, cc->yd,
                                                y),
                        cc->layer);
        }
    }
    if (own) return own_forward(be, cc, x, w, bias, y);
    return bias ? add_bias(be, cc, bias, y) : WN_OK;
}

static int conv_forward(wn_backend *be, const wn_conv_desc *d, wn_dtype dt, const void *x,
                        const void *w, const float *bias, void *y, const char *layer) {
    conv_call cc;
    memset(&cc, 0, sizeof cc);
    cc.d = d, cc.layer = layer, cc.dt = dt;
    return conv_call_finish(be, &cc, forward_body(be, &cc, x, w, bias, y), "conv2d_forward");
}

int wn_cuda_conv2d_forward(wn_backend *be, const wn_conv_desc *d, const float *x,
                           const float *w, const float *bias, float *y, const char *layer) {
    return conv_forward(be, d, WN_DTYPE_F32, x, w, bias, y, layer);
}

int wn_cuda_conv2d_forward_bf16(wn_backend *be, const wn_conv_desc *d, const wn_bf16 *x,
                                const wn_bf16 *w, const float *bias, wn_bf16 *y,
                                const char *layer) {
    return conv_forward(be, d, WN_DTYPE_BF16, x, w, bias, y, layer);
}

template <typename T>
static void launch_crop(const wn_cuda_ctx *ctx, const conv_call *cc, void *dx, size_t count,
                        int accumulate) {
    const wn_window *win = &cc->d->win;
    crop_kernel<<<wn_cuda_blocks(ctx, count), WN_CUDA_THREADS, 0, ctx->stream>>>(
        (const T *)cc->out_tmp, (T *)dx, count, win->c, win->h, win->w, cc->plan.in_h,
        cc->plan.in_w, cc->plan.extra_top, cc->plan.extra_left, accumulate);
}

static int backward_data_body(wn_backend *be, conv_call *cc, const void *dy, const void *w,
                              void *dx, int accumulate) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    if (conv_call_setup(be, cc) != WN_OK) return WN_ERR;
    /* cuDNN's beta = 1 adds in the tensor's type: right for float32, but a bf16 sum must
     * be formed in float and rounded once, so a bf16 call adds through the crop kernel's
     * accumulating store instead (from a scratch dx). */
    int via_scratch = cc->plan.needs_copy || (accumulate && cc->dt == WN_DTYPE_BF16);
    int beta_one = accumulate && !via_scratch;
    if (own_depthwise_now(be, cc, WN_CONV_BWD_DATA, beta_one))
        return own_backward_data(be, cc, dy, w, dx, accumulate);
    if (stage_weights(be, cc, w) != WN_OK) return WN_ERR;
    /* cuDNN writes dx itself (beta = accumulate) unless the padding plan needs a crop;
     * then it writes a padded scratch that the crop kernel adds or copies into dx. */
    void *target = dx;
    size_t padded = x_count(cc, 1);
    if (via_scratch) {
        cc->out_tmp = wn_cuda_scratch(be, padded * elem_size(cc), "padded dx", cc->layer);
        if (!cc->out_tmp) return WN_ERR;
        target = cc->out_tmp;
    }
    wn_conv_choice choice;
    /* The search overwrites its output: never the caller's dx when accumulating. */
    void *search_out = target;
    void *search_tmp = NULL;
    if (beta_one) {
        wn_conv_key key;
        key_of(ctx, cc, WN_CONV_BWD_DATA, 1, &key);
        if (wn_conv_cache_action(wn_conv_cache_find(ctx->conv_cache, &key), cc->d->win.n) ==
            WN_CONV_SEARCH) {
            search_tmp = wn_cuda_scratch(be, padded * elem_size(cc), "search output", cc->layer);
            if (!search_tmp) return WN_ERR;
            search_out = search_tmp;
        }
    }
    int rc = choose(be, cc, WN_CONV_BWD_DATA, beta_one, cc->w_krsc, dy, search_out, &choice);
    wn_cuda_scratch_free(be, search_tmp);
    if (rc != WN_OK) return WN_ERR;
    if (choice.algo < 0) return own_backward_data(be, cc, dy, w, dx, accumulate);
    if (prepare(be, cc, &choice) != WN_OK) return WN_ERR;
    const float one = 1.0f, beta = beta_one ? 1.0f : 0.0f;
    CUDNN_CHECK(cudnnConvolutionBackwardData(ctx->cudnn, &one, cc->wd, cc->w_krsc, cc->yd, dy,
                                             cc->cd, (cudnnConvolutionBwdDataAlgo_t)choice.algo,
                                             ctx->workspace, choice.workspace, &beta, cc->xd,
                                             target),
                cc->layer);
    if (via_scratch) {
        size_t count = x_count(cc, 0);
        if (cc->dt == WN_DTYPE_BF16) launch_crop<wn_bf16>(ctx, cc, dx, count, accumulate);
        else launch_crop<float>(ctx, cc, dx, count, accumulate);
        CUDA_CHECK_LAUNCH(cc->layer);
    }
    return WN_OK;
}

static int conv_backward_data(wn_backend *be, const wn_conv_desc *d, wn_dtype dt, const void *dy,
                              const void *w, void *dx, int accumulate, const char *layer) {
    conv_call cc;
    memset(&cc, 0, sizeof cc);
    cc.d = d, cc.layer = layer, cc.dt = dt;
    return conv_call_finish(be, &cc, backward_data_body(be, &cc, dy, w, dx, accumulate),
                            "conv2d_backward_data");
}

int wn_cuda_conv2d_backward_data(wn_backend *be, const wn_conv_desc *d, const float *dy,
                                 const float *w, float *dx, int accumulate, const char *layer) {
    return conv_backward_data(be, d, WN_DTYPE_F32, dy, w, dx, accumulate, layer);
}

int wn_cuda_conv2d_backward_data_bf16(wn_backend *be, const wn_conv_desc *d, const wn_bf16 *dy,
                                      const wn_bf16 *w, wn_bf16 *dx, int accumulate,
                                      const char *layer) {
    return conv_backward_data(be, d, WN_DTYPE_BF16, dy, w, dx, accumulate, layer);
}

template <typename T>
static void launch_krsc_to_hwio(const wn_cuda_ctx *ctx, const conv_call *cc, float *dw,
                                size_t count) {
    krsc_to_hwio_kernel<<<wn_cuda_blocks(ctx, count), WN_CUDA_THREADS, 0, ctx->stream>>>(
        (const T *)cc->out_tmp, dw, count, cc->d->win.kh, cc->d->win.kw, cc->cg, cc->d->k);
}

static int backward_filter_body(wn_backend *be, conv_call *cc, const void *x, const void *dy,
                                float *dw, float *db) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    if (conv_call_setup(be, cc) != WN_OK) return WN_ERR;
    int own = own_depthwise_now(be, cc, WN_CONV_BWD_FILTER, 0);
    if (!own) {
        const void *xs;
        if (stage_input(be, cc, x, &xs) != WN_OK) return WN_ERR;
        size_t count = weight_count(cc);
        cc->out_tmp = wn_cuda_scratch(be, count * elem_size(cc), "KRSC dw", cc->layer);
        if (!cc->out_tmp) return WN_ERR;
        wn_conv_choice choice;
        if (choose(be, cc, WN_CONV_BWD_FILTER, 0, xs, dy, cc->out_tmp, &choice) != WN_OK)
            return WN_ERR;
        own = choice.algo < 0;
        if (!own) {
            if (prepare(be, cc, &choice) != WN_OK) return WN_ERR;
            const float one = 1.0f, zero = 0.0f;
            CUDNN_CHECK(cudnnConvolutionBackwardFilter(
                            ctx->cudnn, &one, cc->xd, xs, cc->yd, dy, cc->cd,
                            (cudnnConvolutionBwdFilterAlgo_t)choice.algo, ctx->workspace,
                            choice.workspace, &zero, cc->wd, cc->out_tmp),
                        cc->layer);
            if (cc->dt == WN_DTYPE_BF16) launch_krsc_to_hwio<wn_bf16>(ctx, cc, dw, count);
            else launch_krsc_to_hwio<float>(ctx, cc, dw, count);
            CUDA_CHECK_LAUNCH(cc->layer);
        }
    }
    if (own) return own_backward_filter(be, cc, x, dy, dw, db);
    return db ? bias_grad(be, cc, dy, db) : WN_OK;
}

static int conv_backward_filter(wn_backend *be, const wn_conv_desc *d, wn_dtype dt,
                                const void *x, const void *dy, float *dw, float *db,
                                const char *layer) {
    conv_call cc;
    memset(&cc, 0, sizeof cc);
    cc.d = d, cc.layer = layer, cc.dt = dt;
    return conv_call_finish(be, &cc, backward_filter_body(be, &cc, x, dy, dw, db),
                            "conv2d_backward_filter");
}

int wn_cuda_conv2d_backward_filter(wn_backend *be, const wn_conv_desc *d, const float *x,
                                   const float *dy, float *dw, float *db, const char *layer) {
    return conv_backward_filter(be, d, WN_DTYPE_F32, x, dy, dw, db, layer);
}

int wn_cuda_conv2d_backward_filter_bf16(wn_backend *be, const wn_conv_desc *d, const wn_bf16 *x,
                                        const wn_bf16 *dy, float *dw, float *db,
                                        const char *layer) {
    return conv_backward_filter(be, d, WN_DTYPE_BF16, x, dy, dw, db, layer);
}

size_t wn_cuda_conv_bf16_scratch_bytes(wn_backend *be, wn_conv_call call, const wn_conv_desc *d,
                                       int accumulate) {
    (void)be;
    return wn_conv_cuda_scratch_bytes(call, d, accumulate, WN_DTYPE_BF16);
}
