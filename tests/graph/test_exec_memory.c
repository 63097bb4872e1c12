/* tests/graph/test_exec_memory.c — the executor's memory arithmetic
 * (engine/runtime/exec_internal.h: wn_exec_sizes_make, wn_exec_largest_batch,
 * wn_exec_fit_check), which refuses a plan that cannot fit in what the backend has
 * free and names the largest batch that would. A "small GPU" stands in for the CUDA
 * backend: the CPU backend's ops with the CUDA backend's memory rules (two upload
 * slots, 256-byte rounding, a 256 MiB reserve, cuDNN's convolution scratch from
 * kernels/conv/conv_cuda_plan.h), counted allocations and a settable amount of free
 * memory, so every memory path the GPU takes through the executor runs here:
 *  1. the byte counts are what the executor really allocates: the live bytes must
 *     equal the plan's `requested`, and the rounded sum + scratch + reserve its
 *     `needed` (plan_info.needed_bytes), the scratch covering a training step's
 *     augmentation (wn_augment_scratch_bytes), at creation and after a new boundary, for
 *     models with and without gamma, EfficientNet-Lite's preprocess terms, training
 *     and inference-only executors;
 *  2. memory grows with the batch for these models (what the bisection assumes);
 *  3. wn_exec_largest_batch against a linear scan of every batch, at budgets on,
 *     just below and between the per-batch needs, and at the extremes;
 *  4. wn_exec_fit_check: passes when the plan fits, and otherwise fails with a
 *     message that names the largest batch the linear scan found (or says that
 *     not even batch 1 fits);
 *  5. the executor itself: created with less free memory than its plan needs, it
 *     refuses before allocating anything, naming the largest batch; a new boundary
 *     that does not fit is refused and the executor keeps its previous plan. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/runtime/backend.h"
#include "engine/backends/cpu/backend_cpu.h"
#include "host/base/error.h"
#include "engine/runtime/exec_internal.h"
#include "engine/runtime/executor.h"
#include "engine/model/model.h"
#include "kernels/augment/augment.h"
#include "kernels/conv/conv_cuda_plan.h"
#include "tests/common/check.h"

#define MUST(call)                                                                       \
    do {                                                                                 \
        if ((call) != WN_OK) {                                                           \
            fprintf(stderr, "FAIL %s:%d: %s: %s\n", __FILE__, __LINE__, #call,           \
                    wn_last_error());                                                    \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)


static void expect(int ok, const char *fmt, const char *what, double a, double b) {
    printf("%s ", ok ? "ok  " : "FAIL");
    printf(fmt, what, a, b);
    printf("\n");
    if (!ok) test_failures++;
}

/* ---------------------------------------------------------------- counting backend */

static wn_backend *real;  /* the CPU backend doing the work */
static wn_backend small_gpu; /* real's ops and context with the CUDA memory rules */
static wn_backend_ops small_gpu_ops;
static size_t live_bytes, live_rounded;
static size_t free_memory = (size_t)-1; /* what small_gpu's memory() reports free */
static struct { void *p; size_t bytes; } blocks[64];
static int n_blocks;

static size_t rounded(size_t bytes) {
    return (bytes + small_gpu.alloc_align - 1) / small_gpu.alloc_align * small_gpu.alloc_align;
}

static void *count_alloc(wn_backend *be, size_t bytes) {
    (void)be;
    void *p = wn_backend_alloc(real, bytes);
    if (p && n_blocks < 64) {
        blocks[n_blocks].p = p, blocks[n_blocks].bytes = bytes, n_blocks++;
        live_bytes += bytes, live_rounded += rounded(bytes);
    } else if (p) {
        fprintf(stderr, "FAIL: more than 64 live allocations\n");
        exit(1);
    }
    return p;
}

static void count_free(wn_backend *be, void *p) {
    (void)be;
    for (int i = 0; i < n_blocks; i++)
        if (blocks[i].p == p) {
            live_bytes -= blocks[i].bytes, live_rounded -= rounded(blocks[i].bytes);
            blocks[i] = blocks[--n_blocks];
            break;
        }
    wn_backend_free(real, p);
}

