/* tools/cli/bench_op_cases.c — `wastenet bench-ops --cases`: the op cases' perf mode
 * (bench_op_cases.h). The same list drives the gradient check (tests/ops) and the
 * backend parity suite (tests/gpu), so a shape timed here is a shape tested there.
 *
 * A benchmark, not a test: numbers depend on the machine and its load. */
#include "tools/cli/bench_op_cases.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/runtime/backend.h"
#include "engine/runtime/op_cases.h"
#include "host/base/error.h"
#include "tools/cli/bench_clock.h"

typedef int (*run_fn)(wn_opc_placed *p, const wn_opc_data *d);

/* Median seconds of `repeat` waited-for calls after one warm-up; inputs are reset
 * before every call (outside the timing) so in-place ops (Adam) and accumulating
 * gradients see the same values each time. */
static int time_part(wn_opc_placed *p, const wn_opc_data *d, run_fn fn, int repeat, double *out) {
    double times[50];
    for (int r = -1; r < repeat; r++) {
        if (wn_opc_reset(p, d) != WN_OK || wn_backend_synchronize(p->be) != WN_OK) return WN_ERR;
        if (fn == wn_opc_backward && wn_opc_forward(p, d) != WN_OK) return WN_ERR;
        if (wn_backend_synchronize(p->be) != WN_OK) return WN_ERR;
        double t0 = bench_now_s();
        if (fn(p, d) != WN_OK || wn_backend_synchronize(p->be) != WN_OK) return WN_ERR;
        if (r >= 0) times[r] = bench_now_s() - t0;
    }
    qsort(times, (size_t)repeat, sizeof(double), bench_cmp_double);
    *out = times[repeat / 2];
    return WN_OK;
}

/* Floating-point operations of one forward call (convolution and Dense only; 0 else). */
static double forward_flops(const wn_op_case *c) {
    const int *s = c->s;
    if (c->op == WN_OPC_DENSE) return 2.0 * s[0] * s[1] * s[2];
    if (c->op != WN_OPC_CONV2D) return 0.0;
    wn_window win;
    if (wn_window_init(&win, s[0], s[1], s[2], s[3], s[5], s[6], s[7], s[8],
                       c->variant & 1 ? WN_PAD_SAME : WN_PAD_VALID, "bench") != WN_OK)
        return 0.0;
    return 2.0 * win.n * win.oh * win.ow * s[4] * s[5] * s[6] * (s[3] / s[9]);
}

int bench_op_cases(wn_backend *be, const char *filter, int repeat, int all) {
    int n, timed = 0;
    const wn_op_case *cases = wn_op_cases(&n);
    printf("op cases on the %s backend, median of %d calls each\n", be->name, repeat);
    printf("%-12s %-52s %10s %10s %9s\n", "op", "shape", "fwd ms", "bwd ms", "GFLOP/s");
    for (int i = 0; i < n; i++) {
        const wn_op_case *c = &cases[i];
        const char *op = wn_opc_op_name(c->op);
        if (!all && !(c->modes & WN_OPC_PERF)) continue;
        if (filter && !strstr(op, filter)) continue;
        char shape[200];
        wn_opc_describe(c, shape, sizeof shape);
        wn_opc_data d;
        wn_opc_placed p;
        if (wn_opc_data_init(&d, c, 1 + (uint64_t)i) != WN_OK) goto fail;
        if (wn_opc_place(&p, be, &d, 0, 0.0f) != WN_OK) {
            wn_opc_data_free(&d);
            goto fail;
        }
        double fwd = 0, bwd = 0;
        int rc = time_part(&p, &d, wn_opc_forward, repeat, &fwd);
        if (rc == WN_OK && wn_opc_has_backward(c->op)) rc = time_part(&p, &d, wn_opc_backward, repeat, &bwd);
        wn_opc_unplace(&p, &d);
        wn_opc_data_free(&d);
        if (rc != WN_OK) goto fail;
        double fl = forward_flops(c);
        char gflops[16] = "-", bwd_ms[16] = "-";
        if (fl > 0) snprintf(gflops, sizeof gflops, "%.1f", fl / fwd * 1e-9);
        if (wn_opc_has_backward(c->op)) snprintf(bwd_ms, sizeof bwd_ms, "%.3f", bwd * 1e3);
        printf("%-12s %-52s %10.3f %10s %9s\n", op, shape, fwd * 1e3, bwd_ms, gflops);
        fflush(stdout);
        timed++;
    }
    if (!timed) {
        fprintf(stderr, "wastenet bench-ops: --op '%s' matches no op case (ops: conv2d, dense, "
                "affine_act, bn_gamma, pool, concat, scaled_add, mul, gap, dropout, softmax_xent, "
                "adam, augment)\n", filter ? filter : "");
        return 2;
    }
    return 0;
fail:
    fprintf(stderr, "wastenet bench-ops: %s\n", wn_last_error());
    return 1;
}
