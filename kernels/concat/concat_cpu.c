/* kernels/concat/concat_cpu.c — the CPU backend's channel concatenation, float32 and bf16
 * storage (one loop body, kernels/common/cpu_dtype.h): forward copies each input's
 * channels of a pixel in turn (no rounding); backward copies the slices back, or adds
 * them in float and rounds once when accumulating, as the CUDA kernel of
 * kernels/concat/concat.h does. */
#include <string.h>

#include "host/base/error.h"
#include "kernels/common/cpu_ctx.h"
#include "kernels/common/cpu_dtype.h"
#include "kernels/common/cpu_simd.h"
#include "kernels/concat/concat.h"

/* One pixel's slices. The OpenMP loops sit in the entry points (not in an inlined
 * helper) so that each is compiled for its constant type and cloned per instruction
 * set. */
WN_INLINE void concat_forward_pixel(size_t p, int n_in, const void *const *x,
                                    const int *channels, int total, void *y, wn_dtype t) {
    size_t es = wn_dtype_size(t);
    char *out = (char *)y + p * total * es;
    for (int i = 0; i < n_in; i++) {
        memcpy(out, (const char *)x[i] + p * channels[i] * es, (size_t)channels[i] * es);
        out += (size_t)channels[i] * es;
    }
}

WN_INLINE void concat_backward_pixel(size_t p, int n_in, const void *dy, const int *channels,
                                     int total, void *const *dx, int accumulate, wn_dtype t) {
    size_t es = wn_dtype_size(t);
    size_t g = p * total; /* element index of this pixel's first slice in dy */
    for (int i = 0; i < n_in; i++) {
        int ci = channels[i];
        if (dx[i]) {
            size_t o = p * ci;
            if (accumulate)
                for (int ch = 0; ch < ci; ch++)
                    wn_cpu_store(dx[i], o + ch, wn_cpu_load(dy, g + ch, t), t, 1);
            else
                memcpy((char *)dx[i] + o * es, (const char *)dy + g * es, (size_t)ci * es);
        }
        g += ci;
    }
}

static int channel_total(int n_in, const int *channels) {
    int total = 0;
    for (int i = 0; i < n_in; i++) total += channels[i];
    return total;
}

WN_CPU_CLONES
int wn_cpu_concat_forward(wn_backend *be, size_t pixels, int n_in, const float *const *x,
                          const int *channels, float *y, const char *layer) {
    (void)be, (void)layer;
    int total = channel_total(n_in, channels);
#pragma omp parallel for schedule(static)
    for (size_t p = 0; p < pixels; p++)
        concat_forward_pixel(p, n_in, (const void *const *)x, channels, total, y, WN_DTYPE_F32);
    return WN_OK;
}

WN_CPU_CLONES
int wn_cpu_concat_forward_bf16(wn_backend *be, size_t pixels, int n_in,
                               const wn_bf16 *const *x, const int *channels, wn_bf16 *y,
                               const char *layer) {
    (void)be, (void)layer;
    int total = channel_total(n_in, channels);
#pragma omp parallel for schedule(static)
    for (size_t p = 0; p < pixels; p++)
        concat_forward_pixel(p, n_in, (const void *const *)x, channels, total, y, WN_DTYPE_BF16);
    return WN_OK;
}

WN_CPU_CLONES
int wn_cpu_concat_backward(wn_backend *be, size_t pixels, int n_in, const float *dy,
                           const int *channels, float *const *dx, int accumulate,
                           const char *layer) {
    (void)be, (void)layer;
    int total = channel_total(n_in, channels);
#pragma omp parallel for schedule(static)
    for (size_t p = 0; p < pixels; p++)
        concat_backward_pixel(p, n_in, dy, channels, total, (void *const *)dx, accumulate,
                              WN_DTYPE_F32);
    return WN_OK;
}

WN_CPU_CLONES
int wn_cpu_concat_backward_bf16(wn_backend *be, size_t pixels, int n_in, const wn_bf16 *dy,
                                const int *channels, wn_bf16 *const *dx, int accumulate,
                                const char *layer) {
    (void)be, (void)layer;
    int total = channel_total(n_in, channels);
#pragma omp parallel for schedule(static)
    for (size_t p = 0; p < pixels; p++)
        concat_backward_pixel(p, n_in, dy, channels, total, (void *const *)dx, accumulate,
                              WN_DTYPE_BF16);
    return WN_OK;
}
