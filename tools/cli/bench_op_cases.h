/* tools/cli/bench_op_cases.h — the perf mode of the shared op cases
 * (engine/runtime/op_cases.h): `wastenet bench-ops --cases`. */
#ifndef WN_BENCH_OP_CASES_H
#define WN_BENCH_OP_CASES_H

#include "kernels/common/backend_ops.h"

/* Times every case marked WN_OPC_PERF (all cases with all = 1) whose op name contains
 * filter (NULL: every op) on be: forward and backward separately, the median of
 * `repeat` calls after one warm-up, each call waited for (synchronize). Prints one
 * line per case. Returns 0; 2 when no case matches; 1 on an op error (reason on
 * stderr). */
int bench_op_cases(wn_backend *be, const char *filter, int repeat, int all);

#endif
