/* kernels/common/rank_group.h — the processes (ranks) that train one model together,
 * data parallel, as the backends see them: who they are and the two host-side
 * collectives a backend needs, supplied by engine/train/distributed.c (MPI). A
 * backend joins a group (wn_backend_ops.join_group) and then sums device buffers over
 * it (allreduce_sum) without knowing MPI: the CPU backend through sum_floats on its
 * host memory, the CUDA backend through NCCL, whose communicator id travels by
 * broadcast. A leaf header.
 */
#ifndef WN_RANK_GROUP_H
#define WN_RANK_GROUP_H

#include <stddef.h>

typedef struct wn_rank_group {
    int rank, size;   /* 0..size-1 */
    int local_rank;   /* among the ranks on this machine (one GPU each) */
    void *user;
    /* Sums count floats of host memory in place over the ranks; every rank gets the
     * same bits. WN_OK, or WN_ERR with a reason naming the failed collective. */
    int (*sum_floats)(void *user, float *buf, size_t count);
    /* Rank 0's `bytes` bytes of buf to every rank's buf. WN_OK or WN_ERR. */
    int (*broadcast)(void *user, void *buf, size_t bytes);
} wn_rank_group;

#endif
