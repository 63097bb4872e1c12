/* tools/cmd_selftest.c — `wastenet selftest [--backend cuda|cpu]`: the op parity
 * checks of the GPU suite (tests/gpu/parity*.c, the quick shapes) built into the
 * binary, so that any NVIDIA workstation can verify the CUDA path in seconds before
 * a long run. Every backend op (convolutions ordinary/grouped/depthwise, Dense,
 * affine + activation, BN gamma, pooling, concatenation, residual, GAP, dropout,
 * softmax + cross-entropy, Adam, augmentation) runs on the CPU backend (the answer
 * key) and on the backend under test with the same inputs; one table row per op
 * family and precision: comparisons, failures, closest approach to its tolerance.
 *
 * --backend cuda: TF32 (convolutions/Dense <= 1e-3, our kernels <= 1e-5) and FP32
 *   (convolutions/Dense <= 1e-5), deterministic cuDNN algorithms (a failure replays
 *   with --seed); --backend cpu: a second CPU backend, every result bit-identical
 *   (the harness checking itself). The whole-model checks stay in
 *   tests/gpu/test_gpu_model (they need more than a minute on a CPU reference).
 * Exit: 0 all passed, 1 a failure or no usable backend, 2 bad usage. */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/backend.h"
#include "engine/backend_cuda.h"
#include "engine/error.h"
#include "tests/gpu/parity.h"
#include "tools/bench_clock.h"
#include "tools/commands.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: wastenet selftest [--backend cuda|cpu] [--seed N] [--verbose]\n"
            "Checks every op of a backend against the CPU backend on small shapes and\n"
            "prints one row per op family (seconds). --backend cuda (default): TF32 and\n"
            "FP32; cpu: the CPU against itself, bit for bit. --verbose: every comparison.\n"
            "Exit 0 when all passed.\n");
}

typedef struct family {
    const char *name;
    void (*run)(parity_suite *s);
    int matmul; /* precision-dependent: run at FP32 too */
} family;

static const family families[] = {
    {"conv2d", parity_conv, 1},        {"dense", parity_dense, 1},
    {"affine_act", parity_affine_act, 0}, {"bn_gamma", parity_bn_gamma, 0},
    {"pool", parity_pool, 0},          {"concat", parity_concat, 0},
    {"residual", parity_residual, 0},  {"gap", parity_gap, 0},
    {"dropout", parity_dropout, 0},    {"softmax_xent", parity_softmax_xent, 0},
    {"adam", parity_adam, 0},          {"augment", parity_augment, 0},
};

static wn_backend *open_under_test(const char *backend, wn_precision p) {
    if (!strcmp(backend, "cpu")) return wn_backend_cpu();
    wn_backend *be = wn_backend_cuda(0, p);
    if (be && wn_cuda_set_deterministic(be, 1) != WN_OK) {
        be->destroy(be);
        return NULL;
    }
    return be;
}

int cmd_selftest(int argc, char **argv) {
    const char *backend = "cuda";
    int verbose = 0;
    uint64_t seed = (uint64_t)time(NULL);
    static const struct option opts[] = {{"backend", required_argument, 0, 'B'},
                                         {"seed", required_argument, 0, 'S'},
                                         {"verbose", no_argument, 0, 'v'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "B:S:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'B': backend = optarg; break;
        case 'S': seed = strtoull(optarg, NULL, 10); break;
        case 'v': verbose = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc || (strcmp(backend, "cuda") && strcmp(backend, "cpu"))) {
        fprintf(stderr, "wastenet selftest: --backend must be cuda or cpu\n");
        usage(stderr);
        return 2;
    }
    int self = !strcmp(backend, "cpu");
    wn_backend *cpu = wn_backend_cpu();
    if (!cpu) {
        fprintf(stderr, "wastenet selftest: CPU backend: %s\n", wn_last_error());
        return 1;
    }
    struct { wn_precision p; const char *name; double tol_mm, tol_ew; int all; } runs[] = {
        {WN_PRECISION_TF32, "tf32", 1e-3, 1e-5, 1},
        {WN_PRECISION_FP32, "fp32", 1e-5, 1e-5, 0},
    };
    int n_runs = self ? 1 : 2; /* the CPU has one precision */
    printf("wastenet selftest: %s against the CPU backend, seed %llu\n\n",
           self ? "a second CPU backend" : "the CUDA backend (deterministic)",
           (unsigned long long)seed);
    printf("%-14s %-6s %6s %6s %12s %8s  %s\n", "ops", "prec", "cases", "failed", "worst/tol",
           "ms", "status");
    int cases = 0, fails = 0;
    double t0 = bench_now_s();
    for (int r = 0; r < n_runs; r++) {
        wn_backend *be = open_under_test(backend, runs[r].p);
        if (!be) {
            printf("%-14s %-6s %6s %6s %12s %8s  FAIL: %s\n", "(backend)", runs[r].name, "-", "-",
                   "-", "-", wn_last_error());
            fails++;
            continue;
        }
        for (size_t f = 0; f < sizeof families / sizeof families[0]; f++) {
            if (!runs[r].all && !families[f].matmul) continue;
            parity_seed(seed + (uint64_t)r * 1000 + f);
            parity_suite s = {.cpu = cpu, .gpu = be, .precision = self ? "cpu" : runs[r].name,
                              .tol_matmul = self ? 0.0 : runs[r].tol_mm,
                              .tol_elementwise = self ? 0.0 : runs[r].tol_ew,
                              .quick = 1, .quiet = !verbose};
            double t = bench_now_s();
            families[f].run(&s);
            double ms = (bench_now_s() - t) * 1e3;
            cases += s.cases, fails += s.fails;
            char worst[32];
            if (self) snprintf(worst, sizeof worst, "%s", s.worst_ratio == 0.0 ? "exact" : "-");
            else snprintf(worst, sizeof worst, "%.0f%%", s.worst_ratio * 100.0);
            printf("%-14s %-6s %6d %6d %12s %8.1f  %s\n", families[f].name,
                   self ? "cpu" : runs[r].name, s.cases, s.fails, worst, ms,
                   s.fails ? "FAIL" : s.cases ? "ok" : "FAIL (no case ran)");
            if (!s.cases) fails++;
            fflush(stdout);
        }
        be->destroy(be);
    }
    cpu->destroy(cpu);
    printf("\n%d comparisons, %d failed, %.1f s: %s\n", cases, fails, bench_now_s() - t0,
           fails ? "FAIL" : "PASS");
    return fails ? 1 : 0;
}
