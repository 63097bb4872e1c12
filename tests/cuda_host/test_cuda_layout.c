/* tests/cuda_host/test_cuda_layout.c — descriptor layouts, the HWIO <-> KRSC weight
 * map, the algorithm-cache keys and table, and the launch grid size, on the CPU. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/conv/conv_cuda_plan.h"
#include "kernels/common/launch.h"
#include "host/base/error.h"

#define CHECK(cond, ...)                                                                       \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                              \
            fprintf(stderr, __VA_ARGS__);                                                      \
            fprintf(stderr, "\n");                                                             \
            return 1;                                                                          \
        }                                                                                      \
    } while (0)

static int test_nhwc_strides(void) {
    int dims[4], strides[4];
    wn_nhwc_dims_strides(2, 3, 5, 7, dims, strides);
    CHECK(dims[0] == 2 && dims[1] == 7 && dims[2] == 3 && dims[3] == 5, "dims in NCHW order");
    /* element (n, c, h, w) must land where NHWC puts it */
    for (int n = 0; n < 2; n++)
        for (int c = 0; c < 7; c++)
            for (int h = 0; h < 3; h++)
                for (int w = 0; w < 5; w++) {
                    int off = n * strides[0] + c * strides[1] + h * strides[2] + w * strides[3];
                    CHECK(off == ((n * 3 + h) * 5 + w) * 7 + c, "stride map at %d %d %d %d", n,
                          c, h, w);
                }
    return 0;
}

static int test_krsc(void) {
    /* R, S, Cg, K: a 1x7 kernel with 3 input and 5 output channels, and a 3x3 depthwise */
    int shapes[][4] = {{1, 7, 3, 5}, {3, 3, 1, 8}, {2, 3, 4, 1}, {1, 1, 6, 6}};
    for (int t = 0; t < 4; t++) {
        int R = shapes[t][0], S = shapes[t][1], Cg = shapes[t][2], K = shapes[t][3];
        size_t count = (size_t)R * S * Cg * K;
        int *seen = calloc(count, sizeof *seen);
        for (size_t i = 0; i < count; i++) {
            size_t j = wn_krsc_to_hwio(i, R, S, Cg, K);
            CHECK(j < count, "index out of range");
            seen[j]++;
        }
        for (size_t j = 0; j < count; j++) CHECK(seen[j] == 1, "not a permutation");
        free(seen);
        /* spot check against both index formulas */
        for (int r = 0; r < R; r++)
            for (int s = 0; s < S; s++)
                for (int ci = 0; ci < Cg; ci++)
                    for (int k = 0; k < K; k++)
                        CHECK(wn_krsc_to_hwio(wn_krsc_index(r, s, ci, k, R, S, Cg), R, S, Cg,
                                              K) == wn_hwio_index(r, s, ci, k, S, Cg, K),
                              "map at r%d s%d c%d k%d", r, s, ci, k);
    }
    /* KRSC is K-major: output channel k's weights are one contiguous run */
    CHECK(wn_krsc_index(0, 0, 0, 1, 3, 3, 4) == 36, "KRSC stride of K");
    return 0;
}

