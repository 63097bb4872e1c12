/* engine/backends/cpu/backend_cpu_bf16.c — the CPU backend's bf16 ops table
 * (kernels/common/backend_bf16_ops.h). The ops live beside their float twins in
 * kernels/<family>/<family>_bf16_cpu.c; the convolutions use oneDNN's bf16 primitives
 * where this CPU has them and float32 primitives on widened operands elsewhere
 * (kernels/conv/conv_bf16_cpu.c). */
#include "engine/backends/cpu/backend_cpu.h"
#include "kernels/affine_act/affine_act.h"
#include "kernels/cast/cast.h"
#include "kernels/common/backend_bf16_ops.h"
#include "kernels/concat/concat.h"
#include "kernels/conv/conv_bf16.h"
#include "kernels/elementwise/elementwise.h"
#include "kernels/gap/gap.h"
#include "kernels/pool/pool.h"

static const char *cpu_bf16_describe(wn_backend *be) {
    return wn_cpu_conv_bf16_is_native(be)
               ? "oneDNN bf16 convolutions"
               : "bf16 storage; convolutions in float32 on widened bf16 operands (oneDNN has "
                 "no bf16 convolution on this CPU: it needs AVX-512)";
}

static const wn_backend_bf16_ops cpu_bf16_ops = {
    .describe = cpu_bf16_describe,
    .cast_to_bf16 = wn_cpu_cast_to_bf16,
    .cast_to_f32 = wn_cpu_cast_to_f32,
    .conv_scratch_bytes = wn_cpu_conv_bf16_scratch_bytes,
    .conv2d_forward = wn_cpu_conv2d_forward_bf16,
    .conv2d_forward_epilogue = wn_cpu_conv2d_forward_epilogue_bf16,
    .conv2d_backward_data = wn_cpu_conv2d_backward_data_bf16,
    .conv2d_backward_filter = wn_cpu_conv2d_backward_filter_bf16,
    .affine_act_forward = wn_cpu_affine_act_forward_bf16,
    .affine_act_backward = wn_cpu_affine_act_backward_bf16,
    .bn_gamma_backward = wn_cpu_bn_gamma_backward_bf16,
    .pool_forward = wn_cpu_pool_forward_bf16,
    .pool_backward = wn_cpu_pool_backward_bf16,
    .concat_forward = wn_cpu_concat_forward_bf16,
    .concat_backward = wn_cpu_concat_backward_bf16,
    .scaled_add = wn_cpu_scaled_add_bf16,
    .scaled_add_backward = wn_cpu_scaled_add_backward_bf16,
    .gap_forward = wn_cpu_gap_forward_bf16,
    .gap_backward = wn_cpu_gap_backward_bf16,
};

const wn_backend_bf16_ops *wn_backend_cpu_bf16_ops(void) { return &cpu_bf16_ops; }
