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
 *   (the harness checking itself).
 * Then a small model: EfficientNet-Lite0 at 64x64, batch 2, random weights, fine-tune
 * boundary 0 (backward through every layer): logits of an inference forward, the
 * loss and every weight gradient of one training step (no augmentation, no
 * dropout randomness beyond a fixed seed), normwise against the CPU: fp32 <= 1e-4
 * outputs / 1e-3 gradients, tf32 <= 2e-2 / 5e-2 (tests/gpu/test_gpu_model's bounds,
 * which also cover InceptionResNetV2, the Adam step and host staging).
 * bf16 (--precision bf16): every op family with a bf16 form in its bf16 mode (the
 * backend's bf16 ops against the CPU's, <= 1e-2, engine/runtime/parity_cases.c), and the
 * model's bf16 plan against the CPU's bf16 plan (<= 5e-2 outputs / 1e-1 gradients).
 * Exit: 0 all passed, 1 a failure, 2 bad usage, 77 no usable CUDA GPU (nothing was
 * checked: a driver/runtime mismatch, no GPU, a build without CUDA). Under a minute
 * (the CPU reference of the model is the slow part: about a second on 2 cores). */
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/runtime/backend.h"
#include "engine/backends/cpu/backend_cpu.h"
#include "engine/backends/cuda/backend_cuda.h"
#include "host/base/error.h"
#include "engine/runtime/executor.h"
#include "engine/model/model.h"
#include "engine/runtime/parity.h"
#include "tools/cli/bench_clock.h"
#include "tools/cli/commands.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: wastenet selftest [--backend cuda|cpu] [--seed N] [--verbose]\n"
            "Checks every op of a backend against the CPU backend on small shapes and\n"
            "prints one row per op family (seconds). --backend cuda (default): TF32,\n"
            "FP32 and bf16; cpu: the CPU against itself, bit for bit. --verbose: every\n"
            "comparison.\n"
            "Exit 0 when all passed, 1 on a failure, 77 when no CUDA GPU is usable.\n");
}

/* One row per op family: the op cases (engine/runtime/op_cases.h) whose name is the
 * family's, in their parity mode. */
typedef struct family {
    const char *name;
    int matmul; /* precision-dependent: run at FP32 too */
    int bf16;   /* has a bf16 form: a bf16 row too */
} family;

static const family families[] = {
    {"conv2d", 1, 1},     {"dense", 1, 0},   {"affine_act", 0, 1},   {"bn_gamma", 0, 1},
    {"pool", 0, 1},       {"concat", 0, 1},  {"scaled_add", 0, 1},   {"mul", 0, 0},
    {"gap", 0, 1},        {"dropout", 0, 0}, {"softmax_xent", 0, 0}, {"adam", 0, 0},
    {"augment", 0, 0},
};

/* ---------------------------------------------------------------- small model */

typedef struct model_run {
    float logits[2 * 6];
    float loss;
    float *grads;
} model_run;

/* params0 holds the weights then the BN statistics, restored before and after. */
static int run_model(wn_model *m, const float *params0, wn_backend *be, const uint8_t *images,
                     unsigned flags, model_run *r) {
    memcpy(m->params, params0, m->graph.n_params * sizeof(float));
    memcpy(m->stats, params0 + m->graph.n_params, m->graph.n_stats * sizeof(float));
    size_t nt = wn_model_trainable_count(m);
    r->grads = malloc((nt ? nt : 1) * sizeof(float));
    if (!r->grads) return wn_fail("out of memory");
    const int32_t labels[2] = {1, 4};
    wn_executor *ex = NULL;
    int rc = WN_ERR;
    if (wn_executor_create(&ex, m, be, 2, flags) == WN_OK &&
        wn_executor_forward(ex, images, 2, 0, NULL, NULL, 0) == WN_OK &&
        wn_executor_read_output(ex, m->logits_layer, r->logits) == WN_OK &&
        wn_executor_train_step(ex, images, labels, 2, NULL, NULL, 7, &WN_ADAM_KERAS(1e-3f), &r->loss, NULL) ==
            WN_OK &&
        wn_executor_read_grads(ex, r->grads) == WN_OK)
        rc = WN_OK;
    if (ex) wn_executor_destroy(ex);
    memcpy(m->params, params0, m->graph.n_params * sizeof(float));
    memcpy(m->stats, params0 + m->graph.n_params, m->graph.n_stats * sizeof(float));
    return rc;
}

