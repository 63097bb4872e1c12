/* engine/runtime/parity_bf16.c — the bf16 mode of the GPU parity suite: each op case
 * marked WN_OPC_PARITY whose op has a bf16 form (wn_opc_has_bf16) runs as a bf16
 * placement (activations, and a convolution's kernel, stored bf16; host values rounded
 * on upload, widened on download: engine/runtime/op_cases.h) on the CPU backend's bf16
 * ops (the answer key) and on the tested backend's, with the same input bytes; every
 * output and gradient is compared normwise at the suite's tol_bf16.
 *
 * Both sides round the same bf16 inputs once per output, so they differ where float32
 * sums taken in another order round to neighbouring bf16 values (and where cuDNN keeps
 * a bf16 weight gradient, kernels/conv/conv.cu): one bf16 ulp (2^-8 relative) on some
 * elements, far inside tol_bf16. As in the float mode, outputs start as NaN, the
 * tested side's buffers are fenced by sentinel guards, and the backward reads the
 * CPU's forward outputs on both sides, so a ReLU mask cannot flip between them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/runtime/backend_bf16.h"
#include "engine/runtime/op_cases.h"
#include "engine/runtime/parity.h"
#include "host/base/error.h"

/* Every compared tensor (float output or gradient; a bf16 one downloads widened). */
static void compare_bf16(parity_suite *s, const char *op, const char *shape, wn_opc_placed *cpu,
                         wn_opc_placed *gpu, const wn_opc_data *d, int forward) {
    for (int i = 0; i < d->n; i++) {
        const wn_opc_tensor *t = &d->t[i];
        if (!t->count || t->dtype != WN_OPC_F32 || t->host_only) continue;
        int fwd_out = t->role == WN_OPC_OUT || t->role == WN_OPC_INOUT;
        if (forward ? !fwd_out : t->role != WN_OPC_GRADIENT) continue;
        float *ref = malloc(t->count * sizeof(float));
        float *got = malloc((t->count + 2 * gpu->guard) * sizeof(float));
        char name[64];
        snprintf(name, sizeof name, "%s %s (bf16)", op, t->name);
        if (!ref || !got || wn_opc_download(cpu, d, i, ref, 0) != WN_OK ||
            wn_opc_download(gpu, d, i, got, 1) != WN_OK)
            parity_fail(s, name, shape, ref && got ? wn_last_error() : "out of host memory");
        else
            parity_compare_host(s, name, shape, ref, got, t->count, s->tol_bf16);
        free(ref), free(got);
    }
}

/* The CPU's forward outputs, byte for byte in their stored type, onto the tested side. */
static int share_outputs(wn_opc_placed *cpu, wn_opc_placed *gpu, const wn_opc_data *d) {
    for (int i = 0; i < d->n; i++) {
        const wn_opc_tensor *t = &d->t[i];
        if (!t->count || t->role != WN_OPC_OUT || t->host_only) continue;
        size_t bytes = wn_opc_tensor_is_act(d, i) ? t->count * sizeof(wn_bf16) : wn_opc_bytes(t);
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

static void run_case(parity_suite *s, const wn_op_case *c) {
    const char *op = wn_opc_op_name(c->op);
    char shape[200];
    wn_opc_describe(c, shape, sizeof shape);
    wn_opc_data d;
    wn_opc_placed cpu, gpu;
    if (wn_opc_data_init(&d, c, parity_rand_u64()) != WN_OK) {
        parity_fail(s, op, shape, wn_last_error());
        return;
    }
    if (wn_opc_place_as(&cpu, s->cpu, &d, 0, 0.0f, WN_DTYPE_BF16) != WN_OK) {
        parity_fail(s, op, shape, wn_last_error());
        wn_opc_data_free(&d);
        return;
    }
    if (wn_opc_place_as(&gpu, s->gpu, &d, PARITY_GUARD, PARITY_SENTINEL, WN_DTYPE_BF16) != WN_OK) {
        parity_fail(s, op, shape, wn_last_error());
        wn_opc_unplace(&cpu, &d);
        wn_opc_data_free(&d);
        return;
    }
    if (wn_opc_forward(&cpu, &d) != WN_OK || wn_opc_forward(&gpu, &d) != WN_OK) {
        parity_fail(s, op, shape, wn_last_error());
    } else {
        compare_bf16(s, op, shape, &cpu, &gpu, &d, 1);
        if (wn_opc_has_backward(c->op)) {
            if (share_outputs(&cpu, &gpu, &d) != WN_OK || wn_opc_backward(&cpu, &d) != WN_OK ||
                wn_opc_backward(&gpu, &d) != WN_OK)
                parity_fail(s, op, shape, wn_last_error());
            else
                compare_bf16(s, op, shape, &cpu, &gpu, &d, 0);
        }
    }
    wn_opc_unplace(&gpu, &d);
    wn_opc_unplace(&cpu, &d);
    wn_opc_data_free(&d);
}

void parity_run_bf16_cases(parity_suite *s) {
    if (wn_backend_bf16_check(s->cpu) != WN_OK || wn_backend_bf16_check(s->gpu) != WN_OK) {
        parity_fail(s, "bf16", "-", wn_last_error());
        return;
    }
    int n;
    const wn_op_case *cases = wn_op_cases(&n);
    for (int i = 0; i < n; i++) {
        const wn_op_case *c = &cases[i];
        if (!(c->modes & WN_OPC_PARITY) || (s->quick && !(c->modes & WN_OPC_QUICK))) continue;
        if (!wn_opc_has_bf16(c->op) || !parity_selected(s, wn_opc_op_name(c->op))) continue;
        run_case(s, c);
    }
}
