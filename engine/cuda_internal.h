/* engine/cuda_internal.h — state, error checks and op entry points shared by the
 * CUDA backend's files (backend_cuda.cu fills the table; cuda_conv.cu, cuda_dense.cu
 * and kernels/<family>.cu hold the ops). CUDA C++ only; not a public interface: the engine
 * sees engine/backend.h and engine/backend_cuda.h.
 *
 * Every op runs on the context's compute stream, in issue order, so device memory
 * freed after one op may be reused by the next (the arena relies on this), and no
 * op synchronizes unless it must hand results to the host.
 */
#ifndef WN_CUDA_INTERNAL_H
#define WN_CUDA_INTERNAL_H

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/backend.h"
#include "engine/cuda_plan.h"
#include "engine/error.h"

#define WN_CUDA_THREADS 256        /* threads per block of the element-wise kernels */
#define WN_CUDA_BLOCKS_PER_SM 8    /* grid-stride loops: enough blocks to fill an SM */
#define WN_CUDA_UPLOAD_SLOTS 2     /* double-buffered batch uploads */

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
    wn_conv_cache conv_cache;      /* cuDNN algorithm per (direction, shape) */
    void *workspace;               /* cuDNN workspace [workspace_bytes], from the arena */
    size_t workspace_bytes;
    size_t workspace_limit;        /* most workspace an algorithm may ask for */
    float *ones;                   /* [ones_count] 1.0f, for bias sums through GEMV */
    size_t ones_count;
    cudaEvent_t upload_ready[WN_CUDA_UPLOAD_SLOTS];    /* copy of the slot finished */
    cudaEvent_t upload_consumed[WN_CUDA_UPLOAD_SLOTS]; /* compute finished reading it */
    cudaEvent_t timer_start, timer_stop;
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

/* ---- cuda_conv.cu ---- */
int wn_cuda_conv2d_forward(wn_backend *be, const wn_conv_desc *d, const float *x,
                           const float *w, const float *bias, float *y, const char *layer);
int wn_cuda_conv2d_backward_data(wn_backend *be, const wn_conv_desc *d, const float *dy,
                                 const float *w, float *dx, int accumulate, const char *layer);
int wn_cuda_conv2d_backward_filter(wn_backend *be, const wn_conv_desc *d, const float *x,
                                   const float *dy, float *dw, float *db, const char *layer);

/* ---- cuda_dense.cu ---- */
int wn_cuda_dense_forward(wn_backend *be, int n, int in, int out, const float *x,
                          const float *w, const float *b, float *y, const char *layer);
int wn_cuda_dense_backward(wn_backend *be, int n, int in, int out, const float *x,
                           const float *w, const float *dy, float *dx, float *dw, float *db,
                           const char *layer);
/* sums[c] = sum over rows of x[rows, c] (row-major), overwriting: bias gradients. */
int wn_cuda_column_sums(wn_backend *be, size_t rows, int cols, const float *x, float *sums,
                        const char *layer);

/* ---- kernels/affine_act.cu ---- */
int wn_cuda_affine_act_forward(wn_backend *be, size_t count, int c, const float *x,
                               const float *scale, const float *shift, wn_activation act,
                               float *y, const char *layer);
int wn_cuda_affine_act_backward(wn_backend *be, size_t count, int c, const float *y,
                                const float *dy, const float *scale, wn_activation act,
                                float *dx, int accumulate, float *dshift, const char *layer);
int wn_cuda_bn_gamma_backward(wn_backend *be, size_t count, int c, const float *x,
                              const float *y, const float *dy, const float *mean,
                              const float *inv_std, wn_activation act, float *dgamma,
                              const char *layer);
/* ---- kernels/pool.cu ---- */
int wn_cuda_pool_forward(wn_backend *be, const wn_window *win, wn_pool_kind kind,
                         const float *x, float *y, const char *layer);
int wn_cuda_pool_backward(wn_backend *be, const wn_window *win, wn_pool_kind kind,
                          const float *x, const float *y, const float *dy, float *dx,
                          int accumulate, const char *layer);
/* ---- kernels/concat.cu ---- */
int wn_cuda_concat_forward(wn_backend *be, size_t pixels, int n_in, const float *const *x,
                           const int *channels, float *y, const char *layer);
int wn_cuda_concat_backward(wn_backend *be, size_t pixels, int n_in, const float *dy,
                            const int *channels, float *const *dx, int accumulate,
                            const char *layer);
/* ---- kernels/residual.cu ---- */
int wn_cuda_residual_forward(wn_backend *be, size_t count, const float *x, const float *r,
                             float scale, float *y, const char *layer);
int wn_cuda_residual_backward(wn_backend *be, size_t count, const float *dy, float scale,
                              float *dx, float *dr, int accumulate, const char *layer);
/* ---- kernels/gap.cu ---- */
int wn_cuda_gap_forward(wn_backend *be, int n, int hw, int c, const float *x, float *y,
                        const char *layer);
int wn_cuda_gap_backward(wn_backend *be, int n, int hw, int c, const float *dy, float *dx,
                         int accumulate, const char *layer);
/* ---- kernels/dropout.cu ---- */
int wn_cuda_dropout_forward(wn_backend *be, size_t count, float rate, uint64_t seed,
                            uint64_t offset, const float *x, float *y, const char *layer);
int wn_cuda_dropout_backward(wn_backend *be, size_t count, float rate, uint64_t seed,
                             uint64_t offset, const float *dy, float *dx, int accumulate,
                             const char *layer);
/* ---- kernels/softmax_xent.cu ---- */
int wn_cuda_softmax_xent(wn_backend *be, int n, int k, const float *logits,
                         const int32_t *labels, float label_smoothing, float n_mean,
                         float *probs, float *dlogits, float *stats);
/* ---- kernels/adam.cu ---- */
int wn_cuda_adam_update(wn_backend *be, size_t count, float *p, const float *g, float *m,
                        float *v, float lr, float beta1, float beta2, float eps, long t);
/* ---- kernels/augment.cu ---- */
int wn_cuda_augment_preprocess(wn_backend *be, int n, int h, int w, int c, const uint8_t *x,
                               const uint8_t *flip, const float *angle, float *y);

#endif