static int small_memory(wn_backend *be, size_t *available, size_t *total) {
    (void)be;
    *available = free_memory > live_rounded ? free_memory - live_rounded : 0;
    *total = free_memory;
    return WN_OK;
}

static size_t small_conv_scratch(wn_backend *be, wn_conv_call call, const wn_conv_desc *d,
                                 int accumulate) {
    (void)be;
    return wn_conv_cuda_scratch_bytes(call, d, accumulate, WN_DTYPE_F32);
}

static size_t no_conv_scratch(wn_backend *be, wn_conv_call call, const wn_conv_desc *d,
                              int accumulate) {
    (void)be, (void)call, (void)d, (void)accumulate;
    return 0;
}

/* With convolutions that take no scratch, what is left is the augmentation's: a
 * training plan's scratch is exactly wn_augment_scratch_bytes (a second image and its
 * sums), an inference plan's none (it only preprocesses, in place). */
static void check_augment_scratch(const wn_model *m, int batch, const char *what) {
    small_gpu_ops.conv_scratch_bytes = no_conv_scratch;
    size_t want = wn_augment_scratch_bytes(batch, m->graph.in_h, m->graph.in_w, m->graph.in_c,
                                           small_gpu.alloc_align);
    for (int inference = 0; inference < 2; inference++) {
        wn_plan p;
        MUST(wn_plan_make(&p, m, batch, inference ? WN_EXEC_INFERENCE_ONLY : 0));
        wn_exec_sizes s;
        wn_exec_sizes_make(&small_gpu, m, &p, &s);
        wn_plan_free(&p);
        char label[160];
        snprintf(label, sizeof label, "%s: augmentation scratch (%s)", what,
                 inference ? "inference" : "training");
        size_t expected = inference ? 0 : want;
        expect(s.scratch == expected && want >= (size_t)batch * m->graph.in_h * m->graph.in_w *
                                                    m->graph.in_c * sizeof(float),
               "%-58s %.0f bytes, expected %.0f", label, (double)s.scratch, (double)expected);
    }
    small_gpu_ops.conv_scratch_bytes = small_conv_scratch;
}

static void small_gpu_make(void) {
    small_gpu_ops = *real->ops;
    small_gpu_ops.alloc = count_alloc;
    small_gpu_ops.free = count_free;
    small_gpu_ops.memory = small_memory;
    small_gpu_ops.conv_scratch_bytes = small_conv_scratch;
    small_gpu = *real;
    small_gpu.ops = &small_gpu_ops;
    small_gpu.name = "small-gpu";
    small_gpu.kind = WN_BACKEND_CUDA; /* its messages speak of GPU memory */
    small_gpu.upload_slots = 2;
    small_gpu.alloc_align = 256;
    small_gpu.reserve_bytes = (size_t)256 << 20;
}

/* ---------------------------------------------------------------- helpers */

/* The bytes an executor for `batch` at the model's current boundary needs free. */
static size_t needed_bytes(const wn_model *m, int batch, unsigned flags) {
    wn_plan p;
    MUST(wn_plan_make(&p, m, batch, flags));
    wn_exec_sizes s;
    wn_exec_sizes_make(&small_gpu, m, &p, &s);
    wn_plan_free(&p);
    return s.needed;
}

/* The executor's live allocations against its own plan's byte counts. */
static void check_counts(wn_executor *ex, const wn_model *m, const char *what) {
    wn_plan_info info;
    wn_executor_plan_info(ex, &info);
    wn_plan p;
    MUST(wn_plan_make(&p, m, info.batch, 0));
    wn_exec_sizes s;
    wn_exec_sizes_make(&small_gpu, m, &p, &s);
    wn_plan_free(&p);
    char label[160];
    snprintf(label, sizeof label, "%s: allocated", what);
    expect(live_bytes == info.total_bytes, "%-58s %.0f bytes, plan says %.0f", label,
           (double)live_bytes, (double)info.total_bytes);
    snprintf(label, sizeof label, "%s: bytes needed", what);
    size_t needed = live_rounded + s.scratch + small_gpu.reserve_bytes;
    expect(needed == info.needed_bytes, "%-58s %.0f, plan says %.0f", label, (double)needed,
           (double)info.needed_bytes);
}

