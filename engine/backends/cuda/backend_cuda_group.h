/* engine/backends/cuda/backend_cuda_group.h — the CUDA backend's data-parallel entries
 * (backend_cuda_nccl.cu), for its ops table and destroy (backend_cuda.cu). CUDA C++. */
#ifndef WN_BACKEND_CUDA_GROUP_H
#define WN_BACKEND_CUDA_GROUP_H

#include "kernels/common/cuda_ctx.h"

#ifdef __cplusplus
extern "C" {
#endif
/* join_group / allreduce_sum / allreduce_begin / allreduce_end of
 * kernels/common/backend_ops.h. */
int wn_cuda_join_group(wn_backend *be, const wn_rank_group *group);
int wn_cuda_allreduce_sum(wn_backend *be, float *x, size_t count);
int wn_cuda_allreduce_begin(wn_backend *be, float *x, size_t count);
int wn_cuda_allreduce_end(wn_backend *be);
/* Frees the communicator and host buffer (from destroy); safe without a group. */
void wn_cuda_leave_group(wn_cuda_ctx *ctx);
#ifdef __cplusplus
}
#endif

#endif
