/* kernels/cast/cast.cu — the CUDA backend's float32 <-> bf16 casts (kernels/cast/cast.h):
 * one thread per element, grid-stride, over the element functions of
 * kernels/common/bf16.h (the rounding the CPU loops of cast_cpu.c use). */
#include "kernels/cast/cast.h"
#include "kernels/common/cuda_bf16.h"
#include "kernels/common/cuda_ctx.h"

template <typename From, typename To>
static __global__ void cast_kernel(size_t count, const From *__restrict__ x, To *y,
                                   int accumulate) {
    WN_GRID_LOOP(i, count) wn_st(y, i, wn_ld(x, i), accumulate);
}

template <typename From, typename To>
static int cast(wn_backend *be, size_t count, const From *x, To *y, int accumulate,
                const char *what) {
    if (!count) return WN_OK;
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    cast_kernel<<<wn_cuda_blocks(ctx, count), WN_CUDA_THREADS, 0, ctx->stream>>>(count, x, y,
                                                                               accumulate);
    return wn_cuda_op_done(be, what, NULL);
}

int wn_cuda_cast_to_bf16(wn_backend *be, size_t count, const float *x, wn_bf16 *y,
                         int accumulate) {
    return cast(be, count, x, y, accumulate, "cast_to_bf16 kernel");
}

int wn_cuda_cast_to_f32(wn_backend *be, size_t count, const wn_bf16 *x, float *y,
                        int accumulate) {
    return cast(be, count, x, y, accumulate, "cast_to_f32 kernel");
}
