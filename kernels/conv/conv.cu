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
 */
#include <string.h>

#include "kernels/common/cuda_ctx.h"
#include "kernels/conv/conv.h"
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

/* Picks the fastest successful result allowed by the precision and mode. Under FP32
 * the descriptor asks for FMA math; a result that reports tensor-op math, or one
 * outside the GEMM family, is refused; in deterministic mode so is any result cuDNN
 * does not report deterministic. */
template <typename Perf>
static int pick(const Perf *perf, int n, const wn_cuda_ctx *ctx, wn_conv_direction dir,
                size_t ws_bytes, wn_conv_choice *out) {
    for (int i = 0; i < n; i++) {
        if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > ws_bytes) continue;
        if (ctx->precision == WN_PRECISION_FP32 &&
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
    wn_conv_key_make(key, dir, cc->d, &cc->plan, ctx->precision, accumulate, ctx->deterministic);
}

/* 1 when this call goes to our depthwise kernels without touching cuDNN: asked for
 * (WN_CUDA_DEPTHWISE=own), or cuDNN was found to have nothing for this shape. */
static int own_depthwise_now(wn_backend *be, const conv_call *cc, wn_conv_direction dir,
                             int accumulate) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    if (!depthwise(cc)) return 0;
    if (ctx->own_depthwise) return 1;
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
    cudnnMathType_t math = ctx->precision == WN_PRECISION_FP32 ? CUDNN_FMA_MATH
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
    int found = 0, returned = 0;
    cudnnStatus_t st = CUDNN_STATUS_SUCCESS;
    if (dir == WN_CONV_FWD) {
        cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
        st = cudnnFindConvolutionForwardAlgorithmEx(ctx->cudnn, cc->xd, a, cc->wd, b, cc->cd,
                                                    cc->yd, out, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                                    &returned, perf, ws, ws_bytes);
        if (st == CUDNN_STATUS_SUCCESS) found = pick(perf, returned, ctx, dir, ws_bytes, choice);
    } else if (dir == WN_CONV_BWD_DATA) {
        cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
        st = cudnnFindConvolutionBackwardDataAlgorithmEx(
            ctx->cudnn, cc->wd, a, cc->yd, b, cc->cd, cc->xd, out,
            CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &returned, perf, ws, ws_bytes);
        if (st == CUDNN_STATUS_SUCCESS) found = pick(perf, returned, ctx, dir, ws_bytes, choice);
    } else {
        cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
        st = cudnnFindConvolutionBackwardFilterAlgorithmEx(
            ctx->cudnn, cc->xd, a, cc->yd, b, cc->cd, cc->wd, out,
            CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &returned, perf, ws, ws_bytes);
        if (st == CUDNN_STATUS_SUCCESS) found = pick(perf, returned, ctx, dir, ws_bytes, choice);
    }
    if (ws) CUDA_CHECK(cudaFree(ws), cc->layer);
    if ((st != CUDNN_STATUS_SUCCESS || !found) && depthwise(cc)) {
        /* grouped NHWC: cuDNN may have nothing (or refuse the shape); ours always applies */
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
                       ctx->precision == WN_PRECISION_FP32 ? "fp32" : "tf32", ws_bytes >> 20);
    }
    choice->searched_n = n;
    return wn_conv_cache_put(ctx->conv_cache, store_key, choice);
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
    int own = own_depthwise_now(be, cc, WN_CONV_FWD, 0);
    if (!own) {
        const float *xs;
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
    if (own && wn_cuda_depthwise_forward(be, cc->d, x, w, y, cc->layer) != WN_OK) return WN_ERR;
    if (bias) {
        const wn_window *win = &cc->d->win;
        if (wn_cuda_bias_add(be, (size_t)win->n * win->oh * win->ow, cc->d->k, bias, y,
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
    return conv_call_finish(be, &cc, forward_body(be, &cc, x, w, bias, y), "conv2d_forward");
}

static int backward_data_body(wn_backend *be, conv_call *cc, const float *dy, const float *w,
                              float *dx, int accumulate) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    if (conv_call_setup(be, cc) != WN_OK) return WN_ERR;
    int beta_one = accumulate && !cc->plan.needs_copy;
    if (own_depthwise_now(be, cc, WN_CONV_BWD_DATA, beta_one))
        return wn_cuda_depthwise_backward_data(be, cc->d, dy, w, dx, accumulate, cc->layer);
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
    wn_conv_choice choice;
    /* The search overwrites its output: never the caller's dx when accumulating. */
    float *search_out = target;
    float *search_tmp = NULL;
    if (beta_one) {
        wn_conv_key key;
        key_of(ctx, cc, WN_CONV_BWD_DATA, 1, &key);
        if (wn_conv_cache_action(wn_conv_cache_find(ctx->conv_cache, &key), cc->d->win.n) ==
            WN_CONV_SEARCH) {
            search_tmp = (float *)wn_cuda_scratch(be, padded * sizeof(float), "search output",
                                                  cc->layer);
            if (!search_tmp) return WN_ERR;
            search_out = search_tmp;
        }
    }
    int rc = choose(be, cc, WN_CONV_BWD_DATA, beta_one, cc->w_krsc, dy, search_out, &choice);
    wn_cuda_scratch_free(be, search_tmp);
    if (rc != WN_OK) return WN_ERR;
    if (choice.algo < 0)
        return wn_cuda_depthwise_backward_data(be, cc->d, dy, w, dx, accumulate, cc->layer);
    if (prepare(be, cc, &choice) != WN_OK) return WN_ERR;
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
    return conv_call_finish(be, &cc, backward_data_body(be, &cc, dy, w, dx, accumulate),
                            "conv2d_backward_data");
}

static int backward_filter_body(wn_backend *be, conv_call *cc, const float *x, const float *dy,
                                float *dw, float *db) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    if (conv_call_setup(be, cc) != WN_OK) return WN_ERR;
    int own = own_depthwise_now(be, cc, WN_CONV_BWD_FILTER, 0);
    if (!own) {
        const float *xs;
        if (stage_input(be, cc, x, &xs) != WN_OK) return WN_ERR;
        size_t count = weight_count(cc);
        cc->out_tmp = (float *)wn_cuda_scratch(be, count * sizeof(float), "KRSC dw", cc->layer);
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
            krsc_to_hwio_kernel<<<wn_cuda_blocks(ctx, count), WN_CUDA_THREADS, 0, ctx->stream>>>(
                cc->out_tmp, dw, count, cc->d->win.kh, cc->d->win.kw, cc->cg, cc->d->k);
            CUDA_CHECK_LAUNCH(cc->layer);
        }
    }
    if (own && wn_cuda_depthwise_backward_filter(be, cc->d, x, dy, dw, cc->layer) != WN_OK)
        return WN_ERR;
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
    return conv_call_finish(be, &cc, backward_filter_body(be, &cc, x, dy, dw, db),
                            "conv2d_backward_filter");
}