/* Part 1 for one model: create at `batch`, re-plan at a second boundary. */
static void check_model(wn_backend *counting, const char *arch, int size, int batch,
                        int ft_first, int ft_second, unsigned flags) {
    wn_model m;
    MUST(wn_model_create(&m, arch, size, size, 6, 3));
    MUST(wn_model_set_fine_tune(&m, ft_first));
    wn_executor *ex;
    MUST(wn_executor_create(&ex, &m, counting, batch, flags));
    char what[120];
    snprintf(what, sizeof what, "%s %dx%d batch %d ft %d%s", arch, size, size, batch, ft_first,
             flags & WN_EXEC_INFERENCE_ONLY ? " inference" : "");
    check_augment_scratch(&m, batch, what);
    if (flags & WN_EXEC_INFERENCE_ONLY) {
        wn_plan_info info;
        wn_executor_plan_info(ex, &info);
        expect(live_bytes == info.total_bytes, "%-58s %.0f bytes, plan says %.0f", what,
               (double)live_bytes, (double)info.total_bytes);
    } else {
        check_counts(ex, &m, what);
        MUST(wn_executor_set_fine_tune(ex, ft_second));
        snprintf(what, sizeof what, "%s %dx%d batch %d re-planned at ft %d", arch, size, size,
                 batch, ft_second);
        check_counts(ex, &m, what);
    }
    wn_executor_destroy(ex);
    expect(live_bytes == 0 && n_blocks == 0, "%-58s %.0f bytes in %.0f blocks left",
           "destroy frees everything", (double)live_bytes, (double)n_blocks);
    wn_model_free(&m);
}

/* Parts 2-4 for one model at its current boundary, batches 1..max_batch. */
static void check_search(const wn_model *m, const char *what, int max_batch) {
    size_t *need = malloc((size_t)(max_batch + 2) * sizeof(size_t));
    for (int b = 1; b <= max_batch + 1; b++) need[b] = needed_bytes(m, b, 0);
    int monotone = 1;
    for (int b = 2; b <= max_batch + 1; b++) monotone &= need[b] > need[b - 1];
    char label[160];
    snprintf(label, sizeof label, "%s: memory grows with the batch (1..%d)", what, max_batch + 1);
    expect(monotone, "%-58s %.1f MiB .. %.1f MiB", label, need[1] / 1048576.0,
           need[max_batch + 1] / 1048576.0);

    /* Budgets: exactly each need, one byte below, halfway to the next; extremes. */
    int checked = 0, wrong = 0;
    for (int b = 1; b <= max_batch; b++) {
        size_t budgets[3] = {need[b], need[b] - 1, need[b] + (need[b + 1] - need[b]) / 2};
        for (int k = 0; k < 3; k++) {
            int scan = 0; /* linear scan: the largest batch whose need fits */
            for (int c = 1; c <= max_batch; c++)
                if (need[c] <= budgets[k]) scan = c;
            int got;
            MUST(wn_exec_largest_batch(&small_gpu, m, 0, budgets[k], max_batch, &got));
            checked++;
            if (got != scan) {
                wrong++;
                printf("     budget %zu: bisection %d, scan %d\n", budgets[k], got, scan);
            }
        }
    }
    int got_none, got_all;
    MUST(wn_exec_largest_batch(&small_gpu, m, 0, need[1] - 1, max_batch, &got_none));
    MUST(wn_exec_largest_batch(&small_gpu, m, 0, (size_t)-1, max_batch, &got_all));
    snprintf(label, sizeof label, "%s: largest batch = linear scan", what);
    expect(wrong == 0 && got_none == 0 && got_all == max_batch,
           "%-58s %.0f budgets, %.0f wrong", label, (double)checked + 2,
           (double)(wrong + (got_none != 0) + (got_all != max_batch)));

    /* The refusal names the scan's answer. */
    wn_plan p;
    MUST(wn_plan_make(&p, m, max_batch, 0));
    int fits_ok = wn_exec_fit_check(&small_gpu, m, &p, need[max_batch]) == WN_OK;
    snprintf(label, sizeof label, "%s: batch %d fits in its own need", what, max_batch);
    expect(fits_ok, "%-58s %.0f / %.0f", label, (double)need[max_batch], (double)need[max_batch]);
    int target = max_batch / 3 > 0 ? max_batch / 3 : 1;
    int refused = wn_exec_fit_check(&small_gpu, m, &p, need[target] + 1) != WN_OK;
    char want[80];
    snprintf(want, sizeof want, "the largest batch that fits is %d: use --batch %d", target,
             target);
    const char *msg = wn_last_error();
    int named = refused && strstr(msg, want) && strstr(msg, "out of GPU memory on small-gpu");
    snprintf(label, sizeof label, "%s: refusal names batch %d", what, target);
    expect(named, "%-58s (%.0f, %.0f)", label, (double)refused, (double)target);
    if (refused) printf("     message: %s\n", msg);
    int none = wn_exec_fit_check(&small_gpu, m, &p, need[1] / 2) != WN_OK &&
               strstr(wn_last_error(), "not even batch 1 fits");
    snprintf(label, sizeof label, "%s: below batch 1's need", what);
    expect(none, "%-58s (%.0f, %.0f)", label, (double)none, 1.0);
    wn_plan_free(&p);
    free(need);
}

