/* engine/backends/cpu/backend_cpu.h — the CPU backend's constructor. */
#ifndef WN_BACKEND_CPU_H
#define WN_BACKEND_CPU_H

#include "kernels/common/backend_ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The CPU backend (oneDNN convolutions, BLAS matrix products, OpenMP loops), or NULL
 * with a reason. */
wn_backend *wn_backend_cpu(void);

/* Its bf16 ops (backend_cpu_bf16.c), which every CPU backend carries in be->bf16. */
struct wn_backend_bf16_ops;
const struct wn_backend_bf16_ops *wn_backend_cpu_bf16_ops(void);

#ifdef __cplusplus
}
#endif
#endif
