/* tools/cli/cmd_summary.c — `wastenet summary`: the notebook's whole model as Keras's
 * model.summary() prints it (outer layers, the backbone as one Functional row),
 * with an index and a trainable column, the totals, and the forward FLOPs per
 * image. --expand lists the backbone's own layers (Keras index k, as
 * --fine-tune-at counts them), like summary(expand_nested=True, show_trainable=True).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/base/error.h"
#include "engine/model/model.h"
#include "tools/cli/commands.h"
#include "tools/cli/option_bounds.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: wastenet summary [--model irv2] [--image-size 320] [--classes 6]\n"
            "                        [--fine-tune-at none|all|N] [--expand]\n"
            "Prints the notebook's model (input, augmentation, preprocess, backbone, GAP,\n"
            "Dropout(0.2), Dense(classes)) like Keras's model.summary(), its parameter\n"
            "totals under the frozen boundary (default none: the backbone frozen, as in\n"
            "transfer learning) and its forward FLOPs per image. --expand also lists every\n"
            "backbone layer with its Keras index, the number --fine-tune-at takes, and\n"
            "the boundary `wastenet run` fine-tunes from when --fine-tune-at is not given.\n");
}

/* 54345958 -> "54,345,958" */
static const char *commas(size_t v, char *buf) {
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%zu", v), o = 0;
    for (int i = 0; i < n; i++) {
        if (i && (n - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = '\0';
    return buf;
}

static void shape_text(char *buf, size_t n, int rank, int h, int w, int c, int input) {
    if (rank == 1)
        snprintf(buf, n, "(None, %d)", c);
    else if (input)
        snprintf(buf, n, "[(None, %d, %d, %d)]", h, w, c);
    else
        snprintf(buf, n, "(None, %d, %d, %d)", h, w, c);
}

static void rule(char ch) {
    for (int i = 0; i < 100; i++) putchar(ch);
    putchar('\n');
}

static void row(const char *index, const char *name, const char *cls, const char *shape,
                size_t params, const char *trainable) {
    char num[32];
    int pad = 45 - (int)strlen(name) - (int)strlen(cls); /* "name (type)" in 48 columns */
    printf(" %-5s %s (%s)%*s %-24s %12s  %s\n", index, name, cls, pad > 0 ? pad : 0, "", shape,
           commas(params, num), trainable);
}

int cmd_summary(int argc, char **argv) {
    const char *arch = "irv2";
    int size = 320, classes = 6, expand = 0, fine_tune_at = WN_FINE_TUNE_NONE;
    const char *fine_tune_arg = "none";
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},   {"image-size", required_argument, 0, 's'},
        {"classes", required_argument, 0, 'c'}, {"fine-tune-at", required_argument, 0, 'f'},
        {"expand", no_argument, 0, 'e'},        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    int opt;
    long v;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "m:s:c:f:eh", opts, NULL)) != -1) {
        switch (opt) {
        case 'm': arch = optarg; break;
        case 's':
            if (wn_opt_int("summary", "--image-size", optarg, 1, 8192, NULL, &v)) return 2;
            size = (int)v;
            break;
        case 'c':
            if (wn_opt_int("summary", "--classes", optarg, 2, 100000, NULL, &v)) return 2;
            classes = (int)v;
            break;
        case 'e': expand = 1; break;
        case 'f': fine_tune_arg = optarg; break; /* an index or a block name: see below */
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "wastenet summary: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    const wn_backbone_def *def = wn_backbone_find(arch);
    if (!def || size < def->min_size) {
        if (def)
            fprintf(stderr, "wastenet summary: --image-size %d: the %s model needs images of at "
                    "least %dx%d\n", size, arch, def->min_size, def->min_size);
        else
            fprintf(stderr, "wastenet summary: --model %s: %s\n", arch, wn_last_error());
        return 2;
    }
    wn_model m;
    if (wn_model_create(&m, arch, size, size, classes, 0) != WN_OK) {
        fprintf(stderr, "wastenet summary: %s\n", wn_last_error());
        return 1;
    }
    if (wn_fine_tune_resolve(&m.graph, m.backbone_first, m.backbone_count, fine_tune_arg,
                             &fine_tune_at) != WN_OK ||
        wn_model_set_fine_tune(&m, fine_tune_at) != WN_OK) {
        fprintf(stderr, "wastenet summary: %s\n", wn_last_error());
        wn_model_free(&m);
        return 2;
    }
    wn_summary_row rows[64];
    int n = wn_model_summary_rows(&m, rows, 64);
    if (n > 64) n = 64;
    const wn_graph *g = &m.graph;
    char shape[64], num[32], idx[16];
    printf("Model: \"%s\"\n", g->name);
    rule('_');
    printf(" %-5s %-48s %-24s %12s  %s\n", "#", "Layer (type)", "Output Shape", "Param #",
           "Trainable");
    rule('=');
    size_t total = 0, trainable = 0;
    for (int r = 0; r < n; r++) {
        const wn_summary_row *w = &rows[r];
        int is_input = !strcmp(w->keras_class, "InputLayer");
        shape_text(shape, sizeof shape, w->rank, w->h, w->w, w->c, is_input);
        const char *tr = w->params == 0 ? "" : w->trainable == w->params ? "Y"
                                            : w->trainable == 0         ? "N"
                                                                        : "partly";
        snprintf(idx, sizeof idx, "%d", r);
        row(idx, w->name, w->keras_class, shape, w->params, tr);
        total += w->params, trainable += w->trainable;
        if (expand && !strcmp(w->keras_class, "Functional")) {
            for (int i = w->first_layer; i <= w->last_layer; i++) {
                const wn_layer *l = &g->layers[i];
                shape_text(shape, sizeof shape, 3, l->out_h, l->out_w, l->out_c,
                           l->type == WN_LAYER_INPUT);
                snprintf(idx, sizeof idx, "%d", i - m.backbone_first);
                char name[WN_NAME_MAX + 4];
                snprintf(name, sizeof name, "| %s", l->name);
                row(idx, name, wn_layer_keras_class(l), shape, l->param_count,
                    l->param_count == 0 ? "" : wn_model_layer_trainable(&m, i) ? "Y" : "N");
            }
        }
    }
    rule('=');
    printf("Total params: %s (%.2f MB)\n", commas(total, num), total * 4.0 / 1048576.0);
    printf("Trainable params: %s\n", commas(trainable, num));
    printf("Non-trainable params: %s\n", commas(total - trainable, num));
    rule('_');
    const char *bound = fine_tune_at == WN_FINE_TUNE_NONE ? "none (backbone frozen)"
                        : fine_tune_at == 0               ? "all (0)"
                                                          : NULL;
    if (bound)
        printf("Fine-tune boundary: %s\n", bound);
    else
        printf("Fine-tune boundary: %d (backbone layers 0..%d frozen, %d..%d trainable)\n",
               fine_tune_at, fine_tune_at - 1, fine_tune_at, m.backbone_count - 1);
    int run_default;
    if (m.backbone->fine_tune_default &&
        wn_fine_tune_resolve(&m.graph, m.backbone_first, m.backbone_count,
                             m.backbone->fine_tune_default, &run_default) == WN_OK)
        printf("wastenet run's default --fine-tune-at: %s = layer %d (%s)\n",
               m.backbone->fine_tune_default, run_default,
               g->layers[m.backbone_first + run_default].name);
    printf("Backbone: %s, %d layers; trainable backbone params: %s\n", wn_model_backbone_name(&m),
           m.backbone_count, commas(wn_model_backbone_trainable(&m), num));
    /* what Keras's <Application>(include_top=False).summary() totals (trainable) */
    size_t bb_stats = 0;
    for (int i = m.backbone_first; i < m.backbone_first + m.backbone_count; i++)
        bb_stats += g->layers[i].param_count - g->layers[i].trainable_count;
    char num2[32], num3[32];
    printf("Backbone alone (Keras's %s summary): Total params: %s, Trainable params: %s, "
           "Non-trainable params: %s\n", wn_model_backbone_name(&m), commas(m.backbone_params, num),
           commas(m.backbone_params - bb_stats, num2), commas(bb_stats, num3));
    double flops = wn_model_flops(&m);
    printf("Forward FLOPs per image: %.3f GFLOPs (2 x multiply-adds of convolutions and "
           "Dense)\n", flops * 1e-9);
    wn_model_free(&m);
    return 0;
}
