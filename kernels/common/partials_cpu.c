/* kernels/common/partials_cpu.c — per-thread double partial sums of the CPU backend's
 * channel reductions (shift and gamma gradients): each OpenMP thread adds into its own
 * row, and the rows are then added in thread order, so a result depends on the thread
 * count but never on scheduling. */
#include <omp.h>
#include <string.h>

#include "host/base/error.h"
#include "kernels/common/cpu_ctx.h"

double *wn_cpu_partials_zeroed(wn_backend *be, int c, const char *who) {
    wn_cpu_ctx *ctx = be->ctx;
    size_t bytes = (size_t)omp_get_max_threads() * c * sizeof(double);
    if (wn_cpu_buffer_reserve(&ctx->partial, bytes, "reduction") != WN_OK) {
        wn_fail_context("%s: ", who);
        return NULL;
    }
    memset(ctx->partial.p, 0, bytes);
    return ctx->partial.p;
}

void wn_cpu_partials_sum(const double *partial, int c, float *out) {
    int threads = omp_get_max_threads();
    for (int ch = 0; ch < c; ch++) {
        double s = 0.0;
        for (int t = 0; t < threads; t++) s += partial[(size_t)t * c + ch];
        out[ch] = (float)s;
    }
}
