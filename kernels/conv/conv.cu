/* kernels/conv/conv.cu — every cuDNN call of wastenet: NHWC convolution forward,
 * backward-data and backward-filter (ordinary, grouped and depthwise), float32
 * storage, TF32 tensor cores by default (CUDNN_TENSOR_OP_MATH) and strict FMA
 * float32 for --precision fp32 (CUDNN_FMA_MATH).
 *
 * API: cuDNN 9's legacy convolution functions (cudnnConvolutionForward & co.). They
 * are marked deprecated in cuDNN 9 (silent unless CUDNN_WARN_DEPRECATED is defined)
 * but fully supported; the graph API would replace this one file if they go.
 *
 * Decisions (host-side logic in engine/cuda_plan.c, unit-tested on the CPU):
 *  - Weights: Keras keeps HWIO [kh, kw, C/groups, K]; cuDNN's NHWC filter format is
 *    KRSC (OHWI). We transpose per call into a scratch buffer instead of keeping a
 *    transposed copy: weights change every Adam step, and the transpose is one pass
 *    over the weights (all of InceptionResNetV2's 54M floats move in well under a
 *    millisecond on a current GPU), far below the convolutions' cost. dw comes back
 *    KRSC and is transposed into the caller's HWIO dw.
 *  - Asymmetric 'same' padding: see wn_conv_pad_plan — the extra row/column is made
 *    explicit in a padded copy of x, cuDNN pads the rest symmetrically, and backward
 *    data crops the padded dx back (adding when accumulating).
 *  - Algorithms: chosen once per (direction, shape, precision) with
 *    cudnnFind*AlgorithmEx (timed on the real buffers; a scratch output where the
 *    real one must not be clobbered), and cached in ctx->conv_cache. The search
 *    gets a temporary workspace of up to WN_CUDNN_WORKSPACE_MB (halved until
 *    cudaMalloc succeeds); the chosen algorithm's own workspace then comes from the
 *    arena, grown to the largest any layer needs.
 *  - Bias: added by the affine kernel (scale NULL, shift = bias), summed for db by a
 *    GEMV with a ones vector (cuda_dense.cu).
 */
#include <string.h>

#include "kernels/common/cuda_ctx.h"
#include "kernels/conv/conv.h"
#include "kernels/conv/conv_cuda_plan.h"

/* ================================================================ layout kernels */

/* w_krsc[i] = w_hwio[map(i)]: one thread per KRSC element, coalesced writes. */
static __global__ void hwio_to_krsc_kernel(const float *__restrict__ hwio, float *__restrict__ krsc,
                                           size_t count, int R, int S, int Cg, int K) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x)
        krsc[i] = hwio[wn_krsc_to_hwio(i, R, S, Cg, K)];
}

static __global__ void krsc_to_hwio_kernel(const float *__restrict__ krsc, float *__restrict__ hwio,
                                           size_t count, int R, int S, int Cg, int K) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x)
        hwio[wn_krsc_to_hwio(i, R, S, Cg, K)] = krsc[i];
}

/* xp [N, in_h, in_w, C] = x with the plan's explicit zero rows/columns. */
static __global__ void pad_copy_kernel(const float *__restrict__ x, float *__restrict__ xp,
                                       size_t count, int c, int in_h, int in_w, int h, int w,
                                       int extra_top, int extra_left) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x) {
        long long src = wn_conv_pad_source((long long)i, c, in_w, in_h, h, w, extra_top, extra_left);
        xp[i] = src < 0 ? 0.0f : x[src];
    }
}

/* dx [N, h, w, C] (+)= the in-image part of dxp [N, in_h, in_w, C]. */
static __global__ void crop_kernel(const float *__restrict__ dxp, float *__restrict__ dx,
                                   size_t count, int c, int h, int w, int in_h, int in_w,
                                   int extra_top, int extra_left, int accumulate) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x) {
        float v = dxp[wn_conv_pad_target((long long)i, c, h, w, in_h, in_w, extra_top, extra_left)];
        dx[i] = accumulate ? dx[i] + v : v;
    }
}

/* ================================================================ one call's state */

