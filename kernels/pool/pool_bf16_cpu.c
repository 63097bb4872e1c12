/* kernels/pool/pool_bf16_cpu.c — the CPU backend's bf16 max/average pooling:
 * wn_cpu_pool_forward_bf16 / wn_cpu_pool_backward_bf16 are the loops of
 * kernels/pool/pool_cpu_impl.h loading bf16 exactly into float32 and rounding each
 * result once (max picks a stored value, so it is exact; the average and the gradients
 * are the float32 element functions' values rounded once, as wn_bf16_store does). */
#include "kernels/common/bf16.h"
#include "kernels/pool/pool.h"

#define WN_POOL_T wn_bf16
#define WN_POOL_LOAD(v) wn_bf16_to_f32(v)
#define WN_POOL_STORE(p, i, v) ((p)[i] = wn_bf16_from_f32(v))
#define WN_POOL_STORE_GRAD(p, i, g, acc) wn_bf16_store((p), (size_t)(i), (g), (acc))
#define WN_POOL_DIRECT 0 /* bf16 dx: sum in float32 scratch, round once */
#define WN_POOL_NAME(name) name##_bf16
#include "kernels/pool/pool_cpu_impl.h"
