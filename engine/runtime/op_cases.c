/* engine/runtime/op_cases.c — the op case list and its runner (op_cases.h).
 *
 * Shapes (s[]) and op-specific variant bits, per op:
 *   conv2d       n h w c k kh kw sh sw groups; bit 0 'same', bit 1 bias
 *   dense        n in out; bit 1 bias
 *   affine_act   pixels c; bits 0-1 activation, bits 2-3 form (0 scale+shift,
 *                1 shift only, 2 bare activation)
 *   bn_gamma     pixels c; bits 0-1 activation
 *   pool         n h w c k stride [top bottom left right]; bit 0 'same', bit 1 average
 *                (else max), bit 2 a ZeroPadding2D of those four folded into the 'valid'
 *                window as explicit pads (max only, as the executor folds it)
 *   concat       pixels n_in ch0 ch1 ch2 ch3; WN_OPC_V_NO_DW: input 1's gradient absent
 *   scaled_add   count scale*1000
 *   mul          count
 *   gap          n hw c
 *   dropout      count rate*100 offset seed
 *   softmax_xent n k smoothing*1000; bit 0 loss only (no probs, no dlogits)
 *   adam         count t
 *   augment      n h w c mode (preprocess_input: 0 tf, 1 caffe, 2 torch); variant 0
 *                flip + rotate, 1 flip only, 2 preprocess only
 * Common bits: WN_OPC_V_ACC (gradients accumulate), WN_OPC_V_NO_DX, WN_OPC_V_NO_DW;
 * WN_OPC_V_INPLACE (scaled_add only: y aliases x, dx aliases dy).
 *
 * The shapes come from the tests they replace (tests/ops/test_grad.c and
 * tests/gpu/parity_*.c): odd sizes, TensorFlow's asymmetric 'same' padding at
 * stride 1 and 2, 'valid' stride-2 edges, a stride larger than the kernel,
 * InceptionResNetV2's 1x7/7x1 kernels, depthwise and grouped convolutions, batch 1
 * and 64, and channel counts of the real models.
 */
#include "engine/runtime/op_cases.h"
#include "engine/runtime/backend_bf16.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/base/error.h"
#include "host/base/rng.h"

/* ---------------------------------------------------------------- the list */

#define MAX_CASES 1024
static wn_op_case g_cases[MAX_CASES];
static int g_n_cases;

static void add(wn_opc_op op, unsigned modes, int variant, const int s[10]) {
    if (g_n_cases == MAX_CASES) return; /* the list below stays far from the cap */
    wn_op_case *c = &g_cases[g_n_cases++];
    c->op = op;
    memcpy(c->s, s, sizeof c->s);
    c->variant = variant;
    c->modes = modes;
}
/* ADD(op, modes, variant, shape...): the shape's unlisted numbers are 0 */
#define ADD(op, modes, variant, ...) add(op, modes, variant, (const int[10]){__VA_ARGS__})

#define G WN_OPC_GRAD
#define P WN_OPC_PARITY
#define Q WN_OPC_QUICK
#define F WN_OPC_PERF
#define M WN_OPC_MATMUL

