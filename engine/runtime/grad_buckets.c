/* engine/runtime/grad_buckets.c — when each part of the weight gradients is final
 * during backward, so that a data-parallel step can begin summing it over the ranks
 * while backward goes on below it (exec_internal.h: wn_grad_buckets_make).
 *
 * Backward runs the plan's steps from the last to the first. A step writes the
 * gradients of its own layer's trainable weights only, so after the turn of step k
 * every gradient float at or above F(k) = the highest end of what steps 0..k-1 write
 * is final. Walking k downwards, a bucket closes when the final region has grown by
 * at least the bucket size past the last bucket's start; what is left closes after
 * step 0. The rule holds whatever order the weights lie in (a step writing high
 * offsets early in the plan only delays the buckets above it). */
#include <stdlib.h>

#include "engine/runtime/exec_internal.h"
#include "host/base/error.h"

/* The end of what step s writes in the gradient buffer: the highest end of its layer's
 * trainable weights (0 when it has none or runs no backward). */
static size_t step_writes_to(const wn_graph *g, const wn_step *s, size_t trainable_first) {
    size_t hi = 0;
    if (!s->backward || s->layer < 0) return 0;
    const wn_layer *l = &g->layers[s->layer];
    for (int i = 0; i < l->n_weights; i++) {
        const wn_weight *w = &l->weights[i];
        if (w->in_stats || w->offset < trainable_first) continue;
        size_t end = w->offset - trainable_first + w->count;
        if (end > hi) hi = end;
    }
    return hi;
}

int wn_grad_buckets_make(const wn_plan *p, const wn_graph *g, size_t trainable_first,
                         size_t trainable, size_t bucket_floats, wn_grad_bucket **out,
                         int *n_out) {
    *out = NULL, *n_out = 0;
    if (!trainable || !bucket_floats || p->n_steps < 1) return WN_OK;
    /* final_from[k]: the start of what is final once step k's turn has passed */
    size_t *final_from = malloc((size_t)p->n_steps * sizeof *final_from);
    wn_grad_bucket *b = malloc((size_t)p->n_steps * sizeof *b);
    if (!final_from || !b) {
        free(final_from), free(b);
        return wn_fail("planning the gradient buckets: out of memory");
    }
    size_t high = 0; /* the highest end written by steps 0..k-1 */
    for (int k = 0; k < p->n_steps; k++) {
        final_from[k] = high;
        size_t hi = step_writes_to(g, &p->steps[k], trainable_first);
        if (hi > high) high = hi;
    }
    /* final_from[0] is 0, so the turn of step 0 closes whatever is left */
    int n = 0;
    size_t open_end = trainable; /* the start of the last bucket closed */
    for (int k = p->n_steps - 1; k >= 0; k--) {
        size_t from = final_from[k];
        if (from < open_end && (open_end - from >= bucket_floats || k == 0)) {
            b[n++] = (wn_grad_bucket){k, from, open_end - from};
            open_end = from;
        }
    }
    free(final_from);
    *out = b, *n_out = n;
    return WN_OK;
}
