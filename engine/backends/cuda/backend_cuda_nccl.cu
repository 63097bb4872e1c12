/* engine/backends/cuda/backend_cuda_nccl.cu — the CUDA backend in a group of ranks
 * (kernels/common/rank_group.h): the only code that calls NCCL.
 *
 * join_group: rank 0 makes an NCCL unique id, the group's broadcast (MPI, in
 * engine/train/distributed.c) hands it to every rank, and each makes its
 * communicator on its own GPU (the backend's device: one per rank, chosen by the
 * command line from the local rank). allreduce_sum: ncclAllReduce in place on the
 * compute stream, so it runs after the backward pass queued before it and before the
 * Adam update queued after it, without a host synchronisation. allreduce_begin /
 * allreduce_end: the same sum per gradient bucket on a stream of its own, ordered by
 * events (compute -> comm at each begin, comm -> compute at the end), so the buckets
 * backward has finished travel while it computes the ones below.
 *
 * A build whose CUDA toolkit has no NCCL sums through host memory instead: the
 * buffer is copied to pinned memory, summed with the group's host sum, copied back.
 */
#include "engine/backends/cuda/backend_cuda_group.h"

#include <stdlib.h>

#ifdef WN_HAVE_NCCL
#include <nccl.h>

#define NCCL_CHECK(stmt, what)                                                             \
    do {                                                                                   \
        ncclResult_t wn_r_ = (stmt);                                                       \
        if (wn_r_ != ncclSuccess)                                                          \
            return wn_fail("%s: %s failed: %s", (what), #stmt, ncclGetErrorString(wn_r_)); \
    } while (0)
#endif

extern "C" int wn_cuda_join_group(wn_backend *be, const wn_rank_group *group) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    if (ctx->group) return wn_fail("CUDA backend: already in a group of ranks");
    ctx->group = group;
#ifdef WN_HAVE_NCCL
    /* Even a group of one gets a communicator: tests/gpu/test_gpu_allreduce.c runs
     * NCCL on a single GPU that way. */
    ncclUniqueId id;
    if (group->rank == 0) NCCL_CHECK(ncclGetUniqueId(&id), "NCCL set-up on rank 0");
    if (group->broadcast(group->user, &id, sizeof id) != WN_OK)
        return wn_fail_context("NCCL set-up: ");
    CUDA_CHECK(cudaSetDevice(ctx->device), "NCCL set-up");
    ncclComm_t comm = NULL;
    NCCL_CHECK(ncclCommInitRank(&comm, group->size, id, group->rank), "NCCL set-up");
    ctx->nccl = comm;
    /* the bucketed sums' stream; higher priority, so a sum's kernels are not queued
     * behind backward's when both are ready */
    int least = 0, greatest = 0;
    CUDA_CHECK(cudaDeviceGetStreamPriorityRange(&least, &greatest), "NCCL set-up");
    CUDA_CHECK(cudaStreamCreateWithPriority(&ctx->comm_stream, cudaStreamNonBlocking, greatest),
               "NCCL set-up");
    CUDA_CHECK(cudaEventCreateWithFlags(&ctx->comm_ready, cudaEventDisableTiming), "NCCL set-up");
    CUDA_CHECK(cudaEventCreateWithFlags(&ctx->comm_done, cudaEventDisableTiming), "NCCL set-up");
#endif
    return WN_OK;
}

#ifndef WN_HAVE_NCCL
/* Without NCCL: device -> pinned host -> the group's sum -> device. */
static int host_allreduce(wn_cuda_ctx *ctx, float *x, size_t count) {
    size_t bytes = count * sizeof(float);
    if (ctx->group_host_bytes < bytes) {
        if (ctx->group_host) cudaFreeHost(ctx->group_host);
        ctx->group_host = NULL, ctx->group_host_bytes = 0;
        CUDA_CHECK(cudaMallocHost(&ctx->group_host, bytes), "allreduce_sum");
        ctx->group_host_bytes = bytes;
    }
    float *h = (float *)ctx->group_host;
    CUDA_CHECK(cudaMemcpyAsync(h, x, bytes, cudaMemcpyDeviceToHost, ctx->stream), "allreduce_sum");
    CUDA_CHECK(cudaStreamSynchronize(ctx->stream), "allreduce_sum");
    if (ctx->group->sum_floats(ctx->group->user, h, count) != WN_OK) return WN_ERR;
    CUDA_CHECK(cudaMemcpyAsync(x, h, bytes, cudaMemcpyHostToDevice, ctx->stream), "allreduce_sum");
    CUDA_CHECK(cudaStreamSynchronize(ctx->stream), "allreduce_sum"); /* h is reused */
    return WN_OK;
}
#endif