static void build_list(void) {
    /* convolution: n h w c k kh kw sh sw groups, padding, grad/quick */
    static const struct { int s[10]; int same, modes; } conv[] = {
        {{1, 7, 9, 3, 5, 3, 3, 1, 1, 1}, 1, G | Q},
        {{2, 8, 10, 4, 6, 3, 3, 2, 2, 1}, 1, G | Q},  /* asymmetric: 0 before, 1 after */
        {{3, 11, 11, 5, 7, 3, 3, 2, 2, 1}, 0, G | Q}, /* stride-2 'valid' edge */
        {{2, 6, 7, 5, 9, 2, 2, 1, 1, 1}, 1, G | Q},   /* asymmetric at stride 1 */
        {{1, 5, 5, 3, 4, 1, 1, 2, 2, 1}, 0, G},       /* stride > kernel */
        {{2, 9, 8, 6, 8, 1, 7, 1, 1, 1}, 1, 0},       /* block17 1x7 */
        {{2, 9, 8, 8, 6, 7, 1, 1, 1, 1}, 1, 0},       /* block17 7x1 */
        {{1, 13, 13, 3, 4, 5, 5, 1, 1, 1}, 1, 0},
        {{1, 12, 11, 4, 4, 5, 5, 2, 2, 1}, 1, 0},     /* 5x5 stride 2, asymmetric */
        {{2, 9, 9, 6, 6, 3, 3, 1, 1, 6}, 1, G | Q},   /* depthwise */
        {{1, 10, 10, 6, 6, 3, 3, 2, 2, 6}, 1, G},     /* depthwise, asymmetric */
        {{2, 7, 7, 8, 12, 3, 3, 1, 1, 4}, 1, G},      /* grouped */
        {{64, 17, 17, 32, 48, 3, 3, 1, 1, 1}, 1, F},
        {{64, 9, 9, 64, 96, 1, 1, 1, 1, 1}, 1, F},
        {{64, 19, 19, 3, 8, 3, 3, 2, 2, 1}, 0, F},    /* the stem's first layer */
        {{1, 37, 37, 64, 96, 3, 3, 1, 1, 1}, 1, F},
        {{32, 40, 40, 32, 32, 3, 3, 1, 1, 32}, 1, F}, /* EfficientNet-Lite depthwise */
    };
    for (unsigned i = 0; i < sizeof conv / sizeof conv[0]; i++)
        for (int v = 0; v < 2; v++) { /* v 1: bias + accumulating data gradient */
            int variant = conv[i].same | (v ? 2 | WN_OPC_V_ACC : 0);
            const int *s = conv[i].s;
            ADD(WN_OPC_CONV2D, P | M | conv[i].modes, variant, s[0], s[1], s[2], s[3], s[4],
                  s[5], s[6], s[7], s[8], s[9]);
        }
    static const struct { int n, in, out, modes; } dense[] = {
        {1, 1536, 6, Q}, {7, 33, 5, G | Q}, {3, 1, 1, G | Q}, {2, 37, 9, G},
        {64, 1536, 6, F}, {64, 1536, 1000, F}};
    for (unsigned i = 0; i < sizeof dense / sizeof dense[0]; i++)
        for (int v = 0; v < 3; v++) /* no bias, bias, bias without dx */
            ADD(WN_OPC_DENSE, P | M | dense[i].modes, (v ? 2 : 0) | (v == 2 ? WN_OPC_V_NO_DX : 0),
                dense[i].n, dense[i].in, dense[i].out);

    static const struct { int pixels, c, modes; } aff[] = {
        {1, 1, Q}, {37 * 5, 33, G | Q}, {23, 7, G}, {1000, 3, Q}, {64 * 9 * 9, 320, F},
        {2 * 17 * 17, 1088, F}};
    for (unsigned i = 0; i < sizeof aff / sizeof aff[0]; i++)
        for (int act = 0; act < 3; act++)
            for (int form = 0; form < 3; form++)
                for (int v = 0; v < 4; v++) { /* dx, dshift only, dx+dshift, dx+=+dshift */
                    int variant = act | form << 2 | (v == 1 ? WN_OPC_V_NO_DX : 0) |
                                  (v == 0 ? WN_OPC_V_NO_DW : 0) | (v == 3 ? WN_OPC_V_ACC : 0);
                    if (form == 2 && v == 1) continue; /* no shift: nothing to compute */
                    unsigned modes = P | aff[i].modes;
                    /* time what training runs: BN + ReLU, dx and dshift */
                    if (v != 2 || act != 1 || form != 0) modes &= ~F;
                    ADD(WN_OPC_AFFINE_ACT, modes, variant, aff[i].pixels, aff[i].c);
                }
    static const struct { int pixels, c, modes; } gamma[] = {
        {1, 1, Q}, {37 * 5, 33, G | Q}, {1000, 3, G | Q}, {64 * 10 * 10, 1280, F},
        {8 * 40 * 40, 40, F}};
    for (unsigned i = 0; i < sizeof gamma / sizeof gamma[0]; i++)
        for (int act = 0; act < 3; act++)
            ADD(WN_OPC_BN_GAMMA, P | ((unsigned)gamma[i].modes & (act == 2 ? ~0u : ~(unsigned)F)), act,
                gamma[i].pixels, gamma[i].c);

    /* pooling: n h w c k stride, 'same' */
    static const struct { int s[6], same, modes; } pool[] = {
        {{1, 7, 9, 3, 3, 2}, 0, G | Q}, {{2, 8, 8, 2, 3, 2}, 1, G | Q}, {{1, 5, 7, 4, 3, 1}, 1, G},
        {{2, 9, 6, 3, 2, 2}, 1, G},     {{1, 6, 5, 2, 5, 3}, 1, G},     {{1, 1, 1, 3, 3, 1}, 1, G},
        {{1, 10, 11, 2, 3, 2}, 0, G},   {{1, 7, 7, 3, 3, 2}, 0, Q},     {{2, 8, 8, 5, 3, 1}, 1, Q},
        {{1, 9, 10, 4, 2, 2}, 1, Q},    {{64, 9, 9, 32, 3, 2}, 0, F},   {{3, 35, 35, 16, 3, 1}, 1, F},
        {{2, 10, 9, 7, 3, 2}, 1, 0}};
    for (unsigned i = 0; i < sizeof pool / sizeof pool[0]; i++)
        for (int avg = 0; avg < 2; avg++)
            for (int acc = 0; acc < 2; acc++) {
                const int *s = pool[i].s;
                ADD(WN_OPC_POOL, P | ((unsigned)pool[i].modes & (acc ? ~(unsigned)F : ~0u)),
                    pool[i].same | avg << 1 | (acc ? WN_OPC_V_ACC : 0),
                    s[0], s[1], s[2], s[3], s[4], s[5]);
            }
    /* ZeroPadding2D + 'valid' max pooling (ResNet50's and DenseNet121's pool1_pad 1 +
     * pool1 3x3/2): pad_top 1 with the bottom pad dropped on an even size, kept on an
     * odd one; and uneven pads. Max only: the executor folds padding into no average. */
    static const struct { int s[10], modes; } zpool[] = {
        {{1, 8, 8, 3, 3, 2, 1, 1, 1, 1}, G | Q}, {{2, 9, 7, 2, 3, 2, 1, 1, 1, 1}, G | Q},
        {{1, 6, 7, 2, 3, 1, 2, 0, 1, 2}, G},     {{1, 5, 5, 3, 2, 2, 0, 1, 1, 0}, G},
        {{64, 32, 32, 64, 3, 2, 1, 1, 1, 1}, F}};
    for (unsigned i = 0; i < sizeof zpool / sizeof zpool[0]; i++)
        for (int acc = 0; acc < 2; acc++) {
            const int *s = zpool[i].s;
            ADD(WN_OPC_POOL, P | ((unsigned)zpool[i].modes & (acc ? ~(unsigned)F : ~0u)),
                4 | (acc ? WN_OPC_V_ACC : 0), s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7],
                s[8], s[9]);
        }

    static const struct { int pixels, n_in, ch[4], modes; } cat[] = {
        {1, 2, {1, 1}, Q},       {37, 4, {3, 5, 1, 7}, G | Q}, {11, 3, {2, 6, 3}, G},
        {64 * 8 * 8, 3, {192, 224, 256}, F}, {2 * 35 * 35, 4, {96, 64, 96, 64}, F}};
    for (unsigned i = 0; i < sizeof cat / sizeof cat[0]; i++)
        for (int v = 0; v < 3; v++) /* all, input 1 frozen, accumulate with input 1 frozen */
            ADD(WN_OPC_CONCAT, P | ((unsigned)cat[i].modes & (v ? ~(unsigned)F : ~0u)),
                (v ? WN_OPC_V_NO_DW : 0) | (v == 2 ? WN_OPC_V_ACC : 0),
                cat[i].pixels, cat[i].n_in, cat[i].ch[0], cat[i].ch[1], cat[i].ch[2], cat[i].ch[3]);

    static const struct { int count, scale, modes; } res[] = {
        {1, 170, G | Q}, {1001, 100, G | Q}, {77, 1000, G}, {2 * 17 * 17 * 1088, 170, F}};
    for (unsigned i = 0; i < sizeof res / sizeof res[0]; i++)
        for (int v = 0; v < 4; v++) /* both, dx only, dr only, both += */
            ADD(WN_OPC_SCALED_ADD, P | ((unsigned)res[i].modes & (v ? ~(unsigned)F : ~0u)),
                (v == 1 ? WN_OPC_V_NO_DW : 0) | (v == 2 ? WN_OPC_V_NO_DX : 0) | (v == 3 ? WN_OPC_V_ACC : 0),
                res[i].count, res[i].scale);
    /* in place, as the executor runs a residual: y = x + scale*r into x's buffer, and
     * the backward with dx == dy */
    ADD(WN_OPC_SCALED_ADD, P | G | Q, WN_OPC_V_INPLACE, 1001, 170);
    ADD(WN_OPC_SCALED_ADD, P | G, WN_OPC_V_INPLACE, 77, 1000);
    ADD(WN_OPC_MUL, P | Q, 0, 1);
    ADD(WN_OPC_MUL, P | Q, 0, 1001);
    ADD(WN_OPC_MUL, P | F, 0, 2 * 17 * 17 * 1088);

    static const struct { int n, hw, c, modes; } gap[] = {
        {1, 1, 1, G | Q}, {3, 35, 7, G | Q}, {2, 12, 11, G}, {64, 100, 1536, F}, {2, 81, 1536, 0}};
    for (unsigned i = 0; i < sizeof gap / sizeof gap[0]; i++)
        for (int acc = 0; acc < 2; acc++)
            ADD(WN_OPC_GAP, P | ((unsigned)gap[i].modes & (acc ? ~(unsigned)F : ~0u)),
                acc ? WN_OPC_V_ACC : 0, gap[i].n, gap[i].hw, gap[i].c);

    static const struct { int count, rate, offset, modes; } drop[] = {
        {1, 20, 0, Q}, {257, 0, 0, G | Q}, {200, 20, 123457, G | Q}, {300, 50, 99, G},
        {64 * 1536, 20, 123457, F}, {100003, 50, 0, 0}};
    for (unsigned i = 0; i < sizeof drop / sizeof drop[0]; i++)
        for (int acc = 0; acc < 2; acc++)
            ADD(WN_OPC_DROPOUT, P | ((unsigned)drop[i].modes & (acc ? ~(unsigned)F : ~0u)),
                acc ? WN_OPC_V_ACC : 0, drop[i].count,
                drop[i].rate, drop[i].offset, 7 + (int)i);

    static const struct { int n, k, modes; } xent[] = {
        {1, 6, G | Q}, {7, 6, G | Q}, {5, 9, G}, {3, 2, G}, {64, 6, F}, {64, 1000, 0}, {300, 6, 0}};
    for (unsigned i = 0; i < sizeof xent / sizeof xent[0]; i++)
        for (int loss_only = 0; loss_only < 2; loss_only++)
            for (int smooth = 0; smooth < 2; smooth++) /* Keras's label_smoothing 0, 0.1 */
                if (!smooth || (xent[i].modes & G))
                    ADD(WN_OPC_SOFTMAX_XENT,
                        P | ((unsigned)xent[i].modes &
                             (loss_only || smooth ? ~(unsigned)(G | F) : ~0u) &
                             (smooth && !loss_only ? ~(unsigned)F : ~0u)) |
                            (smooth && !loss_only ? (unsigned)G : 0u),
                        loss_only, xent[i].n, xent[i].k, smooth ? 100 : 0);

    /* (the model-sized Adam and augmentation cases are timed, not compared: the
     * smaller ones take the same code paths) */
    static const struct { int count, modes; } adam[] = {
        {1, P | Q}, {1001, P | Q}, {100003, P}, {4000000, F}};
    for (unsigned i = 0; i < sizeof adam / sizeof adam[0]; i++)
        for (int t = 1; t <= 7; t += 6)
            ADD(WN_OPC_ADAM, (unsigned)adam[i].modes & (t == 1 ? ~0u : ~(unsigned)F), 0,
                adam[i].count, t);

    static const struct { int n, h, w, c, modes; } aug[] = {
        {1, 5, 7, 3, P | Q}, {3, 32, 33, 3, P | Q}, {4, 75, 75, 3, P}, {2, 320, 320, 3, P},
        {64, 320, 320, 3, F}};
    for (unsigned i = 0; i < sizeof aug / sizeof aug[0]; i++)
        for (int v = 0; v < 4; v++)
            for (int mode = 0; mode < 3; mode++) /* tf, caffe, torch: on the small shapes */
                if (!mode || i < 3)
                    ADD(WN_OPC_AUGMENT, (unsigned)aug[i].modes & (v || mode ? ~(unsigned)F : ~0u),
                        v, aug[i].n, aug[i].h, aug[i].w, aug[i].c, mode);
}

