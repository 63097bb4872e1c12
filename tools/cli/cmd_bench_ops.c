/* tools/cli/cmd_bench_ops.c — `wastenet bench-ops`: times a backend's convolutions
 * (and the per-channel affine + activation that follows each) on every distinct
 * convolution shape of a backbone, and adds them up the way one training step
 * uses them: forward for every convolution; backward-filter and backward-data only
 * from the fine-tune boundary up. Prints per-shape and total seconds and GFLOP/s,
 * and can write the shape list as JSON for tools/bench_tf_convs.py, which times the
 * same convolutions in TensorFlow on the same machine.
 *
 * `--cases` times the shared op cases instead (tools/cli/bench_op_cases.c); --backend
 * picks the CPU or the CUDA backend for either.
 *
 * A benchmark, not a test: numbers depend on the machine and its load.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/runtime/backend.h"
#include "engine/backends/cpu/backend_cpu.h"
#include "engine/backends/cuda/backend_cuda.h"
#include "host/base/error.h"
#include "engine/model/graph.h"
#include "engine/model/model.h"
#include "tools/cli/bench_clock.h"
#include "tools/cli/bench_op_cases.h"
#include "tools/cli/commands.h"
#include "host/base/atomic_file.h"
#include "tools/cli/option_bounds.h"

typedef struct shape_stat {
    wn_conv_desc d;
    wn_padding pad;
    int bias, count, trainable; /* occurrences; how many are at/above the boundary */
    double t_fwd, t_bwd_data, t_bwd_filter, t_affine; /* seconds per call, median */
} shape_stat;

static void usage(FILE *out) {
    fprintf(out,
            "usage: wastenet bench-ops [--model irv2] [--image-size 320] [--batch 64]\n"
            "                          [--fine-tune-at N|none|all] [--repeat 3]\n"
            "                          [--shapes-json FILE] [--verbose] [--backend cpu|cuda]\n"
            "       wastenet bench-ops --cases [--all] [--op NAME] [--backend cpu|cuda] [--repeat 3]\n"
            "Times the backend's convolutions on every distinct conv shape of the\n"
            "backbone and totals them as one training step uses them (backward only from\n"
            "the fine-tune boundary up). --shapes-json writes the shapes and our times for\n"
            "tools/bench_tf_convs.py (the same convolutions in TensorFlow).\n"
            "--cases times the shared op cases instead (engine/runtime/op_cases.h: the list\n"
            "the gradient check and the backend parity suite use), every op forward and\n"
            "backward; the model-sized ones, or --all of them; --op keeps ops whose name\n"
            "contains NAME. --backend cuda uses the GPU (TF32, the training default).\n");
}

/* Median seconds of `repeat` calls (after one warm-up call), each waited for. */
#define TIME_OP(result, call)                                                        \
    do {                                                                             \
        if ((call) != WN_OK || wn_backend_synchronize(be) != WN_OK) goto fail;       \
        for (int r_ = 0; r_ < repeat; r_++) {                                        \
            double t0_ = bench_now_s();                                                    \
            if ((call) != WN_OK || wn_backend_synchronize(be) != WN_OK) goto fail;   \
            times[r_] = bench_now_s() - t0_;                                               \
        }                                                                            \
        qsort(times, (size_t)repeat, sizeof(double), bench_cmp_double);                    \
        (result) = times[repeat / 2];                                                \
    } while (0)

