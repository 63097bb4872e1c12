/* kernels/common/cuda_ctx.h — the CUDA backend's state, error checks and memory
 * helpers, shared by its files (engine/backends/cuda/backend_cuda.cu makes the context,
 * owns the memory and fills the table; the ops live in kernels/<family>/<family>.cu).
 * CUDA C++ only. A leaf header: it reaches no further than kernels/ and host/base/.
 *
 * Every op runs on the context's compute stream, in issue order, so device memory
 * freed after one op may be reused by the next (the arena relies on this), and no
 * op synchronizes unless it must hand results to the host.
 */
#ifndef WN_CUDA_CTX_H
#define WN_CUDA_CTX_H

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <stddef.h>
#include <stdint.h>

#include "host/base/error.h"
#include "kernels/common/backend_ops.h"
#include "kernels/common/cuda_arena.h"
#include "kernels/common/launch.h"

#define WN_CUDA_THREADS 256        /* threads per block of the element-wise kernels */
#define WN_CUDA_BLOCKS_PER_SM 8    /* grid-stride loops: enough blocks to fill an SM */
#define WN_CUDA_UPLOAD_SLOTS 2     /* double-buffered batch uploads */
#define WN_CUDA_SMALL_SLOTS 4      /* pinned staging slots for small per-step uploads */
#define WN_CUDA_SMALL_BYTES (64u << 10) /* uploads up to this size go through them */

/* One pinned staging slot for small uploads (labels, augmentation parameters): the
 * host copies into it, the copy engine reads it asynchronously, and `done` (recorded
 * after the copy) says when it may be overwritten. Reused every step: no per-step
 * cudaMallocHost, no pageable-memory staging by the driver. */
typedef struct wn_cuda_small_slot {
    void *pinned;
    size_t bytes;
    cudaEvent_t done;
    int used; /* done was recorded at least once */
} wn_cuda_small_slot;

typedef struct wn_cuda_direct_block {
    void *p;
    size_t bytes;
} wn_cuda_direct_block;

typedef struct wn_cuda_ctx {
    int device;
    wn_precision precision;
    int sm_count;
    int cc_major, cc_minor;
    int sync_each_op;              /* WN_CUDA_SYNC=1: synchronize after every op so an
                                      asynchronous fault names the right layer */
    cudaStream_t stream;           /* all compute, in order */
    cudaStream_t copy_stream;      /* batch uploads (wn_cuda_upload) */
    cudnnHandle_t cudnn;
    cublasHandle_t cublas;
    wn_arena arena;                /* every device buffer of this backend */
    int direct;                    /* WN_CUDA_NO_ARENA=1: every buffer is its own
                                      cudaMalloc, so compute-sanitizer sees the bounds of
                                      each (inside an arena chunk it cannot) */
    size_t direct_in_use, direct_peak; /* bytes, in direct mode */
    wn_cuda_direct_block *direct_blocks; /* [direct_count] live buffers, direct mode */
    size_t direct_count, direct_cap;
    struct wn_conv_cache *conv_cache; /* cuDNN algorithm per (direction, shape):
                                      kernels/conv/conv_cuda_plan.h */
    void *workspace;               /* cuDNN workspace [workspace_bytes], from the arena */
    size_t workspace_bytes;
    size_t workspace_limit;        /* most workspace an algorithm may ask for */
    float *ones;                   /* [ones_count] 1.0f, for bias sums through GEMV */
    size_t ones_count;
    uint16_t *ones16;              /* [ones16_count] bf16 1.0, for bf16 bias sums */
    size_t ones16_count;
    cudaEvent_t upload_ready[WN_CUDA_UPLOAD_SLOTS];    /* copy of the slot finished */
    cudaEvent_t upload_consumed[WN_CUDA_UPLOAD_SLOTS]; /* compute finished reading it */
    wn_cuda_small_slot small[WN_CUDA_SMALL_SLOTS]; /* ring of pinned staging slots */
    int small_next;
    int deterministic;             /* only cuDNN algorithms reported deterministic
                                      (wn_backend_set_deterministic, WN_CUDA_DETERMINISTIC=1) */
    int own_depthwise;             /* WN_CUDA_DEPTHWISE=own: our depthwise kernels even
                                      where cuDNN has an algorithm (to test them) */
    const wn_rank_group *group;    /* data-parallel ranks (join_group), or NULL */
    void *nccl;                    /* the group's ncclComm_t (NCCL builds) */
    cudaStream_t comm_stream;      /* the bucketed gradient sums (allreduce_begin), beside
                                      the compute stream; NULL until a group is joined */
    cudaEvent_t comm_ready;        /* compute reached a bucket's begin */
    cudaEvent_t comm_done;         /* the comm stream finished the sums begun */
    int comm_pending;              /* sums begun since the last allreduce_end */
    void *group_host;              /* pinned buffer of the host-sum fallback */
    size_t group_host_bytes;
} wn_cuda_ctx;