const wn_op_case *wn_op_cases(int *count) {
    if (!g_n_cases) build_list();
    *count = g_n_cases;
    return g_cases;
}

static const char *const op_names[WN_OPC_OP_COUNT] = {
    "conv2d", "dense", "affine_act", "bn_gamma", "pool", "concat", "scaled_add",
    "mul", "gap", "dropout", "softmax_xent", "adam", "augment"};

const char *wn_opc_op_name(wn_opc_op op) {
    return op >= 0 && op < WN_OPC_OP_COUNT ? op_names[op] : "?";
}

int wn_opc_has_gradient(wn_opc_op op) {
    return op != WN_OPC_MUL && op != WN_OPC_ADAM && op != WN_OPC_AUGMENT;
}

int wn_opc_has_backward(wn_opc_op op) {
    return wn_opc_has_gradient(op) && op != WN_OPC_SOFTMAX_XENT;
}

int wn_opc_has_bf16(wn_opc_op op) {
    return op == WN_OPC_CONV2D || op == WN_OPC_AFFINE_ACT || op == WN_OPC_BN_GAMMA ||
           op == WN_OPC_POOL || op == WN_OPC_CONCAT || op == WN_OPC_SCALED_ADD ||
           op == WN_OPC_GAP;
}

static const char *act_name(int a) { return a == 1 ? "relu" : a == 2 ? "relu6" : "none"; }

void wn_opc_describe(const wn_op_case *c, char *buf, size_t size) {
    const int *s = c->s, v = c->variant;
    char shape[160];
    switch (c->op) {
    case WN_OPC_CONV2D:
        snprintf(shape, sizeof shape, "n%d %dx%dx%d k%d %dx%d s%d %s g%d%s", s[0], s[1], s[2], s[3],
                 s[4], s[5], s[6], s[7], v & 1 ? "same" : "valid", s[9], v & 2 ? " +b" : "");
        break;
    case WN_OPC_DENSE: snprintf(shape, sizeof shape, "n%d %d->%d%s", s[0], s[1], s[2], v & 2 ? " +b" : ""); break;
    case WN_OPC_AFFINE_ACT:
        snprintf(shape, sizeof shape, "%dx%d %s %s", s[0], s[1], act_name(v & 3),
                 (v >> 2 & 3) == 0 ? "scale+shift" : (v >> 2 & 3) == 1 ? "shift" : "bare");
        break;
    case WN_OPC_BN_GAMMA: snprintf(shape, sizeof shape, "%dx%d %s", s[0], s[1], act_name(v & 3)); break;
    case WN_OPC_POOL:
        if (v & 4)
            snprintf(shape, sizeof shape, "%s n%d %dx%dx%d zero-padded %d,%d,%d,%d %dx%d s%d valid",
                     v & 2 ? "avg" : "max", s[0], s[1], s[2], s[3], s[6], s[7], s[8], s[9], s[4],
                     s[4], s[5]);
        else
            snprintf(shape, sizeof shape, "%s n%d %dx%dx%d %dx%d s%d %s", v & 2 ? "avg" : "max", s[0],
                     s[1], s[2], s[3], s[4], s[4], s[5], v & 1 ? "same" : "valid");
        break;
    case WN_OPC_CONCAT:
        snprintf(shape, sizeof shape, "%d px, %d inputs (%d %d %d %d)", s[0], s[1], s[2], s[3],
                 s[1] > 2 ? s[4] : 0, s[1] > 3 ? s[5] : 0);
        break;
    case WN_OPC_SCALED_ADD: snprintf(shape, sizeof shape, "%d scale %g", s[0], s[1] / 1000.0); break;
    case WN_OPC_MUL: snprintf(shape, sizeof shape, "%d", s[0]); break;
    case WN_OPC_GAP: snprintf(shape, sizeof shape, "n%d hw%d c%d", s[0], s[1], s[2]); break;
    case WN_OPC_DROPOUT:
        snprintf(shape, sizeof shape, "%d rate %.2f offset %d", s[0], s[1] / 100.0, s[2]);
        break;
    case WN_OPC_SOFTMAX_XENT:
        snprintf(shape, sizeof shape, "n%d k%d%s", s[0], s[1], v & 1 ? " (loss only)" : "");
        break;
    case WN_OPC_ADAM: snprintf(shape, sizeof shape, "%d params t=%d", s[0], s[1]); break;
    case WN_OPC_AUGMENT:
        snprintf(shape, sizeof shape, "n%d %dx%dx%d %s", s[0], s[1], s[2], s[3],
                 v == 0 ? "flip+rotate" : v == 1 ? "flip only" : v == 2 ? "preprocess only"
                                                                : "flip+rotate+zoom+shift+contrast");
        break;
    default: snprintf(shape, sizeof shape, "?"); break;
    }
    snprintf(buf, size, "%s%s%s%s%s", shape, v & WN_OPC_V_NO_DX ? " no-dx" : "",
             v & WN_OPC_V_NO_DW ? " no-dw" : "", v & WN_OPC_V_ACC ? " +=" : "",
             v & WN_OPC_V_INPLACE ? " in place" : "");
}

/* ---------------------------------------------------------------- tensors */

static int pool_window(const wn_op_case *c, wn_window *win) {
    const int *s = c->s;
    if (c->variant & 4)
        return wn_window_init_zero_padded(win, s[0], s[1], s[2], s[3], s[4], s[4], s[5], s[5],
                                          s[6], s[7], s[8], s[9], "op case");
    return wn_window_init(win, s[0], s[1], s[2], s[3], s[4], s[4], s[5], s[5],
                          c->variant & 1 ? WN_PAD_SAME : WN_PAD_VALID, "op case");
}

static int tensor(wn_opc_data *d, const char *name, size_t count, wn_opc_role role, float lo,
                  float hi) {
    wn_opc_tensor *t = &d->t[d->n];
    memset(t, 0, sizeof *t);
    t->name = name, t->count = count, t->role = role, t->lo = lo, t->hi = hi;
    t->grad_of = -1, t->weights_of = -1;
    return d->n++;
}

static int in(wn_opc_data *d, const char *name, size_t count, float lo, float hi) {
    return tensor(d, name, count, WN_OPC_IN, lo, hi);
}

static int out(wn_opc_data *d, const char *name, size_t count, wn_opc_tol tol) {
    int i = tensor(d, name, count, WN_OPC_OUT, 0, 0);
    d->t[i].tol = tol;
    return i;
}

/* the loss weights dy of output y */
static int dy_of(wn_opc_data *d, int y) {
    int i = in(d, "dy", d->t[y].count, -1, 1);
    d->t[i].weights_of = y;
    return i;
}

static int grad(wn_opc_data *d, const char *name, int of, size_t count, int accumulate,
                wn_opc_tol tol) {
    int i = tensor(d, name, count, WN_OPC_GRADIENT, -1, 1);
    d->t[i].grad_of = of, d->t[i].accumulate = accumulate, d->t[i].tol = tol;
    return i;
}

size_t wn_opc_bytes(const wn_opc_tensor *t) {
    return t->count * (t->dtype == WN_OPC_U8 ? 1 : 4);
}

/* Tensor layouts, per op (the indices the runners below use). */
enum { CV_X, CV_W, CV_B, CV_Y, CV_DY, CV_DX, CV_DW, CV_DB };
enum { DN_X, DN_W, DN_B, DN_Y, DN_DY, DN_DX, DN_DW, DN_DB };
enum { AF_X, AF_SCALE, AF_SHIFT, AF_Y, AF_DY, AF_DX, AF_DSHIFT };
enum { BG_X, BG_GAMMA, BG_BETA, BG_MEAN, BG_INV_STD, BG_SCALE, BG_SHIFT, BG_Y, BG_DY, BG_DGAMMA };
enum { PL_X, PL_Y, PL_DY, PL_DX };
enum { CT_X0, CT_Y = 4, CT_DY, CT_DX0 };
enum { SA_X, SA_R, SA_Y, SA_DY, SA_DX, SA_DR };
enum { ML_A, ML_B, ML_Y };
enum { GP_X, GP_Y, GP_DY, GP_DX };
enum { DR_X, DR_Y, DR_DY, DR_DX };
enum { SX_Z, SX_LABELS, SX_PROBS, SX_DZ, SX_STATS, SX_DSTATS };
enum { AD_P, AD_G, AD_M, AD_V };
enum { AU_X, AU_FLIP, AU_ANGLE, AU_Y, AU_ZOOM, AU_SHIFT, AU_CONTRAST };

