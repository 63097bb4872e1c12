/* tests/graph/test_grad_buckets.c — the gradient buckets of a data-parallel step
 * (engine/runtime/grad_buckets.c, used by engine/runtime/executor.c):
 *  1. the plan: for InceptionResNetV2 (75x75) and EfficientNet-Lite0 (64x64), at the
 *     notebook's boundary and with everything trainable, and for bucket sizes from one
 *     float to more than the whole buffer, the buckets cover the gradient buffer once,
 *     from the top down, in backward's order, each at least the bucket size but the
 *     last;
 *  2. running them (CPU backend, float32, a step of 3 images at places 0..2 of a batch
 *     of 6, in a group whose host sum doubles the buffer, as two ranks with the same
 *     images would): every bucket is begun once, after backward's last write into it
 *     (its floats, snapshotted at the begin, are unchanged when the step ends them),
 *     and the summed gradients are == those of the same step summed in one piece after
 *     backward (a bucket summed early, twice or never would differ). Against one
 *     process on the whole batch (dropout's masks differ by place): tests/mpi.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/backends/cpu/backend_cpu.h"
#include "engine/model/model.h"
#include "engine/runtime/backend.h"
#include "engine/runtime/exec_internal.h"
#include "engine/runtime/executor.h"
#include "host/base/error.h"
#include "tests/common/check.h"
#include "tests/common/rng.h"

static void check_buckets(const char *arch, int size, int boundary) {
    wn_model m;
    CHECK_OK(wn_model_create(&m, arch, size, size, 6, 3));
    CHECK_OK(wn_model_set_fine_tune(&m, boundary));
    wn_plan p;
    CHECK_OK(wn_plan_make(&p, &m, 2, 0));
    size_t trainable = wn_model_trainable_count(&m);
    const size_t sizes[] = {1, 4096, (size_t)1 << 20, (size_t)25 << 18, trainable + 1};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        wn_grad_bucket *b;
        int n;
        CHECK_OK(wn_grad_buckets_make(&p, &m.graph, m.trainable_first, trainable, sizes[si], &b,
                                      &n));
        size_t top = trainable;
        int bad_cover = 0, bad_size = 0, bad_order = 0;
        for (int i = 0; i < n; i++) {
            bad_cover += b[i].count == 0 || b[i].first + b[i].count != top;
            bad_size += i < n - 1 && b[i].count < sizes[si];
            bad_order += i > 0 && b[i].after_step > b[i - 1].after_step;
            top = b[i].first;
        }
        CHECK(n > 0 && top == 0 && !bad_cover, "%s boundary %d, buckets of %zu floats: %d buckets "
              "do not cover [0, %zu) once from the top (%d gaps, lowest start %zu)",
              arch, boundary, sizes[si], n, trainable, bad_cover, top);
        CHECK(!bad_size, "%s boundary %d: %d buckets smaller than %zu floats before the last",
              arch, boundary, bad_size, sizes[si]);
        CHECK(!bad_order, "%s boundary %d: %d buckets out of backward's order", arch, boundary,
              bad_order);
        CHECK(sizes[si] <= trainable || n == 1, "%s: %d buckets of more than the whole buffer",
              arch, n);
        printf("%s %s fine-tune-at %d, buckets of %zu floats: %d, cover the %zu gradients\n",
               n > 0 && top == 0 && !bad_cover && !bad_size && !bad_order ? "ok  " : "FAIL",
               arch, boundary, sizes[si], n, trainable);
        free(b);
    }
    wn_grad_bucket *none = (wn_grad_bucket *)&m;
    int n_none = -1;
    CHECK_OK(wn_grad_buckets_make(&p, &m.graph, m.trainable_first, trainable, 0, &none, &n_none));
    CHECK(none == NULL && n_none == 0, "%s: bucket size 0 gave %d buckets", arch, n_none);
    wn_plan_free(&p);
    wn_model_free(&m);
}

/* ---- a CPU backend whose begun sums are recorded */

enum { MAX_RECORDS = 4096 };
static struct {
    float *x[MAX_RECORDS];
    float *snapshot[MAX_RECORDS];
    size_t count[MAX_RECORDS];
    int n, ends, changed_after_begin;
    const wn_backend_ops *cpu;
} g_rec;

static int rec_begin(wn_backend *be, float *x, size_t count) {
    if (g_rec.n == MAX_RECORDS) return wn_fail("test: too many buckets");
    if (g_rec.cpu->allreduce_sum(be, x, count) != WN_OK) return WN_ERR;
    float *snap = malloc(count * sizeof *snap);
    if (!snap) return wn_fail("test: out of memory");
    memcpy(snap, x, count * sizeof *snap);
    int k = g_rec.n++;
    g_rec.x[k] = x, g_rec.snapshot[k] = snap, g_rec.count[k] = count;
    return WN_OK;
}

static int rec_end(wn_backend *be) {
    (void)be;
    g_rec.ends++;
    for (int k = 0; k < g_rec.n; k++)
        if (memcmp(g_rec.x[k], g_rec.snapshot[k], g_rec.count[k] * sizeof(float)))
            g_rec.changed_after_begin++;
    return WN_OK;
}