int cmd_bench_ops(int argc, char **argv) {
    const char *arch = "irv2", *json_path = NULL, *backend = "cpu", *op_filter = NULL;
    int size = 320, batch = 64, repeat = 3, verbose = 0, fine_tune_at = 500, cases = 0, all = 0;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},      {"image-size", required_argument, 0, 's'},
        {"batch", required_argument, 0, 'b'},      {"fine-tune-at", required_argument, 0, 'f'},
        {"repeat", required_argument, 0, 'r'},     {"shapes-json", required_argument, 0, 'j'},
        {"verbose", no_argument, 0, 'v'},          {"help", no_argument, 0, 'h'},
        {"backend", required_argument, 0, 'B'},    {"cases", no_argument, 0, 'C'},
        {"all", no_argument, 0, 'A'},              {"op", required_argument, 0, 'O'},
        {0, 0, 0, 0}};
    int c;
    long v;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:s:b:f:r:j:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': arch = optarg; break;
        case 's':
            if (wn_opt_int("bench-ops", "--image-size", optarg, 1, 8192, NULL, &v)) return 2;
            size = (int)v;
            break;
        case 'b':
            if (wn_opt_int("bench-ops", "--batch", optarg, 1, WN_MAX_BATCH, NULL, &v)) return 2;
            batch = (int)v;
            break;
        case 'f':
            if (wn_fine_tune_parse(optarg, &fine_tune_at) != WN_OK) {
                fprintf(stderr, "wastenet bench-ops: %s\n", wn_last_error());
                return 2;
            }
            break;
        case 'r':
            if (wn_opt_int("bench-ops", "--repeat", optarg, 1, 50, NULL, &v)) return 2;
            repeat = (int)v;
            break;
        case 'j':
            if (wn_opt_path("bench-ops", "--shapes-json", optarg)) return 2;
            json_path = optarg;
            break;
        case 'v': verbose = 1; break;
        case 'B': backend = optarg; break;
        case 'C': cases = 1; break;
        case 'A': all = 1; break;
        case 'O': op_filter = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (batch < 1 || size < 1 || repeat < 1 || repeat > 50) {
        usage(stderr);
        return 2;
    }
    if (strcmp(backend, "cpu") && strcmp(backend, "cuda")) {
        fprintf(stderr, "wastenet bench-ops: --backend '%s': expected cpu or cuda\n", backend);
        return 2;
    }
    if (cases) {
        wn_backend *cb = !strcmp(backend, "cuda") ? wn_backend_cuda(0, WN_PRECISION_TF32) : wn_backend_cpu();
        if (!cb) {
            fprintf(stderr, "wastenet bench-ops: %s\n", wn_last_error());
            return 1;
        }
        int rc = bench_op_cases(cb, op_filter, repeat, all);
        wn_backend_destroy(cb);
        return rc;
    }
    /* none: the whole backbone frozen (no backward); all: every layer trainable */
    int boundary = fine_tune_at == WN_FINE_TUNE_NONE ? 1 << 30 : fine_tune_at;

    wn_graph g;
    if (wn_backbone_build_graph(&g, arch, size, size) != WN_OK) {
        fprintf(stderr, "wastenet bench-ops: %s\n", wn_last_error());
        return 1;
    }
    shape_stat *st = calloc((size_t)g.n_layers, sizeof *st);
    int n_st = 0;
    size_t max_x = 0, max_y = 0, max_w = 0;
    for (int i = 0; i < g.n_layers; i++) {
        const wn_layer *l = &g.layers[i];
        if (l->type != WN_LAYER_CONV2D && l->type != WN_LAYER_DEPTHWISE_CONV2D) continue;
        const wn_layer *in = &g.layers[l->inputs[0]];
        wn_conv_desc d;
        memset(&d, 0, sizeof d);
        if (wn_window_init(&d.win, batch, in->out_h, in->out_w, in->out_c, l->kh, l->kw, l->sh,
                           l->sw, l->padding, l->name) != WN_OK) {
            fprintf(stderr, "wastenet bench-ops: %s\n", wn_last_error());
            return 1;
        }
        d.k = l->out_c;
        d.groups = l->type == WN_LAYER_DEPTHWISE_CONV2D ? in->out_c : 1;
        int j;
        for (j = 0; j < n_st; j++)
            if (memcmp(&st[j].d, &d, sizeof d) == 0 && st[j].bias == l->use_bias &&
                st[j].pad == l->padding)
                break;
        if (j == n_st) st[n_st].d = d, st[n_st].bias = l->use_bias, st[n_st].pad = l->padding, n_st++;
        st[j].count++;
        st[j].trainable += i >= boundary;
        size_t nx = (size_t)batch * in->out_h * in->out_w * in->out_c;
        size_t ny = (size_t)batch * d.win.oh * d.win.ow * d.k;
        size_t nw = (size_t)l->kh * l->kw * (in->out_c / d.groups) * d.k;
        if (nx > max_x) max_x = nx;
        if (ny > max_y) max_y = ny;
        if (nw > max_w) max_w = nw;
    }

    wn_backend *be = !strcmp(backend, "cuda") ? wn_backend_cuda(0, WN_PRECISION_TF32) : wn_backend_cpu();
    if (!be) {
        fprintf(stderr, "wastenet bench-ops: %s\n", wn_last_error());
        return 1;
    }
    float *x = wn_backend_alloc(be, max_x * 4), *dx = wn_backend_alloc(be, max_x * 4);
    float *y = wn_backend_alloc(be, max_y * 4), *dy = wn_backend_alloc(be, max_y * 4);
    float *w = wn_backend_alloc(be, max_w * 4), *dw = wn_backend_alloc(be, max_w * 4);
    float *bias = wn_backend_alloc(be, 4096 * 4), *db = wn_backend_alloc(be, 4096 * 4);
    if (!x || !dx || !y || !dy || !w || !dw || !bias || !db) goto fail;
    wn_backend_fill(be, x, max_x, 0.5f), wn_backend_fill(be, dy, max_y, 0.25f), wn_backend_fill(be, w, max_w, 0.01f);
    wn_backend_fill(be, bias, 4096, 0.1f), wn_backend_fill(be, dx, max_x, 0.0f), wn_backend_fill(be, y, max_y, 0.0f);

    double times[50];
    double tot_fwd = 0, tot_bd = 0, tot_bf = 0, tot_aff = 0, flops_fwd = 0, flops_bwd = 0;
    if (verbose)
        printf("%-44s %5s %5s %9s %9s %9s %9s\n", "shape (N H W C -> K, kernel, stride, pad)", "count",
           "train", "fwd ms", "bwd-d ms", "bwd-f ms", "bn+act ms");
    for (int j = 0; j < n_st; j++) {
        shape_stat *s = &st[j];
        const wn_window *v = &s->d.win;
        size_t ny = (size_t)v->n * v->oh * v->ow * s->d.k;
        TIME_OP(s->t_fwd, wn_op_conv2d_forward(be, &s->d, x, w, s->bias ? bias : NULL, y, "bench"));
        TIME_OP(s->t_affine, wn_op_affine_act_forward(be, ny, s->d.k, y, bias, bias, WN_ACT_RELU, y, "bench"));
        if (s->trainable) {
            TIME_OP(s->t_bwd_filter,
                    wn_op_conv2d_backward_filter(be, &s->d, x, dy, dw, s->bias ? db : NULL, "bench"));
            TIME_OP(s->t_bwd_data, wn_op_conv2d_backward_data(be, &s->d, dy, w, dx, 0, "bench"));
        }
        double f = 2.0 * v->n * v->oh * v->ow * s->d.k * v->kh * v->kw * (v->c / (s->d.groups ? s->d.groups : 1));
        tot_fwd += s->count * s->t_fwd;
        tot_aff += s->count * s->t_affine;
        tot_bd += s->trainable * s->t_bwd_data;
        tot_bf += s->trainable * s->t_bwd_filter;
        flops_fwd += s->count * f;
        flops_bwd += s->trainable * 2 * f;
        if (verbose)
            printf("%3dx%3dx%3dx%4d -> %4d %dx%d s%d %-5s%-4s %5d %5d %9.2f %9.2f %9.2f %9.2f\n", v->n,
                   v->h, v->w, v->c, s->d.k, v->kh, v->kw, v->sh, s->pad == WN_PAD_SAME ? "same" : "valid",
                   s->bias ? "+b" : "", s->count, s->trainable, s->t_fwd * 1e3, s->t_bwd_data * 1e3,
                   s->t_bwd_filter * 1e3, s->t_affine * 1e3);
        fflush(stdout);
    }
    char bound[32];
    if (fine_tune_at == WN_FINE_TUNE_NONE)
        snprintf(bound, sizeof bound, "none");
    else if (fine_tune_at == 0)
        snprintf(bound, sizeof bound, "all");
    else
        snprintf(bound, sizeof bound, "%d", fine_tune_at);
    printf("\n%s at %dx%d, batch %d, fine-tune-at %s: %d distinct conv shapes\n", arch, size, size,
           batch, bound, n_st);
    printf("  conv forward          %8.2f s  (%6.1f GFLOP/s)\n", tot_fwd, flops_fwd / tot_fwd * 1e-9);
    if (tot_bd + tot_bf > 0)
        printf("  conv backward (d + f) %8.2f s  (%6.1f GFLOP/s)\n", tot_bd + tot_bf,
               flops_bwd / (tot_bd + tot_bf) * 1e-9);
    printf("  bn + relu forward     %8.2f s\n", tot_aff);
    printf("  total                 %8.2f s per step (convolutions and their affine only)\n",
           tot_fwd + tot_bd + tot_bf + tot_aff);

    if (json_path) {
        wn_atomic_file af;
        if (wn_atomic_open(&af, json_path) != WN_OK) goto fail;
        FILE *f = af.fp;
        fprintf(f, "{\"model\": \"%s\", \"image_size\": %d, \"batch\": %d, \"shapes\": [\n", arch, size,
                batch);
        for (int j = 0; j < n_st; j++) {
            const shape_stat *s = &st[j];
            const wn_window *v = &s->d.win;
            fprintf(f,
                    "  {\"n\": %d, \"h\": %d, \"w\": %d, \"c\": %d, \"k\": %d, \"kh\": %d, \"kw\": %d, "
                    "\"sh\": %d, \"sw\": %d, \"padding\": \"%s\", \"groups\": %d, \"bias\": %d, "
                    "\"count\": %d, \"trainable\": %d, \"fwd_s\": %.6f, \"bwd_data_s\": %.6f, "
                    "\"bwd_filter_s\": %.6f}%s\n",
                    v->n, v->h, v->w, v->c, s->d.k, v->kh, v->kw, v->sh, v->sw,
                    s->pad == WN_PAD_SAME ? "SAME" : "VALID",
                    s->d.groups, s->bias, s->count, s->trainable, s->t_fwd, s->t_bwd_data, s->t_bwd_filter,
                    j + 1 < n_st ? "," : "");
        }
        fprintf(f, "]}\n");
        if (wn_atomic_commit(&af) != WN_OK) goto fail;
    }
    wn_backend_free(be, x), wn_backend_free(be, dx), wn_backend_free(be, y), wn_backend_free(be, dy), wn_backend_free(be, w);
    wn_backend_free(be, dw), wn_backend_free(be, bias), wn_backend_free(be, db);
    wn_backend_destroy(be);
    free(st);
    wn_graph_free(&g);
    return 0;
fail:
    fprintf(stderr, "wastenet bench-ops: %s\n", wn_last_error());
    wn_backend_destroy(be);
    free(st);
    wn_graph_free(&g);
    return 1;
}