int wn_opc_tensor_is_act(const wn_opc_data *d, int i) {
    switch (d->c.op) {
    case WN_OPC_CONV2D: return i == CV_X || i == CV_W || i == CV_Y || i == CV_DY || i == CV_DX;
    case WN_OPC_AFFINE_ACT: return i == AF_X || i == AF_Y || i == AF_DY || i == AF_DX;
    case WN_OPC_BN_GAMMA: return i == BG_X || i == BG_Y || i == BG_DY;
    case WN_OPC_POOL:
    case WN_OPC_CONCAT:
    case WN_OPC_SCALED_ADD: return 1;
    case WN_OPC_GAP: return i == GP_X || i == GP_DX;
    default: return 0;
    }
}

static const float FD_H = 0.0625f; /* 2^-4: x +- h is exact for |x| < 8 */

/* The stationary points the gradient check must stay away from: ReLU's kinks at 0
 * and 6 (the pre-activation is kept >= 4h from both, with |x| < 7.5). */
static float away_from_kinks(uint64_t *rng, float s, float b, float margin) {
    float x, v;
    do {
        x = (float)(-3.5 + 11.0 * wn_splitmix64_unit(rng)) / s;
        v = x * s + b;
    } while (fabsf(v) < margin || fabsf(v - 6.0f) < margin || fabsf(x) > 7.5f);
    return x;
}

static void describe(wn_opc_data *d) {
    const wn_op_case *c = &d->c;
    const int *s = c->s, v = c->variant, acc = (v & WN_OPC_V_ACC) != 0;
    const int no_dx = (v & WN_OPC_V_NO_DX) != 0, no_dw = (v & WN_OPC_V_NO_DW) != 0;
    d->fd_h = FD_H, d->fd_rtol = 1e-3;
    switch (c->op) {
    case WN_OPC_CONV2D: {
        int n = s[0], h = s[1], w = s[2], ch = s[3], k = s[4], kh = s[5], kw = s[6], g = s[9];
        wn_window win;
        if (wn_window_init(&win, n, h, w, ch, kh, kw, s[7], s[8], v & 1 ? WN_PAD_SAME : WN_PAD_VALID,
                           "op case") != WN_OK)
            return;
        size_t nx = (size_t)n * h * w * ch, ny = (size_t)n * win.oh * win.ow * k;
        size_t nw = (size_t)kh * kw * (ch / g) * k;
        float ws = 1.0f / sqrtf((float)(kh * kw * (ch / g)));
        in(d, "x", nx, -1, 1), in(d, "w", nw, -ws, ws), in(d, "b", v & 2 ? (size_t)k : 0, -1, 1);
        int y = out(d, "y", ny, WN_OPC_TOL_MATMUL);
        dy_of(d, y);
        grad(d, "dx", CV_X, nx, acc, WN_OPC_TOL_MATMUL);
        grad(d, "dw", CV_W, nw, 0, WN_OPC_TOL_MATMUL);
        grad(d, "db", CV_B, v & 2 ? (size_t)k : 0, 0, WN_OPC_TOL_MATMUL);
        break;
    }
    case WN_OPC_DENSE: {
        size_t nx = (size_t)s[0] * s[1], nw = (size_t)s[1] * s[2], ny = (size_t)s[0] * s[2];
        float ws = 1.0f / sqrtf((float)s[1]);
        in(d, "x", nx, -1, 1), in(d, "w", nw, -ws, ws), in(d, "b", v & 2 ? (size_t)s[2] : 0, -1, 1);
        int y = out(d, "y", ny, WN_OPC_TOL_MATMUL);
        dy_of(d, y);
        grad(d, "dx", DN_X, no_dx ? 0 : nx, 0, WN_OPC_TOL_MATMUL);
        grad(d, "dw", DN_W, nw, 0, WN_OPC_TOL_MATMUL);
        grad(d, "db", v & 2 ? DN_B : -1, (size_t)s[2], 0, WN_OPC_TOL_MATMUL);
        break;
    }
    case WN_OPC_AFFINE_ACT: {
        size_t count = (size_t)s[0] * s[1], ch = (size_t)s[1];
        int form = v >> 2 & 3;
        in(d, "x", count, -8, 8); /* wide enough that ReLU6 clamps at both ends */
        in(d, "scale", form == 0 ? ch : 0, 0.5f, 1.5f), in(d, "shift", form < 2 ? ch : 0, -1, 1);
        int y = out(d, "y", count, WN_OPC_TOL_ELEMENTWISE);
        dy_of(d, y);
        grad(d, "dx", AF_X, no_dx ? 0 : count, acc, WN_OPC_TOL_ELEMENTWISE);
        grad(d, "dshift", AF_SHIFT, no_dw || form == 2 ? 0 : ch, 0, WN_OPC_TOL_ELEMENTWISE);
        break;
    }
    case WN_OPC_BN_GAMMA: {
        size_t count = (size_t)s[0] * s[1], ch = (size_t)s[1];
        in(d, "x", count, -3, 3), in(d, "gamma", ch, 0.5f, 1.5f), in(d, "beta", ch, -1, 1);
        in(d, "mean", ch, -1, 1), in(d, "inv_std", ch, 0.5f, 2.0f);
        tensor(d, "scale", ch, WN_OPC_SCRATCH, 0, 0), tensor(d, "shift", ch, WN_OPC_SCRATCH, 0, 0);
        int y = out(d, "y", count, WN_OPC_TOL_ELEMENTWISE);
        dy_of(d, y);
        grad(d, "dgamma", BG_GAMMA, ch, 0, WN_OPC_TOL_ELEMENTWISE);
        /* gamma +- h moves the pre-activation by h*|x-mean|*inv_std <= 8h: a small h
         * keeps that inside the kink margin (gamma ~ 1, so gamma +- 2^-8 is exact) */
        d->fd_h = 0.00390625f;
        break;
    }
    case WN_OPC_POOL: {
        wn_window win;
        if (pool_window(c, &win) != WN_OK) return;
        size_t nx = (size_t)s[0] * s[1] * s[2] * s[3], ny = (size_t)s[0] * win.oh * win.ow * s[3];
        in(d, "x", nx, -2, 2);
        int y = out(d, "y", ny, WN_OPC_TOL_ELEMENTWISE);
        dy_of(d, y);
        grad(d, "dx", PL_X, nx, acc, WN_OPC_TOL_ELEMENTWISE);
        break;
    }
    case WN_OPC_CONCAT: {
        size_t px = (size_t)s[0];
        int total = 0;
        static const char *xn[4] = {"x0", "x1", "x2", "x3"}, *dn[4] = {"dx0", "dx1", "dx2", "dx3"};
        for (int i = 0; i < 4; i++) {
            in(d, xn[i], i < s[1] ? px * s[2 + i] : 0, -1, 1);
            if (i < s[1]) total += s[2 + i];
        }
        int y = out(d, "y", px * total, WN_OPC_TOL_EXACT);
        dy_of(d, y);
        for (int i = 0; i < 4; i++) {
            size_t cnt = i < s[1] && !(i == 1 && no_dw) ? px * s[2 + i] : 0;
            /* a sum is rounded the same way everywhere, but leave room for a fused add */
            grad(d, dn[i], CT_X0 + i, cnt, acc, acc ? WN_OPC_TOL_ELEMENTWISE : WN_OPC_TOL_EXACT);
        }
        break;
    }
    case WN_OPC_SCALED_ADD: {
        size_t n = (size_t)s[0];
        in(d, "x", n, -2, 2), in(d, "r", n, -2, 2);
        int y = out(d, "y", n, WN_OPC_TOL_ELEMENTWISE);
        dy_of(d, y);
        grad(d, "dx", SA_X, no_dx ? 0 : n, acc, WN_OPC_TOL_ELEMENTWISE);
        grad(d, "dr", SA_R, no_dw ? 0 : n, acc, WN_OPC_TOL_ELEMENTWISE);
        break;
    }
    case WN_OPC_MUL: {
        size_t n = (size_t)s[0];
        in(d, "a", n, -2, 2), in(d, "b", n, -2, 2);
        out(d, "y", n, WN_OPC_TOL_ELEMENTWISE);
        break;
    }
    case WN_OPC_GAP: {
        size_t nx = (size_t)s[0] * s[1] * s[2], ny = (size_t)s[0] * s[2];
        in(d, "x", nx, -2, 2);
        int y = out(d, "y", ny, WN_OPC_TOL_ELEMENTWISE);
        dy_of(d, y);
        grad(d, "dx", GP_X, nx, acc, WN_OPC_TOL_ELEMENTWISE);
        break;
    }
    case WN_OPC_DROPOUT: {
        size_t n = (size_t)s[0];
        in(d, "x", n, -3, 3);
        /* the masks must agree exactly: a different mask is a large error */
        int y = out(d, "y", n, WN_OPC_TOL_ELEMENTWISE);
        dy_of(d, y);
        grad(d, "dx", DR_X, n, acc, WN_OPC_TOL_ELEMENTWISE);
        break;
    }
    case WN_OPC_SOFTMAX_XENT: {
        size_t nz = (size_t)s[0] * s[1];
        in(d, "z", nz, -5, 5);
        int lab = in(d, "labels", (size_t)s[0], 0, 0);
        d->t[lab].dtype = WN_OPC_I32;
        out(d, "probs", v & 1 ? 0 : nz, WN_OPC_TOL_ELEMENTWISE);
        /* dlogits is made by the forward call, as the gradient of stats[0] / n */
        grad(d, "dlogits", SX_Z, v & 1 ? 0 : nz, 0, WN_OPC_TOL_ELEMENTWISE);
        int st = out(d, "stats", 2, WN_OPC_TOL_ELEMENTWISE);
        d->t[st].accumulate = 1; /* stats += loss sum, correct count */
        dy_of(d, st);
        /* Curved: the central difference's truncation error is h^2/6 * |L'''|; the
         * third derivative of logsumexp is below 1/4 per sample (1/n in the mean), so
         * h = 2^-6 bounds it by 7e-5 / n; the float loss rounds at ~2e-7 * |L|,
         * ~1e-5 / 2h = 4e-4 against gradients of size 1/n: rtol 1e-2, still 20x
         * below a dropped 1/n or a wrong sign. */
        d->fd_h = 0.015625f, d->fd_rtol = 1e-2;
        break;
    }
    case WN_OPC_ADAM: {
        size_t n = (size_t)s[0];
        tensor(d, "p", n, WN_OPC_INOUT, -1, 1);
        in(d, "g", n, -0.1f, 0.1f);
        tensor(d, "m", n, WN_OPC_INOUT, -0.01f, 0.01f), tensor(d, "v", n, WN_OPC_INOUT, 0, 1e-4f);
        break;
    }
    case WN_OPC_AUGMENT: {
        size_t n = (size_t)s[0], count = n * s[1] * s[2] * s[3];
        int x = in(d, "x", count, 0, 0);
        d->t[x].dtype = WN_OPC_U8;
        int fl = in(d, "flip", v < 2 || v == 3 ? n : 0, 0, 0),
            an = in(d, "angle", v == 0 || v == 3 ? n : 0, 0, 0);
        d->t[fl].dtype = WN_OPC_U8, d->t[fl].host_only = 1, d->t[an].host_only = 1;
        /* one transform, two launchers: the same bits are required */
        out(d, "y", count, WN_OPC_TOL_EXACT);
        /* variant 3: the float layers after the rotation (filled in fill_case) */
        int zo = in(d, "zoom", v == 3 ? 2 * n : 0, 0, 0), sh = in(d, "shift", v == 3 ? 2 * n : 0, 0, 0),
            co = in(d, "contrast", v == 3 ? n : 0, 0, 0);
        d->t[zo].host_only = d->t[sh].host_only = d->t[co].host_only = 1;
        break;
    }
    default: break;
    }
}

