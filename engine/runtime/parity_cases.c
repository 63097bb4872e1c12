/* engine/runtime/parity_cases.c — the parity mode of the op cases (engine/runtime/op_cases.h):
 * each case marked WN_OPC_PARITY runs on the CPU backend (the answer key) and on the
 * backend under test with the same input bytes; every output is compared
 * (parity_compare_host) at the case's tolerance class: the suite's matrix-op
 * tolerance for convolution and Dense, its element-wise one for our kernels, bit for
 * bit where one transform has two launchers (augmentation, concatenation).
 *
 * Outputs start as NaN (an unwritten element never passes), accumulating gradients
 * start from the same random values on both sides, and every buffer on the tested
 * side is fenced by PARITY_GUARD sentinel floats. The backward reads the CPU's
 * forward outputs on both sides (copied over first), so an activation mask that flips
 * at a kink by one ulp of difference does not count against the backward.
 *
 * The bf16 mode runs the same cases, for the ops with a bf16 form (wn_opc_has_bf16), as
 * bf16 placements (activations, and a convolution's kernel, stored bf16; host values
 * rounded on upload, widened on download) on the CPU backend's bf16 ops and on the
 * tested backend's, every output and gradient at the suite's tol_bf16. Both sides round
 * the same bf16 inputs once per output, so they differ where float32 sums taken in
 * another order round to neighbouring bf16 values (and where cuDNN keeps a bf16 weight
 * gradient, kernels/conv/conv.cu): one bf16 ulp (2^-8 relative) on some elements, far
 * inside tol_bf16. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/runtime/backend_bf16.h"
#include "engine/runtime/op_cases.h"
#include "engine/runtime/parity.h"
#include "host/base/error.h"

static double tol_of(const parity_suite *s, wn_opc_tol t, wn_dtype act) {
    if (act == WN_DTYPE_BF16) return s->tol_bf16;
    return t == WN_OPC_TOL_MATMUL ? s->tol_matmul : t == WN_OPC_TOL_EXACT ? 0.0 : s->tol_elementwise;
}

/* Compares every tensor of the given roles (float ones, a bf16 one widened on download;
 * host-only inputs skipped). */
static void compare_roles(parity_suite *s, const char *op, const char *shape, wn_opc_placed *cpu,
                          wn_opc_placed *gpu, const wn_opc_data *d, int forward) {
    for (int i = 0; i < d->n; i++) {
        const wn_opc_tensor *t = &d->t[i];
        int fwd_out = t->role == WN_OPC_OUT || t->role == WN_OPC_INOUT;
        /* softmax_xent's dlogits comes with its forward call */
        int in_fwd = fwd_out || (t->role == WN_OPC_GRADIENT && !wn_opc_has_backward(d->c.op));
        if (!t->count || t->dtype != WN_OPC_F32 || t->host_only) continue;
        if (forward ? !in_fwd : t->role != WN_OPC_GRADIENT || in_fwd) continue;
        float *ref = malloc(t->count * sizeof(float));
        float *got = malloc((t->count + 2 * gpu->guard) * sizeof(float));
        char name[64];
        snprintf(name, sizeof name, "%s %s%s", op, t->name, gpu->act == WN_DTYPE_BF16 ? " (bf16)" : "");
        if (!ref || !got || wn_opc_download(cpu, d, i, ref, 0) != WN_OK ||
            wn_opc_download(gpu, d, i, got, 1) != WN_OK)
            parity_fail(s, name, shape, ref && got ? wn_last_error() : "out of host memory");
        else
            parity_compare_host(s, name, shape, ref, got, t->count, tol_of(s, t->tol, gpu->act));
        free(ref), free(got);
    }
}

/* The backward reads the forward's outputs: give the tested side the CPU's, byte for
 * byte in their stored type. */
