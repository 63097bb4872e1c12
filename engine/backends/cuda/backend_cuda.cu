/* engine/backends/cuda/backend_cuda.cu — the CUDA backend: device selection, streams, the device
 * arena, copies, error reporting, and the op table (kernels/common/backend_ops.h).
 *
 * The ops live beside their CPU twins in kernels/<family>/<family>.cu (cuDNN for
 * convolutions, cuBLAS for Dense, our kernels over the shared element functions).
 * Everything runs on one compute stream; image-batch uploads use the copy stream,
 * ordered by events (the upload entries of kernels/common/backend_ops.h).
 *
 * Memory: every device buffer comes from one arena (kernels/common/cuda_arena.h) that
 * takes 64 MiB chunks from cudaMalloc and never
 * returns them during a run, so a training step never calls the driver. Out of
 * memory is a message (how much was asked, how much the device has free), never a
 * crash.
 *
 * Environment: WN_CUDA_SYNC=1 synchronizes after every op so an asynchronous fault
 * is reported with the right layer's name (slow; for debugging and compute-sanitizer
 * runs); WN_CUDA_NO_ARENA=1 gives every buffer its own cudaMalloc (slow; lets
 * compute-sanitizer's memcheck see each buffer's bounds, which it cannot inside an
 * arena chunk); WN_CUDNN_WORKSPACE_MB caps cuDNN's workspace (default 1024).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/backends/cuda/backend_cuda.h"
#include "engine/backends/cuda/backend_cuda_bf16.h"
#include "engine/backends/cuda/backend_cuda_group.h"
#include "kernels/adam/adam.h"
#include "kernels/affine_act/affine_act.h"
#include "kernels/augment/augment.h"
#include "kernels/common/cuda_ctx.h"
#include "kernels/concat/concat.h"
#include "kernels/conv/conv.h"
#include "kernels/conv/conv_cuda_plan.h"
#include "kernels/dense/dense.h"
#include "kernels/dropout/dropout.h"
#include "kernels/elementwise/elementwise.h"
#include "kernels/gap/gap.h"
#include "kernels/pool/pool.h"
#include "kernels/softmax_xent/softmax_xent.h"

#define WN_CUDA_CHUNK_BYTES ((size_t)64 << 20)
#define WN_CUDA_ALIGN 256 /* cuDNN and cuBLAS want 128-byte alignment; 256 is cudaMalloc's */
/* Kept free beyond a plan for the cuDNN workspace of the chosen algorithms (the
 * algorithm search itself shrinks its workspace to what the driver can give). */
#define WN_CUDA_WORKSPACE_RESERVE ((size_t)256 << 20)

/* ================================================================ errors */

/* "kernels/conv/conv.cu" from an absolute __FILE__. */
static const char *short_path(const char *file) {
    const char *best = file;
    const char *dirs[] = {"/engine/", "/kernels/", "/tests/", "/tools/"};
    for (int i = 0; i < 4; i++) {
        const char *p = strstr(file, dirs[i]);
        if (p) {
            best = p + 1;
            break;
        }
    }
    return best;
}

static const char *cuda_hint(cudaError_t err) {
    switch (err) {
    case cudaErrorMemoryAllocation:
        return "; the GPU is out of memory: use a smaller --batch or --image-size";
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
        return "; no usable GPU/driver: use --backend cpu";
    case cudaErrorNoKernelImageForDevice:
    case cudaErrorInvalidDeviceFunction:
        return "; this build has no code for this GPU: rebuild with "
               "-DCMAKE_CUDA_ARCHITECTURES=native";
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorMisalignedAddress:
        return "; the CUDA context is unusable now. An earlier asynchronous launch may be "
               "the cause: rerun with WN_CUDA_SYNC=1 (or under compute-sanitizer) to find it";
    default:
        return "";
    }
}

