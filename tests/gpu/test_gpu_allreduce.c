/* tests/gpu/test_gpu_allreduce.c — the CUDA backend's group entries on one GPU: it
 * joins a group of one rank (with NCCL: a communicator of size 1, its id through the
 * group's broadcast), sums a device buffer of 34,047,558 floats (InceptionResNetV2's
 * trainable weights at --fine-tune-at 500) and an odd-sized one in place on the compute
 * stream, and the values come back unchanged (a sum over one rank); the time of the
 * large one is printed. The same in buckets (allreduce_begin/end: NCCL on the comm
 * stream), as a data-parallel step sums its gradients during backward. The CPU backend's entries are checked the same way, with a
 * group whose host sum doubles the buffer (as two equal ranks would).
 * Exit: 0 passed, 1 failed, 77 skipped (no CUDA build or no usable GPU: the CPU part
 * still runs first). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/backends/cpu/backend_cpu.h"
#include "engine/backends/cuda/backend_cuda.h"
#include "engine/runtime/backend.h"
#include "engine/train/progress.h"
#include "host/base/error.h"

static int g_sum_calls, g_broadcasts;

static int double_it(void *user, float *buf, size_t n) { /* two ranks with equal buffers */
    (void)user;
    g_sum_calls++;
    for (size_t i = 0; i < n; i++) buf[i] *= 2.0f;
    return WN_OK;
}
static int identity(void *user, float *buf, size_t n) {
    (void)user, (void)buf, (void)n;
    g_sum_calls++;
    return WN_OK;
}
static int no_broadcast(void *user, void *buf, size_t bytes) {
    (void)user, (void)buf, (void)bytes;
    g_broadcasts++;
    return WN_OK;
}

/* Fills n floats with i % 1000 - 500, sums them over the group and expects factor *
 * that: in one allreduce_sum (parts 0), or through allreduce_begin / allreduce_end in
 * `parts` buckets from the top of the buffer down, as a data-parallel step begins them
 * during backward (with NCCL on the comm stream, overlapping; on the CPU at once). */
static int check_sum(wn_backend *be, size_t n, int parts, float factor, double *seconds) {
    float *h = malloc(n * sizeof *h);
    float *d = wn_backend_alloc(be, n * sizeof *d);
    int ok = h && d;
    if (ok) {
        for (size_t i = 0; i < n; i++) h[i] = (float)(i % 1000) - 500.0f;
        ok = wn_backend_copy_to_backend(be, d, h, n * sizeof *h) == WN_OK &&
             wn_backend_synchronize(be) == WN_OK;
    }
    double t0 = wn_clock_seconds();
    if (ok && parts == 0) ok = wn_backend_allreduce_sum(be, d, n) == WN_OK;
    size_t top = n;
    for (int b = 0; ok && b < parts; b++) {
        size_t first = b == parts - 1 ? 0 : n - (size_t)(b + 1) * (n / (size_t)parts);
        ok = wn_backend_allreduce_begin(be, d + first, top - first) == WN_OK;
        top = first;
    }
    if (ok && parts > 0) ok = wn_backend_allreduce_end(be) == WN_OK;
    if (ok) ok = wn_backend_synchronize(be) == WN_OK;
    if (seconds) *seconds = wn_clock_seconds() - t0;
    if (ok) ok = wn_backend_copy_to_host(be, h, d, n * sizeof *h) == WN_OK;
    size_t bad = 0;
    for (size_t i = 0; ok && i < n; i++) bad += h[i] != factor * ((float)(i % 1000) - 500.0f);
    if (!ok) fprintf(stderr, "%s: sum of %zu floats in %d bucket(s): %s\n", be->name, n,
                     parts ? parts : 1, wn_last_error());
    if (bad) fprintf(stderr, "%s: %zu of %zu values wrong after the sum in %d bucket(s)\n",
                     be->name, bad, n, parts ? parts : 1);
    wn_backend_free(be, d);
    free(h);
    return ok && !bad;
}

int main(void) {
    int failed = 0;
    wn_backend *cpu = wn_backend_cpu();
    wn_rank_group two = {0, 2, 0, NULL, double_it, no_broadcast};
    if (!cpu || wn_backend_join_group(cpu, &two) != WN_OK || !check_sum(cpu, 1001, 0, 2.0f, NULL) ||
        !check_sum(cpu, 1001, 7, 2.0f, NULL)) {
        fprintf(stderr, "FAIL cpu backend group sum\n");
        failed = 1;
    } else {
        printf("ok   cpu: allreduce_sum through the group's host sum, whole and in 7 buckets\n");
    }
    wn_backend_destroy(cpu);

    if (!wn_cuda_available()) {
        printf("skipped: no CUDA build or no usable GPU\n");
        return failed ? 1 : 77;
    }
    wn_backend *gpu = wn_backend_cuda(0, WN_PRECISION_FP32);
    wn_rank_group one = {0, 1, 0, NULL, identity, no_broadcast};
    g_sum_calls = g_broadcasts = 0;
    double secs = 0;
    if (!gpu || wn_backend_join_group(gpu, &one) != WN_OK) {
        fprintf(stderr, "FAIL cuda: join a group of one: %s\n", wn_last_error());
        failed = 1;
    } else if (!check_sum(gpu, 1001, 0, 1.0f, NULL) || !check_sum(gpu, 34047558, 0, 1.0f, &secs)) {
        fprintf(stderr, "FAIL cuda: allreduce_sum over a group of one\n");
        failed = 1;
    } else {
        double bsecs = 0;
        int bok = check_sum(gpu, 1001, 3, 1.0f, NULL) &&
                  check_sum(gpu, 34047558, 6, 1.0f, &bsecs);
        if (!bok) {
            fprintf(stderr, "FAIL cuda: allreduce_begin/end in buckets over a group of one\n");
            failed = 1;
        }
        printf("%s cuda: allreduce_sum over one rank (%s; the id broadcast %d time%s), "
               "136 MB in %.3f ms; in 6 buckets (%s) %.3f ms\n",
               bok ? "ok  " : "FAIL", g_sum_calls ? "host sum" : "NCCL", g_broadcasts,
               g_broadcasts == 1 ? "" : "s", secs * 1e3,
               wn_backend_allreduce_overlaps(gpu) ? "comm stream" : "at once", bsecs * 1e3);
    }
    wn_backend_destroy(gpu);
    return failed;
}