/* Part 5: the executor's own refusals, with small_gpu reporting little free memory. */
static void check_executor_refusals(wn_model *m) {
    size_t need8 = needed_bytes(m, 8, 0), need3 = needed_bytes(m, 3, 0);
    free_memory = need3 + (needed_bytes(m, 4, 0) - need3) / 2; /* batch 3 fits, 4 not */
    wn_executor *ex = NULL;
    int refused = wn_executor_create(&ex, m, &small_gpu, 8, 0) != WN_OK;
    const char *msg = wn_last_error();
    int named = refused && strstr(msg, "use --batch 3") && live_bytes == 0;
    expect(named, "%-58s need %.0f MiB, free %.0f MiB", "create refuses, names batch 3, allocates nothing",
           need8 / 1048576.0, free_memory / 1048576.0);
    if (refused) printf("     message: %s\n", msg);
    if (!refused) wn_executor_destroy(ex);

    /* batch 3 fits; a boundary that trains everything does not: refused, old plan kept */
    int old = m->fine_tune_at;
    MUST(wn_executor_create(&ex, m, &small_gpu, 3, 0));
    size_t held = live_bytes;
    wn_plan_info info;
    wn_executor_plan_info(ex, &info);
    free_memory = info.needed_bytes + ((size_t)1 << 20); /* this plan, and 1 MiB more */
    int kept = wn_executor_set_fine_tune(ex, 0) != WN_OK && m->fine_tune_at == old &&
               live_bytes == held;
    expect(kept, "%-58s %.0f, %.0f", "new boundary refused, previous plan kept",
           (double)m->fine_tune_at, (double)old);
    wn_executor_destroy(ex);
    free_memory = (size_t)-1;
}

int main(void) {
    real = wn_backend_cpu();
    if (!real) MUST(WN_ERR);
    small_gpu_make();
    wn_backend *counting = &small_gpu;

    printf("-- allocations = plan\n");
    check_model(counting, "tiny_cnn", 32, 8, WN_FINE_TUNE_NONE, 0, 0);
    check_model(counting, "tiny_cnn", 32, 8, 4, 0, WN_EXEC_INFERENCE_ONLY);
    check_model(counting, "efficientnet_lite0", 64, 4, WN_FINE_TUNE_NONE, 100, 0);
    check_model(counting, "irv2", 75, 2, 500, 0, 0);

    printf("-- largest batch\n");
    wn_model m;
    MUST(wn_model_create(&m, "tiny_cnn", 32, 32, 6, 3));
    MUST(wn_model_set_fine_tune(&m, 0));
    check_search(&m, "tiny_cnn 32x32 ft all", 40);
    wn_model_free(&m);
    MUST(wn_model_create(&m, "efficientnet_lite0", 64, 64, 6, 3));
    MUST(wn_model_set_fine_tune(&m, 100));
    check_search(&m, "efficientnet_lite0 64x64 ft 100", 12);
    check_executor_refusals(&m);
    wn_model_free(&m);

    wn_backend_destroy(real);
    if (test_failures) {
        printf("%d check(s) failed\n", test_failures);
        return 1;
    }
    printf("executor memory plan: allocations, largest batch and refusal all agree\n");
    return 0;
}
