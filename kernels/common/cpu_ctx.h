/* kernels/common/cpu_ctx.h — the CPU backend's state, shared by its files
 * (engine/backends/cpu/backend_cpu.c makes it and fills the table; the ops live in
 * kernels/<family>/<family>_cpu.c). A leaf header: it reaches no further than the
 * backend contract (kernels/common/backend_ops.h).
 */
#ifndef WN_CPU_CTX_H
#define WN_CPU_CTX_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/common/backend_ops.h"

typedef struct wn_cpu_conv_cache wn_cpu_conv_cache; /* kernels/conv/conv_cpu.c */

/* Reusable host buffer, grown when an op first needs more (never inside a steady
 * training step: every shape is seen in the first step). */
typedef struct wn_cpu_buffer {
    void *p;
    size_t bytes;
} wn_cpu_buffer;

typedef struct wn_cpu_ctx {
    wn_cpu_conv_cache *conv;   /* oneDNN engine, stream and per-shape primitives */
    wn_cpu_buffer accum;       /* conv backward-data result when accumulating */
    wn_cpu_buffer partial;     /* per-thread partial sums (doubles) of reductions */
    wn_cpu_buffer stage[3];    /* op-local scratch: float32 copies of bf16 operands for
                                  bf16 ops that run float32 kernels (conv_bf16_cpu.c),
                                  pooling's per-thread gradient images (pool_cpu_impl.h) */
    wn_cpu_buffer cols;        /* im2col rows of the GEMM weight gradient (conv_gemm_cpu.c) */
    const wn_rank_group *group; /* data-parallel ranks (join_group), or NULL */
} wn_cpu_ctx;

#ifdef __cplusplus
extern "C" {
#endif
/* Makes `buf` at least `bytes` long (64-byte aligned); WN_ERR with a reason
 * (engine/backends/cpu/backend_cpu.c). */
int wn_cpu_buffer_reserve(wn_cpu_buffer *buf, size_t bytes, const char *what);
void wn_cpu_buffer_release(wn_cpu_buffer *buf);
/* Per-thread partial sums [threads][c] of doubles in ctx->partial, zeroed (NULL with a
 * reason naming `who` when out of memory), and their sum in thread order into out[c]
 * (kernels/common/partials_cpu.c). */
double *wn_cpu_partials_zeroed(wn_backend *be, int c, const char *who);
void wn_cpu_partials_sum(const double *partial, int c, float *out);
#ifdef __cplusplus
}
#endif

#endif
