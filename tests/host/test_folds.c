/* tests/host/test_folds.c — host/folds.h on random label sets: every file in one
 * fold, per class and in total the folds differ by at most one file, the same
 * (labels, k, seed) give the same folds, another seed other folds, and bad
 * arguments fail with a reason. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/base/error.h"
#include "engine/train/folds.h"

static int failures = 0;
#define CHECK(cond, ...)                                              \
    do {                                                              \
        if (!(cond)) {                                                \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);      \
            fprintf(stderr, __VA_ARGS__);                             \
            fputc('\n', stderr);                                      \
            failures++;                                               \
        }                                                             \
    } while (0)

static int spread(const int *v, int n) {
    int lo = v[0], hi = v[0];
    for (int i = 1; i < n; i++) lo = v[i] < lo ? v[i] : lo, hi = v[i] > hi ? v[i] : hi;
    return hi - lo;
}

static void check_case(int n, int classes, int k, unsigned seed) {
    int32_t *labels = malloc((size_t)n * sizeof *labels);
    int *fold = malloc((size_t)n * sizeof *fold), *again = malloc((size_t)n * sizeof *again);
    int *other = malloc((size_t)n * sizeof *other);
    srand(seed);
    for (int i = 0; i < n; i++) labels[i] = rand() % classes;
    CHECK(wn_stratified_folds(labels, n, classes, k, seed, fold) == WN_OK, "%s", wn_last_error());
    int sizes[64] = {0};
    for (int i = 0; i < n; i++) {
        CHECK(fold[i] >= 0 && fold[i] < k, "n %d k %d: file %d in fold %d", n, k, i, fold[i]);
        sizes[fold[i]]++;
    }
    CHECK(spread(sizes, k) <= 1, "n %d k %d: fold sizes differ by %d", n, k, spread(sizes, k));
    for (int c = 0; c < classes; c++) {
        int per[64] = {0};
        for (int i = 0; i < n; i++)
            if (labels[i] == c) per[fold[i]]++;
        CHECK(spread(per, k) <= 1, "n %d k %d class %d: per-fold counts differ by %d", n, k, c,
              spread(per, k));
    }
    wn_stratified_folds(labels, n, classes, k, seed, again);
    CHECK(!memcmp(fold, again, (size_t)n * sizeof *fold), "n %d k %d: not reproducible", n, k);
    wn_stratified_folds(labels, n, classes, k, seed + 1, other);
    if (n >= 20) CHECK(memcmp(fold, other, (size_t)n * sizeof *fold), "n %d: seed ignored", n);
    free(labels), free(fold), free(again), free(other);
}

int main(void) {
    for (unsigned t = 0; t < 200; t++)
        check_case(2 + (int)(t * 37 % 1000), 1 + (int)(t % 7), 2 + (int)(t % 9), t);
    check_case(999, 6, 5, 0); /* dataset_images' train + validation size */
    int32_t labels[4] = {0, 1, 0, 2};
    int fold[4];
    CHECK(wn_stratified_folds(labels, 4, 3, 1, 0, fold) == WN_ERR &&
              strstr(wn_last_error(), "at least 2"), "k = 1 refused: %s", wn_last_error());
    CHECK(wn_stratified_folds(labels, 4, 3, 5, 0, fold) == WN_ERR &&
              strstr(wn_last_error(), "more folds"), "k > n refused: %s", wn_last_error());
    CHECK(wn_stratified_folds(labels, 4, 2, 2, 0, fold) == WN_ERR &&
              strstr(wn_last_error(), "label 2"), "label out of range refused: %s", wn_last_error());
    if (failures) {
        fprintf(stderr, "test_folds: %d failure(s)\n", failures);
        return 1;
    }
    printf("test_folds: all checks passed\n");
    return 0;
}