/* Inputs the op needs beyond uniform values. */
static void prepare(wn_opc_data *d, uint64_t *rng) {
    const wn_op_case *c = &d->c;
    float **f = (float **)d->host;
    switch (c->op) {
    case WN_OPC_AFFINE_ACT:
        /* only for the gradient check: keep x +- h away from the kinks */
        if (!(c->modes & WN_OPC_GRAD)) break;
        for (size_t i = 0; i < d->t[AF_X].count; i++) {
            int ch = (int)(i % (size_t)c->s[1]);
            float s = f[AF_SCALE] ? f[AF_SCALE][ch] : 1.0f, b = f[AF_SHIFT] ? f[AF_SHIFT][ch] : 0.0f;
            f[AF_X][i] = away_from_kinks(rng, s, b, 4 * FD_H);
        }
        break;
    case WN_OPC_BN_GAMMA:
        if (!(c->modes & WN_OPC_GRAD)) break;
        for (size_t i = 0; i < d->t[BG_X].count; i++) {
            int ch = (int)(i % (size_t)c->s[1]);
            float s = f[BG_GAMMA][ch] * f[BG_INV_STD][ch], b = f[BG_BETA][ch] - f[BG_MEAN][ch] * s;
            float x;
            do x = away_from_kinks(rng, s, b, 0.125f);
            while (fabsf(x - f[BG_MEAN][ch]) > 3.5f); /* |x-mean|*inv_std*h stays < margin/4 */
            f[BG_X][i] = x;
        }
        break;
    case WN_OPC_POOL:
        /* max: distinct values 0.25 = 4h apart (a shuffled ramp), so there are no ties
         * and x +- h cannot change which cell is the maximum */
        if (c->variant & 2) break;
        {
            size_t nx = d->t[PL_X].count;
            float *x = f[PL_X];
            for (size_t i = 0; i < nx; i++) x[i] = (float)i;
            for (size_t i = nx - 1; i > 0; i--) {
                size_t j = (size_t)(wn_splitmix64(rng) % (i + 1));
                float t = x[i];
                x[i] = x[j], x[j] = t;
            }
            for (size_t i = 0; i < nx; i++) x[i] = 0.25f * x[i] - 0.125f * (float)nx;
        }
        break;
    case WN_OPC_SOFTMAX_XENT: {
        int32_t *lab = (int32_t *)d->host[SX_LABELS];
        for (int i = 0; i < c->s[0]; i++) lab[i] = (int32_t)(wn_splitmix64(rng) % (uint64_t)c->s[1]);
        f[SX_STATS][0] = 1.5f, f[SX_STATS][1] = 2.0f; /* stats accumulate onto these */
        f[SX_DSTATS][0] = 1.0f / (float)c->s[0], f[SX_DSTATS][1] = 0.0f; /* L = mean loss */
        if (c->modes & WN_OPC_GRAD)
            for (size_t i = 0; i < d->t[SX_Z].count; i++) f[SX_Z][i] *= 0.6f;
        break;
    }
    case WN_OPC_AUGMENT: {
        uint8_t *x = d->host[AU_X], *fl = d->host[AU_FLIP];
        for (size_t i = 0; i < d->t[AU_X].count; i++) x[i] = (uint8_t)(wn_splitmix64(rng) & 255);
        for (int i = 0; fl && i < c->s[0]; i++) fl[i] = (uint8_t)(wn_splitmix64(rng) & 1);
        /* image 0 unrotated (the copy path), the rest in Keras's +-0.2 turn */
        for (int i = 0; f[AU_ANGLE] && i < c->s[0]; i++)
            f[AU_ANGLE][i] = i == 0 ? 0.0f : (float)(-1.2566371 + 2.5132742 * wn_splitmix64_unit(rng));
        /* image 0 also unzoomed and unshifted (the copy paths); zoom 0.8..1.2, shifts up
         * to 0.2 of the size, contrast 0.6..1.4 */
        for (int i = 0; f[AU_ZOOM] && i < c->s[0]; i++) {
            float z = i == 0 ? 1.0f : (float)(0.8 + 0.4 * wn_splitmix64_unit(rng));
            f[AU_ZOOM][2 * i] = f[AU_ZOOM][2 * i + 1] = z;
            f[AU_SHIFT][2 * i] = i == 0 ? 0.0f : (float)((0.4 * wn_splitmix64_unit(rng) - 0.2) * c->s[2]);
            f[AU_SHIFT][2 * i + 1] = i == 0 ? 0.0f : (float)((0.4 * wn_splitmix64_unit(rng) - 0.2) * c->s[1]);
            f[AU_CONTRAST][i] = (float)(0.6 + 0.8 * wn_splitmix64_unit(rng));
        }
        break;
    }
    default: break;
    }
}

