/* engine/train/folds.c — seeded stratified k-fold assignment (see folds.h). */
#include "engine/train/folds.h"

#include <stdlib.h>

#include "engine/train/augment_draws.h"
#include "host/base/error.h"

#define FOLDS_STREAM 0x466f6c6473ull /* "Folds" */

int wn_stratified_folds(const int32_t *labels, int n, int n_classes, int k, uint64_t seed,
                        int *fold) {
    if (k < 2) return wn_fail("--folds %d: cross-validation needs at least 2 folds", k);
    if (k > n) return wn_fail("--folds %d: more folds than the %d images", k, n);
    for (int i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= n_classes)
            return wn_fail("folds: label %d of file %d outside 0..%d", labels[i], i, n_classes - 1);
    int *members = malloc((size_t)n * sizeof *members);
    if (!members) return wn_fail("folds: out of memory for %d files", n);
    wn_rng rng;
    wn_rng_seed(&rng, seed, FOLDS_STREAM);
    int next = 0; /* the fold that receives the next file dealt */
    for (int c = 0; c < n_classes; c++) {
        int m = 0;
        for (int i = 0; i < n; i++)
            if (labels[i] == c) members[m++] = i;
        for (int i = m - 1; i > 0; i--) { /* Fisher-Yates */
            int j = (int)(wn_rng_next(&rng) % (uint64_t)(i + 1));
            int t = members[i];
            members[i] = members[j], members[j] = t;
        }
        for (int i = 0; i < m; i++) {
            fold[members[i]] = next;
            next = (next + 1) % k;
        }
    }
    free(members);
    return WN_OK;
}
