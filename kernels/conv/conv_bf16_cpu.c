/* kernels/conv/conv_bf16_cpu.c — the CPU backend's bf16 convolutions (the contract is
 * kernels/common/backend_bf16_ops.h): bf16 activations and weights, float32
 * accumulation, float32 weight gradients.
 *
 * Two ways, chosen once per backend:
 *  - native: oneDNN's bf16 primitives (kernels/conv/conv_cpu.c with the data type as
 *    a parameter), where oneDNN has them: AVX-512 (BF16/AMX) CPUs;
 *  - staged: elsewhere (AVX2 CPUs, where oneDNN 2.6 has no bf16 convolution at all),
 *    the bf16 operands are widened to float32 (exact), oneDNN's float32 convolution
 *    runs, and the result is rounded to bf16 once. The numbers are those of a bf16
 *    convolution with float32 accumulation; only the speed differs, and the
 *    activations between layers stay bf16 all the same.
 * WN_CPU_BF16=staged forces the staged way (to compare the two on one machine).
 */
#include <stdlib.h>
#include <string.h>

#include "host/base/error.h"
#include "kernels/common/cpu_ctx.h"
#include "kernels/conv/conv.h"
#include "kernels/conv/conv_bf16.h"
#include "kernels/conv/conv_gemm_cpu.h"
#include "kernels/common/cpu_simd.h"

int wn_cpu_conv_bf16_is_native(wn_backend *be) {
    const char *force = getenv("WN_CPU_BF16");
    if (force && !strcmp(force, "staged")) return 0;
    return wn_cpu_conv_bf16_native(be);
}

/* Native, except two weight gradients, which widen and run float32 (exact inputs,
 * float32 accumulation either way): a grouped (depthwise) convolution's, whose oneDNN
 * 3.2 bf16 kernel (jit_bf16 with groups) took 3.6x the time of its float32 one on Zen 4
 * (docs/PERF.md), and the strided 1x1 ones oneDNN gets wrong (conv_gemm_cpu.h). */
static int native_for(wn_backend *be, wn_conv_call call, const wn_conv_desc *d) {
    if (!wn_cpu_conv_bf16_is_native(be)) return 0;
    return !(call == WN_CONV_CALL_BACKWARD_FILTER &&
             (d->groups > 1 || wn_cpu_conv_onednn_filter_broken(d)));
}

static size_t x_count(const wn_conv_desc *d) {
    return (size_t)d->win.n * d->win.h * d->win.w * d->win.c;
}
static size_t y_count(const wn_conv_desc *d) {
    return (size_t)d->win.n * d->win.oh * d->win.ow * d->k;
}
static size_t w_count(const wn_conv_desc *d) {
    int g = d->groups < 1 ? 1 : d->groups;
    return (size_t)d->win.kh * d->win.kw * (d->win.c / g) * d->k;
}

size_t wn_cpu_conv_bf16_scratch_bytes(wn_backend *be, wn_conv_call call,
                                      const wn_conv_desc *d, int accumulate) {
    size_t nx = x_count(d), ny = y_count(d), nw = w_count(d);
    if (native_for(be, call, d))
        return call == WN_CONV_CALL_BACKWARD_DATA && accumulate ? nx * sizeof(wn_bf16) : 0;
    switch (call) {
    case WN_CONV_CALL_FORWARD: return (nx + nw + ny) * sizeof(float);
    case WN_CONV_CALL_BACKWARD_DATA: return (ny + nw + nx) * sizeof(float);
    case WN_CONV_CALL_BACKWARD_FILTER: return (nx + ny) * sizeof(float);
    }
    return 0;
}

/* y = bf16(x) (or bf16(y + x)); one family may not call another's entry points, so the
 * staged results are rounded here, with kernels/common/bf16.h's rule. */
WN_CPU_CLONES
static int narrow(size_t count, const float *x, wn_bf16 *y, int accumulate) {
#pragma omp parallel for schedule(static) if (count > 65536)
    for (size_t i = 0; i < count; i++) wn_bf16_store(y, i, x[i], accumulate);
    return WN_OK;
}

/* A float32 copy of a bf16 operand in staging buffer `slot`. */
WN_CPU_CLONES
static float *widen(wn_backend *be, int slot, const wn_bf16 *src, size_t count,
                    const char *who) {
    wn_cpu_ctx *ctx = be->ctx;
    if (wn_cpu_buffer_reserve(&ctx->stage[slot], count * sizeof(float), "bf16 staging") !=
        WN_OK) {
        wn_fail_context("%s: ", who);
        return NULL;
    }
    float *dst = ctx->stage[slot].p;
#pragma omp parallel for schedule(static) if (count > 65536)
    for (size_t i = 0; i < count; i++) dst[i] = wn_bf16_to_f32(src[i]);
    return dst;
}

