/* kernels/cast/cast.h — float32 <-> bf16 casts of activations, gradients and weights
 * (the rounding rule is kernels/common/bf16.h's), and the entry points of the family:
 * cast_cpu.c for the CPU backend, cast.cu for the CUDA backend.
 *
 * The executor's plan places casts where a float32 value meets a bf16 op (the
 * augmentation's output before the first convolution) or the other way round, and
 * once per weight update for the bf16 copy of the weights (engine/runtime/plan.c). */
#ifndef WN_KERNELS_CAST_H
#define WN_KERNELS_CAST_H

#include <stddef.h>

#include "kernels/common/backend_ops.h"
#include "kernels/common/bf16.h"

#ifdef __cplusplus
extern "C" {
#endif
int wn_cpu_cast_to_bf16(wn_backend *be, size_t count, const float *x, wn_bf16 *y,
                        int accumulate);
int wn_cpu_cast_to_f32(wn_backend *be, size_t count, const wn_bf16 *x, float *y,
                       int accumulate);
int wn_cuda_cast_to_bf16(wn_backend *be, size_t count, const float *x, wn_bf16 *y,
                         int accumulate);
int wn_cuda_cast_to_f32(wn_backend *be, size_t count, const wn_bf16 *x, float *y,
                        int accumulate);
#ifdef __cplusplus
}
#endif
#endif
