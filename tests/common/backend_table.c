/* tests/common/backend_table.c — see backend_table.h. */
#include "tests/common/backend_table.h"

#include <string.h>

#include "kernels/common/backend_bf16_ops.h"
#include "tests/common/check.h"

/* The entries in declaration order; the static assertion below fails the build
 * when an entry is added to wn_backend_ops without a name here. */
static const char *const entry_names[] = {
    "alloc", "free", "copy_to_backend", "copy_to_host", "copy", "fill", "synchronize",
    "memory", "host_alloc", "host_free", "upload_async", "upload_release", "upload_wait",
    "conv_scratch_bytes", "set_deterministic", "conv2d_forward", "conv2d_backward_data", "conv2d_backward_filter",
    "conv2d_forward_epilogue", "affine_act_forward", "affine_act_backward", "bn_gamma_backward", "pool_forward",
    "pool_backward", "concat_forward", "concat_backward", "scaled_add", "scaled_add_backward",
    "mul", "gap_forward", "gap_backward", "dropout_forward", "dropout_backward",
    "dense_forward", "dense_backward", "softmax_xent", "adam_update", "augment_preprocess",
    "join_group", "allreduce_sum", "allreduce_begin", "allreduce_end", "destroy"};

typedef void (*any_fn)(void);
_Static_assert(sizeof(wn_backend_ops) == sizeof entry_names / sizeof entry_names[0] * sizeof(any_fn),
               "wn_backend_ops changed: update entry_names in tests/common/backend_table.c");

/* The optional bf16 table (kernels/common/backend_bf16_ops.h): all or nothing (but for
 * the optional entries below). */
static const char *const bf16_entry_names[] = {
    "describe", "cast_to_bf16", "cast_to_f32", "conv_scratch_bytes", "conv2d_forward",
    "conv2d_backward_data", "conv2d_backward_filter", "conv2d_forward_epilogue",
    "affine_act_forward", "affine_act_backward", "bn_gamma_backward", "pool_forward", "pool_backward",
    "concat_forward", "concat_backward", "scaled_add", "scaled_add_backward", "gap_forward",
    "gap_backward"};
_Static_assert(sizeof(wn_backend_bf16_ops) ==
                   sizeof bf16_entry_names / sizeof bf16_entry_names[0] * sizeof(any_fn),
               "wn_backend_bf16_ops changed: update bf16_entry_names in tests/common/backend_table.c");

/* Entries a backend may leave NULL (the dispatcher composes them from others). */
static int optional_entry(const char *name) {
    return !strcmp(name, "conv2d_forward_epilogue") || !strcmp(name, "allreduce_begin") ||
           !strcmp(name, "allreduce_end");
}

int check_backend_table(const wn_backend *be) {
    int n = (int)(sizeof entry_names / sizeof entry_names[0]), missing = 0;
    any_fn fns[sizeof entry_names / sizeof entry_names[0]];
    memcpy(fns, be->ops, sizeof fns);
    for (int i = 0; i < n; i++) {
        if (optional_entry(entry_names[i])) continue;
        CHECK(fns[i] != NULL, "backend %s: ops table entry %s is NULL", be->name, entry_names[i]);
        missing += fns[i] == NULL;
    }
    if (be->bf16) {
        int nb = (int)(sizeof bf16_entry_names / sizeof bf16_entry_names[0]);
        any_fn bfns[sizeof bf16_entry_names / sizeof bf16_entry_names[0]];
        memcpy(bfns, be->bf16, sizeof bfns);
        for (int i = 0; i < nb; i++) {
            if (optional_entry(bf16_entry_names[i])) continue;
            CHECK(bfns[i] != NULL, "backend %s: bf16 table entry %s is NULL", be->name,
                  bf16_entry_names[i]);
            missing += bfns[i] == NULL;
        }
    }
    CHECK(be->name && be->name[0], "backend without a name");
    CHECK(be->upload_slots >= 1, "backend %s: %d upload slots", be->name, be->upload_slots);
    return missing;
}
