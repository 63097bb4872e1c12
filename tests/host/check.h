/* tests/host/check.h — a failing check prints where and why and is counted; main()
 * returns check_failures != 0, so a test cannot pass with a failed check. */
#ifndef WN_TESTS_HOST_CHECK_H
#define WN_TESTS_HOST_CHECK_H

#include <stdio.h>
#include <stdlib.h>

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

/* snprintf into a char array; a path that does not fit fails the test at once
 * (checking the result is also what keeps -Wformat-truncation quiet). */
#define PATH_PRINTF(buf, ...)                                                    \
    do {                                                                         \
        int path_len_ = snprintf((buf), sizeof(buf), __VA_ARGS__);               \
        if (path_len_ < 0 || (size_t)path_len_ >= sizeof(buf)) {                 \
            fprintf(stderr, "%s:%d: path too long\n", __FILE__, __LINE__);      \
            exit(1);                                                             \
        }                                                                        \
    } while (0)

#define CHECK_DONE(name)                                                         \
    (check_failures ? (fprintf(stderr, "%s: %d check(s) failed\n", name, check_failures), 1) \
                    : (printf("%s: all checks passed\n", name), 0))

#endif