extern "C" int wn_cuda_allreduce_sum(wn_backend *be, float *x, size_t count) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    if (!ctx->group) return WN_OK;
#ifdef WN_HAVE_NCCL
    if (!ctx->nccl) return wn_fail("allreduce_sum: the backend has no NCCL communicator");
    NCCL_CHECK(ncclAllReduce(x, x, count, ncclFloat, ncclSum, (ncclComm_t)ctx->nccl, ctx->stream),
               "summing gradients over the ranks");
    return wn_cuda_op_done(be, "allreduce_sum", NULL);
#else
    return ctx->group->size < 2 ? WN_OK : host_allreduce(ctx, x, count);
#endif
}

/* Each begin waits (on the GPU) for the compute stream's work queued so far, which
 * includes the backward steps that wrote the bucket; one event serves every bucket,
 * since a stream waits for the record made before the wait was queued. */
extern "C" int wn_cuda_allreduce_begin(wn_backend *be, float *x, size_t count) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    if (!ctx->group) return WN_OK;
#ifdef WN_HAVE_NCCL
    if (!ctx->nccl || !ctx->comm_stream)
        return wn_fail("allreduce_begin: the backend has no NCCL communicator");
    CUDA_CHECK(cudaEventRecord(ctx->comm_ready, ctx->stream), "allreduce_begin");
    CUDA_CHECK(cudaStreamWaitEvent(ctx->comm_stream, ctx->comm_ready, 0), "allreduce_begin");
    NCCL_CHECK(ncclAllReduce(x, x, count, ncclFloat, ncclSum, (ncclComm_t)ctx->nccl,
                             ctx->comm_stream),
               "summing a gradient bucket over the ranks");
    ctx->comm_pending = 1;
    if (ctx->sync_each_op) CUDA_CHECK(cudaStreamSynchronize(ctx->comm_stream), "allreduce_begin");
    return WN_OK;
#else
    /* the host sum cannot overlap: at once, in compute order */
    return ctx->group->size < 2 ? WN_OK : host_allreduce(ctx, x, count);
#endif
}

extern "C" int wn_cuda_allreduce_end(wn_backend *be) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    if (!ctx->comm_pending) return WN_OK;
    ctx->comm_pending = 0;
    CUDA_CHECK(cudaEventRecord(ctx->comm_done, ctx->comm_stream), "allreduce_end");
    CUDA_CHECK(cudaStreamWaitEvent(ctx->stream, ctx->comm_done, 0), "allreduce_end");
    return wn_cuda_op_done(be, "allreduce_end", NULL);
}

extern "C" void wn_cuda_leave_group(wn_cuda_ctx *ctx) {
    if (ctx->comm_stream) {
        cudaStreamSynchronize(ctx->comm_stream);
        cudaStreamDestroy(ctx->comm_stream);
    }
    if (ctx->comm_ready) cudaEventDestroy(ctx->comm_ready);
    if (ctx->comm_done) cudaEventDestroy(ctx->comm_done);
    ctx->comm_stream = NULL, ctx->comm_ready = ctx->comm_done = NULL, ctx->comm_pending = 0;
#ifdef WN_HAVE_NCCL
    if (ctx->nccl) ncclCommDestroy((ncclComm_t)ctx->nccl);
    ctx->nccl = NULL;
#endif
    if (ctx->group_host) cudaFreeHost(ctx->group_host);
    ctx->group_host = NULL, ctx->group_host_bytes = 0;
    ctx->group = NULL;
}
