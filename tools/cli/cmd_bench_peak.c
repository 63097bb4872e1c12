/* tools/cli/cmd_bench_peak.c — `wastenet bench-peak`: this CPU's arithmetic peaks.
 *
 * Measures the rate of the instructions a convolution's inner loop is made of, in
 * GFLOP/s (one multiply-add = 2 FLOP), on one core and on all cores:
 *   float32 FMA        AVX2 VFMADD231PS ymm (8 lanes) and AVX-512 zmm (16 lanes)
 *   bf16 dot product   AVX-512 BF16 VDPBF16PS zmm (32 bf16 products into 16 float32)
 *   fp16 FMA           AVX-512 FP16 VFMADD231PH zmm (32 half lanes)
 *   bf16 tile product  AMX-BF16 TDPBF16PS (16x32 by 32x16 bf16 into 16x16 float32)
 * Each kernel is a loop of independent multiply-adds on registers (more chains than
 * the FMA latency times the number of FMA ports, so only the issue rate limits it),
 * compiled for its instruction set with a function target attribute and run only
 * when the CPU reports that set (runtime dispatch: the build needs no -m flags and
 * the binary runs anywhere). The best of a few timed runs is the peak: on a shared
 * machine other work only ever makes a run slower.
 *
 * These are the ceilings that `wastenet bench` and bench-ops report their achieved
 * GFLOP/s against (docs/PERF.md). A benchmark, not a test.
 */
#include <getopt.h>
#include <stdint.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools/cli/bench_clock.h"
#include "tools/cli/commands.h"
#include "tools/cli/option_bounds.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#define WN_PEAK_X86 1
#endif

#ifdef WN_PEAK_X86
/* Each kernel runs `iters` rounds of its independent chains and returns a value that
 * depends on every chain (so none is optimised away). Operands come through a
 * volatile so the compiler cannot fold them. */
static volatile float peak_seed = 0.999999f;

#define CHAINS_256 12 /* 16 ymm registers: 12 accumulators + 2 operands */
#define CHAINS_512 24 /* 32 zmm registers */

__attribute__((target("avx2,fma"))) static float kernel_fma_avx2(long iters) {
    __m256 a = _mm256_set1_ps(peak_seed), b = _mm256_set1_ps(1e-6f * peak_seed);
    __m256 acc[CHAINS_256];
    for (int i = 0; i < CHAINS_256; i++) acc[i] = _mm256_set1_ps((float)i);
    for (long it = 0; it < iters; it++)
#pragma GCC unroll 32
        for (int i = 0; i < CHAINS_256; i++) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
    __m256 s = acc[0];
    for (int i = 1; i < CHAINS_256; i++) s = _mm256_add_ps(s, acc[i]);
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0];
}

__attribute__((target("avx512f"))) static float kernel_fma_avx512(long iters) {
    __m512 a = _mm512_set1_ps(peak_seed), b = _mm512_set1_ps(1e-6f * peak_seed);
    __m512 acc[CHAINS_512];
    for (int i = 0; i < CHAINS_512; i++) acc[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < iters; it++)
#pragma GCC unroll 32
        for (int i = 0; i < CHAINS_512; i++) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
    __m512 s = acc[0];
    for (int i = 1; i < CHAINS_512; i++) s = _mm512_add_ps(s, acc[i]);
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx512f,avx512bf16"))) static float kernel_dpbf16(long iters) {
    /* bf16 pairs of a near-one value: the products stay small and finite. */
    __m512 one = _mm512_set1_ps(peak_seed), tiny = _mm512_set1_ps(1e-6f * peak_seed);
    __m512bh a = _mm512_cvtne2ps_pbh(one, one), b = _mm512_cvtne2ps_pbh(tiny, tiny);
    __m512 acc[CHAINS_512];
    for (int i = 0; i < CHAINS_512; i++) acc[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < iters; it++)
#pragma GCC unroll 32
        for (int i = 0; i < CHAINS_512; i++) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
    __m512 s = acc[0];
    for (int i = 1; i < CHAINS_512; i++) s = _mm512_add_ps(s, acc[i]);
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx512f,avx512fp16"))) static float kernel_fma_fp16(long iters) {
    __m512h a = _mm512_set1_ph((_Float16)peak_seed), b = _mm512_set1_ph((_Float16)(1e-3f * peak_seed));
    __m512h acc[CHAINS_512];
    for (int i = 0; i < CHAINS_512; i++) acc[i] = _mm512_set1_ph((_Float16)(i * 0.01f));
    for (long it = 0; it < iters; it++)
#pragma GCC unroll 32
        for (int i = 0; i < CHAINS_512; i++) acc[i] = _mm512_fmadd_ph(acc[i], a, b);
    __m512h s = acc[0];
    for (int i = 1; i < CHAINS_512; i++) s = _mm512_add_ph(s, acc[i]);
    return (float)_mm512_reduce_add_ph(s);
}

