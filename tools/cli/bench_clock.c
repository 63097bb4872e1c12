/* tools/cli/bench_clock.c — see bench_clock.h. */
#include "tools/cli/bench_clock.h"

double bench_clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double bench_now_s(void) { return bench_clock_s(CLOCK_MONOTONIC); }

int bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
