/* kernels/common/launch.h — grid sizes for the CUDA kernels' grid-stride loops, in
 * plain C (unit-tested in tests/cuda_host). */
#ifndef WN_LAUNCH_H
#define WN_LAUNCH_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- launches */

/* Blocks for a grid-stride loop over `count` elements: enough to fill the device
 * (`sm_count` * blocks_per_sm) but no more than the work needs; at least 1. */
unsigned wn_launch_blocks(size_t count, unsigned threads, int sm_count, int blocks_per_sm);

#ifdef __cplusplus
}
#endif
#endif