/* AMX: 8 tile registers of 16 rows x 64 bytes. Four accumulators (tmm0-3, 16x16
 * float32 each) take a 2x2 block of products of two A tiles (tmm4-5, 16x32 bf16) and
 * two B tiles (tmm6-7, 32x16 bf16 in pairs): four independent TDPBF16PS per round,
 * each 16*16*32 multiply-adds. The tile shapes come from a 64-byte configuration the
 * thread loads first (palette 1); the registers are released afterwards. */
#define AMX_TILE_ROWS 16
#define AMX_TILE_BYTES 64
typedef struct amx_tile_config {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16]; /* bytes per row of each tile register */
    uint8_t rows[16];
} amx_tile_config;

__attribute__((target("amx-tile,amx-bf16"))) static float kernel_amx_bf16(long iters) {
    amx_tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) cfg.colsb[t] = AMX_TILE_BYTES, cfg.rows[t] = AMX_TILE_ROWS;
    /* bf16 of a near-one value in every pair of A, a tiny one in B: products stay finite */
    uint16_t a[AMX_TILE_ROWS * 32], b[AMX_TILE_ROWS * 32];
    float near_one = peak_seed, tiny = 1e-6f * peak_seed;
    uint32_t ua, ub;
    memcpy(&ua, &near_one, 4);
    memcpy(&ub, &tiny, 4);
    for (int i = 0; i < AMX_TILE_ROWS * 32; i++) a[i] = (uint16_t)(ua >> 16), b[i] = (uint16_t)(ub >> 16);
    float c[AMX_TILE_ROWS * 16];
    _tile_loadconfig(&cfg);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_loadd(4, a, AMX_TILE_BYTES);
    _tile_loadd(5, a, AMX_TILE_BYTES);
    _tile_loadd(6, b, AMX_TILE_BYTES);
    _tile_loadd(7, b, AMX_TILE_BYTES);
    for (long it = 0; it < iters; it++) {
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    float s = 0;
    _tile_stored(0, c, AMX_TILE_BYTES);
    s += c[0];
    _tile_stored(3, c, AMX_TILE_BYTES);
    s += c[AMX_TILE_ROWS * 16 - 1];
    _tile_release();
    return s;
}

/* Linux hands out the AMX tile-data register state only to a process that asks for
 * it (arch_prctl ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA, kernel 5.16 or later);
 * without it the first tile instruction faults. Asked once, for every thread. */
static int amx_permitted(void) {
    static int state = -1;
    if (state < 0) {
        enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
        state = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
    }
    return state;
}

typedef struct peak_kernel {
    const char *name;        /* what the row is called */
    const char *instruction; /* the instruction it issues */
    const char *isa;         /* __builtin_cpu_supports names it needs, comma-separated */
    float (*run)(long iters);
    double flop_per_iter;    /* FLOP per round of all chains */
} peak_kernel;

static const peak_kernel peak_kernels[] = {
    {"float32 FMA, AVX2", "VFMADD231PS ymm", "avx2,fma", kernel_fma_avx2, CHAINS_256 * 8 * 2.0},
    {"float32 FMA, AVX-512", "VFMADD231PS zmm", "avx512f", kernel_fma_avx512, CHAINS_512 * 16 * 2.0},
    {"bf16 dot product, AVX-512 BF16", "VDPBF16PS zmm", "avx512f,avx512bf16", kernel_dpbf16,
     CHAINS_512 * 32 * 2.0},
    {"fp16 FMA, AVX-512 FP16", "VFMADD231PH zmm", "avx512f,avx512fp16", kernel_fma_fp16,
     CHAINS_512 * 32 * 2.0},
    {"bf16 tile product, AMX-BF16", "TDPBF16PS", "amx-tile,amx-bf16", kernel_amx_bf16,
     4 * AMX_TILE_ROWS * 16 * 32 * 2.0},
};

/* Whether the CPU (and the OS, which __builtin_cpu_supports also checks for the
 * register state) offers every instruction set in `list`. */
