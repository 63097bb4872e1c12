/* tools/cli/bench_clock.h — timing shared by the benchmark commands (bench, bench-ops,
 * bench-loader): a monotonic clock in seconds and the sort order for medians. */
#ifndef WN_BENCH_CLOCK_H
#define WN_BENCH_CLOCK_H

#include <time.h>

/* Seconds on clock `id` (CLOCK_MONOTONIC for wall time, CLOCK_PROCESS_CPUTIME_ID
 * for the CPU time of all this process's threads). */
double bench_clock_s(clockid_t id);

/* Wall-clock seconds (monotonic). */
double bench_now_s(void);

/* qsort comparator for doubles, ascending (medians of repeated timings). */
int bench_cmp_double(const void *a, const void *b);

#endif