int wn_opc_data_init(wn_opc_data *d, const wn_op_case *c, uint64_t seed) {
    memset(d, 0, sizeof *d);
    d->c = *c;
    describe(d);
    if (d->n == 0) return wn_fail("op case %s: invalid shape", wn_opc_op_name(c->op));
    /* one stream per tensor and one for prepare(): a variant that adds or drops a
     * tensor (accumulating starting values) leaves the other tensors' values alone */
    for (int i = 0; i < d->n; i++) {
        uint64_t rng = wn_splitmix64_mix(seed + 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1));
        wn_opc_tensor *t = &d->t[i];
        if (!t->count) continue;
        d->host[i] = calloc(t->count, 4);
        if (!d->host[i]) {
            wn_opc_data_free(d);
            return wn_fail("op case %s: out of memory for %zu values", wn_opc_op_name(c->op), t->count);
        }
        int starts = t->role == WN_OPC_IN || t->role == WN_OPC_INOUT || t->accumulate;
        if (starts && t->dtype == WN_OPC_F32 && t->hi > t->lo)
            for (size_t k = 0; k < t->count; k++)
                ((float *)d->host[i])[k] = (float)(t->lo + (t->hi - t->lo) * wn_splitmix64_unit(&rng));
    }
    uint64_t rng = wn_splitmix64_mix(seed ^ 0x5851F42D4C957F2Dull);
    prepare(d, &rng);
    return WN_OK;
}

void wn_opc_data_free(wn_opc_data *d) {
    for (int i = 0; i < d->n; i++) free(d->host[i]), d->host[i] = NULL;
}

/* ---------------------------------------------------------------- placement */

static size_t padded_bytes(const wn_opc_tensor *t) { return (wn_opc_bytes(t) + 3) / 4 * 4; }

/* 1 when tensor i is held in bf16 by this placement. */
static int stored_bf16(const wn_opc_placed *p, const wn_opc_data *d, int i) {
    return p->act == WN_DTYPE_BF16 && wn_opc_tensor_is_act(d, i);
}

/* Bytes of tensor i as this placement stores it (before padding). */
static size_t stored_bytes(const wn_opc_placed *p, const wn_opc_data *d, int i) {
    return stored_bf16(p, d, i) ? d->t[i].count * sizeof(wn_bf16) : wn_opc_bytes(&d->t[i]);
}

int wn_opc_place(wn_opc_placed *p, wn_backend *be, const wn_opc_data *d, size_t guard,
                 float sentinel) {
    return wn_opc_place_as(p, be, d, guard, sentinel, WN_DTYPE_F32);
}

int wn_opc_place_as(wn_opc_placed *p, wn_backend *be, const wn_opc_data *d, size_t guard,
                    float sentinel, wn_dtype act) {
    memset(p, 0, sizeof *p);
    p->be = be, p->guard = guard, p->act = act;
    if (act == WN_DTYPE_BF16 && !wn_opc_has_bf16(d->c.op))
        return wn_fail("op case %s: no bf16 placement", wn_opc_op_name(d->c.op));
    for (int i = 0; i < d->n; i++) {
        const wn_opc_tensor *t = &d->t[i];
        if (!t->count) continue;
        if (t->host_only) {
            p->dev[i] = d->host[i];
            continue;
        }
        size_t data = (stored_bytes(p, d, i) + 3) / 4 * 4;
        p->base[i] = wn_backend_alloc(be, data + 2 * guard * sizeof(float));
        if (!p->base[i]) {
            wn_opc_unplace(p, d);
            return WN_ERR;
        }
        p->dev[i] = (char *)p->base[i] + guard * sizeof(float);
        /* the trailing guard starts at the next float boundary (a uint8 buffer of odd
         * size would otherwise put its floats at a misaligned address) */
        if (guard && (wn_backend_fill(be, p->base[i], guard, sentinel) != WN_OK ||
                      wn_backend_fill(be, (float *)((char *)p->dev[i] + data), guard, sentinel) != WN_OK)) {
            wn_opc_unplace(p, d);
            return WN_ERR;
        }
    }
    return wn_opc_reset(p, d);
}

void wn_opc_unplace(wn_opc_placed *p, const wn_opc_data *d) {
    for (int i = 0; i < d->n; i++)
        if (p->base[i]) wn_backend_free(p->be, p->base[i]);
    memset(p->base, 0, sizeof p->base);
    memset(p->dev, 0, sizeof p->dev);
}

/* Uploads `count` floats into a bf16 tensor, rounded (NULL src: bf16 NaN everywhere). */
static int upload_bf16(wn_opc_placed *p, int i, const float *src, size_t count) {
    wn_bf16 *h = malloc((count ? count : 1) * sizeof *h);
    if (!h) return wn_fail("op case: out of memory");
    for (size_t k = 0; k < count; k++) h[k] = src ? wn_bf16_from_f32(src[k]) : (wn_bf16)0x7fc0;
    int rc = wn_backend_copy_to_backend(p->be, p->dev[i], h, count * sizeof *h);
    if (rc == WN_OK) rc = wn_backend_synchronize(p->be); /* h is freed next */
    free(h);
    return rc;
}

int wn_opc_upload(wn_opc_placed *p, const wn_opc_data *d, int i) {
    if (!p->base[i]) return WN_OK; /* unused or host-only */
    if (stored_bf16(p, d, i)) return upload_bf16(p, i, d->host[i], d->t[i].count);
    return wn_backend_copy_to_backend(p->be, p->dev[i], d->host[i], wn_opc_bytes(&d->t[i]));
}

int wn_opc_reset(wn_opc_placed *p, const wn_opc_data *d) {
    for (int i = 0; i < d->n; i++) {
        const wn_opc_tensor *t = &d->t[i];
        if (!p->base[i]) continue;
        int starts = t->role == WN_OPC_IN || t->role == WN_OPC_INOUT || t->accumulate;
        int rc = starts ? wn_opc_upload(p, d, i)
                 : t->role == WN_OPC_SCRATCH ? WN_OK
                 : stored_bf16(p, d, i) ? upload_bf16(p, i, NULL, t->count)
                 : wn_backend_fill(p->be, p->dev[i], t->count, NAN);
        if (rc != WN_OK) return WN_ERR;
    }
    return WN_OK;
}

int wn_opc_download(wn_opc_placed *p, const wn_opc_data *d, int i, void *dst, int with_guard) {
    const wn_opc_tensor *t = &d->t[i];
    if (!t->count) return WN_OK;
    if (t->host_only) {
        memcpy(dst, d->host[i], wn_opc_bytes(t));
        return WN_OK;
    }
    if (stored_bf16(p, d, i)) {
        /* widened into dst (exact), so callers always read floats; with the guards, dst
         * is [guard floats][count widened values][guard floats], as a float tensor's */
        size_t g = with_guard ? p->guard : 0, data = (t->count * sizeof(wn_bf16) + 3) / 4 * 4;
        size_t bytes = data + 2 * g * sizeof(float);
        unsigned char *raw = malloc(bytes);
        if (!raw) return wn_fail("op case: out of memory");
        int rc = wn_backend_copy_to_host(p->be, raw, (char *)p->dev[i] - g * sizeof(float), bytes);
        if (rc == WN_OK) rc = wn_backend_synchronize(p->be);
        float *out = dst;
        if (rc == WN_OK) {
            const unsigned char *h = raw + g * sizeof(float);
            memcpy(out, raw, g * sizeof(float));
            for (size_t k = 0; k < t->count; k++) {
                wn_bf16 v;
                memcpy(&v, h + k * sizeof v, sizeof v);
                out[g + k] = wn_bf16_to_f32(v);
            }
            memcpy(out + g + t->count, h + data, g * sizeof(float));
        }
        free(raw);
        return rc;
    }
    if (with_guard)
        return wn_backend_copy_to_host(p->be, dst, p->base[i],
                                       padded_bytes(t) + 2 * p->guard * sizeof(float));
    return wn_backend_copy_to_host(p->be, dst, p->dev[i], wn_opc_bytes(t));
}

