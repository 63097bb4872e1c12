/* tests/ops/test_conv_epilogue.c — a convolution with its epilogue (kernels/common/
 * op_types.h: wn_conv_epilogue, the frozen BatchNormalization + activation the plan
 * fuses into it) against the convolution followed by the separate affine pass:
 *  - float32, the CPU backend's oneDNN post-ops: equal to conv-then-affine element for
 *    element (the same multiply, add and comparison on the same accumulator; == so that
 *    ReLU's -0 and +0 count as equal);
 *  - the dispatcher's composition, for a backend without the entry (the CUDA backend's
 *    case): a copy of the CPU ops table with the entry removed gives the same bits as
 *    conv-then-affine;
 *  - bf16: the fused result is rounded once, the separate passes twice, so the two
 *    differ by at most one bf16 step (2^-8 relative) where the accumulation agrees;
 *    checked element-wise against the float32 result of the widened operands rounded
 *    once: within 2 bf16 steps of each value plus 1e-3 of the output's RMS (oneDNN may
 *    sum in another order), and normwise <= 1e-2; nothing NaN.
 * Shapes: 1x1, 3x3 'same', 3x3 stride 2 'valid', depthwise 3x3; with and without a
 * bias; the epilogues: scale + shift + ReLU (the BN + ReLU case), scale + shift alone,
 * shift + ReLU6, scale alone, a bare ReLU.
 */
#include "engine/backends/cpu/backend_cpu.h"
#include "engine/runtime/backend_bf16.h"
#include "kernels/common/bf16.h"
#include "tests/ops/ops_test.h"

typedef struct shape {
    const char *name;
    int n, h, w, c, k, kh, sh, groups;
    wn_padding pad;
} shape;

typedef struct epilogue_case {
    const char *name;
    int scale, shift;
    wn_activation act;
} epilogue_case;

static wn_bf16 *to_bf16(const float *x, size_t n) {
    wn_bf16 *y = malloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++) y[i] = wn_bf16_from_f32(x[i]);
    return y;
}

static float *widened(const wn_bf16 *x, size_t n) {
    float *y = alloc_f(n);
    for (size_t i = 0; i < n; i++) y[i] = wn_bf16_to_f32(x[i]);
    return y;
}

