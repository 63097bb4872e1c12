/* kernels/pool/pool_cpu.c — the CPU backend's float32 max/average pooling (TensorFlow
 * windows; average excludes padding): the loops of kernels/pool/pool_cpu_impl.h on
 * float elements, equal bit for bit to kernels/pool/pool.h's element functions (the
 * formulas the CUDA kernel runs). */
#include "kernels/pool/pool.h"

#define WN_POOL_T float
#define WN_POOL_LOAD(v) (v)
#define WN_POOL_STORE(p, i, v) ((p)[i] = (v))
#define WN_POOL_STORE_GRAD(p, i, g, acc) ((p)[i] = (acc) ? (p)[i] + (g) : (g))
/* without accumulation dx is its own float32 scratch */
#define WN_POOL_DIRECT 1
#define WN_POOL_NAME(name) name##_f32
#include "kernels/pool/pool_cpu_impl.h"

int wn_cpu_pool_forward(wn_backend *be, const wn_window *win, wn_pool_kind kind,
                        const float *x, float *y, const char *layer) {
    (void)be, (void)layer;
    return pool_forward_f32(win, kind, x, y);
}

int wn_cpu_pool_backward(wn_backend *be, const wn_window *win, wn_pool_kind kind,
                         const float *x, const float *y, const float *dy, float *dx,
                         int accumulate, const char *layer) {
    (void)y;
    return pool_backward_f32(be, win, kind, x, dy, dx, accumulate,
                             layer ? layer : "pool_backward");
}