static int test_keys_and_cache(void) {
    wn_conv_desc d = {.k = 16, .groups = 1};
    wn_window_init(&d.win, 4, 17, 19, 8, 3, 3, 2, 2, WN_PAD_SAME, "k");
    wn_conv_pad_plan plan;
    wn_conv_pad_plan_make(&d.win, &plan);
    wn_conv_key base, other;
    wn_conv_key_make(&base, WN_CONV_FWD, &d, &plan, WN_PRECISION_TF32, 0, 0);
    wn_conv_key_make(&other, WN_CONV_FWD, &d, &plan, WN_PRECISION_TF32, 0, 0);
    CHECK(wn_conv_key_equal(&base, &other) && wn_conv_key_hash(&base) == wn_conv_key_hash(&other),
          "equal shapes give different keys");
    CHECK(base.h == plan.in_h && base.ph == plan.pad_h, "key must hold the padded shape");

    /* the batch is not part of the key: a short last batch finds the full batch's
     * choice, reuses it up to the batch searched, searches again above it */
    wn_conv_desc small = d;
    wn_window_init(&small.win, 3, 17, 19, 8, 3, 3, 2, 2, WN_PAD_SAME, "k");
    wn_conv_key small_key;
    wn_conv_key_make(&small_key, WN_CONV_FWD, &small, &plan, WN_PRECISION_TF32, 0, 0);
    CHECK(wn_conv_key_equal(&base, &small_key), "batch 3 and batch 4 give different keys");
    wn_conv_choice searched = {.algo = 1, .math_type = 0, .workspace = 100, .searched_n = 4};
    CHECK(wn_conv_cache_action(NULL, 4) == WN_CONV_SEARCH, "no entry must search");
    CHECK(wn_conv_cache_action(&searched, 3) == WN_CONV_REUSE, "a smaller batch must reuse");
    CHECK(wn_conv_cache_action(&searched, 4) == WN_CONV_REUSE, "the same batch must reuse");
    CHECK(wn_conv_cache_action(&searched, 5) == WN_CONV_SEARCH, "a larger batch must search");

    /* FP32's algorithm families: GEMM only */
    CHECK(wn_conv_algo_is_gemm_family(WN_CONV_FWD, 0) && wn_conv_algo_is_gemm_family(WN_CONV_FWD, 1) &&
              wn_conv_algo_is_gemm_family(WN_CONV_FWD, 2),
          "forward GEMM algorithms refused");
    for (int a = 3; a <= 7; a++)
        CHECK(!wn_conv_algo_is_gemm_family(WN_CONV_FWD, a), "forward algo %d allowed", a);
    CHECK(wn_conv_algo_is_gemm_family(WN_CONV_BWD_DATA, 1) &&
              !wn_conv_algo_is_gemm_family(WN_CONV_BWD_DATA, 2) &&
              !wn_conv_algo_is_gemm_family(WN_CONV_BWD_DATA, 4),
          "backward-data families");
    CHECK(wn_conv_algo_is_gemm_family(WN_CONV_BWD_FILTER, 3) &&
              !wn_conv_algo_is_gemm_family(WN_CONV_BWD_FILTER, 2) &&
              !wn_conv_algo_is_gemm_family(WN_CONV_BWD_FILTER, 5),
          "backward-filter families");

    /* every field changes the key */
    wn_conv_key variants[24];
    int nv = 0;
    wn_conv_key_make(&variants[nv++], WN_CONV_BWD_DATA, &d, &plan, WN_PRECISION_TF32, 0, 0);
    wn_conv_key_make(&variants[nv++], WN_CONV_BWD_FILTER, &d, &plan, WN_PRECISION_TF32, 0, 0);
    wn_conv_key_make(&variants[nv++], WN_CONV_FWD, &d, &plan, WN_PRECISION_FP32, 0, 0);
    wn_conv_key_make(&variants[nv++], WN_CONV_FWD, &d, &plan, WN_PRECISION_TF32, 1, 0);
    wn_conv_key_make(&variants[nv++], WN_CONV_FWD, &d, &plan, WN_PRECISION_TF32, 0, 1);
    /* a bf16 call is keyed apart from either float32 precision (kernels/conv/conv.cu) */
    wn_conv_key_make(&variants[nv++], WN_CONV_FWD, &d, &plan, WN_PRECISION_BF16, 0, 0);
    int32_t *fields[] = {&other.n, &other.h, &other.w, &other.c, &other.k, &other.kh,
                         &other.kw, &other.sh, &other.sw, &other.ph, &other.pw, &other.groups};
    /* (n is never set by wn_conv_key_make, but the cache must still tell it apart) */
    for (int f = 0; f < 12; f++) {
        other = base;
        *fields[f] += 1;
        variants[nv++] = other;
    }
    for (int i = 0; i < nv; i++) {
        CHECK(!wn_conv_key_equal(&base, &variants[i]), "variant %d equals the base key", i);
        for (int j = 0; j < i; j++)
            CHECK(!wn_conv_key_equal(&variants[j], &variants[i]), "variants %d, %d equal", i, j);
    }

    /* the cache: many keys, lookups after growth, replacement */
    wn_conv_cache cache;
    wn_conv_cache_init(&cache);
    CHECK(!wn_conv_cache_find(&cache, &base), "empty cache found a key");
    enum { N = 1000 };
    for (int i = 0; i < N; i++) {
        wn_conv_key key = base;
        key.n = 1 + i % 64;
        key.c = 1 + i / 64;
        wn_conv_choice ch = {.algo = i % 7, .math_type = i % 3, .workspace = (size_t)i * 4096};
        CHECK(wn_conv_cache_put(&cache, &key, &ch) == WN_OK, "%s", wn_last_error());
    }
    CHECK(cache.count == N, "count %zu", cache.count);
    for (int i = 0; i < N; i++) {
        wn_conv_key key = base;
        key.n = 1 + i % 64;
        key.c = 1 + i / 64;
        const wn_conv_choice *ch = wn_conv_cache_find(&cache, &key);
        CHECK(ch && ch->algo == i % 7 && ch->math_type == i % 3 && ch->workspace == (size_t)i * 4096,
              "lookup %d", i);
    }
    wn_conv_key missing = base;
    missing.n = 65;
    CHECK(!wn_conv_cache_find(&cache, &missing), "found a key never stored");
    wn_conv_key key = base;
    key.n = 1, key.c = 1;
    wn_conv_choice repl = {.algo = 42, .math_type = 1, .workspace = 7};
    CHECK(wn_conv_cache_put(&cache, &key, &repl) == WN_OK, "replace");
    CHECK(cache.count == N && wn_conv_cache_find(&cache, &key)->algo == 42, "replacement");
    wn_conv_cache_free(&cache);
    return 0;
}

