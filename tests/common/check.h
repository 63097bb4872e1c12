/* tests/common/check.h — the checks every C test shares: a failing check prints where
 * and why and is counted, and test_finish() turns the count into the exit status, so
 * a test cannot pass with a failed check. Also the tensor comparison (check_tensor)
 * and the tolerances the tests state (tests/common/tolerance.h).
 *
 *   CHECK(cond, fmt, ...)   counts a check; on failure prints file:line and the message
 *   CHECK_OK(call)          a library call that must return WN_OK; on failure prints the
 *                           reason (wn_last_error) and exits 1 at once
 *   return test_finish("test_name");   0 when every check passed, else 1
 */
#ifndef WN_TESTS_COMMON_CHECK_H
#define WN_TESTS_COMMON_CHECK_H

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "host/base/error.h"
#include "tests/common/tolerance.h"

extern int test_checks;   /* checks made */
extern int test_failures; /* checks failed */

void test_check_failed(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define CHECK(cond, ...)                                                                \
    do {                                                                                \
        test_checks++;                                                                  \
        if (!(cond)) test_check_failed(__FILE__, __LINE__, __VA_ARGS__);                \
    } while (0)

#define CHECK_OK(call)                                                                  \
    do {                                                                                \
        if ((call) != WN_OK) {                                                          \
            fprintf(stderr, "FAIL %s:%d: %s -> %s\n", __FILE__, __LINE__, #call,        \
                    wn_last_error());                                                   \
            exit(1);                                                                    \
        }                                                                               \
    } while (0)

/* Prints the summary; 0 when every check passed, 1 otherwise (also when no check
 * ran at all: a test that checked nothing has not passed). */
int test_finish(const char *name);

/* Compares got[n] with want[n] (float32 against a reference):
 *   error = max|got - want| / max(max|want|, floor)      (normalised max error)
 * fails when error > tol, when got has a NaN/Inf, or when the reference does. Prints
 * one line (name, error, tolerance, max |diff| and where) and, on failure, the first
 * few differing pairs. tol 0 demands bit-identical values. Counts as one check;
 * returns 1 when it passed. */
int check_tensor(const char *name, const float *got, const float *want, size_t n, double tol);

/* The same with the error returned instead of printed/counted (for a caller that
 * wants to report its own way); *at gets the index of the largest difference. */
double tensor_error(const float *got, const float *want, size_t n, size_t *at);

/* Malloc that exits the test on failure; the buffer is filled with NaN so that an
 * output an op forgot to write is caught. */
float *test_alloc_f(size_t n);

#endif
