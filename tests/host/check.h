/* tests/host/check.h — the host tests' checks are tests/common's (CHECK counts and
 * prints where and why; main() returns CHECK_DONE(name), non-zero after any failed
 * check); plus PATH_PRINTF for the fixture paths. */
#ifndef WN_TESTS_HOST_CHECK_H
#define WN_TESTS_HOST_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#include "tests/common/check.h"

#define check_failures test_failures

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

#define CHECK_DONE(name) test_finish(name)

#endif
