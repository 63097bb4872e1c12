/* kernels/common/launch.c — grid sizes (see launch.h). */
#include "kernels/common/launch.h"

/* ================================================================ launches */

unsigned wn_launch_blocks(size_t count, unsigned threads, int sm_count, int blocks_per_sm) {
    size_t need = (count + threads - 1) / threads;
    size_t cap = (size_t)(sm_count > 0 ? sm_count : 1) * (size_t)(blocks_per_sm > 0 ? blocks_per_sm : 1);
    size_t n = need < cap ? need : cap;
    return n ? (unsigned)n : 1u;
}