/* ---------------------------------------------------------------- running */

#define F_(i) ((float *)p->dev[i])
#define L_ "op case"

static int conv_desc(const wn_op_case *c, wn_conv_desc *cd) {
    const int *s = c->s;
    memset(cd, 0, sizeof *cd);
    cd->k = s[4], cd->groups = s[9];
    return wn_window_init(&cd->win, s[0], s[1], s[2], s[3], s[5], s[6], s[7], s[8],
                          c->variant & 1 ? WN_PAD_SAME : WN_PAD_VALID, L_);
}


/* ---- the bf16 forms (wn_opc_place_as with WN_DTYPE_BF16); H_ is a bf16 tensor */
#define H_(i) ((wn_bf16 *)p->dev[i])

/* bn_gamma's forward is affine_act with scale = gamma*inv_std and shift = beta -
 * mean*scale, derived on the host from the (possibly perturbed) host gamma and
 * uploaded (synchronised: the host buffer is freed at once). */
static int upload_bn_scale_shift(wn_opc_placed *p, const wn_opc_data *d) {
    int ch = d->c.s[1];
    float *scale = malloc((size_t)ch * 2 * sizeof(float));
    if (!scale) return wn_fail("op case bn_gamma: out of memory");
    float *shift = scale + ch, **h = (float **)d->host;
    for (int i = 0; i < ch; i++) {
        scale[i] = h[BG_GAMMA][i] * h[BG_INV_STD][i];
        shift[i] = h[BG_BETA][i] - h[BG_MEAN][i] * scale[i];
    }
    int rc = wn_backend_copy_to_backend(p->be, p->dev[BG_SCALE], scale, (size_t)ch * 4);
    if (rc == WN_OK) rc = wn_backend_copy_to_backend(p->be, p->dev[BG_SHIFT], shift, (size_t)ch * 4);
    if (rc == WN_OK) rc = wn_backend_synchronize(p->be);
    free(scale);
    return rc == WN_OK ? WN_OK : WN_ERR;
}

static int forward_bf16(wn_opc_placed *p, const wn_opc_data *d) {
    const wn_op_case *c = &d->c;
    const int *s = c->s, v = c->variant;
    wn_backend *be = p->be;
    switch (c->op) {
    case WN_OPC_CONV2D: {
        wn_conv_desc cd;
        if (conv_desc(c, &cd) != WN_OK) return WN_ERR;
        return wn_op_bf16_conv2d_forward(be, &cd, H_(CV_X), H_(CV_W), F_(CV_B), H_(CV_Y), L_);
    }
    case WN_OPC_AFFINE_ACT:
        return wn_op_bf16_affine_act_forward(be, (size_t)s[0] * s[1], s[1], H_(AF_X), F_(AF_SCALE),
                                             F_(AF_SHIFT), (wn_activation)(v & 3), H_(AF_Y), L_);
    case WN_OPC_BN_GAMMA:
        if (upload_bn_scale_shift(p, d) != WN_OK) return WN_ERR;
        return wn_op_bf16_affine_act_forward(be, (size_t)s[0] * s[1], s[1], H_(BG_X), F_(BG_SCALE),
                                             F_(BG_SHIFT), (wn_activation)(v & 3), H_(BG_Y), L_);
    case WN_OPC_POOL: {
        wn_window win;
        if (pool_window(c, &win) != WN_OK) return WN_ERR;
        return wn_op_bf16_pool_forward(be, &win, v & 2 ? WN_POOL_AVG : WN_POOL_MAX, H_(PL_X),
                                       H_(PL_Y), L_);
    }
    case WN_OPC_CONCAT: {
        const wn_bf16 *x[4] = {H_(CT_X0), H_(CT_X0 + 1), H_(CT_X0 + 2), H_(CT_X0 + 3)};
        return wn_op_bf16_concat_forward(be, (size_t)s[0], s[1], x, s + 2, H_(CT_Y), L_);
    }
    case WN_OPC_SCALED_ADD:
        if (v & WN_OPC_V_INPLACE) {
            if (wn_backend_copy(be, H_(SA_Y), H_(SA_X), (size_t)s[0] * sizeof(wn_bf16)) != WN_OK)
                return WN_ERR;
            return wn_op_bf16_scaled_add(be, (size_t)s[0], H_(SA_Y), H_(SA_R),
                                         (float)s[1] / 1000.0f, H_(SA_Y), L_);
        }
        return wn_op_bf16_scaled_add(be, (size_t)s[0], H_(SA_X), H_(SA_R), (float)s[1] / 1000.0f,
                                     H_(SA_Y), L_);
    case WN_OPC_GAP: return wn_op_bf16_gap_forward(be, s[0], s[1], s[2], H_(GP_X), F_(GP_Y), L_);
    default: return wn_fail("op case %s: no bf16 form", wn_opc_op_name(c->op));
    }
}

static int backward_bf16(wn_opc_placed *p, const wn_opc_data *d) {
    const wn_op_case *c = &d->c;
    const int *s = c->s, v = c->variant, acc = (v & WN_OPC_V_ACC) != 0;
    wn_backend *be = p->be;
    switch (c->op) {
    case WN_OPC_CONV2D: {
        wn_conv_desc cd;
        if (conv_desc(c, &cd) != WN_OK ||
            wn_op_bf16_conv2d_backward_data(be, &cd, H_(CV_DY), H_(CV_W), H_(CV_DX), acc, L_) !=
                WN_OK)
            return WN_ERR;
        return wn_op_bf16_conv2d_backward_filter(be, &cd, H_(CV_X), H_(CV_DY), F_(CV_DW),
                                                 F_(CV_DB), L_);
    }
    case WN_OPC_AFFINE_ACT:
        return wn_op_bf16_affine_act_backward(be, (size_t)s[0] * s[1], s[1], H_(AF_Y), H_(AF_DY),
                                              F_(AF_SCALE), (wn_activation)(v & 3), H_(AF_DX),
                                              acc, F_(AF_DSHIFT), L_);
    case WN_OPC_BN_GAMMA:
        return wn_op_bf16_bn_gamma_backward(be, (size_t)s[0] * s[1], s[1], H_(BG_X), H_(BG_Y),
                                            H_(BG_DY), F_(BG_MEAN), F_(BG_INV_STD),
                                            (wn_activation)(v & 3), F_(BG_DGAMMA), L_);
    case WN_OPC_POOL: {
        wn_window win;
        if (pool_window(c, &win) != WN_OK) return WN_ERR;
        return wn_op_bf16_pool_backward(be, &win, v & 2 ? WN_POOL_AVG : WN_POOL_MAX, H_(PL_X),
                                        H_(PL_Y), H_(PL_DY), H_(PL_DX), acc, L_);
    }
    case WN_OPC_CONCAT: {
        wn_bf16 *dx[4] = {H_(CT_DX0), H_(CT_DX0 + 1), H_(CT_DX0 + 2), H_(CT_DX0 + 3)};
        return wn_op_bf16_concat_backward(be, (size_t)s[0], s[1], H_(CT_DY), s + 2, dx, acc, L_);
    }
    case WN_OPC_SCALED_ADD:
        if (v & WN_OPC_V_INPLACE) {
            if (wn_backend_copy(be, H_(SA_DX), H_(SA_DY), (size_t)s[0] * sizeof(wn_bf16)) != WN_OK)
                return WN_ERR;
            return wn_op_bf16_scaled_add_backward(be, (size_t)s[0], H_(SA_DX), (float)s[1] / 1000.0f,
                                                  H_(SA_DX), H_(SA_DR), 0, L_);
        }
        return wn_op_bf16_scaled_add_backward(be, (size_t)s[0], H_(SA_DY), (float)s[1] / 1000.0f,
                                              H_(SA_DX), H_(SA_DR), acc, L_);
    case WN_OPC_GAP:
        return wn_op_bf16_gap_backward(be, s[0], s[1], s[2], F_(GP_DY), H_(GP_DX), acc, L_);
    default: return WN_OK;
    }
}

