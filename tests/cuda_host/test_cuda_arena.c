/* tests/cuda_host/test_cuda_arena.c — the CUDA backend's device arena, on the CPU.
 *
 * Chunks come from malloc instead of cudaMalloc; every block is filled with a tag
 * byte and checked before it is freed, so overlapping blocks are caught, and
 * wn_arena_check verifies the bookkeeping after every operation of a random
 * alloc/free sequence. Also: out-of-memory from the chunk allocator gives a reason
 * and leaves the arena usable, foreign pointers are refused, freed space is reused
 * without new chunks, and release returns every chunk. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/common/cuda_arena.h"
#include "host/base/error.h"
#include "tests/common/rng.h"

typedef struct fake_device {
    size_t limit;       /* bytes the "device" has */
    size_t allocated;   /* bytes in live chunks */
    int chunks_live;
    int chunk_calls;
} fake_device;

static void *fake_chunk_alloc(void *user, size_t bytes) {
    fake_device *d = user;
    if (d->allocated + bytes > d->limit) {
        wn_fail("fake device: out of memory (%zu bytes asked, %zu free)", bytes,
                d->limit - d->allocated);
        return NULL;
    }
    /* store the size in front of the chunk so free can count it back */
    size_t *p = aligned_alloc(256, bytes + 256);
    if (!p) {
        wn_fail("host out of memory");
        return NULL;
    }
    p[0] = bytes;
    d->allocated += bytes;
    d->chunks_live++;
    d->chunk_calls++;
    return (char *)p + 256;
}

static void fake_chunk_free(void *user, void *base) {
    fake_device *d = user;
    size_t *p = (size_t *)((char *)base - 256);
    d->allocated -= p[0];
    d->chunks_live--;
    free(p);
}

static int fails = 0;
#define CHECK(cond, ...)                                                                       \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                              \
            fprintf(stderr, __VA_ARGS__);                                                      \
            fprintf(stderr, "\n");                                                             \
            return 1;                                                                          \
        }                                                                                      \
    } while (0)

static unsigned rnd(unsigned n) { return (unsigned)(rng_u64() % n); }

static int test_random(void) {
    fake_device dev = {.limit = (size_t)1 << 30};
    wn_arena_ops ops = {fake_chunk_alloc, fake_chunk_free, &dev};
    wn_arena a;
    CHECK(wn_arena_init(&a, 256, (size_t)1 << 20, &ops) == WN_OK, "%s", wn_last_error());
    enum { SLOTS = 300 };
    char *ptr[SLOTS] = {0};
    size_t len[SLOTS] = {0};
    unsigned char tag[SLOTS] = {0};
    for (int step = 0; step < 20000; step++) {
        int i = (int)rnd(SLOTS);
        if (ptr[i]) {
            for (size_t j = 0; j < len[i]; j++)
                CHECK((unsigned char)ptr[i][j] == tag[i], "block %d overwritten at %zu", i, j);
            CHECK(wn_arena_free(&a, ptr[i]) == WN_OK, "%s", wn_last_error());
            ptr[i] = NULL;
        } else {
            /* mostly small, sometimes larger than a chunk */
            len[i] = rnd(10) == 0 ? (size_t)rnd(3 << 20) : (size_t)rnd(40000);
            ptr[i] = wn_arena_alloc(&a, len[i]);
            CHECK(ptr[i], "alloc %zu: %s", len[i], wn_last_error());
            CHECK((uintptr_t)ptr[i] % 256 == 0, "misaligned block");
            tag[i] = (unsigned char)(1 + rnd(255));
            memset(ptr[i], tag[i], len[i]);
        }
        if (step % 97 == 0) CHECK(wn_arena_check(&a) == WN_OK, "step %d: %s", step, wn_last_error());
    }
    CHECK(wn_arena_check(&a) == WN_OK, "%s", wn_last_error());
    size_t peak = a.peak;
    CHECK(peak >= a.in_use && peak <= a.reserved, "peak %zu out of range", peak);
    for (int i = 0; i < SLOTS; i++)
        if (ptr[i]) CHECK(wn_arena_free(&a, ptr[i]) == WN_OK, "%s", wn_last_error());
    CHECK(a.in_use == 0, "in_use %zu after freeing everything", a.in_use);
    CHECK(wn_arena_check(&a) == WN_OK, "%s", wn_last_error());
    /* after freeing everything, each chunk is one free block again */
    size_t largest = wn_arena_largest_free(&a);
    CHECK(largest >= ((size_t)1 << 20), "chunks did not merge back (largest %zu)", largest);
    wn_arena_release(&a);
    CHECK(dev.chunks_live == 0 && dev.allocated == 0, "release left %d chunks", dev.chunks_live);
    CHECK(a.peak == peak, "release lost the peak");
    return 0;
}