/* Normwise relative error; INFINITY on a non-finite value. */
static double rel_err(const float *ref, const float *got, size_t n) {
    double d2 = 0.0, r2 = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(got[i])) return INFINITY;
        double d = (double)got[i] - ref[i];
        d2 += d * d, r2 += (double)ref[i] * ref[i];
    }
    return r2 > 0 ? sqrt(d2 / r2) : sqrt(d2);
}

/* One table row: the model on `be` against `ref` (the CPU's run). */
static int model_row(wn_model *m, const float *params0, wn_backend *be, const uint8_t *images,
                     unsigned flags, const model_run *ref, const char *prec, double tol_out,
                     double tol_grad) {
    double t = bench_now_s();
    model_run got = {0};
    int ok = run_model(m, params0, be, images, flags, &got) == WN_OK;
    double ms = (bench_now_s() - t) * 1e3;
    if (!ok) {
        printf("%-14s %-6s %6s %6s %12s %8.1f  FAIL: %s\n", "model lite0", prec, "-", "-", "-", ms,
               wn_last_error());
        free(got.grads);
        return 1;
    }
    size_t nt = wn_model_trainable_count(m);
    double e[3] = {rel_err(ref->logits, got.logits, 12), rel_err(&ref->loss, &got.loss, 1),
                   rel_err(ref->grads, got.grads, nt)};
    double tol[3] = {tol_out, tol_out, tol_grad}, worst = 0.0;
    int failed = 0;
    for (int i = 0; i < 3; i++) {
        int bad = tol[i] == 0.0 ? e[i] != 0.0 : !(e[i] <= tol[i]);
        failed += bad;
        double ratio = tol[i] > 0 ? e[i] / tol[i] : (e[i] == 0.0 ? 0.0 : INFINITY);
        if (!(ratio <= worst)) worst = ratio;
    }
    char w[32];
    if (tol_out == 0.0) snprintf(w, sizeof w, "%s", failed ? "-" : "exact");
    else snprintf(w, sizeof w, "%.0f%%", worst * 100.0);
    printf("%-14s %-6s %6d %6d %12s %8.1f  %s", "model lite0", prec, 3, failed, w, ms,
           failed ? "FAIL" : "ok");
    if (failed)
        printf(" (logits %.2e, loss %.2e, gradients %.2e)", e[0], e[1], e[2]);
    printf("\n");
    free(got.grads);
    return failed;
}