int wn_cuda_fail_cuda(cudaError_t err, const char *stmt, const char *file, int line,
                      const char *layer) {
    /* A failed call leaves its error as the "last error"; clear it so that the next
     * launch check does not report it a second time (sticky faults stay anyway). */
    (void)cudaGetLastError();
    return wn_fail("%s%s%s%s failed at %s:%d: %s (%s)%s", layer ? "layer '" : "",
                   layer ? layer : "", layer ? "': " : "", stmt, short_path(file), line,
                   cudaGetErrorString(err), cudaGetErrorName(err), cuda_hint(err));
}

int wn_cuda_fail_cudnn(cudnnStatus_t st, const char *stmt, const char *file, int line,
                       const char *layer) {
    const char *hint = "";
    if (st == CUDNN_STATUS_NOT_SUPPORTED)
        hint = "; cuDNN does not support this convolution shape/precision: try --precision fp32";
    else if (st == CUDNN_STATUS_ALLOC_FAILED)
        hint = "; the GPU is out of memory: use a smaller --batch";
    return wn_fail("%s%s%s%s failed at %s:%d: %s%s", layer ? "layer '" : "", layer ? layer : "",
                   layer ? "': " : "", stmt, short_path(file), line, cudnnGetErrorString(st),
                   hint);
}

int wn_cuda_fail_cublas(cublasStatus_t st, const char *stmt, const char *file, int line,
                        const char *layer) {
    const char *hint = st == CUBLAS_STATUS_ALLOC_FAILED
                           ? "; the GPU is out of memory: use a smaller --batch"
                           : "";
    return wn_fail("%s%s%s%s failed at %s:%d: %s (%s)%s", layer ? "layer '" : "",
                   layer ? layer : "", layer ? "': " : "", stmt, short_path(file), line,
                   cublasGetStatusString(st), cublasGetStatusName(st), hint);
}

int wn_cuda_op_done(wn_backend *be, const char *what, const char *layer) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) return wn_cuda_fail_cuda(err, what, __FILE__, __LINE__, layer);
    if (ctx->sync_each_op) {
        err = cudaStreamSynchronize(ctx->stream);
        if (err != cudaSuccess) return wn_cuda_fail_cuda(err, what, __FILE__, __LINE__, layer);
    }
    return WN_OK;
}

/* ================================================================ memory */

static void *chunk_alloc(void *user, size_t bytes) {
    wn_cuda_ctx *ctx = (wn_cuda_ctx *)user;
    void *p = NULL;
    cudaError_t err = cudaMalloc(&p, bytes);
    if (err == cudaSuccess) return p;
    (void)cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) /* for the message only */
        (void)cudaGetLastError(), free_b = total_b = 0;
    if (err == cudaErrorMemoryAllocation)
        wn_fail("out of GPU memory: cudaMalloc of %.1f MiB failed; the device has %.1f MiB "
                "free of %.1f MiB and this backend already holds %.1f MiB (%.1f MiB in use). "
                "Use a smaller --batch or --image-size, or a larger --fine-tune-at (fewer "
                "activations kept)",
                bytes / 1048576.0, free_b / 1048576.0, total_b / 1048576.0,
                ctx->arena.reserved / 1048576.0, ctx->arena.in_use / 1048576.0);
    else
        wn_cuda_fail_cuda(err, "cudaMalloc", __FILE__, __LINE__, NULL);
    return NULL;
}

static void chunk_free(void *user, void *base) {
    (void)user;
    cudaFree(base); /* only at teardown, after a synchronize */
}