static inline wn_cuda_ctx *wn_cuda_ctx_of(wn_backend *be) { return (wn_cuda_ctx *)be->ctx; }

/* ---- error reporting (backend_cuda.cu). Each returns WN_ERR after setting a reason
 * that names the layer, the statement, file:line and what to do. */
int wn_cuda_fail_cuda(cudaError_t err, const char *stmt, const char *file, int line,
                      const char *layer);
int wn_cuda_fail_cudnn(cudnnStatus_t st, const char *stmt, const char *file, int line,
                       const char *layer);
int wn_cuda_fail_cublas(cublasStatus_t st, const char *stmt, const char *file, int line,
                        const char *layer);

#define CUDA_CHECK(stmt, layer)                                                           \
    do {                                                                                  \
        cudaError_t wn_e_ = (stmt);                                                       \
        if (wn_e_ != cudaSuccess)                                                         \
            return wn_cuda_fail_cuda(wn_e_, #stmt, __FILE__, __LINE__, (layer));          \
    } while (0)
#define CUDNN_CHECK(stmt, layer)                                                          \
    do {                                                                                  \
        cudnnStatus_t wn_s_ = (stmt);                                                     \
        if (wn_s_ != CUDNN_STATUS_SUCCESS)                                                \
            return wn_cuda_fail_cudnn(wn_s_, #stmt, __FILE__, __LINE__, (layer));         \
    } while (0)
#define CUBLAS_CHECK(stmt, layer)                                                         \
    do {                                                                                  \
        cublasStatus_t wn_s_ = (stmt);                                                    \
        if (wn_s_ != CUBLAS_STATUS_SUCCESS)                                               \
            return wn_cuda_fail_cublas(wn_s_, #stmt, __FILE__, __LINE__, (layer));        \
    } while (0)
/* After a kernel launch: a bad configuration shows up at once, a fault later. */
#define CUDA_CHECK_LAUNCH(layer) CUDA_CHECK(cudaGetLastError(), layer)

/* The end of every op: reports launch errors, and in WN_CUDA_SYNC=1 mode waits for
 * the op so that a fault is reported with this layer's name. */
int wn_cuda_op_done(wn_backend *be, const char *what, const char *layer);

/* Device memory of this backend: the arena, or cudaMalloc/cudaFree in direct mode.
 * NULL with a reason on failure. */
void *wn_cuda_dev_alloc(wn_cuda_ctx *ctx, size_t bytes);
void wn_cuda_dev_free(wn_cuda_ctx *ctx, void *p);

/* A small host-to-device copy (<= WN_CUDA_SMALL_BYTES) on the compute stream through
 * the pinned staging ring; `src` may be reused as soon as this returns. Larger
 * copies go straight from `src` (pageable: the driver stages them). */
int wn_cuda_upload_small(wn_backend *be, void *dst, const void *src, size_t bytes,
                         const char *layer);

/* Temporary device buffers from the arena, freed in stream order. */
void *wn_cuda_scratch(wn_backend *be, size_t bytes, const char *what, const char *layer);
void wn_cuda_scratch_free(wn_backend *be, void *p);
/* The cuDNN workspace grown to at least `bytes`. */
int wn_cuda_workspace(wn_backend *be, size_t bytes, const char *layer);
/* A device vector of at least `count` ones (GEMV sums over rows). */
const float *wn_cuda_ones(wn_backend *be, size_t count, const char *layer);

/* for (i over [0, count)) in a grid-stride loop; i is size_t. */
#define WN_GRID_LOOP(i, count)                                                            \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (size_t)(count);     \
         i += (size_t)gridDim.x * blockDim.x)

/* Grid size for a grid-stride loop over `count` elements. */
static inline unsigned wn_cuda_blocks(const wn_cuda_ctx *ctx, size_t count) {
    return wn_launch_blocks(count, WN_CUDA_THREADS, ctx->sm_count, WN_CUDA_BLOCKS_PER_SM);
}

/* ---- kernels/common/cuda_bias.cu: bias helpers of convolution and Dense ----
 * y[rows, cols] += bias[cols] (row-major); and sums[c] = sum over rows of x[rows, c],
 * overwriting: bias gradients. */
int wn_cuda_bias_add(wn_backend *be, size_t rows, int cols, const float *bias, float *y,
                     const char *layer);
int wn_cuda_column_sums(wn_backend *be, size_t rows, int cols, const float *x, float *sums,
                        const char *layer);
/* The same with a bf16 y / x (bias and sums float32): y = bf16(float(y) + bias), and
 * float32 sums of the bf16 x through cublasGemmEx (bf16 operands, float32 compute). */
int wn_cuda_bias_add_bf16(wn_backend *be, size_t rows, int cols, const float *bias,
                          uint16_t *y, const char *layer);
int wn_cuda_column_sums_bf16(wn_backend *be, size_t rows, int cols, const uint16_t *x,
                             float *sums, const char *layer);

#endif
