/* engine/runtime/op_cases.h — one list of op cases {op, shape, variant} for the whole
 * backend contract (kernels/common/backend_ops.h), in the style of ggml's
 * test-backend-ops, and the runner that sets a case up on any backend. Three modes
 * read the same list:
 *   - gradient check: finite differences in double against each op's backward, on
 *     any backend (tests/ops/test_op_grad.c);
 *   - parity: each backend against the CPU backend (tests/gpu/parity_cases.c);
 *   - perf: `wastenet bench-ops --cases` times the cases on a chosen backend.
 * It lives in engine/runtime, not tests/, because the command line (tools/cli) reads
 * it too and may include only folders below it; it calls ops only through the
 * checked dispatch layer (engine/runtime/backend.h).
 *
 * A case describes its tensors (wn_opc_tensor): inputs with a value range, outputs,
 * gradient outputs (with the input they differentiate), updated-in-place buffers,
 * host-only arrays. wn_opc_data holds one case's host values (seeded, so every
 * backend gets the same bytes); wn_opc_placed holds its buffers on one backend.
 * Before each run wn_opc_reset uploads the inputs, fills outputs with NaN (so an
 * unwritten element is caught) and fills accumulating outputs with their stored
 * starting values.
 */
#ifndef WN_OP_CASES_H
#define WN_OP_CASES_H

#include <stddef.h>
#include <stdint.h>

#include "engine/runtime/backend.h"
#include "kernels/common/bf16.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum wn_opc_op {
    WN_OPC_CONV2D = 0,
    WN_OPC_DENSE,
    WN_OPC_AFFINE_ACT,
    WN_OPC_BN_GAMMA,
    WN_OPC_POOL,
    WN_OPC_CONCAT,
    WN_OPC_SCALED_ADD,
    WN_OPC_MUL,
    WN_OPC_GAP,
    WN_OPC_DROPOUT,
    WN_OPC_SOFTMAX_XENT,
    WN_OPC_ADAM,
    WN_OPC_AUGMENT,
    WN_OPC_OP_COUNT
} wn_opc_op;

/* Modes a case takes part in. */
#define WN_OPC_GRAD 1u   /* small enough for finite differences */
#define WN_OPC_PARITY 2u /* compared between backends */
#define WN_OPC_QUICK 4u  /* in the small set (--quick: sanitizer runs, self-tests) */
#define WN_OPC_PERF 8u   /* timed by bench-ops --cases (model-sized shapes) */
/* Precision-dependent cases (matrix ops), rerun per GPU precision. */
#define WN_OPC_MATMUL 16u

/* Variant bits shared by every op (op-specific bits are in op_cases.c's list). */
#define WN_OPC_V_ACC (1 << 8)    /* gradient outputs accumulate (accumulate = 1) */
#define WN_OPC_V_NO_DX (1 << 9)  /* no data gradient (dx = NULL) */
#define WN_OPC_V_NO_DW (1 << 10) /* the op's second gradient absent (dshift/dr = NULL) */
#define WN_OPC_V_INPLACE (1 << 11) /* scaled_add: y aliases x, and dx aliases dy */

typedef struct wn_op_case {
    wn_opc_op op;
    int s[10];      /* the shape; what each number means depends on op (op_cases.c) */
    int variant;    /* op-specific low bits + WN_OPC_V_* */
    unsigned modes; /* WN_OPC_GRAD | ... */
} wn_op_case;

typedef enum { WN_OPC_IN = 0, WN_OPC_OUT, WN_OPC_GRADIENT, WN_OPC_INOUT, WN_OPC_SCRATCH } wn_opc_role;
typedef enum { WN_OPC_F32 = 0, WN_OPC_U8, WN_OPC_I32 } wn_opc_dtype;
/* How parity compares an output: the backend's matrix-op tolerance (precision-
 * dependent), float32 element-wise arithmetic, or bit for bit. */
typedef enum { WN_OPC_TOL_ELEMENTWISE = 0, WN_OPC_TOL_MATMUL, WN_OPC_TOL_EXACT } wn_opc_tol;

#define WN_OPC_MAX_TENSORS 16

typedef struct wn_opc_tensor {
    const char *name;
    size_t count;        /* elements; 0: not used by this variant (the op gets NULL) */
    wn_opc_role role;
    wn_opc_dtype dtype;
    int host_only;       /* a host array the op reads (augmentation's flips, angles) */
    float lo, hi;        /* IN/INOUT/accumulating outputs: uniform starting values */
    int accumulate;      /* OUT/GRADIENT: the op adds onto the starting values */
    int grad_of;         /* GRADIENT: the tensor it is the gradient of, or -1 */
    int weights_of;      /* IN: the loss weights (dy) of this output, or -1 */
    wn_opc_tol tol;
} wn_opc_tensor;