static int test_launch_blocks(void) {
    CHECK(wn_launch_blocks(0, 256, 132, 8) == 1, "empty launch needs one block");
    CHECK(wn_launch_blocks(1, 256, 132, 8) == 1, "one element");
    CHECK(wn_launch_blocks(257, 256, 132, 8) == 2, "257 elements");
    CHECK(wn_launch_blocks((size_t)1 << 40, 256, 132, 8) == 132 * 8, "capped by the device");
    CHECK(wn_launch_blocks(1000, 256, 0, 0) == 1, "bad device numbers");
    return 0;
}

/* The scratch a cuDNN call takes, per data type (wn_conv_cuda_scratch_bytes). */
static int test_scratch_bytes(void) {
    wn_conv_desc d = {.win = {.n = 2, .h = 8, .w = 8, .c = 16, .kh = 3, .kw = 3, .sh = 1, .sw = 1,
                              .pad_top = 1, .pad_bottom = 1, .pad_left = 1, .pad_right = 1,
                              .oh = 8, .ow = 8},
                      .k = 32, .groups = 1};
    size_t w = 3 * 3 * 16 * 32, x = 2 * 8 * 8 * 16, y = 2 * 8 * 8 * 32;
    CHECK(wn_conv_cuda_scratch_bytes(WN_CONV_CALL_FORWARD, &d, 0, WN_DTYPE_F32) == w * 4,
          "float32 forward: the KRSC weights");
    CHECK(wn_conv_cuda_scratch_bytes(WN_CONV_CALL_FORWARD, &d, 0, WN_DTYPE_BF16) == w * 2,
          "bf16 forward: bf16 KRSC weights");
    CHECK(wn_conv_cuda_scratch_bytes(WN_CONV_CALL_BACKWARD_DATA, &d, 1, WN_DTYPE_F32) ==
              (w + x) * 4,
          "float32 accumulating backward data: weights and the search output");
    CHECK(wn_conv_cuda_scratch_bytes(WN_CONV_CALL_BACKWARD_DATA, &d, 1, WN_DTYPE_BF16) ==
              (w + x) * 2,
          "bf16 accumulating backward data: weights and the scratch dx");
    /* 'same' at stride 2 on an even size: one extra row and column, a padded copy */
    wn_conv_desc a = d;
    a.win.sh = a.win.sw = 2, a.win.pad_top = a.win.pad_left = 0, a.win.oh = a.win.ow = 4;
    size_t copy = 2 * 9 * 9 * 16;
    CHECK(wn_conv_cuda_scratch_bytes(WN_CONV_CALL_BACKWARD_FILTER, &a, 0, WN_DTYPE_BF16) ==
              (w + copy) * 2,
          "bf16 backward filter with a padded copy");
    /* depthwise in bf16: room for the float32 staging of the fallback */
    wn_conv_desc dw = d;
    dw.groups = 16, dw.k = 16;
    size_t wd = 3 * 3 * 16, yd = 2 * 8 * 8 * 16;
    CHECK(wn_conv_cuda_scratch_bytes(WN_CONV_CALL_FORWARD, &dw, 0, WN_DTYPE_BF16) ==
              (x + yd + wd) * 4,
          "bf16 depthwise forward: x, y and w staged in float32");
    CHECK(wn_conv_cuda_scratch_bytes(WN_CONV_CALL_BACKWARD_FILTER, &dw, 0, WN_DTYPE_BF16) ==
              (x + yd) * 4,
          "bf16 depthwise backward filter: x and dy staged in float32");
    (void)y;
    return 0;
}

int main(void) {
    if (test_nhwc_strides() || test_krsc() || test_keys_and_cache() || test_launch_blocks() ||
        test_scratch_bytes())
        return 1;
    printf("layouts, weight map, algorithm cache and launch sizes OK\n");
    return 0;
}
