/* engine/runtime/parity.h — the harness of the GPU parity suite (the parity mode of the op
 * cases, engine/runtime/op_cases.h, in the style of ggml's test-backend-ops): a pair
 * of backends (CPU = answer key, CUDA = under test), paired
 * buffers that live on both, NaN poisoning of outputs, sentinel guards around every
 * GPU buffer, and a normwise relative-error comparison with a per-precision
 * tolerance. NaN or Inf in a GPU output never passes.
 *
 * A case runs one backend op on both sides with identical inputs:
 *
 *   ON_BOTH(s, wn_op_scaled_add(be, count, F(x), F(r), 0.17f, F(y), "res"));
 *
 * where inside ON_BOTH `be` is the side's backend and F(b)/P(b) the side's pointer.
 */
#ifndef WN_TESTS_GPU_PARITY_H
#define WN_TESTS_GPU_PARITY_H

#include <stddef.h>
#include <stdint.h>

#include "engine/runtime/backend.h"

#define PARITY_GUARD 64          /* floats of sentinel before and after GPU buffers */
#define PARITY_SENTINEL 1234.5f  /* a value no op writes by accident */

typedef struct parity_suite {
    wn_backend *cpu, *gpu;
    const char *precision;  /* "tf32" or "fp32": the GPU backend's precision */
    double tol_matmul;      /* convolution / Dense tolerance at this precision */
    double tol_elementwise; /* our kernels: float32 arithmetic everywhere */
    double tol_bf16;        /* bf16 ops against the CPU's bf16 ops (parity_run_bf16_cases) */
    int quick;              /* small shapes only (compute-sanitizer runs) */
    int silent;             /* 1: print failures only; 2: print nothing */
    const char *filter;     /* run only ops whose name contains this, or NULL */
    int quiet;              /* print failures only (wastenet selftest's table) */
    int cases, fails;
    double worst_ratio;     /* largest error / tolerance seen */
    char worst_case[200];
} parity_suite;

/* A buffer on both backends. host: a host copy of the inputs (the same bytes are
 * uploaded to both sides). gpu points PARITY_GUARD floats into gpu_base. */
typedef struct pbuf {
    size_t bytes;
    void *host;
    void *cpu;
    void *gpu;
    void *gpu_base;
} pbuf;

uint64_t parity_rand_u64(void);
void parity_seed(uint64_t seed);
float parity_uniform(float lo, float hi);

int pbuf_new(parity_suite *s, pbuf *b, size_t bytes);
void pbuf_free(parity_suite *s, pbuf *b);
/* Fills host with U[lo, hi) floats and uploads it to both sides. */
int pbuf_random(parity_suite *s, pbuf *b, float lo, float hi);
/* Uploads the current host bytes to both sides. */
int pbuf_upload(parity_suite *s, pbuf *b);
/* Fills both sides with NaN (outputs that must be fully written). */
int pbuf_poison(parity_suite *s, pbuf *b);

/* Compares the float outputs of both sides: error = ||gpu - cpu|| / ||cpu|| (max |gpu|
 * when ||cpu|| is 0); fails on NaN/Inf in the GPU output, on error > tol, and on a
 * changed guard. tol 0 demands bit-identical results. Prints one line. */
void parity_compare(parity_suite *s, const char *op, const char *shape, pbuf *b, double tol);

/* The same on host copies: ref[n] from the CPU, got[n + 2*PARITY_GUARD] from the
 * GPU with its guards (the data after the first guard). */
void parity_compare_host(parity_suite *s, const char *op, const char *shape, const float *ref,
                         const float *got, size_t n, double tol);

/* Records a failure that is not a comparison (an op returned an error). */
void parity_fail(parity_suite *s, const char *op, const char *shape, const char *why);

/* 1 when the suite's filter selects `op`. */
int parity_selected(const parity_suite *s, const char *op);

#define F(b) ((float *)(side_ ? (b).gpu : (b).cpu))
#define P(b) ((void *)(side_ ? (b).gpu : (b).cpu))

/* Runs `stmt` with `be` set to the CPU backend, then to the GPU backend; an op error
 * is a failure of the case named by op/shape. Evaluates to 1 when both succeeded. */
#define ON_BOTH(s, op, shape, stmt)                                                          \
    ({                                                                                       \
        int ok_ = 1;                                                                         \
        for (int side_ = 0; side_ < 2 && ok_; side_++) {                                     \
            wn_backend *be = side_ ? (s)->gpu : (s)->cpu;                                    \
            if ((stmt) != WN_OK) {                                                           \
                parity_fail((s), (op), (shape), wn_last_error());                           \
                ok_ = 0;                                                                     \
            }                                                                                \
        }                                                                                    \
        ok_;                                                                                 \
    })

/* The op cases of engine/runtime/op_cases.h marked WN_OPC_PARITY (with --quick only
 * the WN_OPC_QUICK ones), each run on both backends and every output compared
 * (engine/runtime/parity_cases.c). matmul_only: only the precision-dependent cases
 * (convolution, Dense), for a second GPU precision. Called by tests/gpu/test_gpu_ops
 * and `wastenet selftest`. */
void parity_run_cases(parity_suite *s, int matmul_only);

/* The same cases with a bf16 form, run as bf16 placements on both sides: the tested
 * backend's bf16 ops against the CPU's, every output at tol_bf16 (the same file). A
 * side without bf16 ops is a failure. */
void parity_run_bf16_cases(parity_suite *s);

#endif
