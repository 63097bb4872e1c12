/* tools/cli/cmd_bench.c — `wastenet bench`: the time of one full training step of the
 * notebook's model (augmentation + preprocess, forward, softmax cross-entropy,
 * backward to the fine-tune boundary, Adam) on random images, as the median over
 * --steps steps after --warmup steps; images/s, achieved GFLOP/s, memory, and the
 * notebook's 39 s/step (fine-tuning from layer 500, batch 64, 320x320, on the
 * author's CPU) beside it.
 *
 * A benchmark, not a test: numbers depend on the machine and its load.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "engine/runtime/backend.h"
#include "engine/backends/cpu/backend_cpu.h"
#include "host/base/error.h"
#include "engine/runtime/backend_bf16.h"
#include "engine/runtime/executor.h"
#include "engine/model/model.h"
#include "tools/cli/bench_clock.h"
#include "tools/cli/commands.h"
#include "tools/cli/option_bounds.h"
#include "engine/backends/cuda/backend_cuda.h"

#define NOTEBOOK_S_PER_STEP 39.0 /* SEED.md: fine_tune_at 500, batch 64, 320x320, CPU */

static void usage(FILE *out) {
    fprintf(out,
            "usage: wastenet bench [--backend cpu|cuda|auto] [--model irv2]\n"
            "                      [--image-size 320] [--batch 64] [--fine-tune-at N|BLOCK]\n"
            "                      [--steps K] [--warmup W] [--precision tf32|fp32|bf16]\n"
            "                      [--lr 1e-5] [--seed S] [--deterministic]\n"
            "Times full training steps (augmentation, forward, loss, backward to the\n"
            "boundary, Adam) on random images and prints the median seconds per step,\n"
            "images/s, GFLOP/s and memory beside the notebook's 39 s/step.\n"
            "Defaults: --steps 5 --warmup 1 on the CPU, --steps 50 --warmup 5 on CUDA;\n"
            "--fine-tune-at: the model's `wastenet run` default (500 for irv2; `wastenet\n"
            "run --help` lists them).\n"
            "--deterministic: CUDA with deterministic cuDNN algorithms only (its cost).\n"
            "--precision: tf32 (CUDA default) and fp32 choose the float32 math; bf16 runs\n"
            "bf16 activations and convolutions with float32 accumulation and master\n"
            "weights (the CPU's float32 math is fp32 whatever is asked).\n");
}

static uint64_t xorshift(uint64_t *s) {
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}

static wn_backend *open_backend(const char *name, const char *precision) {
    /* bf16 is the executor's plan (WN_EXEC_BF16); the backend's float32 math under it
     * (the head, the loss) stays the default TF32 on CUDA */
    wn_precision p = WN_PRECISION_TF32;
    if (!strcmp(precision, "fp32"))
        p = WN_PRECISION_FP32;
    else if (strcmp(precision, "tf32") && strcmp(precision, "bf16")) {
        wn_fail("--precision %s: expected tf32, fp32 or bf16", precision);
        return NULL;
    }
    if (!strcmp(name, "cpu")) return wn_backend_cpu();
    if (!strcmp(name, "cuda")) return wn_backend_cuda(0, p);
    if (!strcmp(name, "auto")) return wn_cuda_available() ? wn_backend_cuda(0, p) : wn_backend_cpu();
    wn_fail("--backend %s: expected cpu, cuda or auto", name);
    return NULL;
}

