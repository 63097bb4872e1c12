/* tests/graph/test_exec_memory.c — the executor's device-memory arithmetic
 * (engine/exec_internal.h: wn_exec_sizes_make, wn_exec_largest_batch,
 * wn_exec_fit_check), which the CUDA backend uses to refuse a plan that cannot fit
 * and to name the largest batch that would. Host-side logic, so it runs on the CPU:
 *  1. the byte counts are what the executor really allocates: a CPU backend whose
 *     alloc/free are counted stands in for the GPU; the live bytes must equal the
 *     plan's `requested`, and the arena-rounded sum + the second image buffer of the
 *     CUDA backend + scratch + workspace reserve its `device` (plan_info.device_bytes),
 *     at creation and after a new boundary, for
 *     models with and without gamma, EfficientNet-Lite's preprocess terms, training
 *     and inference-only executors;
 *  2. memory grows with the batch for these models (what the bisection assumes);
 *  3. wn_exec_largest_batch against a linear scan of every batch, at budgets on,
 *     just below and between the per-batch needs, and at the extremes;
 *  4. wn_exec_fit_check: passes when the plan fits, and otherwise fails with a
 *     message that names the largest batch the linear scan found (or says that
 *     not even batch 1 fits). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/backend.h"
#include "engine/error.h"
#include "engine/exec_internal.h"
#include "engine/executor.h"
#include "engine/model.h"

#define MUST(call)                                                                       \
    do {                                                                                 \
        if ((call) != WN_OK) {                                                           \
            fprintf(stderr, "FAIL %s:%d: %s: %s\n", __FILE__, __LINE__, #call,           \
                    wn_last_error());                                                    \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

static int failures;

static void expect(int ok, const char *fmt, const char *what, double a, double b) {
    printf("%s ", ok ? "ok  " : "FAIL");
    printf(fmt, what, a, b);
    printf("\n");
    if (!ok) failures++;
}

/* ---------------------------------------------------------------- counting backend */

static wn_backend *real;  /* the CPU backend doing the work */
static size_t live_bytes, live_rounded;
static struct { void *p; size_t bytes; } blocks[64];
static int n_blocks;

static size_t rounded(size_t bytes) {
    return (bytes + WN_EXEC_ALLOC_ALIGN - 1) / WN_EXEC_ALLOC_ALIGN * WN_EXEC_ALLOC_ALIGN;
}

static void *count_alloc(wn_backend *be, size_t bytes) {
    (void)be;
    void *p = real->alloc(real, bytes);
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
    real->free(real, p);
}

/* ---------------------------------------------------------------- helpers */

/* The device bytes of an executor for `batch` at the model's current boundary. */
static size_t device_bytes(const wn_model *m, int batch, unsigned flags, int buffers) {
    wn_plan p;
    MUST(wn_plan_make(&p, m, batch, flags));
    wn_exec_sizes s;
    wn_exec_sizes_make(m, &p, buffers, &s);
    wn_plan_free(&p);
    return s.device;
}