int wn_opc_forward(wn_opc_placed *p, const wn_opc_data *d) {
    const wn_op_case *c = &d->c;
    const int *s = c->s, v = c->variant;
    wn_backend *be = p->be;
    if (p->act == WN_DTYPE_BF16) return forward_bf16(p, d);
    switch (c->op) {
    case WN_OPC_CONV2D: {
        wn_conv_desc cd;
        if (conv_desc(c, &cd) != WN_OK) return WN_ERR;
        return wn_op_conv2d_forward(be, &cd, F_(CV_X), F_(CV_W), F_(CV_B), F_(CV_Y), L_);
    }
    case WN_OPC_DENSE:
        return wn_op_dense_forward(be, s[0], s[1], s[2], F_(DN_X), F_(DN_W), F_(DN_B), F_(DN_Y), L_);
    case WN_OPC_AFFINE_ACT:
        return wn_op_affine_act_forward(be, (size_t)s[0] * s[1], s[1], F_(AF_X), F_(AF_SCALE),
                                        F_(AF_SHIFT), (wn_activation)(v & 3), F_(AF_Y), L_);
    case WN_OPC_BN_GAMMA:
        if (upload_bn_scale_shift(p, d) != WN_OK) return WN_ERR;
        return wn_op_affine_act_forward(be, (size_t)s[0] * s[1], s[1], F_(BG_X), F_(BG_SCALE),
                                        F_(BG_SHIFT), (wn_activation)(v & 3), F_(BG_Y), L_);
    case WN_OPC_POOL: {
        wn_window win;
        if (pool_window(c, &win) != WN_OK) return WN_ERR;
        return wn_op_pool_forward(be, &win, v & 2 ? WN_POOL_AVG : WN_POOL_MAX, F_(PL_X), F_(PL_Y), L_);
    }
    case WN_OPC_CONCAT: {
        const float *x[4] = {F_(CT_X0), F_(CT_X0 + 1), F_(CT_X0 + 2), F_(CT_X0 + 3)};
        return wn_op_concat_forward(be, (size_t)s[0], s[1], x, s + 2, F_(CT_Y), L_);
    }
    case WN_OPC_SCALED_ADD:
        if (v & WN_OPC_V_INPLACE) { /* y starts as a copy of x and is updated in place */
            if (wn_backend_copy(be, F_(SA_Y), F_(SA_X), (size_t)s[0] * sizeof(float)) != WN_OK)
                return WN_ERR;
            return wn_op_scaled_add(be, (size_t)s[0], F_(SA_Y), F_(SA_R), (float)s[1] / 1000.0f,
                                    F_(SA_Y), L_);
        }
        return wn_op_scaled_add(be, (size_t)s[0], F_(SA_X), F_(SA_R), (float)s[1] / 1000.0f, F_(SA_Y), L_);
    case WN_OPC_MUL: return wn_op_mul(be, (size_t)s[0], F_(ML_A), F_(ML_B), F_(ML_Y), L_);
    case WN_OPC_GAP: return wn_op_gap_forward(be, s[0], s[1], s[2], F_(GP_X), F_(GP_Y), L_);
    case WN_OPC_DROPOUT:
        return wn_op_dropout_forward(be, (size_t)s[0], (float)s[1] / 100.0f, (uint64_t)s[3],
                                     (uint64_t)s[2], F_(DR_X), F_(DR_Y), L_);
    case WN_OPC_SOFTMAX_XENT:
        return wn_op_softmax_xent(be, s[0], s[1], F_(SX_Z), (const int32_t *)p->dev[SX_LABELS],
                                  (float)s[2] / 1000.0f, (float)s[0], F_(SX_PROBS), F_(SX_DZ),
                                  F_(SX_STATS));
    case WN_OPC_ADAM:
        return wn_op_adam_update(be, (size_t)s[0], F_(AD_P), F_(AD_G), F_(AD_M), F_(AD_V),
                                 &WN_ADAM_KERAS(1e-4f), s[1]);
    case WN_OPC_AUGMENT:
    {
        wn_augment_batch aug = {(const uint8_t *)p->dev[AU_FLIP], F_(AU_ANGLE),
                                c->variant == 3 ? F_(AU_ZOOM) : NULL,
                                c->variant == 3 ? F_(AU_SHIFT) : NULL,
                                c->variant == 3 ? F_(AU_CONTRAST) : NULL};
        return wn_op_augment(be, s[0], s[1], s[2], s[3], (const uint8_t *)p->dev[AU_X], &aug,
                             F_(AU_Y), s[4]);
    }
    default: return wn_fail("op case: unknown op %d", (int)c->op);
    }
}

int wn_opc_backward(wn_opc_placed *p, const wn_opc_data *d) {
    const wn_op_case *c = &d->c;
    const int *s = c->s, v = c->variant, acc = (v & WN_OPC_V_ACC) != 0;
    wn_backend *be = p->be;
    if (p->act == WN_DTYPE_BF16) return backward_bf16(p, d);
    switch (c->op) {
    case WN_OPC_CONV2D: {
        wn_conv_desc cd;
        if (conv_desc(c, &cd) != WN_OK ||
            wn_op_conv2d_backward_data(be, &cd, F_(CV_DY), F_(CV_W), F_(CV_DX), acc, L_) != WN_OK)
            return WN_ERR;
        return wn_op_conv2d_backward_filter(be, &cd, F_(CV_X), F_(CV_DY), F_(CV_DW), F_(CV_DB), L_);
    }
    case WN_OPC_DENSE:
        return wn_op_dense_backward(be, s[0], s[1], s[2], F_(DN_X), F_(DN_W), F_(DN_DY), F_(DN_DX),
                                    F_(DN_DW), F_(DN_DB), L_);
    case WN_OPC_AFFINE_ACT:
        return wn_op_affine_act_backward(be, (size_t)s[0] * s[1], s[1], F_(AF_Y), F_(AF_DY),
                                         F_(AF_SCALE), (wn_activation)(v & 3), F_(AF_DX), acc,
                                         F_(AF_DSHIFT), L_);
    case WN_OPC_BN_GAMMA:
        return wn_op_bn_gamma_backward(be, (size_t)s[0] * s[1], s[1], F_(BG_X), F_(BG_Y), F_(BG_DY),
                                       F_(BG_MEAN), F_(BG_INV_STD), (wn_activation)(v & 3),
                                       F_(BG_DGAMMA), L_);
    case WN_OPC_POOL: {
        wn_window win;
        if (pool_window(c, &win) != WN_OK) return WN_ERR;
        return wn_op_pool_backward(be, &win, v & 2 ? WN_POOL_AVG : WN_POOL_MAX, F_(PL_X), F_(PL_Y),
                                   F_(PL_DY), F_(PL_DX), acc, L_);
    }
    case WN_OPC_CONCAT: {
        float *dx[4] = {F_(CT_DX0), F_(CT_DX0 + 1), F_(CT_DX0 + 2), F_(CT_DX0 + 3)};
        return wn_op_concat_backward(be, (size_t)s[0], s[1], F_(CT_DY), s + 2, dx, acc, L_);
    }
    case WN_OPC_SCALED_ADD:
        if (v & WN_OPC_V_INPLACE) { /* dx starts as a copy of dy: the gradient flows through */
            if (wn_backend_copy(be, F_(SA_DX), F_(SA_DY), (size_t)s[0] * sizeof(float)) != WN_OK)
                return WN_ERR;
            return wn_op_scaled_add_backward(be, (size_t)s[0], F_(SA_DX), (float)s[1] / 1000.0f,
                                             F_(SA_DX), F_(SA_DR), 0, L_);
        }
        return wn_op_scaled_add_backward(be, (size_t)s[0], F_(SA_DY), (float)s[1] / 1000.0f,
                                         F_(SA_DX), F_(SA_DR), acc, L_);
    case WN_OPC_GAP: return wn_op_gap_backward(be, s[0], s[1], s[2], F_(GP_DY), F_(GP_DX), acc, L_);
    case WN_OPC_DROPOUT:
        return wn_op_dropout_backward(be, (size_t)s[0], (float)s[1] / 100.0f, (uint64_t)s[3],
                                      (uint64_t)s[2], F_(DR_DY), F_(DR_DX), acc, L_);
    default: return WN_OK; /* softmax_xent's gradient comes with its forward; mul, adam, augment have none */
    }
}