static wn_backend *open_under_test(const char *backend, wn_precision p) {
    if (!strcmp(backend, "cpu")) return wn_backend_cpu();
    wn_backend *be = wn_backend_cuda(0, p);
    if (be && wn_backend_set_deterministic(be, 1) != WN_OK) {
        wn_backend_destroy(be);
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
    if (!self && !wn_cuda_available()) {
        wn_backend *probe = wn_backend_cuda(0, WN_PRECISION_TF32);
        printf("wastenet selftest: no usable CUDA GPU, nothing checked (%s)\n",
               probe ? "?" : wn_last_error());
        wn_backend_destroy(probe);
        return 77;
    }
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
                              .quick = 1, .quiet = !verbose, .filter = families[f].name};
            double t = bench_now_s();
            parity_run_cases(&s, 0);
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
        /* bf16 rides on the default (TF32) backend, as --precision bf16 does */
        for (size_t f = 0; r == 0 && f < sizeof families / sizeof families[0]; f++) {
            if (!families[f].bf16) continue;
            parity_seed(seed + 500 + f);
            parity_suite s = {.cpu = cpu, .gpu = be, .precision = "bf16",
                              .tol_bf16 = self ? 0.0 : 1e-2, /* tests/common/tolerance.h's
                                                                TOL_BF16_OP */
                              .quick = 1, .quiet = !verbose, .filter = families[f].name};
            double t = bench_now_s();
            parity_run_bf16_cases(&s);
            double ms = (bench_now_s() - t) * 1e3;
            cases += s.cases, fails += s.fails;
            char worst[32];
            if (self) snprintf(worst, sizeof worst, "%s", s.worst_ratio == 0.0 ? "exact" : "-");
            else snprintf(worst, sizeof worst, "%.0f%%", s.worst_ratio * 100.0);
            printf("%-14s %-6s %6d %6d %12s %8.1f  %s\n", families[f].name, "bf16", s.cases,
                   s.fails, worst, ms, s.fails ? "FAIL" : s.cases ? "ok" : "FAIL (no case ran)");
            if (!s.cases) fails++;
            fflush(stdout);
        }
        wn_backend_destroy(be);
    }

    /* the small model */
    wn_model m;
    uint8_t images[2 * 64 * 64 * 3];
    uint64_t px = seed | 1;
    for (size_t i = 0; i < sizeof images; i++) {
        px ^= px << 13, px ^= px >> 7, px ^= px << 17;
        images[i] = (uint8_t)(px >> 56);
    }
    if (wn_model_create(&m, "efficientnet_lite0", 64, 64, 6, seed) != WN_OK ||
        wn_model_set_fine_tune(&m, 0) != WN_OK) {
        printf("%-14s FAIL: %s\n", "model lite0", wn_last_error());
        fails++;
    } else {
        float *params0 = malloc((m.graph.n_params + m.graph.n_stats) * sizeof(float));
        model_run ref = {0}, ref16 = {0};
        if (!params0) {
            fails++;
        } else {
            memcpy(params0, m.params, m.graph.n_params * sizeof(float));
            memcpy(params0 + m.graph.n_params, m.stats, m.graph.n_stats * sizeof(float));
            if (run_model(&m, params0, cpu, images, 0, &ref) != WN_OK ||
                run_model(&m, params0, cpu, images, WN_EXEC_BF16, &ref16) != WN_OK) {
                printf("%-14s FAIL: CPU reference: %s\n", "model lite0", wn_last_error());
                fails++;
            } else {
                static const double tol_out[2] = {2e-2, 1e-4}, tol_grad[2] = {5e-2, 1e-3};
                for (int r = 0; r < n_runs; r++) {
                    wn_backend *be = open_under_test(backend, runs[r].p);
                    if (!be) {
                        printf("%-14s %-6s FAIL: %s\n", "model lite0", runs[r].name,
                               wn_last_error());
                        fails++;
                        continue;
                    }
                    cases += 3;
                    fails += model_row(&m, params0, be, images, 0, &ref, self ? "cpu" : runs[r].name,
                                       self ? 0.0 : tol_out[r], self ? 0.0 : tol_grad[r]);
                    if (r == 0) { /* the bf16 plan against the CPU's bf16 plan */
                        cases += 3;
                        fails += model_row(&m, params0, be, images, WN_EXEC_BF16, &ref16, "bf16",
                                           self ? 0.0 : 5e-2, self ? 0.0 : 1e-1);
                    }
                    wn_backend_destroy(be);
                }
            }
        }
        free(ref.grads), free(ref16.grads), free(params0);
        wn_model_free(&m);
    }
    wn_backend_destroy(cpu);
    printf("\n%d comparisons, %d failed, %.1f s: %s\n", cases, fails, bench_now_s() - t0,
           fails ? "FAIL" : "PASS");
    return fails ? 1 : 0;
}