void *wn_cuda_dev_alloc(wn_cuda_ctx *ctx, size_t bytes) {
    if (!ctx->direct) return wn_arena_alloc(&ctx->arena, bytes);
    if (ctx->direct_count == ctx->direct_cap) {
        size_t cap = ctx->direct_cap ? 2 * ctx->direct_cap : 1024;
        wn_cuda_direct_block *b =
            (wn_cuda_direct_block *)realloc(ctx->direct_blocks, cap * sizeof *b);
        if (!b) {
            wn_fail("out of host memory");
            return NULL;
        }
        ctx->direct_blocks = b, ctx->direct_cap = cap;
    }
    /* cudaFree of an earlier buffer may still be pending behind stream work: waiting
     * here keeps direct mode as safe as the arena's stream-ordered reuse */
    cudaError_t err = cudaStreamSynchronize(ctx->stream);
    if (err != cudaSuccess) {
        wn_cuda_fail_cuda(err, "cudaStreamSynchronize (before a direct-mode cudaMalloc)",
                          __FILE__, __LINE__, NULL);
        return NULL;
    }
    void *p = chunk_alloc(ctx, bytes ? bytes : 1);
    if (!p) return NULL;
    ctx->direct_blocks[ctx->direct_count].p = p;
    ctx->direct_blocks[ctx->direct_count].bytes = bytes;
    ctx->direct_count++;
    ctx->direct_in_use += bytes;
    if (ctx->direct_in_use > ctx->direct_peak) ctx->direct_peak = ctx->direct_in_use;
    return p;
}

void wn_cuda_dev_free(wn_cuda_ctx *ctx, void *p) {
    if (!p) return;
    if (!ctx->direct) {
        wn_arena_free(&ctx->arena, p);
        return;
    }
    for (size_t i = ctx->direct_count; i-- > 0;)
        if (ctx->direct_blocks[i].p == p) {
            ctx->direct_in_use -= ctx->direct_blocks[i].bytes;
            ctx->direct_blocks[i] = ctx->direct_blocks[--ctx->direct_count];
            /* the buffer may still be read by queued work: wait, then free. A failure
             * here is an earlier asynchronous fault: the reason is set, and the
             * context's sticky error fails the next checked call. */
            cudaError_t err = cudaStreamSynchronize(ctx->stream);
            if (err == cudaSuccess) err = cudaFree(p);
            if (err != cudaSuccess)
                wn_cuda_fail_cuda(err, "cudaFree (direct mode)", __FILE__, __LINE__, NULL);
            return;
        }
}

void *wn_cuda_scratch(wn_backend *be, size_t bytes, const char *what, const char *layer) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    void *p = wn_cuda_dev_alloc(ctx, bytes);
    if (!p) wn_fail_context("%s%s%s%s: ", layer ? "layer '" : "", layer ? layer : "",
                            layer ? "': " : "", what);
    return p;
}

void wn_cuda_scratch_free(wn_backend *be, void *p) {
    /* Stream order makes this safe right after the last launch that reads p. */
    wn_cuda_dev_free(wn_cuda_ctx_of(be), p);
}

int wn_cuda_workspace(wn_backend *be, size_t bytes, const char *layer) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    if (bytes <= ctx->workspace_bytes) return WN_OK;
    wn_cuda_dev_free(ctx, ctx->workspace);
    ctx->workspace = NULL, ctx->workspace_bytes = 0;
    void *p = wn_cuda_scratch(be, bytes, "cuDNN workspace", layer);
    if (!p) return WN_ERR;
    ctx->workspace = p, ctx->workspace_bytes = bytes;
    return WN_OK;
}

static __global__ void fill_kernel(float *x, size_t count, float value) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < count;
         i += (size_t)gridDim.x * blockDim.x)
        x[i] = value;
}

const float *wn_cuda_ones(wn_backend *be, size_t count, const char *layer) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    if (count <= ctx->ones_count) return ctx->ones;
    wn_cuda_dev_free(ctx, ctx->ones);
    ctx->ones = NULL, ctx->ones_count = 0;
    size_t n = count < 4096 ? 4096 : count;
    float *p = (float *)wn_cuda_scratch(be, n * sizeof(float), "ones vector", layer);
    if (!p) return NULL;
    fill_kernel<<<wn_cuda_blocks(ctx, n), WN_CUDA_THREADS, 0, ctx->stream>>>(p, n, 1.0f);
    if (cudaGetLastError() != cudaSuccess) {
        wn_fail("%s: launching the ones fill failed", layer ? layer : "ones vector");
        wn_cuda_dev_free(ctx, p);
        return NULL;
    }
    ctx->ones = p, ctx->ones_count = n;
    return p;
}

