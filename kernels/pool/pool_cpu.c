/* kernels/pool/pool_cpu.c — the CPU backend's float32 max/average pooling (TensorFlow
 * windows; average excludes padding): wn_cpu_pool_forward / wn_cpu_pool_backward are
 * the loops of kernels/pool/pool_cpu_impl.h on float elements, equal bit for bit to
 * kernels/pool/pool.h's element functions (the formulas the CUDA kernel runs). */
#include "kernels/pool/pool.h"

#define WN_POOL_T float
#define WN_POOL_LOAD(v) (v)
#define WN_POOL_STORE(p, i, v) ((p)[i] = (v))
#define WN_POOL_STORE_GRAD(p, i, g, acc) ((p)[i] = (acc) ? (p)[i] + (g) : (g))
#define WN_POOL_DIRECT 1 /* without accumulation dx is its own float32 scratch */
#define WN_POOL_NAME(name) name
#include "kernels/pool/pool_cpu_impl.h"
