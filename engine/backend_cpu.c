/* engine/backend_cpu.c — the CPU backend: host memory, the op table, and the
 * context (oneDNN convolution cache, reusable scratch buffers).
 *
 * The ops live in cpu_conv.c (oneDNN), cpu_ops.c (OpenMP loops over the element
 * functions of kernels/) and cpu_head.c (Dense through BLAS, loss, Adam,
 * augmentation). Everything is synchronous: results are in host memory on return.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/cpu_internal.h"
#include "engine/error.h"

int wn_cpu_buffer_reserve(wn_cpu_buffer *buf, size_t bytes, const char *what) {
    if (buf->bytes >= bytes) return WN_OK;
    size_t rounded = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, rounded);
    if (!p)
        return wn_fail("out of memory allocating %zu MiB for the %s buffer; use a smaller "
                       "--batch", rounded >> 20, what);
    free(buf->p);
    buf->p = p, buf->bytes = rounded;
    return WN_OK;
}

void wn_cpu_buffer_release(wn_cpu_buffer *buf) {
    free(buf->p);
    buf->p = NULL, buf->bytes = 0;
}

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
        free(ctx);
    }
    free(be);
}

wn_backend *wn_backend_cpu(void) {
    wn_backend *be = calloc(1, sizeof *be);
    wn_cpu_ctx *ctx = calloc(1, sizeof *ctx);
    if (!be || !ctx) {
        free(be), free(ctx);
        wn_fail("CPU backend: out of memory");
        return NULL;
    }
    be->ctx = ctx;
    be->destroy = cpu_destroy;
    if (wn_cpu_conv_cache_create(&ctx->conv) != WN_OK) {
        cpu_destroy(be);
        return NULL;
    }
    be->name = "cpu";
    be->alloc = cpu_alloc;
    be->free = cpu_free;
    be->copy_to_backend = cpu_copy;
    be->copy_to_host = cpu_copy;
    be->copy = cpu_copy;
    be->fill = cpu_fill;
    be->synchronize = cpu_synchronize;
    be->conv2d_forward = wn_cpu_conv2d_forward;
    be->conv2d_backward_data = wn_cpu_conv2d_backward_data;
    be->conv2d_backward_filter = wn_cpu_conv2d_backward_filter;
    be->affine_act_forward = wn_cpu_affine_act_forward;
    be->affine_act_backward = wn_cpu_affine_act_backward;
    be->bn_gamma_backward = wn_cpu_bn_gamma_backward;
    be->pool_forward = wn_cpu_pool_forward;
    be->pool_backward = wn_cpu_pool_backward;
    be->concat_forward = wn_cpu_concat_forward;
    be->concat_backward = wn_cpu_concat_backward;
    be->residual_forward = wn_cpu_residual_forward;
    be->residual_backward = wn_cpu_residual_backward;
    be->gap_forward = wn_cpu_gap_forward;
    be->gap_backward = wn_cpu_gap_backward;
    be->dropout_forward = wn_cpu_dropout_forward;
    be->dropout_backward = wn_cpu_dropout_backward;
    be->dense_forward = wn_cpu_dense_forward;
    be->dense_backward = wn_cpu_dense_backward;
    be->softmax_xent = wn_cpu_softmax_xent;
    be->adam_update = wn_cpu_adam_update;
    be->augment_preprocess = wn_cpu_augment_preprocess;
    return be;
}

#ifndef WN_HAVE_CUDA
/* CPU-only build: no CUDA backend exists. CUDA builds define these in the CUDA
 * backend's files. */
int wn_cuda_available(void) { return 0; }

wn_backend *wn_backend_cuda(int device, wn_precision precision) {
    (void)device, (void)precision;
    wn_fail("this wastenet was built without CUDA (no CUDA toolkit with cuDNN and cuBLAS "
            "was found at build time); use --backend cpu or rebuild with CUDA");
    return NULL;
}
#endif