static void *cuda_alloc(wn_backend *be, size_t bytes) {
    return wn_cuda_dev_alloc(wn_cuda_ctx_of(be), bytes);
}

static void cuda_free(wn_backend *be, void *p) { wn_cuda_dev_free(wn_cuda_ctx_of(be), p); }

/* ================================================================ copies */

static int is_pinned(const void *p) {
    cudaPointerAttributes attr;
    if (cudaPointerGetAttributes(&attr, p) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return attr.type == cudaMemoryTypeHost;
}

/* ================================================================ small uploads */

int wn_cuda_upload_small(wn_backend *be, void *dst, const void *src, size_t bytes,
                         const char *layer) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    if (!bytes) return WN_OK;
    if (bytes > WN_CUDA_SMALL_BYTES) {
        CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, ctx->stream), layer);
        return WN_OK;
    }
    wn_cuda_small_slot *slot = &ctx->small[ctx->small_next];
    ctx->small_next = (ctx->small_next + 1) % WN_CUDA_SMALL_SLOTS;
    /* The slot's previous copy (WN_CUDA_SMALL_SLOTS uploads ago, normally long done)
     * must have read it before it is overwritten. */
    if (slot->used) CUDA_CHECK(cudaEventSynchronize(slot->done), layer);
    if (!slot->pinned) {
        CUDA_CHECK(cudaMallocHost(&slot->pinned, WN_CUDA_SMALL_BYTES), layer);
        slot->bytes = WN_CUDA_SMALL_BYTES;
        CUDA_CHECK(cudaEventCreateWithFlags(&slot->done, cudaEventDisableTiming), layer);
    }
    memcpy(slot->pinned, src, bytes);
    CUDA_CHECK(cudaMemcpyAsync(dst, slot->pinned, bytes, cudaMemcpyHostToDevice, ctx->stream),
               layer);
    CUDA_CHECK(cudaEventRecord(slot->done, ctx->stream), layer);
    slot->used = 1;
    return WN_OK;
}

static int cuda_copy_to_backend(wn_backend *be, void *dst, const void *src, size_t bytes) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    if (!bytes) return WN_OK;
    /* Small copies (labels, per-step values) go through the reused pinned ring. */
    if (bytes <= WN_CUDA_SMALL_BYTES && !is_pinned(src))
        return wn_cuda_upload_small(be, dst, src, bytes, "copy to the GPU");
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, ctx->stream), NULL);
    /* From pageable memory the call returns once the source is staged; from pinned
     * memory it would not, and the caller may reuse the source at once: wait.
     * (Overlapped uploads use wn_cuda_upload.) */
    if (is_pinned(src)) CUDA_CHECK(cudaStreamSynchronize(ctx->stream), NULL);
    return WN_OK;
}

static int cuda_copy_to_host(wn_backend *be, void *dst, const void *src, size_t bytes) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    if (!bytes) return WN_OK;
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, ctx->stream), NULL);
    CUDA_CHECK(cudaStreamSynchronize(ctx->stream), NULL);
    return WN_OK;
}

static int cuda_copy(wn_backend *be, void *dst, const void *src, size_t bytes) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    if (!bytes || dst == src) return WN_OK;
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, ctx->stream), NULL);
    return WN_OK;
}

static int cuda_fill(wn_backend *be, float *x, size_t count, float value) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    if (!count) return WN_OK;
    fill_kernel<<<wn_cuda_blocks(ctx, count), WN_CUDA_THREADS, 0, ctx->stream>>>(x, count, value);
    return wn_cuda_op_done(be, "fill", NULL);
}

static int cuda_synchronize(wn_backend *be) {
    CUDA_CHECK(cudaStreamSynchronize(wn_cuda_ctx_of(be)->stream), NULL);
    return WN_OK;
}

/* ================================================================ lifetime */

