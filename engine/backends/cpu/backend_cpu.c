/* engine/backends/cpu/backend_cpu.c — the CPU backend: host memory, the op table, and the
 * context (oneDNN convolution cache, reusable scratch buffers).
 *
 * The ops live beside their CUDA twins in kernels/<family>/<family>_cpu.c (oneDNN
 * convolutions, BLAS for Dense, OpenMP loops over the shared element functions).
 * Everything is synchronous: results are in host memory on return, so the optional
 * entries of the contract (staging buffers, uploads) are plain copies here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/backends/cpu/backend_cpu.h"
#include "host/base/error.h"
#include "kernels/adam/adam.h"
#include "kernels/affine_act/affine_act.h"
#include "kernels/augment/augment.h"
#include "kernels/common/cpu_ctx.h"
#include "kernels/concat/concat.h"
#include "kernels/conv/conv.h"
#include "kernels/dense/dense.h"
#include "kernels/dropout/dropout.h"
#include "kernels/elementwise/elementwise.h"
#include "kernels/gap/gap.h"
#include "kernels/pool/pool.h"
#include "kernels/softmax_xent/softmax_xent.h"

static void *cpu_alloc(wn_backend *be, size_t bytes) {
    (void)be;
    size_t rounded = (bytes + 63) / 64 * 64;
    if (rounded == 0) rounded = 64;
    void *p = aligned_alloc(64, rounded);
    if (!p) wn_fail("out of host memory allocating %zu MiB; use a smaller --batch", rounded >> 20);
    return p;
}

static void cpu_free(wn_backend *be, void *p) {
    (void)be;
    free(p);
}

/* Large copies are split over the threads: memcpy of activations is bandwidth-bound
 * and one core cannot saturate memory. */
static void cpu_memcpy(void *dst, const void *src, size_t bytes) {
    const size_t chunk = (size_t)1 << 20;
    if (bytes < 4 * chunk) {
        memcpy(dst, src, bytes);
        return;
    }
    size_t n = (bytes + chunk - 1) / chunk;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        size_t off = i * chunk, len = bytes - off < chunk ? bytes - off : chunk;
        memcpy((char *)dst + off, (const char *)src + off, len);
    }
}

static int cpu_copy(wn_backend *be, void *dst, const void *src, size_t bytes) {
    (void)be;
    if (dst != src) cpu_memcpy(dst, src, bytes);
    return WN_OK;
}

static int cpu_fill(wn_backend *be, float *x, size_t count, float value) {
    (void)be;
#pragma omp parallel for schedule(static) if (count > 65536)
    for (size_t i = 0; i < count; i++) x[i] = value;
    return WN_OK;
}

static int cpu_synchronize(wn_backend *be) {
    (void)be;
    return WN_OK;
}

static void cpu_destroy(wn_backend *be) {
    if (!be) return;
    wn_cpu_ctx *ctx = be->ctx;
    if (ctx) {
        wn_cpu_conv_cache_destroy(ctx->conv);
        wn_cpu_buffer_release(&ctx->accum);
        wn_cpu_buffer_release(&ctx->partial);
        wn_cpu_buffer_release(&ctx->cols);
        for (int i = 0; i < 3; i++) wn_cpu_buffer_release(&ctx->stage[i]);
        free(ctx);
    }
    free(be);
}

/* ---------------------------------------------------------------- optional facts */

/* What a new plan may still take: the kernel's estimate of memory available without
 * swapping (MemAvailable), and the machine's RAM. */
static int cpu_memory(wn_backend *be, size_t *available, size_t *total) {
    (void)be;
    FILE *f = fopen("/proc/meminfo", "r");
    unsigned long long avail_kb = 0, total_kb = 0;
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f)) {
            sscanf(line, "MemTotal: %llu kB", &total_kb);
            sscanf(line, "MemAvailable: %llu kB", &avail_kb);
        }
        fclose(f);
    }
    if (!total_kb) {
        long pages = sysconf(_SC_PHYS_PAGES), avail = sysconf(_SC_AVPHYS_PAGES),
             page = sysconf(_SC_PAGESIZE);
        if (pages <= 0 || page <= 0) return wn_fail("CPU backend: cannot read the memory size");
        total_kb = (unsigned long long)pages * (unsigned long long)page / 1024;
        avail_kb = avail > 0 ? (unsigned long long)avail * (unsigned long long)page / 1024
                             : total_kb;
    }
    *available = (size_t)(avail_kb * 1024);
    *total = (size_t)(total_kb * 1024);
    return WN_OK;
}

/* Staging buffers: ordinary memory, aligned for SIMD loads (uploads are copies). */
static void *cpu_host_alloc(wn_backend *be, size_t bytes) { return cpu_alloc(be, bytes); }
static void cpu_host_free(wn_backend *be, void *p) { cpu_free(be, p); }