/* The executor's live allocations against its own plan's byte counts. */
static void check_counts(wn_executor *ex, const wn_model *m, const char *what) {
    wn_plan_info info;
    wn_executor_plan_info(ex, &info);
    wn_plan p;
    MUST(wn_plan_make(&p, m, info.batch, 0));
    wn_exec_sizes s;
    wn_exec_sizes_make(m, &p, 1, &s);
    wn_plan_free(&p);
    char label[160];
    snprintf(label, sizeof label, "%s: allocated", what);
    expect(live_bytes == info.total_bytes, "%-58s %.0f bytes, plan says %.0f", label,
           (double)live_bytes, (double)info.total_bytes);
    snprintf(label, sizeof label, "%s: device bytes", what);
    /* the CUDA backend's plan: what the CPU allocated + the second image buffer */
    size_t device = live_rounded + rounded(s.images) + s.scratch + WN_EXEC_WORKSPACE_RESERVE;
    expect(device == info.device_bytes, "%-58s %.0f, plan says %.0f", label, (double)device,
           (double)info.device_bytes);
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
static void check_search(const wn_model *m, const char *what, int max_batch, int buffers) {
    size_t *need = malloc((size_t)(max_batch + 2) * sizeof(size_t));
    for (int b = 1; b <= max_batch + 1; b++) need[b] = device_bytes(m, b, 0, buffers);
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
            MUST(wn_exec_largest_batch(m, 0, buffers, budgets[k], max_batch, &got));
            checked++;
            if (got != scan) {
                wrong++;
                printf("     budget %zu: bisection %d, scan %d\n", budgets[k], got, scan);
            }
        }
    }
    int got_none, got_all;
    MUST(wn_exec_largest_batch(m, 0, buffers, need[1] - 1, max_batch, &got_none));
    MUST(wn_exec_largest_batch(m, 0, buffers, (size_t)-1, max_batch, &got_all));
    snprintf(label, sizeof label, "%s: largest batch = linear scan", what);
    expect(wrong == 0 && got_none == 0 && got_all == max_batch,
           "%-58s %.0f budgets, %.0f wrong", label, (double)checked + 2,
           (double)(wrong + (got_none != 0) + (got_all != max_batch)));

    /* The refusal names the scan's answer. */
    wn_plan p;
    MUST(wn_plan_make(&p, m, max_batch, 0));
    int fits_ok = wn_exec_fit_check(m, &p, buffers, need[max_batch]) == WN_OK;
    snprintf(label, sizeof label, "%s: batch %d fits in its own need", what, max_batch);
    expect(fits_ok, "%-58s %.0f / %.0f", label, (double)need[max_batch], (double)need[max_batch]);
    int target = max_batch / 3 > 0 ? max_batch / 3 : 1;
    int refused = wn_exec_fit_check(m, &p, buffers, need[target] + 1) != WN_OK;
    char want[80];
    snprintf(want, sizeof want, "the largest batch that fits is %d: use --batch %d", target,
             target);
    const char *msg = wn_last_error();
    int named = refused && strstr(msg, want) && strstr(msg, "out of GPU memory");
    snprintf(label, sizeof label, "%s: refusal names batch %d", what, target);
    expect(named, "%-58s (%.0f, %.0f)", label, (double)refused, (double)target);
    if (refused) printf("     message: %s\n", msg);
    int none = wn_exec_fit_check(m, &p, buffers, need[1] / 2) != WN_OK &&
               strstr(wn_last_error(), "not even batch 1 fits");
    snprintf(label, sizeof label, "%s: below batch 1's need", what);
    expect(none, "%-58s (%.0f, %.0f)", label, (double)none, 1.0);
    wn_plan_free(&p);
    free(need);
}

int main(void) {
    real = wn_backend_cpu();
    if (!real) MUST(WN_ERR);
    wn_backend counting = *real; /* same ops and context, counted memory */
    counting.alloc = count_alloc;
    counting.free = count_free;

    printf("-- allocations = plan\n");
    check_model(&counting, "tiny_cnn", 32, 8, WN_FINE_TUNE_NONE, 0, 0);
    check_model(&counting, "tiny_cnn", 32, 8, 4, 0, WN_EXEC_INFERENCE_ONLY);
    check_model(&counting, "efficientnet_lite0", 64, 4, WN_FINE_TUNE_NONE, 100, 0);
    check_model(&counting, "irv2", 75, 2, 500, 0, 0);

    printf("-- largest batch\n");
    wn_model m;
    MUST(wn_model_create(&m, "tiny_cnn", 32, 32, 6, 3));
    MUST(wn_model_set_fine_tune(&m, 0));
    check_search(&m, "tiny_cnn 32x32 ft all", 40, 2);
    wn_model_free(&m);
    MUST(wn_model_create(&m, "efficientnet_lite0", 64, 64, 6, 3));
    MUST(wn_model_set_fine_tune(&m, 100));
    check_search(&m, "efficientnet_lite0 64x64 ft 100", 12, 2);
    wn_model_free(&m);

    real->destroy(real);
    if (failures) {
        printf("%d check(s) failed\n", failures);
        return 1;
    }
    printf("executor memory plan: allocations, largest batch and refusal all agree\n");
    return 0;
}
