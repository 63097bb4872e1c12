/* engine/runtime/parity.c — the harness of the GPU parity suite (see parity.h). */
#include "engine/runtime/parity.h"
#include "host/base/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/base/error.h"

static uint64_t rng_state = 0x853c49e6748fea9bull;

void parity_seed(uint64_t seed) { rng_state = seed ? seed : 0x853c49e6748fea9bull; }

uint64_t parity_rand_u64(void) {
    return wn_splitmix64(&rng_state);
}

float parity_uniform(float lo, float hi) {
    return lo + (hi - lo) * (float)((parity_rand_u64() >> 40) * (1.0 / 16777216.0));
}

int parity_selected(const parity_suite *s, const char *op) {
    return !s->filter || strstr(op, s->filter) != NULL;
}

int pbuf_new(parity_suite *s, pbuf *b, size_t bytes) {
    memset(b, 0, sizeof *b);
    b->bytes = bytes;
    b->host = malloc(bytes ? bytes : 1);
    b->cpu = wn_backend_alloc(s->cpu, bytes);
    size_t guard = PARITY_GUARD * sizeof(float);
    /* The trailing guard starts at the next float boundary: a uint8 buffer of odd size
     * would otherwise put its floats at a misaligned address (UBSan; a CUDA error). */
    size_t data = (bytes + sizeof(float) - 1) / sizeof(float) * sizeof(float);
    b->gpu_base = wn_backend_alloc(s->gpu, data + 2 * guard);
    if (!b->host || !b->cpu || !b->gpu_base) {
        char why[300];
        snprintf(why, sizeof why, "allocating %zu bytes failed: %s", bytes, wn_last_error());
        parity_fail(s, "alloc", "", why);
        return WN_ERR;
    }
    b->gpu = (char *)b->gpu_base + guard;
    /* sentinels before and after the GPU buffer */
    if (wn_backend_fill(s->gpu, (float *)b->gpu_base, PARITY_GUARD, PARITY_SENTINEL) != WN_OK ||
        wn_backend_fill(s->gpu, (float *)((char *)b->gpu + data), PARITY_GUARD, PARITY_SENTINEL) !=
            WN_OK) {
        parity_fail(s, "fill guards", "", wn_last_error());
        return WN_ERR;
    }
    return WN_OK;
}

void pbuf_free(parity_suite *s, pbuf *b) {
    free(b->host);
    if (b->cpu) wn_backend_free(s->cpu, b->cpu);
    if (b->gpu_base) wn_backend_free(s->gpu, b->gpu_base);
    memset(b, 0, sizeof *b);
}

int pbuf_upload(parity_suite *s, pbuf *b) {
    if (wn_backend_copy_to_backend(s->cpu, b->cpu, b->host, b->bytes) != WN_OK ||
        wn_backend_copy_to_backend(s->gpu, b->gpu, b->host, b->bytes) != WN_OK) {
        parity_fail(s, "upload", "", wn_last_error());
        return WN_ERR;
    }
    return WN_OK;
}

int pbuf_random(parity_suite *s, pbuf *b, float lo, float hi) {
    float *h = (float *)b->host;
    for (size_t i = 0; i < b->bytes / sizeof(float); i++) h[i] = parity_uniform(lo, hi);
    return pbuf_upload(s, b);
}

int pbuf_poison(parity_suite *s, pbuf *b) {
    size_t n = b->bytes / sizeof(float);
    if (wn_backend_fill(s->cpu, (float *)b->cpu, n, NAN) != WN_OK ||
        wn_backend_fill(s->gpu, (float *)b->gpu, n, NAN) != WN_OK) {
        parity_fail(s, "poison", "", wn_last_error());
        return WN_ERR;
    }
    return WN_OK;
}

void parity_fail(parity_suite *s, const char *op, const char *shape, const char *why) {
    s->cases++;
    s->fails++;
    printf("FAIL %-24s %-44s [%s] %s\n", op, shape, s->precision, why);
    fflush(stdout);
}

void parity_compare(parity_suite *s, const char *op, const char *shape, pbuf *b, double tol) {
    size_t n = b->bytes / sizeof(float);
    size_t guard = PARITY_GUARD * sizeof(float);
    float *ref = malloc(b->bytes ? b->bytes : 1);
    float *got = malloc(b->bytes + 2 * guard);
    if (!ref || !got) {
        parity_fail(s, op, shape, "out of host memory");
        free(ref), free(got);
        return;
    }
    if (wn_backend_copy_to_host(s->cpu, ref, b->cpu, b->bytes) != WN_OK ||
        wn_backend_copy_to_host(s->gpu, got, b->gpu_base, b->bytes + 2 * guard) != WN_OK) {
        parity_fail(s, op, shape, wn_last_error());
        free(ref), free(got);
        return;
    }
    parity_compare_host(s, op, shape, ref, got, n, tol);
    free(ref), free(got);
}

void parity_compare_host(parity_suite *s, const char *op, const char *shape, const float *ref,
                         const float *got, size_t n, double tol) {
    char why[256] = "";
    const float *g = got + PARITY_GUARD;
    double diff2 = 0.0, ref2 = 0.0, max_abs = 0.0, max_got = 0.0;
    size_t bad = n, ref_bad = n;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(g[i]) && bad == n) bad = i;
        if (!isfinite(ref[i]) && ref_bad == n) ref_bad = i;
        double d = (double)g[i] - (double)ref[i];
        diff2 += d * d;
        ref2 += (double)ref[i] * ref[i];
        if (fabs(d) > max_abs) max_abs = fabs(d);
        if (fabs(g[i]) > max_got) max_got = fabs(g[i]);
    }
    for (int i = 0; i < PARITY_GUARD && !why[0]; i++)
        if (got[i] != PARITY_SENTINEL || g[n + i] != PARITY_SENTINEL)
            snprintf(why, sizeof why, "guard overwritten %s the output (offset %d)",
                     got[i] != PARITY_SENTINEL ? "before" : "after", i);
    double err = ref2 > 0.0 ? sqrt(diff2 / ref2) : max_got;
    if (!why[0] && ref_bad != n)
        snprintf(why, sizeof why, "the CPU reference has a non-finite value at %zu (test bug)",
                 ref_bad);
    if (!why[0] && bad != n)
        snprintf(why, sizeof why, "non-finite GPU value %g at %zu of %zu (unwritten output?)",
                 (double)g[bad], bad, n);
    if (!why[0] && (tol == 0.0 ? max_abs != 0.0 : !(err <= tol)))
        snprintf(why, sizeof why, "error %.3e > tol %.0e (max abs diff %.3e)", err, tol, max_abs);
    s->cases++;
    double ratio = tol > 0.0 ? err / tol : (max_abs == 0.0 ? 0.0 : INFINITY);
    if (!why[0] && ratio > s->worst_ratio) {
        s->worst_ratio = ratio;
        snprintf(s->worst_case, sizeof s->worst_case, "%s %s [%s] err %.2e", op, shape,
                 s->precision, err);
    }
    if (why[0]) {
        s->fails++;
        if (s->silent < 2) printf("FAIL %-24s %-44s [%s] %s\n", op, shape, s->precision, why);
    } else if (!s->silent && !s->quiet) {
        printf("ok   %-24s %-44s [%s] err %.2e (tol %.0e)\n", op, shape, s->precision, err, tol);
    }
    fflush(stdout);
}