typedef struct conv_call {
    const wn_conv_desc *d;
    const char *layer;
    wn_conv_pad_plan plan;
    int groups, cg;                 /* groups, input channels per group */
    cudnnTensorDescriptor_t xd, yd; /* x as cuDNN sees it (padded), y/dy */
    cudnnFilterDescriptor_t wd;     /* KRSC */
    cudnnConvolutionDescriptor_t cd;
    float *w_krsc;                  /* scratch [K, kh, kw, Cg] */
    float *x_pad;                   /* scratch [N, in_h, in_w, C] when plan.needs_copy */
    float *out_tmp;                 /* scratch output (padded dx, dw KRSC, search output) */
} conv_call;

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
    CUDNN_CHECK(cudnnSetTensor4dDescriptorEx(cc->xd, CUDNN_DATA_FLOAT, dims[0], dims[1], dims[2],
                                             dims[3], strides[0], strides[1], strides[2],
                                             strides[3]),
                layer);
    wn_nhwc_dims_strides(d->win.n, d->win.oh, d->win.ow, d->k, dims, strides);
    CUDNN_CHECK(cudnnSetTensor4dDescriptorEx(cc->yd, CUDNN_DATA_FLOAT, dims[0], dims[1], dims[2],
                                             dims[3], strides[0], strides[1], strides[2],
                                             strides[3]),
                layer);
    CUDNN_CHECK(cudnnSetFilter4dDescriptor(cc->wd, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, d->k,
                                           cc->cg, d->win.kh, d->win.kw),
                layer);
    CUDNN_CHECK(cudnnSetConvolution2dDescriptor(cc->cd, cc->plan.pad_h, cc->plan.pad_w,
                                                d->win.sh, d->win.sw, 1, 1,
                                                CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
                layer);
    CUDNN_CHECK(cudnnSetConvolutionGroupCount(cc->cd, cc->groups), layer);
    CUDNN_CHECK(cudnnSetConvolutionMathType(cc->cd, ctx->precision == WN_PRECISION_TF32
                                                        ? CUDNN_TENSOR_OP_MATH
                                                        : CUDNN_FMA_MATH),
                layer);
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

static void conv_call_teardown(wn_backend *be, conv_call *cc) {
    if (cc->xd) cudnnDestroyTensorDescriptor(cc->xd);
    if (cc->yd) cudnnDestroyTensorDescriptor(cc->yd);
    if (cc->wd) cudnnDestroyFilterDescriptor(cc->wd);
    if (cc->cd) cudnnDestroyConvolutionDescriptor(cc->cd);
    /* stream order: frees after the last launch that reads them */
    wn_cuda_scratch_free(be, cc->w_krsc);
    wn_cuda_scratch_free(be, cc->x_pad);
    wn_cuda_scratch_free(be, cc->out_tmp);
}

static size_t weight_count(const conv_call *cc) {
    return (size_t)cc->d->k * cc->d->win.kh * cc->d->win.kw * cc->cg;
}

static size_t x_count(const conv_call *cc, int padded) {
    const wn_window *win = &cc->d->win;
    return (size_t)win->n * (padded ? cc->plan.in_h : win->h) * (padded ? cc->plan.in_w : win->w) *
           win->c;
}

/* w_krsc = transpose(w). */
static int stage_weights(wn_backend *be, conv_call *cc, const float *w) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    size_t count = weight_count(cc);
    cc->w_krsc = (float *)wn_cuda_scratch(be, count * sizeof(float), "KRSC weights", cc->layer);
    if (!cc->w_krsc) return WN_ERR;
    hwio_to_krsc_kernel<<<wn_cuda_blocks(ctx, count), WN_CUDA_THREADS, 0, ctx->stream>>>(
        w, cc->w_krsc, count, cc->d->win.kh, cc->d->win.kw, cc->cg, cc->d->k);
    CUDA_CHECK_LAUNCH(cc->layer);
    return WN_OK;
}