static void cuda_destroy(wn_backend *be) {
    if (!be) return;
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    if (ctx) {
        cudaSetDevice(ctx->device);
        if (ctx->stream) cudaStreamSynchronize(ctx->stream);
        if (ctx->copy_stream) cudaStreamSynchronize(ctx->copy_stream);
        wn_cuda_leave_group(ctx);
        wn_arena_release(&ctx->arena);
        for (size_t i = 0; i < ctx->direct_count; i++) cudaFree(ctx->direct_blocks[i].p);
        free(ctx->direct_blocks);
        if (ctx->conv_cache) wn_conv_cache_free(ctx->conv_cache);
        free(ctx->conv_cache);
        if (ctx->cudnn) cudnnDestroy(ctx->cudnn);
        if (ctx->cublas) cublasDestroy(ctx->cublas);
        for (int i = 0; i < WN_CUDA_UPLOAD_SLOTS; i++) {
            if (ctx->upload_ready[i]) cudaEventDestroy(ctx->upload_ready[i]);
            if (ctx->upload_consumed[i]) cudaEventDestroy(ctx->upload_consumed[i]);
        }
        for (int i = 0; i < WN_CUDA_SMALL_SLOTS; i++) {
            if (ctx->small[i].done) cudaEventDestroy(ctx->small[i].done);
            if (ctx->small[i].pinned) cudaFreeHost(ctx->small[i].pinned);
        }
        if (ctx->stream) cudaStreamDestroy(ctx->stream);
        if (ctx->copy_stream) cudaStreamDestroy(ctx->copy_stream);
        (void)cudaGetLastError();
        free(ctx);
    }
    free(be);
}

/* 1 when `device` exists and this binary has code for it (the fill kernel stands for
 * all: every kernel is built for the same architectures). */
static int device_usable(int device, char *why, size_t why_len) {
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess || count == 0) {
        (void)cudaGetLastError();
        snprintf(why, why_len, "no CUDA GPU is visible (%s)",
                 err != cudaSuccess ? cudaGetErrorString(err) : "0 devices");
        return 0;
    }
    if (device < 0 || device >= count) {
        snprintf(why, why_len, "GPU %d does not exist (%d visible)", device, count);
        return 0;
    }
    if ((err = cudaSetDevice(device)) != cudaSuccess) {
        (void)cudaGetLastError();
        snprintf(why, why_len, "cannot use GPU %d: %s", device, cudaGetErrorString(err));
        return 0;
    }
    cudaFuncAttributes attr;
    if ((err = cudaFuncGetAttributes(&attr, fill_kernel)) != cudaSuccess) {
        (void)cudaGetLastError();
        int major = 0, minor = 0;
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
        snprintf(why, why_len,
                 "this build has no code for GPU %d (compute capability %d.%d): %s; rebuild "
                 "with -DCMAKE_CUDA_ARCHITECTURES=native",
                 device, major, minor, cudaGetErrorString(err));
        return 0;
    }
    return 1;
}

extern "C" int wn_cuda_available(void) {
    char why[256];
    return device_usable(0, why, sizeof why);
}

static size_t env_size(const char *name, size_t fallback) {
    const char *v = getenv(name);
    if (!v || !*v) return fallback;
    char *end = NULL;
    unsigned long long x = strtoull(v, &end, 10);
    return (end && *end == '\0') ? (size_t)x : fallback;
}

