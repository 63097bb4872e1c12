/* engine/train/folds.h — a seeded, stratified k-fold split of labeled files (what
 * `wastenet cv` trains and validates on).
 *
 * Per class, in label order: the class's files (in the order given) are shuffled by
 * a Fisher-Yates permutation drawn from wn_rng(seed, stream 0x466f6c6473 "Folds"),
 * then dealt to the folds in turn, the dealing going on from the fold where the
 * previous class stopped. So every file is in exactly one fold, each class's count
 * in two folds differs by at most one, fold sizes differ by at most one, and the same
 * (files, labels, k, seed) always give the same folds, whatever seed the training
 * uses.
 */
#ifndef WN_FOLDS_H
#define WN_FOLDS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* fold[i] in [0, k) for each of the n files with labels[i] in [0, n_classes).
 * Fails (naming the problem) for k < 2, k > n, or a label out of range. */
int wn_stratified_folds(const int32_t *labels, int n, int n_classes, int k, uint64_t seed,
                        int *fold);

#ifdef __cplusplus
}
#endif
#endif
