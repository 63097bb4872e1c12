/* engine/cuda_plan.c — host-side decisions of the CUDA backend (see cuda_plan.h):
 * the padding plan, descriptor layouts, the algorithm cache and the device arena.
 * Plain C with no CUDA header, so every build compiles it and tests/cuda_host runs it. */
#include "engine/cuda_plan.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"

/* ================================================================ padding */

void wn_conv_pad_plan_make(const wn_window *win, wn_conv_pad_plan *plan) {
    int sym_h = win->pad_top < win->pad_bottom ? win->pad_top : win->pad_bottom;
    int sym_w = win->pad_left < win->pad_right ? win->pad_left : win->pad_right;
    plan->pad_h = sym_h;
    plan->pad_w = sym_w;
    plan->extra_top = win->pad_top - sym_h;
    plan->extra_bottom = win->pad_bottom - sym_h;
    plan->extra_left = win->pad_left - sym_w;
    plan->extra_right = win->pad_right - sym_w;
    plan->in_h = win->h + plan->extra_top + plan->extra_bottom;
    plan->in_w = win->w + plan->extra_left + plan->extra_right;
    plan->needs_copy = plan->in_h != win->h || plan->in_w != win->w;
}

/* ================================================================ layouts */

void wn_nhwc_dims_strides(int n, int h, int w, int c, int dims[4], int strides[4]) {
    dims[0] = n, dims[1] = c, dims[2] = h, dims[3] = w;
    strides[0] = h * w * c; /* N */
    strides[1] = 1;         /* C: innermost */
    strides[2] = w * c;     /* H */
    strides[3] = c;         /* W */
}

/* ================================================================ algorithm cache */

void wn_conv_key_make(wn_conv_key *key, wn_conv_direction dir, const wn_conv_desc *d,
                      const wn_conv_pad_plan *plan, wn_precision precision, int accumulate,
                      int deterministic) {
    memset(key, 0, sizeof *key);
    key->direction = (int32_t)dir;
    key->n = 0; /* batch-independent: see wn_conv_cache_action */
    key->h = plan->in_h;
    key->w = plan->in_w;
    key->c = d->win.c;
    key->k = d->k;
    key->kh = d->win.kh;
    key->kw = d->win.kw;
    key->sh = d->win.sh;
    key->sw = d->win.sw;
    key->ph = plan->pad_h;
    key->pw = plan->pad_w;
    key->groups = d->groups < 1 ? 1 : d->groups;
    key->precision = (int32_t)precision;
    key->accumulate = accumulate ? 1 : 0;
    key->deterministic = deterministic ? 1 : 0;
}

wn_conv_action wn_conv_cache_action(const wn_conv_choice *hit, int n) {
    return hit && n <= hit->searched_n ? WN_CONV_REUSE : WN_CONV_SEARCH;
}

int wn_conv_algo_is_gemm_family(wn_conv_direction dir, int algo) {
    switch (dir) {
    case WN_CONV_FWD: /* IMPLICIT_GEMM 0, IMPLICIT_PRECOMP_GEMM 1, GEMM 2 (DIRECT 3: none
                         in cuDNN 9; FFT 4, FFT_TILING 5, WINOGRAD 6, _NONFUSED 7) */
        return algo >= 0 && algo <= 2;
    case WN_CONV_BWD_DATA: /* ALGO_0 0, ALGO_1 1 (FFT 2, FFT_TILING 3, WINOGRAD 4, 5) */
        return algo == 0 || algo == 1;
    case WN_CONV_BWD_FILTER: /* ALGO_0 0, ALGO_1 1, ALGO_3 3 (FFT 2, WINOGRAD_NONFUSED 5,
                                FFT_TILING 6; 4 is WINOGRAD, unimplemented) */
        return algo == 0 || algo == 1 || algo == 3;
    }
    return 0;
}