/* Sets up ctx on the current device; WN_ERR with a reason. */
static int ctx_init(wn_cuda_ctx *ctx) {
    CUDA_CHECK(cudaDeviceGetAttribute(&ctx->sm_count, cudaDevAttrMultiProcessorCount, ctx->device),
               NULL);
    CUDA_CHECK(cudaDeviceGetAttribute(&ctx->cc_major, cudaDevAttrComputeCapabilityMajor,
                                      ctx->device),
               NULL);
    CUDA_CHECK(cudaDeviceGetAttribute(&ctx->cc_minor, cudaDevAttrComputeCapabilityMinor,
                                      ctx->device),
               NULL);
    CUDA_CHECK(cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking), NULL);
    CUDA_CHECK(cudaStreamCreateWithFlags(&ctx->copy_stream, cudaStreamNonBlocking), NULL);
    for (int i = 0; i < WN_CUDA_UPLOAD_SLOTS; i++) {
        CUDA_CHECK(cudaEventCreateWithFlags(&ctx->upload_ready[i], cudaEventDisableTiming), NULL);
        CUDA_CHECK(cudaEventCreateWithFlags(&ctx->upload_consumed[i], cudaEventDisableTiming),
                   NULL);
        /* recorded once so that the first upload's wait has an event to wait on */
        CUDA_CHECK(cudaEventRecord(ctx->upload_consumed[i], ctx->stream), NULL);
    }
    CUDNN_CHECK(cudnnCreate(&ctx->cudnn), NULL);
    CUDNN_CHECK(cudnnSetStream(ctx->cudnn, ctx->stream), NULL);
    CUBLAS_CHECK(cublasCreate(&ctx->cublas), NULL);
    CUBLAS_CHECK(cublasSetStream(ctx->cublas, ctx->stream), NULL);
    /* TF32 tensor cores only where asked; FP32 is strict (pedantic keeps cuBLAS from
     * choosing reduced-precision paths on its own). */
    CUBLAS_CHECK(cublasSetMathMode(ctx->cublas, ctx->precision == WN_PRECISION_TF32
                                                    ? CUBLAS_TF32_TENSOR_OP_MATH
                                                    : CUBLAS_PEDANTIC_MATH),
                 NULL);
    wn_arena_ops ops = {chunk_alloc, chunk_free, ctx};
    if (wn_arena_init(&ctx->arena, WN_CUDA_ALIGN, WN_CUDA_CHUNK_BYTES, &ops) != WN_OK)
        return WN_ERR;
    ctx->conv_cache = (wn_conv_cache *)calloc(1, sizeof *ctx->conv_cache);
    if (!ctx->conv_cache) return wn_fail("CUDA backend: out of host memory");
    wn_conv_cache_init(ctx->conv_cache);
    ctx->workspace_limit = env_size("WN_CUDNN_WORKSPACE_MB", 1024) << 20;
    const char *sync = getenv("WN_CUDA_SYNC");
    ctx->sync_each_op = sync && *sync && strcmp(sync, "0") != 0;
    const char *direct = getenv("WN_CUDA_NO_ARENA");
    ctx->direct = direct && *direct && strcmp(direct, "0") != 0;
    const char *det = getenv("WN_CUDA_DETERMINISTIC");
    ctx->deterministic = det && *det && strcmp(det, "0") != 0;
    const char *dw = getenv("WN_CUDA_DEPTHWISE");
    ctx->own_depthwise = dw && !strcmp(dw, "own");
    return WN_OK;
}

/* ================================================================ optional entries */

/* What a new plan may still take: the device's free memory plus the arena's unused
 * reserve. */
static int cuda_memory(wn_backend *be, size_t *available, size_t *total) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    size_t device_free = 0, device_total = 0;
    CUDA_CHECK(cudaMemGetInfo(&device_free, &device_total), NULL);
    size_t slack = ctx->arena.reserved > ctx->arena.in_use ? ctx->arena.reserved - ctx->arena.in_use
                                                           : 0;
    *available = device_free + slack;
    *total = device_total;
    return WN_OK;
}

/* Staging buffers in pinned memory, so that uploads from them are true DMAs. */
static void *cuda_host_alloc(wn_backend *be, size_t bytes) {
    (void)be;
    void *p = NULL;
    cudaError_t err = cudaHostAlloc(&p, bytes ? bytes : 1, cudaHostAllocPortable);
    if (err != cudaSuccess) {
        wn_cuda_fail_cuda(err, "cudaHostAlloc", __FILE__, __LINE__, NULL);
        return NULL;
    }
    return p;
}

static void cuda_host_free(wn_backend *be, void *p) {
    (void)be;
    if (p) cudaFreeHost(p);
}

/* Double-buffered uploads on the copy stream (kernels/common/backend_ops.h):
 * the copy waits for the compute stream's release of the slot (write after read),
 * and the compute stream waits for the copy before the ops queued next. */
