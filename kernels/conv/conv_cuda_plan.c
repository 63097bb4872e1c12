/* kernels/conv/conv_cuda_plan.c — host-side decisions of the CUDA convolution (see
 * conv_cuda_plan.h): the padding plan, descriptor layouts and the algorithm cache.
 * Plain C with no CUDA header, so every build compiles it and tests/cuda_host runs it. */
#include "kernels/conv/conv_cuda_plan.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "host/base/error.h"

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

/* ================================================================ scratch */

size_t wn_conv_cuda_scratch_bytes(wn_conv_call call, const wn_conv_desc *d, int accumulate,
                                  wn_dtype dt) {
    const wn_window *win = &d->win;
    wn_conv_pad_plan pad;
    wn_conv_pad_plan_make(win, &pad);
    int groups = d->groups < 1 ? 1 : d->groups;
    size_t w = (size_t)win->kh * win->kw * (size_t)(win->c / groups) * d->k;
    size_t x = (size_t)win->n * win->h * win->w * win->c;
    size_t y = (size_t)win->n * win->oh * win->ow * d->k;
    size_t copy = pad.needs_copy ? (size_t)win->n * pad.in_h * pad.in_w * win->c : 0;
    size_t elems = w + copy; /* forward and backward filter */
    /* an accumulating backward data: the search output (float32), or the scratch dx a
     * bf16 sum is formed from (with a padded copy, the padded dx above serves both) */
    if (call == WN_CONV_CALL_BACKWARD_DATA && accumulate && !pad.needs_copy) elems += x;
    size_t bytes = elems * wn_dtype_size(dt);
    /* bf16 through our depthwise kernels: float32 copies of the operands and result */
    if (dt == WN_DTYPE_BF16 && groups > 1 && groups == win->c && d->k % win->c == 0) {
        size_t staged = call == WN_CONV_CALL_BACKWARD_FILTER ? x + y : x + y + w;
        if (staged * sizeof(float) > bytes) bytes = staged * sizeof(float);
    }
    return bytes;
}