static int share_outputs(wn_opc_placed *cpu, wn_opc_placed *gpu, const wn_opc_data *d) {
    for (int i = 0; i < d->n; i++) {
        const wn_opc_tensor *t = &d->t[i];
        if (!t->count || t->role != WN_OPC_OUT || t->host_only) continue;
        size_t bytes = cpu->act == WN_DTYPE_BF16 && wn_opc_tensor_is_act(d, i)
                           ? t->count * sizeof(wn_bf16)
                           : wn_opc_bytes(t);
        void *tmp = malloc(bytes);
        int rc = tmp && wn_backend_copy_to_host(cpu->be, tmp, cpu->dev[i], bytes) == WN_OK &&
                 wn_backend_synchronize(cpu->be) == WN_OK &&
                 wn_backend_copy_to_backend(gpu->be, gpu->dev[i], tmp, bytes) == WN_OK &&
                 wn_backend_synchronize(gpu->be) == WN_OK;
        free(tmp);
        if (!rc) return WN_ERR;
    }
    return WN_OK;
}

/* One case with its activations stored as `act` on both sides. */
static void run_case(parity_suite *s, const wn_op_case *c, wn_dtype act) {
    const char *op = wn_opc_op_name(c->op);
    char shape[200];
    wn_opc_describe(c, shape, sizeof shape);
    wn_opc_data d;
    wn_opc_placed cpu, gpu;
    if (wn_opc_data_init(&d, c, parity_rand_u64()) != WN_OK) {
        parity_fail(s, op, shape, wn_last_error());
        return;
    }
    if (wn_opc_place_as(&cpu, s->cpu, &d, 0, 0.0f, act) != WN_OK) {
        parity_fail(s, op, shape, wn_last_error());
        wn_opc_data_free(&d);
        return;
    }
    if (wn_opc_place_as(&gpu, s->gpu, &d, PARITY_GUARD, PARITY_SENTINEL, act) != WN_OK) {
        parity_fail(s, op, shape, wn_last_error());
        wn_opc_unplace(&cpu, &d);
        wn_opc_data_free(&d);
        return;
    }
    if (wn_opc_forward(&cpu, &d) != WN_OK || wn_opc_forward(&gpu, &d) != WN_OK) {
        parity_fail(s, op, shape, wn_last_error());
    } else {
        compare_roles(s, op, shape, &cpu, &gpu, &d, 1);
        if (wn_opc_has_backward(c->op)) {
            if (share_outputs(&cpu, &gpu, &d) != WN_OK || wn_opc_backward(&cpu, &d) != WN_OK ||
                wn_opc_backward(&gpu, &d) != WN_OK)
                parity_fail(s, op, shape, wn_last_error());
            else
                compare_roles(s, op, shape, &cpu, &gpu, &d, 0);
        }
    }
    wn_opc_unplace(&gpu, &d);
    wn_opc_unplace(&cpu, &d);
    wn_opc_data_free(&d);
}

/* The cases this run selects: parity ones, quick ones in a quick run, matrix ops only
 * when asked, ops with a bf16 form in bf16, and the suite's op filter. */
static void run_cases(parity_suite *s, int matmul_only, wn_dtype act) {
    int n;
    const wn_op_case *cases = wn_op_cases(&n);
    for (int i = 0; i < n; i++) {
        const wn_op_case *c = &cases[i];
        if (!(c->modes & WN_OPC_PARITY) || (s->quick && !(c->modes & WN_OPC_QUICK))) continue;
        if (matmul_only && !(c->modes & WN_OPC_MATMUL)) continue;
        if (act == WN_DTYPE_BF16 && !wn_opc_has_bf16(c->op)) continue;
        if (!parity_selected(s, wn_opc_op_name(c->op))) continue;
        run_case(s, c, act);
    }
}

void parity_run_cases(parity_suite *s, int matmul_only) {
    run_cases(s, matmul_only, WN_DTYPE_F32);
}

void parity_run_bf16_cases(parity_suite *s) {
    if (wn_backend_bf16_check(s->cpu) != WN_OK || wn_backend_bf16_check(s->gpu) != WN_OK) {
        parity_fail(s, "bf16", "-", wn_last_error());
        return;
    }
    run_cases(s, 0, WN_DTYPE_BF16);
}