static int cuda_upload_async(wn_backend *be, int slot, void *dst, const void *src,
                             size_t bytes) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    CUDA_CHECK(cudaStreamWaitEvent(ctx->copy_stream, ctx->upload_consumed[slot], 0), "upload");
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, ctx->copy_stream),
               "upload");
    CUDA_CHECK(cudaEventRecord(ctx->upload_ready[slot], ctx->copy_stream), "upload");
    CUDA_CHECK(cudaStreamWaitEvent(ctx->stream, ctx->upload_ready[slot], 0), "upload");
    return WN_OK;
}

static int cuda_upload_release(wn_backend *be, int slot) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    CUDA_CHECK(cudaEventRecord(ctx->upload_consumed[slot], ctx->stream), "upload");
    return WN_OK;
}

static int cuda_upload_wait(wn_backend *be, int slot) {
    CUDA_CHECK(cudaEventSynchronize(wn_cuda_ctx_of(be)->upload_ready[slot]), "upload");
    return WN_OK;
}

static size_t cuda_conv_scratch_bytes(wn_backend *be, wn_conv_call call, const wn_conv_desc *d,
                                      int accumulate) {
    (void)be;
    return wn_conv_cuda_scratch_bytes(call, d, accumulate, WN_DTYPE_F32);
}

/* Only cuDNN algorithms that report CUDNN_DETERMINISTIC from now on (no atomics in
 * backward data/filter): the same inputs give the same bits run to run. */
static int cuda_set_deterministic(wn_backend *be, int on) {
    wn_cuda_ctx_of(be)->deterministic = on ? 1 : 0; /* part of the algorithm cache's key */
    return WN_OK;
}

static const wn_backend_ops cuda_ops = {
    /* .alloc = */ cuda_alloc,
    /* .free = */ cuda_free,
    /* .copy_to_backend = */ cuda_copy_to_backend,
    /* .copy_to_host = */ cuda_copy_to_host,
    /* .copy = */ cuda_copy,
    /* .fill = */ cuda_fill,
    /* .synchronize = */ cuda_synchronize,
    /* .memory = */ cuda_memory,
    /* .host_alloc = */ cuda_host_alloc,
    /* .host_free = */ cuda_host_free,
    /* .upload_async = */ cuda_upload_async,
    /* .upload_release = */ cuda_upload_release,
    /* .upload_wait = */ cuda_upload_wait,
    /* .conv_scratch_bytes = */ cuda_conv_scratch_bytes,
    /* .set_deterministic = */ cuda_set_deterministic,
    /* .conv2d_forward = */ wn_cuda_conv2d_forward,
    /* .conv2d_backward_data = */ wn_cuda_conv2d_backward_data,
    /* .conv2d_backward_filter = */ wn_cuda_conv2d_backward_filter,
    /* .conv2d_forward_epilogue = */ NULL, /* the dispatcher runs conv, then affine_act */
    /* .affine_act_forward = */ wn_cuda_affine_act_forward,
    /* .affine_act_backward = */ wn_cuda_affine_act_backward,
    /* .bn_gamma_backward = */ wn_cuda_bn_gamma_backward,
    /* .pool_forward = */ wn_cuda_pool_forward,
    /* .pool_backward = */ wn_cuda_pool_backward,
    /* .concat_forward = */ wn_cuda_concat_forward,
    /* .concat_backward = */ wn_cuda_concat_backward,
    /* .scaled_add = */ wn_cuda_scaled_add,
    /* .scaled_add_backward = */ wn_cuda_scaled_add_backward,
    /* .mul = */ wn_cuda_mul,
    /* .gap_forward = */ wn_cuda_gap_forward,
    /* .gap_backward = */ wn_cuda_gap_backward,
    /* .dropout_forward = */ wn_cuda_dropout_forward,
    /* .dropout_backward = */ wn_cuda_dropout_backward,
    /* .dense_forward = */ wn_cuda_dense_forward,
    /* .dense_backward = */ wn_cuda_dense_backward,
    /* .softmax_xent = */ wn_cuda_softmax_xent,
    /* .adam_update = */ wn_cuda_adam_update,
    /* .augment_preprocess = */ wn_cuda_augment_preprocess,
    /* .join_group = */ wn_cuda_join_group,
    /* .allreduce_sum = */ wn_cuda_allreduce_sum,
    /* .allreduce_begin = */ wn_cuda_allreduce_begin,
    /* .allreduce_end = */ wn_cuda_allreduce_end,
    /* .destroy = */ cuda_destroy,
};

