/* engine/train/distributed.h — data-parallel training over processes (ranks): who
 * this process is, and the host-side collectives the training loop and the command
 * line need. The only file that calls MPI is distributed.c; the only code that calls
 * NCCL is the CUDA backend's (engine/backends/cuda/backend_cuda_nccl.cu), which
 * reaches the ranks through wn_dist_group() (kernels/common/rank_group.h).
 *
 * How a run is spread (engine/train/train_loop.c, host/loader.h):
 *  - every rank loads the same data set and draws the same seeded permutation and
 *    augmentation per epoch; the loader gives each rank its contiguous slice of
 *    every whole batch of --batch images (host/loader.h: shard_rank, shard_count);
 *  - each rank's loss is averaged over the whole batch and its weight gradients are
 *    summed over the ranks before Adam (wn_backend_allreduce_sum), so all ranks keep
 *    the same weights and take the step one process takes; dropout and augmentation
 *    draw each image's values at its place in the whole batch;
 *  - per step, one small sum carries the batch's loss and correct count and whether
 *    any rank was interrupted, so every rank stops at the same step;
 *  - validation and test passes are sharded the same way and their totals summed;
 *  - rank 0 alone prints and writes (run folder, checkpoints, history, reports,
 *    exports); every rank reads a checkpoint to resume (a shared file system).
 *
 * Without MPI in the build, or when the process was not started by a launcher
 * (mpirun, srun), there is one rank and every collective returns at once.
 *
 * Faults: collectives return WN_ERR with a reason when MPI reports one (the CLI then
 * stops every rank with wn_dist_abort). A rank that waits in a collective longer than
 * WN_DIST_TIMEOUT seconds (default 600; a stopped or hung peer) prints which
 * collective it waited in and exits with status 1, so its launcher ends the job:
 * no run hangs for ever.
 */
#ifndef WN_DISTRIBUTED_H
#define WN_DISTRIBUTED_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/common/rank_group.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when this build has MPI (CMake found it). */
int wn_dist_built(void);

/* Joins the ranks when a launcher started this process (its environment: Open MPI's
 * OMPI_COMM_WORLD_SIZE, PMIx's PMIX_RANK, PMI_RANK, or Slurm's SLURM_STEP_ID with
 * SLURM_NTASKS > 1); otherwise one rank. Call once, before any thread starts.
 * WN_ERR with a reason when launched by one but MPI cannot start, or when this build
 * has no MPI and the launcher started several processes. */
int wn_dist_start(int *argc, char ***argv);

/* Leaves the ranks (MPI_Finalize) after a normal end; no-op with one rank. */
void wn_dist_finish(void);

/* Ends every rank at once (MPI_Abort) with `status`, after a failure on this one. */
void wn_dist_abort(int status) __attribute__((noreturn));

int wn_dist_rank(void);       /* 0 with one rank */
int wn_dist_size(void);       /* 1 with one rank */
int wn_dist_local_rank(void); /* the rank among those on this machine (its GPU) */
int wn_dist_local_size(void); /* ranks on this machine (1 with one rank) */
static inline int wn_dist_active(void) { return wn_dist_size() > 1; }
static inline int wn_dist_is_root(void) { return wn_dist_rank() == 0; }

/* The group as the backends see it (wn_backend_join_group). */
const wn_rank_group *wn_dist_group(void);

/* Sums over the ranks, in place; every rank gets the same result. `what` names the
 * collective in a failure's or a timeout's message. */
int wn_dist_sum_doubles(double *v, size_t n, const char *what);
int wn_dist_sum_floats(float *v, size_t n, const char *what);
int wn_dist_sum_longs(long *v, size_t n, const char *what);
int wn_dist_sum_int32(int32_t *v, size_t n, const char *what);

/* *flag becomes 1 on every rank when it is non-zero on any. */
int wn_dist_any(int *flag, const char *what);

/* Rank 0's bytes into every rank's buf. */
int wn_dist_broadcast(void *buf, size_t bytes, const char *what);

/* The gradient bucket size of a data-parallel step (wn_executor_set_grad_buckets):
 * WN_DIST_BUCKET_MB as rank 0 reads it (MiB, fractions allowed; 0: one sum after
 * backward), else 25 MiB where the backend's sums overlap backward (`overlaps`) and 0
 * where they cannot; sent to every rank, since the ranks' sums must pair up. WN_ERR
 * with a reason naming the variable when it is not a number in [0, 4096]. */
int wn_dist_bucket_bytes(int overlaps, size_t *bytes);

/* Every rank's `text` ("name value" lines: the options that must agree) against rank
 * 0's: WN_OK on every rank when all agree, else WN_ERR on every rank, with a reason
 * naming the first line that differs and the ranks that differ. */
int wn_dist_check_same(const char *text, const char *what);

#ifdef __cplusplus
}
#endif
#endif