static int isa_supported(const char *list) {
    char buf[64];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        int ok;
        if (!strcmp(tok, "avx2")) ok = __builtin_cpu_supports("avx2");
        else if (!strcmp(tok, "fma")) ok = __builtin_cpu_supports("fma");
        else if (!strcmp(tok, "avx512f")) ok = __builtin_cpu_supports("avx512f");
        else if (!strcmp(tok, "avx512bf16")) ok = __builtin_cpu_supports("avx512bf16");
        else if (!strcmp(tok, "avx512fp16")) ok = __builtin_cpu_supports("avx512fp16");
        else if (!strcmp(tok, "amx-tile")) ok = __builtin_cpu_supports("amx-tile") && amx_permitted();
        else if (!strcmp(tok, "amx-bf16")) ok = __builtin_cpu_supports("amx-bf16");
        else ok = 0;
        if (!ok) return 0;
    }
    return 1;
}

#else
typedef struct peak_kernel {
    const char *name, *instruction, *isa;
    float (*run)(long iters);
    double flop_per_iter;
} peak_kernel;
static volatile float peak_seed = 1.0f;
static const peak_kernel peak_kernels[1] = {{"(no kernels: not an x86-64 build)", "", "none", NULL, 0}};
static int isa_supported(const char *list) { (void)list; return 0; }
#endif

/* The "model name" line and the vector-arithmetic flags of /proc/cpuinfo. */
static void print_cpu(void) {
    static const char *wanted[] = {"fma", "avx2", "avx512f", "avx512vl", "avx512_vnni",
                                   "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile",
                                   "amx_bf16", "amx_fp16", "amx_int8"};
    char model[256] = "unknown", flags[8192] = "";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[8192];
        while (fgets(line, sizeof line, f)) {
            char *colon = strchr(line, ':');
            if (!colon) continue;
            char *val = colon + 1 + (colon[1] == ' ');
            val[strcspn(val, "\n")] = 0;
            if (!strncmp(line, "model name", 10) && !strcmp(model, "unknown"))
                snprintf(model, sizeof model, "%s", val);
            else if (!strncmp(line, "flags", 5) && !flags[0])
                snprintf(flags, sizeof flags, " %s ", val);
        }
        fclose(f);
    }
    printf("CPU: %s, %d logical CPUs (OpenMP uses %d)\n", model, omp_get_num_procs(),
           omp_get_max_threads());
    printf("vector flags:");
    int any = 0;
    for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++) {
        char pat[40];
        snprintf(pat, sizeof pat, " %s ", wanted[i]);
        if (strstr(flags, pat)) printf(" %s", wanted[i]), any = 1;
    }
    printf("%s\n", any ? "" : " (none of the ones measured here)");
}

/* Best rates over `repeat` runs of `k` on `threads` threads, each run about `seconds`
 * long: by the wall clock, and per CPU-second of the process (what one core does while
 * it runs, however much of the machine other programs take meanwhile). */
typedef struct peak_rate {
    double wall, per_cpu_s; /* GFLOP/s */
} peak_rate;

static peak_rate measure(const peak_kernel *k, int threads, double seconds, int repeat) {
    /* Calibrate the round count on one thread so a run lasts about `seconds`. */
    long iters = 1 << 14;
    for (;;) {
        double t0 = bench_clock_s(CLOCK_PROCESS_CPUTIME_ID);
        peak_seed += k->run(iters) * 0.0f;
        double dt = bench_clock_s(CLOCK_PROCESS_CPUTIME_ID) - t0;
        if (dt > seconds / 8 || iters > (1L << 40)) {
            iters = (long)((double)iters * (seconds / (dt > 1e-9 ? dt : 1e-9)));
            break;
        }
        iters *= 4;
    }
    if (iters < 1) iters = 1;
    peak_rate best = {0, 0};
    for (int r = 0; r < repeat; r++) {
        float sink = 0;
        double w0 = bench_now_s(), c0 = bench_clock_s(CLOCK_PROCESS_CPUTIME_ID);
#pragma omp parallel num_threads(threads) reduction(+ : sink)
        sink += k->run(iters);
        double wall = bench_now_s() - w0, cpu = bench_clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
        peak_seed += sink * 0.0f;
        double gflop = k->flop_per_iter * (double)iters * threads * 1e-9;
        if (gflop / wall > best.wall) best.wall = gflop / wall;
        if (cpu > 0 && gflop / cpu > best.per_cpu_s) best.per_cpu_s = gflop / cpu;
    }
    return best;
}

