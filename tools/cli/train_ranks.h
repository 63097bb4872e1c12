/* tools/cli/train_ranks.h — `mpirun -np N wastenet train|run ...` (and srun): what the
 * command line does about the ranks (engine/train/distributed.h). Rank 0 prints and
 * writes; the other ranks' standard output goes to /dev/null (their errors still
 * reach stderr). Every rank must be started with the same options: rank 0's are
 * broadcast and compared before any data is read.
 */
#ifndef WN_TOOLS_TRAIN_RANKS_H
#define WN_TOOLS_TRAIN_RANKS_H

#include "tools/cli/train_cli.h"

/* Joins the ranks (when a launcher started the process) and checks that every rank
 * has rank 0's options. Returns 0, or the exit status after printing the reason (1:
 * MPI could not start; 2: the options differ between ranks). */
int wn_train_ranks_start(const wn_train_cli *cli);

/* The command's end on this rank: after a normal end (0) or an agreed interruption
 * (129, 130) the ranks leave together; after a failure of this rank it says so and
 * stops every rank at once (MPI_Abort), so that none waits for it for ever. Returns
 * the exit status. */
int wn_train_ranks_end(int status);

/* The GPU of this rank: $WN_GPU, else 0 when the launcher left one GPU visible
 * (CUDA_VISIBLE_DEVICES of one entry: Slurm's --gpus-per-task=1), else the local rank. */
int wn_train_ranks_gpu(void);

#endif