/* The x cuDNN reads: x itself, or its padded copy. */
static int stage_input(wn_backend *be, conv_call *cc, const float *x, const float **xs) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    *xs = x;
    if (!cc->plan.needs_copy) return WN_OK;
    size_t count = x_count(cc, 1);
    cc->x_pad = (float *)wn_cuda_scratch(be, count * sizeof(float), "padded input", cc->layer);
    if (!cc->x_pad) return WN_ERR;
    const wn_window *win = &cc->d->win;
    pad_copy_kernel<<<wn_cuda_blocks(ctx, count), WN_CUDA_THREADS, 0, ctx->stream>>>(
        x, cc->x_pad, count, win->c, cc->plan.in_h, cc->plan.in_w, win->h, win->w,
        cc->plan.extra_top, cc->plan.extra_left);
    CUDA_CHECK_LAUNCH(cc->layer);
    *xs = cc->x_pad;
    return WN_OK;
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

/* Picks the fastest successful result allowed by the precision. Under FP32 the
 * descriptor asks for FMA math; a result that reports tensor-op math is refused. */
template <typename Perf>
static int pick(const Perf *perf, int n, const wn_cuda_ctx *ctx, size_t ws_bytes,
                wn_conv_choice *out) {
    for (int i = 0; i < n; i++) {
        if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > ws_bytes) continue;
        if (ctx->precision == WN_PRECISION_FP32 && perf[i].mathType != CUDNN_FMA_MATH &&
            perf[i].mathType != CUDNN_DEFAULT_MATH)
            continue;
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

/* The cached choice for this call, searching on first sight. `in`/`out` are the
 * buffers the search may read and overwrite (direction-specific). */
static int choose(wn_backend *be, conv_call *cc, wn_conv_direction dir, int accumulate,
                  const void *a, const void *b, void *out, wn_conv_choice *choice) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    wn_conv_key key;
    wn_conv_key_make(&key, dir, cc->d, &cc->plan, ctx->precision, accumulate);
    const wn_conv_choice *hit = wn_conv_cache_find(ctx->conv_cache, &key);
    if (hit) {
        *choice = *hit;
        return WN_OK;
    }
    size_t ws_bytes = 0;
    void *ws = search_workspace(ctx, &ws_bytes);
    int found = 0, returned = 0;
    cudnnStatus_t st = CUDNN_STATUS_SUCCESS;
    if (dir == WN_CONV_FWD) {
        cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
        st = cudnnFindConvolutionForwardAlgorithmEx(ctx->cudnn, cc->xd, a, cc->wd, b, cc->cd,
                                                    cc->yd, out, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                                    &returned, perf, ws, ws_bytes);
        if (st == CUDNN_STATUS_SUCCESS) found = pick(perf, returned, ctx, ws_bytes, choice);
    } else if (dir == WN_CONV_BWD_DATA) {
        cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
        st = cudnnFindConvolutionBackwardDataAlgorithmEx(
            ctx->cudnn, cc->wd, a, cc->yd, b, cc->cd, cc->xd, out,
            CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &returned, perf, ws, ws_bytes);
        if (st == CUDNN_STATUS_SUCCESS) found = pick(perf, returned, ctx, ws_bytes, choice);
    } else {
        cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
        st = cudnnFindConvolutionBackwardFilterAlgorithmEx(
            ctx->cudnn, cc->xd, a, cc->yd, b, cc->cd, cc->wd, out,
            CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &returned, perf, ws, ws_bytes);
        if (st == CUDNN_STATUS_SUCCESS) found = pick(perf, returned, ctx, ws_bytes, choice);
    }
    if (ws) cudaFree(ws);
    if (st != CUDNN_STATUS_SUCCESS)
        return wn_cuda_fail_cudnn(st, "cudnnFindConvolution*AlgorithmEx", __FILE__, __LINE__,
                                  cc->layer);
    if (!found) {
        const wn_window *w = &cc->d->win;
        return wn_fail("layer '%s': cuDNN has no %s algorithm for %dx%dx%dx%d -> %d filters "
                       "%dx%d stride %dx%d groups %d at %s precision (workspace %zu MiB)",
                       cc->layer ? cc->layer : "?", dir_name(dir), w->n, w->h, w->w, w->c,
                       cc->d->k, w->kh, w->kw, w->sh, w->sw, cc->groups,
                       ctx->precision == WN_PRECISION_FP32 ? "fp32" : "tf32", ws_bytes >> 20);
    }
    if (wn_conv_cache_put(ctx->conv_cache, &key, choice) != WN_OK) return WN_ERR;
    return WN_OK;
}