/* Uploads are synchronous copies: done when the call returns. */
static int cpu_upload_async(wn_backend *be, int slot, void *dst, const void *src, size_t bytes) {
    (void)slot;
    return cpu_copy(be, dst, src, bytes);
}
static int cpu_upload_done(wn_backend *be, int slot) {
    (void)be, (void)slot;
    return WN_OK;
}

/* The convolution's own buffers: backward data into an accumulating dx computes into a
 * scratch copy of dx first (kernels/conv/conv_cpu.c); oneDNN's scratchpad is its own. */
static size_t cpu_conv_scratch_bytes(wn_backend *be, wn_conv_call call, const wn_conv_desc *d,
                                     int accumulate) {
    (void)be;
    if (call != WN_CONV_CALL_BACKWARD_DATA || !accumulate) return 0;
    return (size_t)d->win.n * d->win.h * d->win.w * d->win.c * sizeof(float);
}

static int cpu_set_deterministic(wn_backend *be, int on) {
    (void)be, (void)on; /* always deterministic */
    return WN_OK;
}

/* Data parallel: backend memory is host memory, so the group's host sum is the
 * all-reduce. */
static int cpu_join_group(wn_backend *be, const wn_rank_group *group) {
    ((wn_cpu_ctx *)be->ctx)->group = group;
    return WN_OK;
}

static int cpu_allreduce_sum(wn_backend *be, float *x, size_t count) {
    const wn_rank_group *g = ((wn_cpu_ctx *)be->ctx)->group;
    if (!g || g->size < 2) return WN_OK;
    return g->sum_floats(g->user, x, count);
}

static const wn_backend_ops cpu_ops = {
    .alloc = cpu_alloc,
    .free = cpu_free,
    .copy_to_backend = cpu_copy,
    .copy_to_host = cpu_copy,
    .copy = cpu_copy,
    .fill = cpu_fill,
    .synchronize = cpu_synchronize,
    .memory = cpu_memory,
    .host_alloc = cpu_host_alloc,
    .host_free = cpu_host_free,
    .upload_async = cpu_upload_async,
    .upload_release = cpu_upload_done,
    .upload_wait = cpu_upload_done,
    .conv_scratch_bytes = cpu_conv_scratch_bytes,
    .set_deterministic = cpu_set_deterministic,
    .conv2d_forward = wn_cpu_conv2d_forward,
    .conv2d_forward_epilogue = wn_cpu_conv2d_forward_epilogue,
    .conv2d_backward_data = wn_cpu_conv2d_backward_data,
    .conv2d_backward_filter = wn_cpu_conv2d_backward_filter,
    .affine_act_forward = wn_cpu_affine_act_forward,
    .affine_act_backward = wn_cpu_affine_act_backward,
    .bn_gamma_backward = wn_cpu_bn_gamma_backward,
    .pool_forward = wn_cpu_pool_forward,
    .pool_backward = wn_cpu_pool_backward,
    .concat_forward = wn_cpu_concat_forward,
    .concat_backward = wn_cpu_concat_backward,
    .scaled_add = wn_cpu_scaled_add,
    .scaled_add_backward = wn_cpu_scaled_add_backward,
    .mul = wn_cpu_mul,
    .gap_forward = wn_cpu_gap_forward,
    .gap_backward = wn_cpu_gap_backward,
    .dropout_forward = wn_cpu_dropout_forward,
    .dropout_backward = wn_cpu_dropout_backward,
    .dense_forward = wn_cpu_dense_forward,
    .dense_backward = wn_cpu_dense_backward,
    .softmax_xent = wn_cpu_softmax_xent,
    .adam_update = wn_cpu_adam_update,
    .augment_preprocess = wn_cpu_augment_preprocess,
    .join_group = cpu_join_group,
    .allreduce_sum = cpu_allreduce_sum,
    .destroy = cpu_destroy,
};

wn_backend *wn_backend_cpu(void) {
    wn_backend *be = calloc(1, sizeof *be);
    wn_cpu_ctx *ctx = calloc(1, sizeof *ctx);
    if (!be || !ctx) {
        free(be), free(ctx);
        wn_fail("CPU backend: out of memory");
        return NULL;
    }
    be->ops = &cpu_ops;
    be->ctx = ctx;
    be->name = "cpu";
    be->kind = WN_BACKEND_CPU;
    be->upload_slots = 1;
    be->alloc_align = 64;
    be->reserve_bytes = 0;
    be->bf16 = wn_backend_cpu_bf16_ops();
    if (wn_cpu_conv_cache_create(&ctx->conv) != WN_OK) {
        cpu_destroy(be);
        return NULL;
    }
    return be;
}