static void check_case(wn_backend *be, const wn_backend *composed, const shape *sh,
                       const epilogue_case *ec, int with_bias) {
    wn_conv_desc d;
    memset(&d, 0, sizeof d);
    d.k = sh->k, d.groups = sh->groups;
    OK(wn_window_init(&d.win, sh->n, sh->h, sh->w, sh->c, sh->kh, sh->kh, sh->sh, sh->sh,
                      sh->pad, "epilogue"));
    size_t nx = (size_t)sh->n * sh->h * sh->w * sh->c;
    size_t ny = (size_t)sh->n * d.win.oh * d.win.ow * sh->k;
    size_t nw = (size_t)sh->kh * sh->kh * (sh->c / sh->groups) * sh->k;
    float *x = rand_f(nx, -1.0f, 1.0f), *w = rand_f(nw, -0.5f, 0.5f);
    float *bias = with_bias ? rand_f((size_t)sh->k, -0.5f, 0.5f) : NULL;
    float *scale = rand_f((size_t)sh->k, 0.2f, 2.0f), *shift = rand_f((size_t)sh->k, -0.5f, 0.5f);
    wn_conv_epilogue e = {ec->scale ? scale : NULL, ec->shift ? shift : NULL, ec->act};
    char what[160];
    snprintf(what, sizeof what, "%s%s, %s", sh->name, with_bias ? " + bias" : "", ec->name);

    /* float32: the fused call, the composition, and conv-then-affine */
    float *fused = alloc_f(ny), *comp = alloc_f(ny), *ref = alloc_f(ny);
    poison(fused, ny), poison(comp, ny), poison(ref, ny);
    OK(wn_op_conv2d_forward(be, &d, x, w, bias, ref, what));
    OK(wn_op_affine_act_forward(be, ny, sh->k, ref, e.scale, e.shift, e.act, ref, what));
    OK(wn_op_conv2d_forward_epilogue(be, &d, x, w, bias, &e, fused, what));
    OK(wn_op_conv2d_forward_epilogue((wn_backend *)composed, &d, x, w, bias, &e, comp, what));
    size_t unequal = 0, first = 0;
    for (size_t i = 0; i < ny; i++)
        if (!(fused[i] == ref[i]) && !unequal++) first = i;
    CHECK(unequal == 0, "%s, float32: %zu of %zu outputs differ from conv-then-affine "
          "(first [%zu]: %.9g against %.9g)", what, unequal, ny, first, fused[first], ref[first]);
    CHECK(memcmp(comp, ref, ny * sizeof *ref) == 0,
          "%s, float32: the dispatcher's composition is not conv-then-affine", what);

    /* bf16: against the once-rounded float32 result of the same (rounded) operands */
    wn_bf16 *xb = to_bf16(x, nx), *wb = to_bf16(w, nw), *yb = malloc(ny * sizeof *yb);
    float *xw = widened(xb, nx), *ww = widened(wb, nw), *want = alloc_f(ny);
    OK(wn_op_conv2d_forward(be, &d, xw, ww, bias, want, what));
    OK(wn_op_affine_act_forward(be, ny, sh->k, want, e.scale, e.shift, e.act, want, what));
    memset(yb, 0xff, ny * sizeof *yb); /* NaN */
    OK(wn_op_bf16_conv2d_forward_epilogue(be, &d, xb, wb, bias, &e, yb, what));
    float *got = widened(yb, ny);
    double rms = sqrt(dot_d(want, want, ny) / (double)ny) + 1e-30, num = 0, den = 0;
    size_t outside = 0, at = 0;
    for (size_t i = 0; i < ny; i++) {
        double err = fabs((double)got[i] - want[i]);
        if (!(err <= 2.0 * ldexp(fabs(want[i]), -8) + 1e-3 * rms) && !outside++) at = i;
        num += err * err, den += (double)want[i] * want[i];
    }
    double normwise = sqrt(num / (den > 0 ? den : 1));
    CHECK(outside == 0, "%s, bf16: %zu of %zu outputs beyond 2 bf16 steps (first [%zu]: %.6g "
          "against %.6g)", what, outside, ny, at, got[at], want[at]);
    CHECK(normwise <= 1e-2, "%s, bf16: normwise error %.3g > 1e-2", what, normwise);
    printf("%s  %-44s float32 %zu/%zu equal; bf16 normwise %.2e\n",
           unequal == 0 && outside == 0 ? "ok  " : "FAIL", what, ny - unequal, ny, normwise);

    free(x), free(w), free(bias), free(scale), free(shift), free(fused), free(comp), free(ref);
    free(xb), free(wb), free(yb), free(xw), free(ww), free(want), free(got);
}

int main(void) {
    rng_seed(23);
    wn_backend *be = wn_backend_cpu();
    if (!be) {
        fprintf(stderr, "FAIL: %s\n", wn_last_error());
        return 1;
    }
    OK(wn_backend_bf16_check(be));
    /* the same backend without the fused entry: what the dispatcher does on CUDA */
    wn_backend_ops ops = *be->ops;
    wn_backend_bf16_ops bf16_ops = *be->bf16;
    ops.conv2d_forward_epilogue = NULL, bf16_ops.conv2d_forward_epilogue = NULL;
    wn_backend composed = *be;
    composed.ops = &ops, composed.bf16 = &bf16_ops;

    static const shape shapes[] = {
        {"1x1 2x9x9x24->40", 2, 9, 9, 24, 40, 1, 1, 1, WN_PAD_SAME},
        {"3x3 same 2x11x10x16->32", 2, 11, 10, 16, 32, 3, 1, 1, WN_PAD_SAME},
        {"3x3/2 valid 1x13x13x8->48", 1, 13, 13, 8, 48, 3, 2, 1, WN_PAD_VALID},
        {"depthwise 3x3 2x9x9x32", 2, 9, 9, 32, 32, 3, 1, 32, WN_PAD_SAME},
    };
    static const epilogue_case cases[] = {
        {"scale+shift+relu", 1, 1, WN_ACT_RELU},
        {"scale+shift", 1, 1, WN_ACT_NONE},
        {"shift+relu6", 0, 1, WN_ACT_RELU6},
        {"scale", 1, 0, WN_ACT_NONE},
        {"relu", 0, 0, WN_ACT_RELU},
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
            for (int b = 0; b < 2; b++) check_case(be, &composed, &shapes[s], &cases[c], b);
    wn_backend_destroy(be);
    return test_finish("test_conv_epilogue");
}