/* Sets the chosen math type and makes the workspace large enough. */
static int prepare(wn_backend *be, conv_call *cc, const wn_conv_choice *choice) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    cudnnMathType_t math = ctx->precision == WN_PRECISION_FP32 ? CUDNN_FMA_MATH
                                                                : (cudnnMathType_t)choice->math_type;
    CUDNN_CHECK(cudnnSetConvolutionMathType(cc->cd, math), cc->layer);
    return wn_cuda_workspace(be, choice->workspace, cc->layer);
}

/* ================================================================ the three ops */

static int forward_body(wn_backend *be, conv_call *cc, const float *x, const float *w,
                        const float *bias, float *y) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    if (conv_call_setup(be, cc) != WN_OK) return WN_ERR;
    const float *xs;
    if (stage_weights(be, cc, w) != WN_OK || stage_input(be, cc, x, &xs) != WN_OK) return WN_ERR;
    wn_conv_choice choice;
    if (choose(be, cc, WN_CONV_FWD, 0, xs, cc->w_krsc, y, &choice) != WN_OK) return WN_ERR;
    if (prepare(be, cc, &choice) != WN_OK) return WN_ERR;
    const float one = 1.0f, zero = 0.0f;
    CUDNN_CHECK(cudnnConvolutionForward(ctx->cudnn, &one, cc->xd, xs, cc->wd, cc->w_krsc, cc->cd,
                                        (cudnnConvolutionFwdAlgo_t)choice.algo, ctx->workspace,
                                        choice.workspace, &zero, cc->yd, y),
                cc->layer);
    if (bias) {
        const wn_window *win = &cc->d->win;
        size_t count = (size_t)win->n * win->oh * win->ow * cc->d->k;
        if (wn_cuda_affine_act_forward(be, count, cc->d->k, y, NULL, bias, WN_ACT_NONE, y,
                                       cc->layer) != WN_OK)
            return WN_ERR;
    }
    return WN_OK;
}

int wn_cuda_conv2d_forward(wn_backend *be, const wn_conv_desc *d, const float *x,
                           const float *w, const float *bias, float *y, const char *layer) {
    conv_call cc;
    memset(&cc, 0, sizeof cc);
    cc.d = d, cc.layer = layer;
    int rc = forward_body(be, &cc, x, w, bias, y);
    conv_call_teardown(be, &cc);
    return rc != WN_OK ? WN_ERR : wn_cuda_op_done(be, "conv2d_forward", layer);
}

static int backward_data_body(wn_backend *be, conv_call *cc, const float *dy, const float *w,
                              float *dx, int accumulate) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    if (conv_call_setup(be, cc) != WN_OK) return WN_ERR;
    if (stage_weights(be, cc, w) != WN_OK) return WN_ERR;
    /* cuDNN writes dx itself (beta = accumulate) unless the padding plan needs a crop;
     * then it writes a padded scratch that the crop kernel adds or copies into dx. */
    float *target = dx;
    size_t padded = x_count(cc, 1);
    if (cc->plan.needs_copy) {
        cc->out_tmp = (float *)wn_cuda_scratch(be, padded * sizeof(float), "padded dx", cc->layer);
        if (!cc->out_tmp) return WN_ERR;
        target = cc->out_tmp;
    }
    int beta_one = accumulate && !cc->plan.needs_copy;
    wn_conv_choice choice;
    /* The search overwrites its output: never the caller's dx when accumulating. */
    float *search_out = target;
    float *search_tmp = NULL;
    if (beta_one) {
        wn_conv_key key;
        wn_conv_key_make(&key, WN_CONV_BWD_DATA, cc->d, &cc->plan, ctx->precision, 1);
        if (!wn_conv_cache_find(ctx->conv_cache, &key)) {
            search_tmp = (float *)wn_cuda_scratch(be, padded * sizeof(float), "search output",
                                                  cc->layer);
            if (!search_tmp) return WN_ERR;
            search_out = search_tmp;
        }
    }
    int rc = choose(be, cc, WN_CONV_BWD_DATA, beta_one, cc->w_krsc, dy, search_out, &choice);
    wn_cuda_scratch_free(be, search_tmp);
    if (rc != WN_OK || prepare(be, cc, &choice) != WN_OK) return WN_ERR;
    const float one = 1.0f, beta = beta_one ? 1.0f : 0.0f;
    CUDNN_CHECK(cudnnConvolutionBackwardData(ctx->cudnn, &one, cc->wd, cc->w_krsc, cc->yd, dy,
                                             cc->cd, (cudnnConvolutionBwdDataAlgo_t)choice.algo,
                                             ctx->workspace, choice.workspace, &beta, cc->xd,
                                             target),
                cc->layer);
    if (cc->plan.needs_copy) {
        const wn_window *win = &cc->d->win;
        size_t count = x_count(cc, 0);
        crop_kernel<<<wn_cuda_blocks(ctx, count), WN_CUDA_THREADS, 0, ctx->stream>>>(
            cc->out_tmp, dx, count, win->c, win->h, win->w, cc->plan.in_h, cc->plan.in_w,
            cc->plan.extra_top, cc->plan.extra_left, accumulate);
        CUDA_CHECK_LAUNCH(cc->layer);
    }
    return WN_OK;
}

