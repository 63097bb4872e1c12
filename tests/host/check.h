/* tests/host/check.h — a failing check prints where and why and is counted; main()
 * returns check_failures != 0, so a test cannot pass with a failed check. */
#ifndef WN_TESTS_HOST_CHECK_H
#define WN_TESTS_HOST_CHECK_H

#include <stdio.h>

static int check_failures;

#define CHECK(cond, ...)                                                         \
    do {                                                                         \
        if (!(cond)) {                                                           \
            check_failures++;                                                    \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                        \
            fprintf(stderr, "\n");                                               \
        }                                                                        \
    } while (0)

#define CHECK_DONE(name)                                                         \
    (check_failures ? (fprintf(stderr, "%s: %d check(s) failed\n", name, check_failures), 1) \
                    : (printf("%s: all checks passed\n", name), 0))

#endif
