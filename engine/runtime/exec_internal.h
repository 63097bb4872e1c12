/* engine/runtime/exec_internal.h — the executor's plan, shared by engine/runtime/plan.c (which
 * decides steps, gradients and buffer offsets from the graph alone) and
 * engine/runtime/executor.c (which allocates and runs it). Not a public header.
 *
 * Vocabulary:
 *  - a *step* is one backend call sequence in forward order: usually one layer; a
 *    BatchNormalization whose only reader is an Activation is fused with it into
 *    one affine_act step (the BN's own output is never stored);
 *  - a *value* is a stored float tensor [batch, h, w, c], one per layer output;
 *    a nested model's InputLayer and a fused BN have none (val_of = producer's / -1);
 *  - precision (WN_EXEC_BF16): each value has a storage type. Steps whose ops have bf16
 *    kernels (convolution, affine_act, pooling, concatenation, residual/Add, and GAP,
 *    which reads bf16 and writes float32) run in bf16; the rest (augmentation, dropout,
 *    Dense, the loss) in float32. Where a value of one type meets a reader of the
 *    other, the plan inserts one cast step, shared by every reader of that type (in
 *    the zoo's models: once, the augmented images before the first convolution), so
 *    activations stay bf16 from the first convolution to GAP;
 *  - time runs 0..S-1 over forward steps, S is the loss, and the backward of step
 *    s runs at time 2S - s; every value and gradient lives over an interval of
 *    that timeline, and buffers whose intervals do not overlap share memory.
 */
#ifndef WN_EXEC_INTERNAL_H
#define WN_EXEC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "engine/runtime/executor.h"
#include "kernels/common/bf16.h"

typedef enum {
    WN_STEP_AUGMENT,
    WN_STEP_CONV,      /* Conv2D, DepthwiseConv2D (groups = C), or one half of a
                          SeparableConv2D (wn_step.part) */
    WN_STEP_AFFINE,    /* BN, BN + Activation, or a bare Activation */
    WN_STEP_POOL,
    WN_STEP_CONCAT,
    WN_STEP_RESIDUAL,  /* x + scale*r; Add of two inputs is scale 1 */
    WN_STEP_ADD,       /* Add of n inputs: a chain of residual calls */
    WN_STEP_GAP,
    WN_STEP_DROPOUT,
    WN_STEP_DENSE,
    WN_STEP_CAST       /* a value in the other storage type (placed by the plan) */
} wn_step_kind;

typedef struct wn_step {
    wn_step_kind kind;
    wn_dtype dtype;     /* the type its activations are read (and, except GAP, written)
                           in; a cast's: the type it writes */
    int layer;          /* main graph layer (conv, BN, act, ...) */
    int part;           /* SeparableConv2D: WN_CONV_DEPTHWISE or WN_CONV_POINTWISE (two
                           steps, the depthwise output a value of its own); else
                           WN_CONV_WHOLE */
    int out_layer;      /* layer whose output this step writes (the act when fused) */
    int bn;             /* index into wn_plan.bn, -1 when no BN */
    wn_activation act;
    int n_in;
    int in_val[WN_MAX_INPUTS];  /* value ids read (-1: the uint8 image input) */
    int out_val;
    int backward;       /* 1: its output needs a gradient, so backward runs */
    int wgrad;          /* 1: its layer's weights are trainable: weight gradients */
    int gamma_grad;     /* 1: a BN with trainable gamma: bn_gamma_backward reads x */
    int in_grad[WN_MAX_INPUTS];   /* 1: compute the gradient of input i */
    int in_accum[WN_MAX_INPUTS];  /* 1: add to it (another reader wrote it first) */
    int epilogue;       /* conv: the affine step it applies in its epilogue, writing that
                           step's output (plan_epilogues); -1 none */
    int in_epilogue;    /* affine: 1 when a conv step applies it; nothing left to run */
} wn_step;

enum { WN_CONV_WHOLE = 0, WN_CONV_DEPTHWISE = 1, WN_CONV_POINTWISE = 2 };