static void rec_clear(void) {
    for (int k = 0; k < g_rec.n; k++) free(g_rec.snapshot[k]);
    g_rec.n = g_rec.ends = g_rec.changed_after_begin = 0;
}

static int double_it(void *user, float *buf, size_t n) { /* two ranks with equal buffers */
    (void)user;
    for (size_t i = 0; i < n; i++) buf[i] *= 2.0f;
    return WN_OK;
}
static int no_broadcast(void *user, void *buf, size_t bytes) {
    (void)user, (void)buf, (void)bytes;
    return WN_OK;
}

static size_t count_unequal(const float *a, const float *b, size_t n) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += !(a[i] == b[i]);
    return bad;
}

/* The summed gradients of one rank's step (its n images at places 0..n-1 of 2n) in
 * buckets of `bucket` bytes (0: one sum after backward). */
static float *step_grads(wn_backend *be, wn_model *m, const uint8_t *img, const int32_t *labels,
                         int n, size_t bucket, int *buckets) {
    wn_executor *ex;
    CHECK_OK(wn_executor_create(&ex, m, be, 2 * n, 0));
    CHECK_OK(wn_executor_set_grad_buckets(ex, bucket));
    *buckets = wn_executor_grad_buckets(ex);
    wn_step_part part = {2 * n, 0};
    CHECK_OK(wn_executor_train_step_part(ex, img, labels, n, NULL, 42, &part,
                                         &WN_ADAM_KERAS(1e-3f), NULL, NULL));
    size_t ng = wn_model_trainable_count(m);
    float *g = test_alloc_f(ng);
    CHECK_OK(wn_executor_read_grads(ex, g));
    wn_executor_destroy(ex);
    return g;
}

static void check_run(const char *arch, int size, int boundary) {
    enum { N = 3 };
    wn_model m;
    CHECK_OK(wn_model_create(&m, arch, size, size, 6, 5));
    CHECK_OK(wn_model_set_fine_tune(&m, boundary));
    size_t npix = (size_t)N * size * size * 3, ng = wn_model_trainable_count(&m);
    uint8_t *img = malloc(npix);
    int32_t labels[N] = {2, 0, 5};
    rng_seed(321);
    for (size_t i = 0; i < npix; i++) img[i] = (uint8_t)rng_int(0, 255);

    wn_backend *grouped = wn_backend_cpu();
    if (!grouped) {
        fprintf(stderr, "FAIL: %s\n", wn_last_error());
        exit(1);
    }
    wn_rank_group two = {0, 2, 0, NULL, double_it, no_broadcast};
    CHECK_OK(wn_backend_join_group(grouped, &two));
    static wn_backend_ops rec_ops;
    g_rec.cpu = grouped->ops;
    rec_ops = *grouped->ops;
    rec_ops.allreduce_begin = rec_begin, rec_ops.allreduce_end = rec_end;
    grouped->ops = &rec_ops;

    int nb_one, nb_buckets;
    float *one = step_grads(grouped, &m, img, labels, N, 0, &nb_one);
    CHECK(g_rec.n == 0 && g_rec.ends == 0, "%s: one sum after backward began %d buckets", arch,
          g_rec.n);
    rec_clear();
    float *bucketed = step_grads(grouped, &m, img, labels, N, (size_t)1 << 20, &nb_buckets);

    float *lowest = NULL;
    size_t covered = 0;
    for (int k = 0; k < g_rec.n; k++) {
        covered += g_rec.count[k];
        if (!lowest || g_rec.x[k] < lowest) lowest = g_rec.x[k];
    }
    int contiguous = 1;
    for (int k = 1; k < g_rec.n; k++) contiguous &= g_rec.x[k] + g_rec.count[k] == g_rec.x[k - 1];
    CHECK(nb_buckets > 1 && g_rec.n == nb_buckets && g_rec.ends == 1,
          "%s: %d buckets planned, %d begun, %d ends", arch, nb_buckets, g_rec.n, g_rec.ends);
    CHECK(covered == ng && contiguous, "%s: the buckets begun cover %zu of %zu gradients%s", arch,
          covered, ng, contiguous ? "" : ", not one after the other from the top");
    CHECK(g_rec.changed_after_begin == 0, "%s: %d buckets were written after their sum began",
          arch, g_rec.changed_after_begin);
    size_t d_one = count_unequal(bucketed, one, ng);
    CHECK(d_one == 0, "%s: %zu of %zu gradients differ bucketed / one sum", arch, d_one, ng);
    printf("%s %s %dx%d fine-tune-at %d: %d buckets of 1 MiB, each begun after its last write; "
           "gradients == one sum's (%zu)\n",
           g_rec.changed_after_begin || d_one || g_rec.n != nb_buckets ? "FAIL" : "ok  ", arch,
           size, size, boundary, g_rec.n, ng);
    rec_clear();
    free(one), free(bucketed), free(img);
    grouped->ops = g_rec.cpu;
    wn_backend_destroy(grouped);
    wn_model_free(&m);
}

int main(void) {
    check_buckets("irv2", 75, 500);
    check_buckets("irv2", 75, 0);
    check_buckets("efficientnet_lite0", 64, 60);
    check_buckets("efficientnet_lite0", 64, 0);
    check_run("irv2", 75, 500);
    check_run("efficientnet_lite0", 64, 0);
    return test_finish("test_grad_buckets");
}
