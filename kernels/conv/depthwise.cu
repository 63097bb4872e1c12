/* kernels/conv/depthwise.cu — our own depthwise convolution on the GPU (the formulas and
 * shapes are kernels/depthwise.h's): used by kernels/conv/conv.cu when cuDNN offers
 * no algorithm for a grouped NHWC convolution, or when WN_CUDA_DEPTHWISE=own.
 *
 * Forward and backward data: one thread per output element, grid-stride; consecutive
 * threads take consecutive channels, so reads of x/dy and of the weights coalesce.
 * Backward filter: one block per weight (kh * kw * K of them, 9 * 1152 at most in
 * EfficientNet-Lite), its threads striding over the N * OH * OW output positions
 * and reducing in shared memory in a fixed order: deterministic, no atomics.
 */
#include "kernels/common/cuda_ctx.h"
#include "kernels/conv/conv.h"
#include "kernels/conv/depthwise.h"

#define DW_FILTER_THREADS 256

static __global__ void dw_forward_kernel(const float *__restrict__ x, const float *__restrict__ w,
                                         wn_window win, int k_out, float *__restrict__ y) {
    WN_GRID_LOOP(i, (size_t)win.n * win.oh * win.ow * k_out) {
        y[i] = wn_dw_forward_at(x, w, &win, k_out, i);
    }
}

static __global__ void dw_backward_data_kernel(const float *__restrict__ dy,
                                               const float *__restrict__ w, wn_window win,
                                               int k_out, float *__restrict__ dx, int accumulate) {
    WN_GRID_LOOP(i, (size_t)win.n * win.h * win.w * win.c) {
        float v = wn_dw_backward_data_at(dy, w, &win, k_out, i);
        dx[i] = accumulate ? dx[i] + v : v;
    }
}

static __global__ void dw_backward_filter_kernel(const float *__restrict__ x,
                                                 const float *__restrict__ dy, wn_window win,
                                                 int k_out, float *__restrict__ dw) {
    __shared__ float part[DW_FILTER_THREADS];
    size_t positions = (size_t)win.n * win.oh * win.ow;
    size_t weights = (size_t)win.kh * win.kw * k_out;
    for (size_t j = blockIdx.x; j < weights; j += gridDim.x) {
        float acc = 0.0f;
        for (size_t p = threadIdx.x; p < positions; p += blockDim.x)
            acc += wn_dw_filter_term(x, dy, &win, k_out, j, p);
        part[threadIdx.x] = acc;
        __syncthreads();
        for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
            if (threadIdx.x < half) part[threadIdx.x] += part[threadIdx.x + half];
            __syncthreads();
        }
        if (threadIdx.x == 0) dw[j] = part[0];
        __syncthreads(); /* part[] is reused for the next weight */
    }
}

static int check_shape(const wn_conv_desc *d, const char *layer) {
    int g = d->groups < 1 ? 1 : d->groups;
    if (!wn_dw_applies(g, d->win.c, d->k))
        return wn_fail("layer '%s': our depthwise kernel needs groups == input channels and "
                       "output channels a multiple of them (groups %d, %d -> %d channels)",
                       layer ? layer : "?", g, d->win.c, d->k);
    return WN_OK;
}

int wn_cuda_depthwise_forward(wn_backend *be, const wn_conv_desc *d, const float *x,
                              const float *w, float *y, const char *layer) {
    if (check_shape(d, layer) != WN_OK) return WN_ERR;
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    size_t count = (size_t)d->win.n * d->win.oh * d->win.ow * d->k;
    dw_forward_kernel<<<wn_cuda_blocks(ctx, count), WN_CUDA_THREADS, 0, ctx->stream>>>(
        x, w, d->win, d->k, y);
    CUDA_CHECK_LAUNCH(layer);
    return WN_OK;
}

int wn_cuda_depthwise_backward_data(wn_backend *be, const wn_conv_desc *d, const float *dy,
                                    const float *w, float *dx, int accumulate,
                                    const char *layer) {
    if (check_shape(d, layer) != WN_OK) return WN_ERR;
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    size_t count = (size_t)d->win.n * d->win.h * d->win.w * d->win.c;
    dw_backward_data_kernel<<<wn_cuda_blocks(ctx, count), WN_CUDA_THREADS, 0, ctx->stream>>>(
        dy, w, d->win, d->k, dx, accumulate);
    CUDA_CHECK_LAUNCH(layer);
    return WN_OK;
}

int wn_cuda_depthwise_backward_filter(wn_backend *be, const wn_conv_desc *d, const float *x,
                                      const float *dy, float *dw, const char *layer) {
    if (check_shape(d, layer) != WN_OK) return WN_ERR;
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    size_t weights = (size_t)d->win.kh * d->win.kw * d->k;
    unsigned blocks = weights < 65535 ? (unsigned)weights : 65535u;
    dw_backward_filter_kernel<<<blocks, DW_FILTER_THREADS, 0, ctx->stream>>>(x, dy, d->win, d->k,
                                                                             dw);
    CUDA_CHECK_LAUNCH(layer);
    return WN_OK;
}