static int test_reuse_and_errors(void) {
    fake_device dev = {.limit = (size_t)8 << 20};
    wn_arena_ops ops = {fake_chunk_alloc, fake_chunk_free, &dev};
    wn_arena a;
    CHECK(wn_arena_init(&a, 3, 0, &ops) == WN_ERR, "alignment 3 accepted");
    CHECK(wn_arena_init(&a, 256, 0, &ops) == WN_OK, "%s", wn_last_error());
    CHECK(wn_arena_reserve(&a, (size_t)4 << 20) == WN_OK, "%s", wn_last_error());
    int calls = dev.chunk_calls;
    /* a planned arena: a step's allocations come out of the reserved chunk */
    for (int rep = 0; rep < 3; rep++) {
        void *p[8];
        for (int i = 0; i < 8; i++) {
            p[i] = wn_arena_alloc(&a, (size_t)400 << 10);
            CHECK(p[i], "%s", wn_last_error());
        }
        for (int i = 7; i >= 0; i -= 2) CHECK(wn_arena_free(&a, p[i]) == WN_OK, "free");
        for (int i = 0; i < 8; i += 2) CHECK(wn_arena_free(&a, p[i]) == WN_OK, "free");
        CHECK(wn_arena_check(&a) == WN_OK, "%s", wn_last_error());
    }
    CHECK(dev.chunk_calls == calls, "reserved arena asked the device again");
    /* out of memory: NULL with the device's reason; the arena still works */
    wn_clear_error();
    void *big = wn_arena_alloc(&a, (size_t)6 << 20);
    CHECK(!big, "allocation beyond the device succeeded");
    CHECK(strstr(wn_last_error(), "out of memory"), "no reason: '%s'", wn_last_error());
    CHECK(wn_arena_check(&a) == WN_OK, "%s", wn_last_error());
    void *ok = wn_arena_alloc(&a, 1000);
    CHECK(ok, "arena unusable after an out-of-memory: %s", wn_last_error());
    /* foreign and double frees are refused */
    int local;
    CHECK(wn_arena_free(&a, &local) == WN_ERR, "foreign pointer freed");
    CHECK(wn_arena_free(&a, ok) == WN_OK, "%s", wn_last_error());
    CHECK(wn_arena_free(&a, ok) == WN_ERR, "double free accepted");
    CHECK(wn_arena_free(&a, NULL) == WN_OK, "free(NULL)");
    /* zero-byte requests get a distinct block */
    void *z1 = wn_arena_alloc(&a, 0), *z2 = wn_arena_alloc(&a, 0);
    CHECK(z1 && z2 && z1 != z2, "zero-byte blocks");
    wn_arena_release(&a);
    CHECK(dev.chunks_live == 0, "release left chunks");
    return 0;
}

int main(void) {
    if (test_random() || test_reuse_and_errors()) return 1;
    (void)fails;
    printf("arena: random alloc/free sequence, reuse, out-of-memory and foreign frees OK\n");
    return 0;
}