uint64_t wn_conv_key_hash(const wn_conv_key *key) {
    /* FNV-1a over the bytes: the struct has no padding (all int32). */
    const unsigned char *p = (const unsigned char *)key;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < sizeof *key; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

int wn_conv_key_equal(const wn_conv_key *a, const wn_conv_key *b) {
    return memcmp(a, b, sizeof *a) == 0;
}

void wn_conv_cache_init(wn_conv_cache *cache) { memset(cache, 0, sizeof *cache); }

void wn_conv_cache_free(wn_conv_cache *cache) {
    free(cache->slots);
    memset(cache, 0, sizeof *cache);
}

static struct wn_conv_cache_slot *conv_cache_slot(struct wn_conv_cache_slot *slots, size_t cap,
                                                  const wn_conv_key *key) {
    size_t i = (size_t)wn_conv_key_hash(key) & (cap - 1);
    while (slots[i].used && !wn_conv_key_equal(&slots[i].key, key)) i = (i + 1) & (cap - 1);
    return &slots[i];
}

const wn_conv_choice *wn_conv_cache_find(const wn_conv_cache *cache, const wn_conv_key *key) {
    if (!cache->cap) return NULL;
    const struct wn_conv_cache_slot *s = conv_cache_slot(cache->slots, cache->cap, key);
    return s->used ? &s->choice : NULL;
}

int wn_conv_cache_put(wn_conv_cache *cache, const wn_conv_key *key,
                      const wn_conv_choice *choice) {
    if (2 * (cache->count + 1) > cache->cap) {
        size_t cap = cache->cap ? 2 * cache->cap : 64;
        struct wn_conv_cache_slot *slots = calloc(cap, sizeof *slots);
        if (!slots) return wn_fail("convolution algorithm cache: out of host memory");
        for (size_t i = 0; i < cache->cap; i++)
            if (cache->slots[i].used) *conv_cache_slot(slots, cap, &cache->slots[i].key) = cache->slots[i];
        free(cache->slots);
        cache->slots = slots;
        cache->cap = cap;
    }
    struct wn_conv_cache_slot *s = conv_cache_slot(cache->slots, cache->cap, key);
    if (!s->used) cache->count++;
    s->used = 1;
    s->key = *key;
    s->choice = *choice;
    return WN_OK;
}

/* ================================================================ device arena */

struct wn_arena_block {
    char *base;               /* device address of the block */
    size_t size;              /* bytes, a multiple of align */
    int chunk;                /* which chunk (blocks of different chunks never merge) */
    int used;
    int chunk_head;           /* 1 for the first block of a chunk (its base is the chunk's) */
    wn_arena_block *prev, *next;           /* address order, across chunks */
    wn_arena_block *free_prev, *free_next; /* the free list */
};

/* A marker for deleted hash slots. */
static wn_arena_block arena_tomb;

static size_t arena_round(size_t bytes, size_t align) {
    if (bytes == 0) bytes = 1;
    return (bytes + align - 1) & ~(align - 1);
}

static size_t arena_hash(const void *p, size_t cap) {
    uint64_t v = (uint64_t)(uintptr_t)p;
    v ^= v >> 33;
    v *= 0xff51afd7ed558ccdull;
    v ^= v >> 33;
    return (size_t)v & (cap - 1);
}

static void arena_free_push(wn_arena *a, wn_arena_block *b) {
    b->free_prev = NULL;
    b->free_next = a->free_list;
    if (a->free_list) a->free_list->free_prev = b;
    a->free_list = b;
}

static void arena_free_unlink(wn_arena *a, wn_arena_block *b) {
    if (b->free_prev) b->free_prev->free_next = b->free_next;
    else a->free_list = b->free_next;
    if (b->free_next) b->free_next->free_prev = b->free_prev;
    b->free_prev = b->free_next = NULL;
}

static int arena_table_grow(wn_arena *a) {
    size_t cap = a->used_cap ? 2 * a->used_cap : 256;
    while (2 * (a->used_count + 1) > cap) cap *= 2;
    wn_arena_block **t = calloc(cap, sizeof *t);
    if (!t) return wn_fail("device arena: out of host memory for the block table");
    for (size_t i = 0; i < a->used_cap; i++) {
        wn_arena_block *b = a->used_table[i];
        if (!b || b == &arena_tomb) continue;
        size_t j = arena_hash(b->base, cap);
        while (t[j]) j = (j + 1) & (cap - 1);
        t[j] = b;
    }
    free(a->used_table);
    a->used_table = t;
    a->used_cap = cap;
    a->used_tombs = 0;
    return WN_OK;
}

static int arena_table_insert(wn_arena *a, wn_arena_block *b) {
    if (2 * (a->used_count + a->used_tombs + 1) > a->used_cap && arena_table_grow(a) != WN_OK)
        return WN_ERR;
    size_t j = arena_hash(b->base, a->used_cap);
    while (a->used_table[j] && a->used_table[j] != &arena_tomb) j = (j + 1) & (a->used_cap - 1);
    if (a->used_table[j] == &arena_tomb) a->used_tombs--;
    a->used_table[j] = b;
    a->used_count++;
    return WN_OK;
}

/* Removes and returns the used block starting at p, or NULL. */
static wn_arena_block *arena_table_take(wn_arena *a, const void *p) {
    if (!a->used_cap) return NULL;
    size_t j = arena_hash(p, a->used_cap);
    while (a->used_table[j]) {
        wn_arena_block *b = a->used_table[j];
        if (b != &arena_tomb && b->base == (const char *)p) {
            a->used_table[j] = &arena_tomb;
            a->used_tombs++;
            a->used_count--;
            return b;
        }
        j = (j + 1) & (a->used_cap - 1);
    }
    return NULL;
}

int wn_arena_init(wn_arena *a, size_t align, size_t chunk_bytes, const wn_arena_ops *ops) {
    memset(a, 0, sizeof *a);
    if (align == 0 || (align & (align - 1)))
        return wn_fail("device arena: alignment %zu is not a power of two", align);
    a->ops = *ops;
    a->align = align;
    a->chunk_bytes = chunk_bytes ? arena_round(chunk_bytes, align) : 0;
    return WN_OK;
}

/* Adds a chunk of `bytes` (rounded) as one free block at the end of the list. */
static wn_arena_block *arena_add_chunk(wn_arena *a, size_t bytes) {
    wn_arena_block *b = calloc(1, sizeof *b);
    if (!b) {
        wn_fail("device arena: out of host memory");
        return NULL;
    }
    b->base = a->ops.chunk_alloc(a->ops.user, bytes);
    if (!b->base) {
        free(b);
        return NULL; /* chunk_alloc set the reason */
    }
    b->size = bytes;
    b->chunk = a->n_chunks++;
    b->chunk_head = 1;
    /* append to the address-ordered list (chunks are kept in creation order) */
    wn_arena_block *last = a->blocks;
    if (!last) a->blocks = b;
    else {
        while (last->next) last = last->next;
        last->next = b;
        b->prev = last;
    }
    arena_free_push(a, b);
    a->reserved += bytes;
    return b;
}

int wn_arena_reserve(wn_arena *a, size_t bytes) {
    return arena_add_chunk(a, arena_round(bytes, a->align)) ? WN_OK : WN_ERR;
}

void *wn_arena_alloc(wn_arena *a, size_t bytes) {
    size_t need = arena_round(bytes, a->align);
    if (need < bytes) {
        wn_fail("device arena: request of %zu bytes overflows", bytes);
        return NULL;
    }
    wn_arena_block *best = NULL;
    for (wn_arena_block *b = a->free_list; b; b = b->free_next)
        if (b->size >= need && (!best || b->size < best->size)) best = b;
    if (!best) {
        size_t chunk = need > a->chunk_bytes ? need : a->chunk_bytes;
        best = arena_add_chunk(a, chunk);
        if (!best) return NULL;
    }
    if (best->size > need) { /* split: the tail stays free */
        wn_arena_block *tail = calloc(1, sizeof *tail);
        if (!tail) {
            wn_fail("device arena: out of host memory");
            return NULL;
        }
        tail->base = best->base + need;
        tail->size = best->size - need;
        tail->chunk = best->chunk;
        tail->prev = best;
        tail->next = best->next;
        if (best->next) best->next->prev = tail;
        best->next = tail;
        best->size = need;
        arena_free_push(a, tail);
    }
    arena_free_unlink(a, best);
    best->used = 1;
    if (arena_table_insert(a, best) != WN_OK) { /* undo: back to the free list */
        best->used = 0;
        arena_free_push(a, best);
        return NULL;
    }
    a->in_use += best->size;
    if (a->in_use > a->peak) a->peak = a->in_use;
    return best->base;
}

/* Merges b's successor into b when both are free and in the same chunk. */
static void arena_merge_next(wn_arena *a, wn_arena_block *b) {
    wn_arena_block *n = b->next;
    if (!n || n->used || b->used || n->chunk != b->chunk) return;
    arena_free_unlink(a, n);
    b->size += n->size;
    b->next = n->next;
    if (n->next) n->next->prev = b;
    free(n);
}

int wn_arena_free(wn_arena *a, void *p) {
    if (!p) return WN_OK;
    wn_arena_block *b = arena_table_take(a, p);
    if (!b) return wn_fail("device arena: free of %p, which this arena did not allocate", p);
    b->used = 0;
    a->in_use -= b->size;
    arena_free_push(a, b);
    arena_merge_next(a, b);
    if (b->prev && !b->prev->used && b->prev->chunk == b->chunk) arena_merge_next(a, b->prev);
    return WN_OK;
}

size_t wn_arena_largest_free(const wn_arena *a) {
    size_t m = 0;
    for (const wn_arena_block *b = a->free_list; b; b = b->free_next)
        if (b->size > m) m = b->size;
    return m;
}

void wn_arena_release(wn_arena *a) {
    wn_arena_block *b = a->blocks;
    while (b) {
        wn_arena_block *next = b->next;
        if (b->chunk_head) a->ops.chunk_free(a->ops.user, b->base);
        free(b);
        b = next;
    }
    free(a->used_table);
    wn_arena_ops ops = a->ops;
    size_t align = a->align, chunk = a->chunk_bytes, peak = a->peak;
    memset(a, 0, sizeof *a);
    a->ops = ops, a->align = align, a->chunk_bytes = chunk, a->peak = peak;
}

int wn_arena_check(const wn_arena *a) {
    size_t reserved = 0, in_use = 0, n_free = 0, n_used = 0;
    int chunk = -1;
    const char *chunk_end = NULL;
    for (const wn_arena_block *b = a->blocks; b; b = b->next) {
        if (b->next && b->next->prev != b) return wn_fail("arena: broken back link");
        if (b->size == 0 || b->size % a->align || (uintptr_t)b->base % a->align)
            return wn_fail("arena: block %p of %zu bytes is misaligned", (void *)b->base, b->size);
        if (b->chunk != chunk) {
            if (!b->chunk_head) return wn_fail("arena: chunk %d does not start with its head", b->chunk);
            chunk = b->chunk;
        } else {
            if (b->chunk_head) return wn_fail("arena: second head in chunk %d", chunk);
            if (b->base != chunk_end) return wn_fail("arena: gap or overlap in chunk %d", chunk);
            if (!b->used && !b->prev->used) return wn_fail("arena: adjacent free blocks not merged");
        }
        chunk_end = b->base + b->size;
        reserved += b->size;
        if (b->used) in_use += b->size, n_used++;
        else n_free++;
    }
    size_t listed = 0;
    for (const wn_arena_block *b = a->free_list; b; b = b->free_next) {
        if (b->used) return wn_fail("arena: used block on the free list");
        listed++;
    }
    if (listed != n_free) return wn_fail("arena: free list has %zu blocks, list has %zu", listed, n_free);
    if (n_used != a->used_count) return wn_fail("arena: table has %zu blocks, list %zu", a->used_count, n_used);
    if (reserved != a->reserved || in_use != a->in_use)
        return wn_fail("arena: counters (reserved %zu, in use %zu) disagree with blocks (%zu, %zu)",
                       a->reserved, a->in_use, reserved, in_use);
    if (a->peak < a->in_use) return wn_fail("arena: peak below current use");
    return WN_OK;
}

/* ================================================================ launches */

unsigned wn_launch_blocks(size_t count, unsigned threads, int sm_count, int blocks_per_sm) {
    size_t need = (count + threads - 1) / threads;
    size_t cap = (size_t)(sm_count > 0 ? sm_count : 1) * (size_t)(blocks_per_sm > 0 ? blocks_per_sm : 1);
    size_t n = need < cap ? need : cap;
    return n ? (unsigned)n : 1u;
}