/* The convolution a conv step runs for a batch of n: its descriptor, and the index
 * in its layer's weights of the kernel and of the bias (-1: none). A convolution
 * that reads a ZeroPadding2D takes the padding as explicit pads. */
int wn_step_conv(const wn_graph *g, const wn_step *s, int n, wn_conv_desc *d,
                 int *kernel, int *bias);

typedef struct wn_value {
    int layer;          /* graph layer that owns it */
    wn_dtype dtype;     /* storage of the value and its gradient */
    size_t floats;      /* arena floats it takes: [batch, h, w, c] elements of dtype */
    size_t per_image;   /* h * w * c */
    int start, end;     /* live interval of the forward value */
    size_t offset;      /* in the arena, floats */
    int requires_grad;  /* some trainable weight lies below it */
    int grad_start, grad_end;
    size_t grad_offset; /* in the arena, floats (valid when requires_grad) */
} wn_value;

typedef struct wn_bn_entry {
    int layer;
    int c;
    /* offsets (floats) of its five [c] arrays in the BN buffer, each aligned: */
    size_t scale;       /* gamma / sqrt(var + eps) (gamma = 1 when absent) */
    size_t negms;       /* -mean * scale */
    size_t shift;       /* beta - mean * scale = beta + negms */
    size_t inv_std;     /* 1 / sqrt(var + eps) */
    size_t negmean;     /* -mean */
    int trainable;      /* beta (and gamma) trainable: scale (when gamma) and shift
                           are recomputed after each update */
} wn_bn_entry;

typedef struct wn_plan {
    int batch;
    unsigned flags;
    int n_steps;
    wn_step *steps;
    int n_values;
    wn_value *values;
    int *val_of;        /* [n_layers] value id of each layer's output, -1 none */
    int n_bn;
    wn_bn_entry *bn;
    size_t bn_floats;   /* the 5 arrays of every BN (wn_bn_entry) */
    size_t arena_floats;
    int logits_val, backbone_val;
    int lowest_backward_layer;
    int backward_steps;
} wn_plan;

/* The storage type of values under `flags` (WN_EXEC_BF16 or not). */
static inline wn_dtype wn_plan_act_dtype(unsigned flags) {
    return (flags & WN_EXEC_BF16) ? WN_DTYPE_BF16 : WN_DTYPE_F32;
}

/* Builds the plan for model's current boundary (no backend calls). */
int wn_plan_make(wn_plan *p, const wn_model *m, int batch, unsigned flags);
void wn_plan_free(wn_plan *p);

/* ---- gradient buckets (engine/runtime/grad_buckets.c): a data-parallel step begins
 * summing each bucket over the ranks as soon as backward has finished writing it, so
 * the sums overlap the rest of backward on a backend that can (CUDA with NCCL). */
typedef struct wn_grad_bucket {
    int after_step;       /* begin once the turn of steps[after_step] has passed (backward
                             runs from the last step to the first) */
    size_t first, count;  /* floats of the gradient buffer (from params[trainable_first]) */
} wn_grad_bucket;

/* The buckets of plan p for the trainable suffix [trainable_first, + trainable) of the
 * params, each at least bucket_floats long but the last, from the top of the buffer
 * down: together they cover [0, trainable) once, in the order backward closes them.
 * *n_out = 0 (and *out NULL) when bucket_floats or trainable is 0. Free with free(). */
int wn_grad_buckets_make(const wn_plan *p, const wn_graph *g, size_t trainable_first,
                         size_t trainable, size_t bucket_floats, wn_grad_bucket **out,
                         int *n_out);

/* ---- backend memory: one list of the buffers an executor allocates, used both to
 * allocate them (engine/runtime/executor.c) and to tell, before allocating anything,
 * whether a plan fits in what the backend has free (unit-tested on the CPU in
 * tests/graph/test_exec_memory.c, with a backend standing in for a small GPU). */