/* The core clock in GHz while it runs a chain of dependent 64-bit integer multiplies
 * (3 cycles each on every x86 core since Nehalem and Zen; the loop's own compare and
 * branch issue beside them), per CPU-second of this thread, so FLOP/cycle can be read
 * off the rates. Not additions of an immediate: Golden Cove (Sapphire Rapids) folds
 * those chains at rename and would read 10 GHz. The TSC is no help either: it ticks at
 * a fixed rate whatever the clock. */
static double measure_ghz(void) {
    double best = 0;
#ifdef WN_PEAK_X86
    for (int r = 0; r < 5; r++) {
        long n = 10000000, x = 1, one = 1;
        double t0 = bench_clock_s(CLOCK_THREAD_CPUTIME_ID);
        for (long i = 0; i < n; i++)
            __asm__ volatile("imul %1, %0\n\timul %1, %0\n\timul %1, %0\n\timul %1, %0\n\t"
                             "imul %1, %0\n\timul %1, %0\n\timul %1, %0\n\timul %1, %0"
                             : "+r"(x)
                             : "r"(one));
        double dt = bench_clock_s(CLOCK_THREAD_CPUTIME_ID) - t0;
        double ghz = 3.0 * 8.0 * (double)n / dt * 1e-9;
        if (ghz > best) best = ghz;
    }
#endif
    return best;
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: wastenet bench-peak [--threads N] [--seconds S] [--repeat R]\n"
            "Measures this CPU's float32 FMA rate and its bf16 (AVX-512 BF16 VDPBF16PS, AMX\n"
            "TDPBF16PS) and fp16 (AVX-512 FP16) multiply-add rates in GFLOP/s, on one core\n"
            "and on N threads (default: all logical CPUs), with the CPU model and its vector\n"
            "flags. Each kernel runs only where the CPU (and, for AMX, the OS) offers its\n"
            "instructions; the best of R runs of about S seconds (defaults 3 and 0.5) is\n"
            "reported.\n");
}

int cmd_bench_peak(int argc, char **argv) {
    int threads = omp_get_num_procs(), repeat = 3;
    double seconds = 0.5;
    static const struct option opts[] = {{"threads", required_argument, 0, 't'},
                                         {"seconds", required_argument, 0, 's'},
                                         {"repeat", required_argument, 0, 'r'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    long v;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            if (wn_opt_int("bench-peak", "--threads", optarg, 1, WN_MAX_THREADS, NULL, &v)) return 2;
            threads = (int)v;
            break;
        case 's':
            if (wn_opt_real("bench-peak", "--seconds", optarg, 0.001, 60, &seconds)) return 2;
            break;
        case 'r':
            if (wn_opt_int("bench-peak", "--repeat", optarg, 1, 100, NULL, &v)) return 2;
            repeat = (int)v;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "wastenet bench-peak: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    print_cpu();
    double ghz = measure_ghz();
    printf("core clock under a dependent-multiply chain: %.2f GHz\n", ghz);
    printf("\n| kernel | instruction | 1 core, GFLOP per CPU-second | 1 thread, wall GFLOP/s "
           "| %d threads, wall GFLOP/s | %d threads, GFLOP per CPU-second x %d | FLOP/cycle/core |\n"
           "|---|---|---|---|---|---|---|\n", threads, threads, threads);
    for (size_t i = 0; i < sizeof peak_kernels / sizeof peak_kernels[0]; i++) {
        const peak_kernel *k = &peak_kernels[i];
        if (!isa_supported(k->isa)) {
            printf("| %s | %s | not on this CPU | | | | |\n", k->name, k->instruction);
            continue;
        }
        peak_rate one = measure(k, 1, seconds, repeat);
        peak_rate all = measure(k, threads, seconds, repeat);
        printf("| %s | %s | %.1f | %.1f | %.1f | %.1f | %.1f |\n", k->name, k->instruction,
               one.per_cpu_s, one.wall, all.wall, all.per_cpu_s * threads,
               ghz > 0 ? one.per_cpu_s / ghz : 0.0);
        fflush(stdout);
    }
    printf("\nPer CPU-second rates hold whatever else runs on the machine; wall rates fall with\n"
           "the share of the cores this process gets (load average now: see uptime).\n");
    return 0;
}