/* One case's host values. */
typedef struct wn_opc_data {
    wn_op_case c;
    int n;
    wn_opc_tensor t[WN_OPC_MAX_TENSORS];
    void *host[WN_OPC_MAX_TENSORS]; /* inputs and starting values */
    float fd_h;      /* gradient check: perturbation (a power of two) */
    double fd_rtol;  /* and relative tolerance, see tests/ops/test_op_grad.c */
} wn_opc_data;

/* One case's buffers on one backend. */
typedef struct wn_opc_placed {
    wn_backend *be;
    wn_dtype act;   /* storage of the activation tensors (x, y, dy, dx, and a
                       convolution's kernel): WN_DTYPE_BF16 runs the op's bf16 form
                       (kernels/common/backend_bf16_ops.h); host values stay float and
                       are rounded on upload, widened on download */
    void *dev[WN_OPC_MAX_TENSORS]; /* backend pointers (host ones for host_only), NULL if unused */
    void *base[WN_OPC_MAX_TENSORS]; /* what was allocated: dev minus the guard */
    size_t guard;                   /* floats of sentinel before and after each buffer */
} wn_opc_placed;

/* The list, in a fixed order; *count gets its length. */
const wn_op_case *wn_op_cases(int *count);
/* "conv2d", "dense", ... */
const char *wn_opc_op_name(wn_opc_op op);
/* A readable shape and variant, e.g. "n2 8x10x4 k6 3x3 s2 same g1 +b dx+=". */
void wn_opc_describe(const wn_op_case *c, char *buf, size_t size);
/* 1 when the op makes gradients the gradient check can check; 1 for has_backward when
 * they come from a separate backward call (softmax_xent makes dlogits in its forward). */
int wn_opc_has_gradient(wn_opc_op op);
int wn_opc_has_backward(wn_opc_op op);
/* 1 when the op has a bf16 form (convolution, affine_act, bn_gamma, pooling, concat,
 * scaled_add, GAP: the ops a bf16 plan runs in bf16). */
int wn_opc_has_bf16(wn_opc_op op);
/* 1 when tensor i of the case is stored as `act` in a placement of that type (else
 * float32: bias, BN terms, weight gradients, GAP's float side). */
int wn_opc_tensor_is_act(const wn_opc_data *d, int i);

/* Describes the case's tensors and draws its inputs from `seed`. */
int wn_opc_data_init(wn_opc_data *d, const wn_op_case *c, uint64_t seed);
void wn_opc_data_free(wn_opc_data *d);
/* Bytes of one tensor. */
size_t wn_opc_bytes(const wn_opc_tensor *t);

/* Allocates the case's buffers on be, each fenced by `guard` floats set to
 * `sentinel` (guard 0: none), and runs wn_opc_reset. */
int wn_opc_place(wn_opc_placed *p, wn_backend *be, const wn_opc_data *d, size_t guard,
                 float sentinel);
/* The same with the activation tensors stored as `act` (a bf16 tensor's guards sit
 * around its 2-byte elements, padded to a float boundary; wn_opc_download widens it). */
int wn_opc_place_as(wn_opc_placed *p, wn_backend *be, const wn_opc_data *d, size_t guard,
                    float sentinel, wn_dtype act);
void wn_opc_unplace(wn_opc_placed *p, const wn_opc_data *d);
/* Uploads inputs and starting values, fills the other outputs with NaN. */
int wn_opc_reset(wn_opc_placed *p, const wn_opc_data *d);
/* Uploads tensor i's host values again (after the caller changed them). */
int wn_opc_upload(wn_opc_placed *p, const wn_opc_data *d, int i);
/* Copies tensor i to host dst (wn_opc_bytes bytes; with the guards when
 * with_guard: 2*guard floats more, the data after the first guard). */
int wn_opc_download(wn_opc_placed *p, const wn_opc_data *d, int i, void *dst, int with_guard);

/* The forward part (everything that makes OUT/INOUT tensors) and the backward part
 * (GRADIENT tensors; WN_OK and nothing done for ops without one). */
int wn_opc_forward(wn_opc_placed *p, const wn_opc_data *d);
int wn_opc_backward(wn_opc_placed *p, const wn_opc_data *d);

#ifdef __cplusplus
}
#endif
#endif