typedef enum {
    /* kept through a re-plan (a new fine-tune boundary) */
    WN_EXEC_BUF_PARAMS,     /* [n_params] floats */
    WN_EXEC_BUF_STATS,      /* [n_stats] floats */
    WN_EXEC_BUF_BN,         /* [bn_floats]: BN terms (wn_bn_entry) */
    WN_EXEC_BUF_IMAGES,     /* [upload slot][batch, H, W, 3] uint8: one buffer per slot */
    WN_EXEC_BUF_LABELS,     /* [batch] int32 */
    WN_EXEC_BUF_PROBS,      /* [batch, classes] floats: predict's softmax */
    WN_EXEC_BUF_PREPROCESS, /* [6] floats (EfficientNet-Lite's preprocessing), optional */
    WN_EXEC_BUF_STEP_STATS, /* [4] floats: this step's loss and correct count, totals */
    WN_EXEC_BUF_PARAMS16,   /* [n_params] bf16: the weights the bf16 ops multiply, cast
                               from params after each update (WN_EXEC_BF16 only) */
    /* made anew by each plan */
    WN_EXEC_BUF_ARENA,      /* [arena_floats]: activations and their gradients */
    WN_EXEC_BUF_GRADS,      /* [trainable] floats, optional (none when inference-only) */
    WN_EXEC_BUF_ADAM_M,
    WN_EXEC_BUF_ADAM_V,
    WN_EXEC_BUF_COUNT
} wn_exec_buffer_id;

#define WN_EXEC_BUF_FIRST_PLANNED WN_EXEC_BUF_ARENA

typedef struct wn_exec_buffer {
    const char *what;  /* for messages: "activations", "Adam m", ... */
    size_t bytes;      /* what the executor asks the backend for; 0: not allocated */
    int copies;        /* how many such buffers (the image buffer: one per upload slot) */
} wn_exec_buffer;

typedef struct wn_exec_sizes {
    wn_exec_buffer buf[WN_EXEC_BUF_COUNT];
    size_t requested;  /* sum of what is asked (bytes x copies) */
    size_t fixed;      /* rounded bytes of the buffers kept through a re-plan */
    size_t planned;    /* rounded bytes of the buffers each plan makes */
    size_t scratch;    /* the largest scratch one convolution call takes */
    size_t needed;     /* fixed + planned + scratch + the backend's reserve */
} wn_exec_sizes;

/* The buffers of an executor for plan p of model m on backend be (its upload slots,
 * allocation rounding, reserve and convolution scratch). */
void wn_exec_sizes_make(wn_backend *be, const wn_model *m, const wn_plan *p,
                        wn_exec_sizes *s);

/* The largest batch in [1, max_batch] whose executor (model's current boundary,
 * `flags`) needs at most `available` bytes on be: *largest = 0 when not even batch 1
 * fits. Plans each candidate (binary search, then the answer is re-checked). */
int wn_exec_largest_batch(wn_backend *be, const wn_model *m, unsigned flags,
                          size_t available, int max_batch, int *largest);

/* WN_OK when plan p fits in `available` bytes of be; otherwise WN_ERR with a message
 * that gives what is needed (by part), what is free and the largest batch that fits. */
int wn_exec_fit_check(wn_backend *be, const wn_model *m, const wn_plan *p, size_t available);

/* ---- the bf16 steps (engine/runtime/executor_bf16.c): what they need of the
 * executor, filled by engine/runtime/executor.c. */
typedef struct wn_exec_bf16_ctx {
    wn_backend *be;
    const wn_model *model;
    const wn_plan *plan;
    float *arena;
    const float *params, *stats, *bn; /* float32 master weights, statistics, BN terms */
    const wn_bf16 *params16;          /* their bf16 copy (convolution kernels) */
    float *grads;                     /* [trainable], from params[trainable_first] */
    size_t trainable_first;
} wn_exec_bf16_ctx;

/* Forward and backward of a step whose dtype is bf16, or of a cast step. */
int wn_exec_bf16_forward(const wn_exec_bf16_ctx *c, const wn_step *s, int n);
int wn_exec_bf16_backward(const wn_exec_bf16_ctx *c, const wn_step *s, int n);

#endif
