/* engine/backends/cuda/backend_cuda_bf16.cu — the CUDA backend's bf16 ops table
 * (kernels/common/backend_bf16_ops.h). The kernels live beside their float twins in
 * kernels/<family>/<family>.cu (templates over the element type) and kernels/cast/cast.cu;
 * the convolutions are cuDNN's with bf16 tensors and float32 compute
 * (kernels/conv/conv.cu). cuDNN runs bf16 convolutions from compute capability 8.0
 * (Ampere) on; older GPUs get no table, so --precision bf16 is refused there with a
 * message instead of failing inside cuDNN. */
#include "engine/backends/cuda/backend_cuda_bf16.h"
#include "kernels/affine_act/affine_act.h"
#include "kernels/cast/cast.h"
#include "kernels/common/cuda_ctx.h"
#include "kernels/concat/concat.h"
#include "kernels/conv/conv_bf16.h"
#include "kernels/elementwise/elementwise.h"
#include "kernels/gap/gap.h"
#include "kernels/pool/pool.h"

static const char *cuda_bf16_describe(wn_backend *be) {
    (void)be;
    return "cuDNN bf16 convolutions (float32 accumulation, tensor cores), bf16 kernels";
}

static const wn_backend_bf16_ops cuda_bf16_ops = {
    /* .describe = */ cuda_bf16_describe,
    /* .cast_to_bf16 = */ wn_cuda_cast_to_bf16,
    /* .cast_to_f32 = */ wn_cuda_cast_to_f32,
    /* .conv_scratch_bytes = */ wn_cuda_conv_bf16_scratch_bytes,
    /* .conv2d_forward = */ wn_cuda_conv2d_forward_bf16,
    /* .conv2d_backward_data = */ wn_cuda_conv2d_backward_data_bf16,
    /* .conv2d_backward_filter = */ wn_cuda_conv2d_backward_filter_bf16,
    /* .conv2d_forward_epilogue = */ NULL, /* the dispatcher runs conv, then affine_act */
    /* .affine_act_forward = */ wn_cuda_affine_act_forward_bf16,
    /* .affine_act_backward = */ wn_cuda_affine_act_backward_bf16,
    /* .bn_gamma_backward = */ wn_cuda_bn_gamma_backward_bf16,
    /* .pool_forward = */ wn_cuda_pool_forward_bf16,
    /* .pool_backward = */ wn_cuda_pool_backward_bf16,
    /* .concat_forward = */ wn_cuda_concat_forward_bf16,
    /* .concat_backward = */ wn_cuda_concat_backward_bf16,
    /* .scaled_add = */ wn_cuda_scaled_add_bf16,
    /* .scaled_add_backward = */ wn_cuda_scaled_add_backward_bf16,
    /* .gap_forward = */ wn_cuda_gap_forward_bf16,
    /* .gap_backward = */ wn_cuda_gap_backward_bf16,
};

const wn_backend_bf16_ops *wn_backend_cuda_bf16_ops(wn_backend *be) {
    return wn_cuda_bf16_supported(wn_cuda_ctx_of(be)->cc_major) ? &cuda_bf16_ops : NULL;
}