int cmd_bench(int argc, char **argv) {
    const char *arch = "irv2", *backend = "cpu", *precision = "tf32";
    int size = 320, batch = 64, fine_tune_at = 500, steps = -1, warmup = -1;
    const char *fine_tune_arg = NULL; /* resolved against the model (a block name too) */
    float lr = 1e-5f;
    uint64_t seed = 1;
    int deterministic = 0;
    static const struct option opts[] = {
        {"backend", required_argument, 0, 'B'},   {"model", required_argument, 0, 'm'},
        {"image-size", required_argument, 0, 's'}, {"batch", required_argument, 0, 'b'},
        {"fine-tune-at", required_argument, 0, 'f'}, {"steps", required_argument, 0, 'k'},
        {"warmup", required_argument, 0, 'w'},    {"precision", required_argument, 0, 'p'},
        {"lr", required_argument, 0, 'l'},        {"seed", required_argument, 0, 'S'},
        {"deterministic", no_argument, 0, 'D'},   {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    int c;
    optind = 1;
    long v;
    double x;
    while ((c = getopt_long(argc, argv, "B:m:s:b:f:k:w:p:l:S:Dh", opts, NULL)) != -1) {
        switch (c) {
        case 'B': backend = optarg; break;
        case 'm': arch = optarg; break;
        case 's':
            if (wn_opt_int("bench", "--image-size", optarg, 1, 8192, NULL, &v)) return 2;
            size = (int)v;
            break;
        case 'b':
            if (wn_opt_int("bench", "--batch", optarg, 1, WN_MAX_BATCH, NULL, &v)) return 2;
            batch = (int)v;
            break;
        case 'f': fine_tune_arg = optarg; break;
        case 'k':
            if (wn_opt_int("bench", "--steps", optarg, 1, 1000000, NULL, &v)) return 2;
            steps = (int)v;
            break;
        case 'w':
            if (wn_opt_int("bench", "--warmup", optarg, 0, 1000000, NULL, &v)) return 2;
            warmup = (int)v;
            break;
        case 'p': precision = optarg; break;
        case 'l':
            if (wn_opt_real("bench", "--lr", optarg, WN_MIN_LR, WN_MAX_LR, &x)) return 2;
            lr = (float)x;
            break;
        case 'S': seed = strtoull(optarg, NULL, 10); break;
        case 'D': deterministic = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc || batch < 1 || size < 1) {
        usage(stderr);
        return 2;
    }
    wn_backend *be = open_backend(backend, precision);
    if (!be) {
        fprintf(stderr, "wastenet bench: %s\n", wn_last_error());
        return 1;
    }
    if (deterministic && wn_backend_set_deterministic(be, 1) != WN_OK) {
        fprintf(stderr, "wastenet bench: %s\n", wn_last_error());
        wn_backend_destroy(be);
        return 1;
    }
    int is_cpu = !strcmp(be->name, "cpu");
    if (steps < 0) steps = is_cpu ? 5 : 50;
    if (warmup < 0) warmup = is_cpu ? 1 : 5;
    if (steps < 1) steps = 1;

    wn_model m;
    wn_executor *ex = NULL;
    uint8_t *images = NULL, *flips = NULL;
    float *angles = NULL;
    int32_t *labels = NULL;
    double *times = NULL, *cpu_times = NULL;
    int rc = 1;
    if (wn_model_create(&m, arch, size, size, 6, seed) != WN_OK) {
        fprintf(stderr, "wastenet bench: %s\n", wn_last_error());
        wn_backend_destroy(be);
        return 1;
    }
    if (!fine_tune_arg) fine_tune_arg = m.backbone->fine_tune_default; /* NULL: 500 */
    if ((fine_tune_arg && wn_fine_tune_resolve(&m.graph, m.backbone_first, m.backbone_count,
                                               fine_tune_arg, &fine_tune_at) != WN_OK) ||
        wn_model_set_fine_tune(&m, fine_tune_at) != WN_OK) {
        fprintf(stderr, "wastenet bench: %s\n", wn_last_error());
        wn_model_free(&m);
        wn_backend_destroy(be);
        return 2;
    }
    double t0 = bench_now_s();
    int bf16 = !strcmp(precision, "bf16");
    if (wn_executor_create(&ex, &m, be, batch, bf16 ? WN_EXEC_BF16 : 0) != WN_OK) goto fail;
    double t_plan = bench_now_s() - t0;
    size_t npix = (size_t)batch * size * size * 3;
    images = malloc(npix);
    flips = malloc((size_t)batch);
    angles = malloc((size_t)batch * sizeof(float));
    labels = malloc((size_t)batch * sizeof(int32_t));
    times = malloc((size_t)steps * sizeof(double));
    cpu_times = malloc((size_t)steps * sizeof(double));
    if (!images || !flips || !angles || !labels || !times || !cpu_times) {
        wn_fail("out of memory for the random batch");
        goto fail;
    }
    uint64_t r = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < npix; i++) images[i] = (uint8_t)(xorshift(&r) >> 56);
    for (int i = 0; i < batch; i++) labels[i] = (int32_t)(xorshift(&r) % 6);

    wn_plan_info info;
    wn_executor_plan_info(ex, &info);
    char bound[32];
    if (fine_tune_at == WN_FINE_TUNE_NONE)
        snprintf(bound, sizeof bound, "none");
    else if (fine_tune_at == 0)
        snprintf(bound, sizeof bound, "all");
    else
        snprintf(bound, sizeof bound, "%d", fine_tune_at);
    printf("wastenet bench: %s on %s, %dx%d, batch %d, fine-tune-at %s\n", arch, be->name, size,
           size, batch, bound);
    if (bf16) printf("  precision bf16: %s\n", wn_backend_bf16_describe(be));
    else printf("  precision %s\n", is_cpu ? "fp32" : precision);
    printf("  trainable params %zu; %d steps (%d with backward); planned in %.2f s\n",
           wn_model_trainable_count(&m), info.steps, info.backward_steps, t_plan);
    printf("  memory planned on the backend: %.2f GiB (activations %.2f, weights %.2f, "
           "grads + Adam %.2f)\n",
           info.total_bytes / 1073741824.0, info.arena_bytes / 1073741824.0,
           info.weight_bytes / 1073741824.0, info.optimizer_bytes / 1073741824.0);
    fflush(stdout);
    for (int s = 0; s < warmup + steps; s++) {
        for (int i = 0; i < batch; i++) {
            flips[i] = (uint8_t)(xorshift(&r) & 1);
            angles[i] = (float)(((double)(xorshift(&r) >> 11) / 9007199254740992.0 * 2.0 - 1.0) *
                                0.4 * 3.14159265358979);
        }
        float loss;
        double ts = bench_now_s(), cs = bench_clock_s(CLOCK_PROCESS_CPUTIME_ID);
        if (wn_executor_train_step(ex, images, labels, batch, flips, angles, seed + s, &WN_ADAM_KERAS(lr), &loss,
                                   NULL) != WN_OK)
            goto fail;
        double dt = bench_now_s() - ts, cpu = bench_clock_s(CLOCK_PROCESS_CPUTIME_ID) - cs;
        printf("  %s %d: %.3f s, CPU %.2f s (loss %.4f)\n", s < warmup ? "warm-up" : "step",
               s < warmup ? s + 1 : s - warmup + 1, dt, cpu, loss);
        fflush(stdout);
        if (s >= warmup) times[s - warmup] = dt, cpu_times[s - warmup] = cpu;
    }
    qsort(times, (size_t)steps, sizeof(double), bench_cmp_double);
    double med = steps % 2 ? times[steps / 2] : 0.5 * (times[steps / 2 - 1] + times[steps / 2]);
    /* CPU time of the whole process (all threads) per step: on a shared machine the
     * wall time measures this process's share of the cores, the CPU time does not. */
    qsort(cpu_times, (size_t)steps, sizeof(double), bench_cmp_double);
    double cpu_med = steps % 2 ? cpu_times[steps / 2]
                               : 0.5 * (cpu_times[steps / 2 - 1] + cpu_times[steps / 2]);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("\n  median step      %.3f s over %d steps (min %.3f, max %.3f)\n", med, steps,
           times[0], times[steps - 1]);
    printf("  median step CPU  %.2f s (process CPU time, all threads)\n", cpu_med);
    printf("  images/s         %.2f\n", batch / med);
    printf("  compute          %.1f GFLOP/step, %.1f GFLOP/s achieved\n",
           info.train_flops * batch * 1e-9, info.train_flops * batch * 1e-9 / med);
    printf("  peak memory      %.2f GiB planned on %s; process peak RSS %.2f GiB\n",
           info.total_bytes / 1073741824.0, be->name, ru.ru_maxrss / 1048576.0);
    printf("  notebook (Keras, author's CPU): %.0f s/step -> %.2fx %s\n", NOTEBOOK_S_PER_STEP,
           NOTEBOOK_S_PER_STEP > med ? NOTEBOOK_S_PER_STEP / med : med / NOTEBOOK_S_PER_STEP,
           NOTEBOOK_S_PER_STEP > med ? "faster" : "slower");
    rc = 0;
fail:
    if (rc) fprintf(stderr, "wastenet bench: %s\n", wn_last_error());
    free(images), free(flips), free(angles), free(labels), free(times), free(cpu_times);
    wn_executor_destroy(ex);
    wn_model_free(&m);
    wn_backend_destroy(be);
    return rc;
}