static float *staging(wn_backend *be, int slot, size_t count, const char *who) {
    wn_cpu_ctx *ctx = be->ctx;
    if (wn_cpu_buffer_reserve(&ctx->stage[slot], count * sizeof(float), "bf16 staging") !=
        WN_OK) {
        wn_fail_context("%s: ", who);
        return NULL;
    }
    return ctx->stage[slot].p;
}

/* Forward, with or without an epilogue: native, oneDNN applies it to the float32
 * accumulator before the bf16 store; staged, the float32 convolution does, and the
 * result is rounded once all the same. */
int wn_cpu_conv2d_forward_epilogue_bf16(wn_backend *be, const wn_conv_desc *d,
                                        const wn_bf16 *x, const wn_bf16 *w, const float *bias,
                                        const wn_conv_epilogue *e, wn_bf16 *y,
                                        const char *layer) {
    const char *who = layer ? layer : "conv2d_forward";
    if (wn_cpu_conv_bf16_is_native(be))
        return wn_cpu_conv2d_forward_dt(be, d, WN_DTYPE_BF16, x, w, bias, e, y, layer);
    float *xf = widen(be, 0, x, x_count(d), who), *wf = xf ? widen(be, 1, w, w_count(d), who) : NULL;
    float *yf = wf ? staging(be, 2, y_count(d), who) : NULL;
    if (!yf || wn_cpu_conv2d_forward_dt(be, d, WN_DTYPE_F32, xf, wf, bias, e, yf, layer) != WN_OK)
        return WN_ERR;
    return narrow(y_count(d), yf, y, 0);
}

int wn_cpu_conv2d_forward_bf16(wn_backend *be, const wn_conv_desc *d, const wn_bf16 *x,
                               const wn_bf16 *w, const float *bias, wn_bf16 *y,
                               const char *layer) {
    return wn_cpu_conv2d_forward_epilogue_bf16(be, d, x, w, bias, NULL, y, layer);
}

WN_CPU_CLONES
int wn_cpu_conv2d_backward_data_bf16(wn_backend *be, const wn_conv_desc *d,
                                     const wn_bf16 *dy, const wn_bf16 *w, wn_bf16 *dx,
                                     int accumulate, const char *layer) {
    const char *who = layer ? layer : "conv2d_backward_data";
    size_t nx = x_count(d);
    if (wn_cpu_conv_bf16_is_native(be)) {
        if (!accumulate)
            return wn_cpu_conv2d_backward_data_dt(be, d, WN_DTYPE_BF16, dy, w, dx, 0, layer);
        wn_cpu_ctx *ctx = be->ctx;
        if (wn_cpu_buffer_reserve(&ctx->accum, nx * sizeof(wn_bf16), "gradient accumulation") !=
            WN_OK)
            return wn_fail_context("%s: ", who);
        wn_bf16 *part = ctx->accum.p;
        if (wn_cpu_conv2d_backward_data_dt(be, d, WN_DTYPE_BF16, dy, w, part, 0, layer) != WN_OK)
            return WN_ERR;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < nx; i++) wn_bf16_store(dx, i, wn_bf16_to_f32(part[i]), 1);
        return WN_OK;
    }
    float *dyf = widen(be, 0, dy, y_count(d), who), *wf = dyf ? widen(be, 1, w, w_count(d), who) : NULL;
    float *dxf = wf ? staging(be, 2, nx, who) : NULL;
    if (!dxf || wn_cpu_conv2d_backward_data(be, d, dyf, wf, dxf, 0, layer) != WN_OK)
        return WN_ERR;
    return narrow(nx, dxf, dx, accumulate);
}

int wn_cpu_conv2d_backward_filter_bf16(wn_backend *be, const wn_conv_desc *d,
                                       const wn_bf16 *x, const wn_bf16 *dy, float *dw,
                                       float *db, const char *layer) {
    const char *who = layer ? layer : "conv2d_backward_filter";
    if (native_for(be, WN_CONV_CALL_BACKWARD_FILTER, d))
        return wn_cpu_conv2d_backward_filter_dt(be, d, WN_DTYPE_BF16, x, dy, dw, db, layer);
    float *xf = widen(be, 0, x, x_count(d), who), *dyf = xf ? widen(be, 1, dy, y_count(d), who) : NULL;
    if (!dyf) return WN_ERR;
    return wn_cpu_conv2d_backward_filter(be, d, xf, dyf, dw, db, layer);
}