extern "C" wn_backend *wn_backend_cuda(int device, wn_precision precision) {
    char why[320];
    if (!device_usable(device, why, sizeof why)) {
        wn_fail("CUDA backend: %s; use --backend cpu", why);
        return NULL;
    }
    if (precision != WN_PRECISION_FP32 && precision != WN_PRECISION_TF32) {
        wn_fail("CUDA backend: precision %d is not one this backend runs; use --precision "
                "tf32 (default) or fp32", (int)precision);
        return NULL;
    }
    wn_backend *be = (wn_backend *)calloc(1, sizeof *be);
    wn_cuda_ctx *ctx = (wn_cuda_ctx *)calloc(1, sizeof *ctx);
    if (!be || !ctx) {
        free(be), free(ctx);
        wn_fail("CUDA backend: out of host memory");
        return NULL;
    }
    ctx->device = device;
    ctx->precision = precision;
    be->ops = &cuda_ops;
    be->ctx = ctx;
    be->name = "cuda";
    be->kind = WN_BACKEND_CUDA;
    be->upload_slots = WN_CUDA_UPLOAD_SLOTS;
    be->alloc_align = WN_CUDA_ALIGN;
    be->reserve_bytes = WN_CUDA_WORKSPACE_RESERVE;
    if (ctx_init(ctx) != WN_OK) {
        wn_fail_context("CUDA backend on GPU %d: ", device);
        cuda_destroy(be);
        return NULL;
    }
    be->bf16 = wn_backend_cuda_bf16_ops(be); /* NULL before compute capability 8.0 */
    return be;
}

/* ================================================================ backend_cuda.h */

/* Per-SM dense throughput (FLOP per clock: 2 per FMA) by architecture, from NVIDIA's
 * datasheets: {fp32, tf32 tensor, bf16 tensor}. */
static void arch_rates(int major, int minor, double r[3]) {
    r[0] = r[1] = r[2] = 0.0;
    if (major == 8 && minor == 0) r[0] = 128, r[1] = 1024, r[2] = 2048; /* A100 */
    else if (major == 8) r[0] = 256, r[1] = 512, r[2] = 1024;          /* GA10x, AD10x */
    else if (major == 9) r[0] = 256, r[1] = 2048, r[2] = 4096;         /* H100/H200 */
}

extern "C" int wn_cuda_device_query(int device, wn_cuda_device_info *info) {
    char why[320];
    if (!device_usable(device, why, sizeof why)) return wn_fail("%s", why);
    memset(info, 0, sizeof *info);
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, device), NULL);
    size_t name_len = strnlen(prop.name, sizeof info->name - 1);
    memcpy(info->name, prop.name, name_len);
    info->name[name_len] = '\0';
    info->cc_major = prop.major, info->cc_minor = prop.minor;
    info->sm_count = prop.multiProcessorCount;
    info->total_bytes = prop.totalGlobalMem;
    int khz = 0;
    if (cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, device) != cudaSuccess) {
        (void)cudaGetLastError();
        khz = 0;
    }
    info->clock_ghz = khz / 1e6;
    double r[3];
    arch_rates(prop.major, prop.minor, r);
    double per_clock = info->sm_count * info->clock_ghz * 1e9 / 1e12;
    info->peak_fp32_tflops = r[0] * per_clock;
    info->peak_tf32_tflops = r[1] * per_clock;
    info->peak_bf16_tflops = r[2] * per_clock;
    return WN_OK;
}

