/* tests/gpu/test_gpu_ops.c — the GPU parity suite over every backend op: the CPU
 * backend is the answer key, the CUDA backend is under test, through the same
 * wn_backend table (see parity.h for the harness, parity_cases.c for the parity mode
 * of the shared op cases, engine/runtime/op_cases.h).
 *
 * Precisions and tolerances (normwise relative error ||gpu - cpu|| / ||cpu||):
 *   - TF32 backend (the default): convolutions and Dense <= 1e-3 (TF32 keeps 10
 *     mantissa bits, unit roundoff 2^-11 ~ 4.9e-4); our kernels <= 1e-5 (they are
 *     float32 in every precision);
 *   - FP32 backend: convolutions and Dense <= 1e-5;
 *   - augmentation, concatenation and pass-through gradients: bit-identical (tol 0);
 *   - bf16: every case with a bf16 form, on the TF32 backend's bf16 ops against the CPU
 *     backend's bf16 ops (engine/runtime/parity_cases.c) <= TOL_BF16_OP (1e-2, the bf16
 *     op test's tolerance, tests/common/tolerance.h).
 * The CUDA backend runs deterministic (only cuDNN algorithms reported deterministic),
 * so a failure replays with its seed. WN_CUDA_DEPTHWISE=own sends the depthwise
 * cases to our own kernels (kernels/depthwise.cu) instead of cuDNN.
 * NaN or Inf in a GPU output never passes; outputs are poisoned with NaN first and
 * fenced by sentinel guards.
 *
 * Usage: test_gpu_ops [--quick] [--self-test] [--seed N] [op-name-substring]
 *   --quick: small shapes only (for compute-sanitizer); the seed is random per run
 *   and printed, so a failure can be replayed.
 *   --self-test: a second CPU backend stands in for the GPU, so the harness itself
 *   (cases, poisoning, guards, comparisons) runs on machines without one; every
 *   comparison must then be exact.
 * Exit: 0 all passed, 1 a failure, 77 skipped (no CUDA build or no usable GPU).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/runtime/backend.h"
#include "engine/backends/cpu/backend_cpu.h"
#include "host/base/error.h"
#include "engine/backends/cuda/backend_cuda.h"
#include "tests/common/backend_table.h"
#include "tests/common/check.h"
#include "tests/common/tolerance.h"
#include "engine/runtime/parity.h"

/* The comparison must be able to fail: a value off by 1%, a NaN, and an overwritten
 * guard are each caught (checked on every run, GPU or not). */
static int harness_can_fail(parity_suite *s) {
    float ref[4] = {1, 2, 3, 4}, got[4 + 2 * PARITY_GUARD];
    int caught = 0, silent = s->silent;
    s->silent = 2;
    for (int t = 0; t < 3; t++) {
        for (int i = 0; i < 4 + 2 * PARITY_GUARD; i++) got[i] = PARITY_SENTINEL;
        memcpy(got + PARITY_GUARD, ref, sizeof ref);
        if (t == 0) got[PARITY_GUARD + 2] *= 1.01f;
        if (t == 1) got[PARITY_GUARD + 1] = NAN;
        if (t == 2) got[PARITY_GUARD + 4] = 0.0f; /* the first float after the data */
        int before = s->fails;
        parity_compare_host(s, "harness self-check", "deliberately wrong", ref, got, 4, 1e-3);
        caught += s->fails == before + 1;
        s->fails = before, s->cases--; /* expected failures, not the suite's */
    }
    s->silent = silent;
    if (caught != 3) printf("FAIL the harness let %d deliberately wrong outputs pass\n", 3 - caught);
    else printf("ok   the harness catches a 1%% error, a NaN and an overwritten guard\n");
    return caught == 3;
}

int main(int argc, char **argv) {
    int quick = 0, self_test = 0;
    const char *filter = NULL;
    uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)clock() << 32);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--self-test")) self_test = 1;
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
        else filter = argv[i];
    }
    if (!self_test && !wn_cuda_available()) {
        wn_backend *probe = wn_backend_cuda(0, WN_PRECISION_TF32);
        printf("skipped: no usable CUDA GPU (%s)\n", probe ? "?" : wn_last_error());
        if (probe) wn_backend_destroy(probe);
        return 77;
    }
    printf("GPU parity suite, seed %llu%s%s\n", (unsigned long long)seed, quick ? " (quick)" : "",
           self_test ? " (self-test: CPU against CPU)" : "");
    wn_backend *cpu = wn_backend_cpu();
    if (!cpu) {
        fprintf(stderr, "CPU backend: %s\n", wn_last_error());
        return 1;
    }
    int cases = 0, fails = 0;
    struct { wn_precision p; const char *name; double tol_mm, tol_ew; int kernels; } runs[] = {
        {WN_PRECISION_TF32, "tf32", 1e-3, 1e-5, 1},
        {WN_PRECISION_FP32, "fp32", 1e-5, 1e-5, 0}, /* matrix ops only */
    };
    double worst = 0.0;
    char worst_case[200] = "";
    for (int r = 0; r < 2; r++) {
        wn_backend *gpu = self_test ? wn_backend_cpu() : wn_backend_cuda(0, runs[r].p);
        /* parity runs are deterministic: a failure must replay with its seed */
        if (gpu && !self_test && wn_backend_set_deterministic(gpu, 1) != WN_OK) {
            wn_backend_destroy(gpu);
            gpu = NULL;
        }
        if (!gpu) {
            printf("FAIL creating the CUDA backend (%s): %s\n", runs[r].name, wn_last_error());
            fails++;
            continue;
        }
        parity_seed(seed + (uint64_t)r);
        parity_suite s = {.cpu = cpu, .gpu = gpu, .precision = runs[r].name,
                          .tol_matmul = self_test ? 0.0 : runs[r].tol_mm,
                          .tol_elementwise = self_test ? 0.0 : runs[r].tol_ew,
                          .tol_bf16 = self_test ? 0.0 : TOL_BF16_OP,
                          .quick = quick, .filter = filter};
        if (r == 0) {
            if (!harness_can_fail(&s)) s.fails++;
            /* every entry of the tested backend's ops table is filled */
            if (check_backend_table(gpu) != 0) s.fails++;
        }
        parity_run_cases(&s, !runs[r].kernels);
        /* bf16 activations ride on the default (TF32) backend, as --precision bf16 does */
        if (r == 0) {
            s.precision = "bf16";
            parity_run_bf16_cases(&s);
        }
        cases += s.cases, fails += s.fails;
        if (s.worst_ratio > worst) {
            worst = s.worst_ratio;
            memcpy(worst_case, s.worst_case, sizeof worst_case);
        }
        wn_backend_destroy(gpu);
    }
    wn_backend_destroy(cpu);
    printf("\n%d comparisons, %d failed; closest to its tolerance: %s (%.0f%% of it)\n", cases,
           fails, worst_case[0] ? worst_case : "-", worst * 100.0);
    if (cases == 0) {
        printf("no case matched the filter\n");
        return 1;
    }
    return fails ? 1 : 0;
}
