/* kernels/common/cuda_arena.h — the CUDA backend's device-memory arena, in plain C
 * (chunks come from a callback: cudaMalloc on the GPU, malloc in tests/cuda_host). */
#ifndef WN_CUDA_ARENA_H
#define WN_CUDA_ARENA_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- device arena
 * A first-level allocator for device memory: large chunks come from chunk_alloc
 * (cudaMalloc), are split into aligned blocks on request, and freed blocks merge with
 * free neighbours of the same chunk. Chunks go back only at wn_arena_release, so a
 * training step allocates without calling the driver. All device work runs on one
 * stream, so a block freed after a launch may be reused by the next launch: stream
 * order keeps the old reader ahead of the new writer.
 *
 * Bookkeeping is host memory only: blocks form one address-ordered doubly linked list
 * per chunk, free blocks are found best-fit, and used blocks are found by pointer
 * through a hash table, so free() costs O(1) and alloc() O(free blocks). */
typedef struct wn_arena_block wn_arena_block;

typedef struct wn_arena_ops {
    /* Returns a chunk of exactly `bytes` (aligned to at least `align`), or NULL
     * after setting the reason with wn_fail. */
    void *(*chunk_alloc)(void *user, size_t bytes);
    void (*chunk_free)(void *user, void *base);
    void *user;
} wn_arena_ops;

typedef struct wn_arena {
    wn_arena_ops ops;
    size_t align;        /* every block starts at a multiple of this (power of two) */
    size_t chunk_bytes;  /* default size of a new chunk; larger requests get their own */
    wn_arena_block *blocks;     /* all blocks, chunk by chunk, address order */
    wn_arena_block *free_list;  /* free blocks (unordered) */
    wn_arena_block **used_table; /* open addressing by pointer; NULL = empty */
    size_t used_cap, used_count, used_tombs;
    size_t reserved;     /* bytes in chunks */
    size_t in_use;       /* bytes in used blocks (rounded sizes) */
    size_t peak;         /* largest in_use seen */
    int n_chunks;
} wn_arena;

/* align must be a power of two; chunk_bytes 0 means "exactly what is asked". */
int wn_arena_init(wn_arena *a, size_t align, size_t chunk_bytes, const wn_arena_ops *ops);
/* A block of at least `bytes` (0 is treated as 1), or NULL with the reason set. */
void *wn_arena_alloc(wn_arena *a, size_t bytes);
/* Frees a block from wn_arena_alloc (NULL is ignored); WN_ERR for a foreign pointer. */
int wn_arena_free(wn_arena *a, void *p);
/* Adds one chunk of `bytes` up front (a planned arena); WN_ERR when it fails. */
int wn_arena_reserve(wn_arena *a, size_t bytes);
/* Size of the largest free block, 0 when none. */
size_t wn_arena_largest_free(const wn_arena *a);
/* Returns every chunk through chunk_free; the arena can be used again afterwards. */
void wn_arena_release(wn_arena *a);
/* Checks the invariants (blocks tile each chunk, no adjacent free blocks, counters
 * agree); WN_ERR with a reason. For tests. */
int wn_arena_check(const wn_arena *a);

#ifdef __cplusplus
}
#endif
#endif