int wn_cuda_conv2d_backward_data(wn_backend *be, const wn_conv_desc *d, const float *dy,
                                 const float *w, float *dx, int accumulate, const char *layer) {
    conv_call cc;
    memset(&cc, 0, sizeof cc);
    cc.d = d, cc.layer = layer;
    int rc = backward_data_body(be, &cc, dy, w, dx, accumulate);
    conv_call_teardown(be, &cc);
    return rc != WN_OK ? WN_ERR : wn_cuda_op_done(be, "conv2d_backward_data", layer);
}

static int backward_filter_body(wn_backend *be, conv_call *cc, const float *x, const float *dy,
                                float *dw, float *db) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    if (conv_call_setup(be, cc) != WN_OK) return WN_ERR;
    const float *xs;
    if (stage_input(be, cc, x, &xs) != WN_OK) return WN_ERR;
    size_t count = weight_count(cc);
    cc->out_tmp = (float *)wn_cuda_scratch(be, count * sizeof(float), "KRSC dw", cc->layer);
    if (!cc->out_tmp) return WN_ERR;
    wn_conv_choice choice;
    if (choose(be, cc, WN_CONV_BWD_FILTER, 0, xs, dy, cc->out_tmp, &choice) != WN_OK ||
        prepare(be, cc, &choice) != WN_OK)
        return WN_ERR;
    const float one = 1.0f, zero = 0.0f;
    CUDNN_CHECK(cudnnConvolutionBackwardFilter(ctx->cudnn, &one, cc->xd, xs, cc->yd, dy, cc->cd,
                                               (cudnnConvolutionBwdFilterAlgo_t)choice.algo,
                                               ctx->workspace, choice.workspace, &zero, cc->wd,
                                               cc->out_tmp),
                cc->layer);
    krsc_to_hwio_kernel<<<wn_cuda_blocks(ctx, count), WN_CUDA_THREADS, 0, ctx->stream>>>(
        cc->out_tmp, dw, count, cc->d->win.kh, cc->d->win.kw, cc->cg, cc->d->k);
    CUDA_CHECK_LAUNCH(cc->layer);
    if (db) {
        const wn_window *win = &cc->d->win;
        if (wn_cuda_column_sums(be, (size_t)win->n * win->oh * win->ow, cc->d->k, dy, db,
                                cc->layer) != WN_OK)
            return WN_ERR;
    }
    return WN_OK;
}

int wn_cuda_conv2d_backward_filter(wn_backend *be, const wn_conv_desc *d, const float *x,
                                   const float *dy, float *dw, float *db, const char *layer) {
    conv_call cc;
    memset(&cc, 0, sizeof cc);
    cc.d = d, cc.layer = layer;
    int rc = backward_filter_body(be, &cc, x, dy, dw, db);
    conv_call_teardown(be, &cc);
    return rc != WN_OK ? WN_ERR : wn_cuda_op_done(be, "conv2d_backward_filter", layer);
}
