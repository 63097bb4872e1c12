/* tests/graph/test_graph_layers.c — wastenet's InceptionResNetV2 and the notebook's
 * model against layer lists written by Keras itself (gen_irv2_fixture.py):
 *  - every backbone layer at 320x320 and 75x75: index, name, class, output shape,
 *    parameter count, weight names and shapes in Keras's order;
 *  - backbone trainable parameters for several fine_tune_at values (Keras applied
 *    the notebook's set_frozen_layers and counted base.trainable_weights);
 *  - the notebook's outer model: rows, totals, trainable with the backbone frozen.
 * Usage: test_graph_layers FIXTURE_DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/base/error.h"
#include "engine/model/graph.h"
#include "engine/model/model.h"
#include "tests/common/check.h"

/* Splits a TSV line in place; returns the number of fields. */
static int split(char *line, char **f, int cap) {
    int n = 0;
    line[strcspn(line, "\r\n")] = '\0';
    f[n++] = line;
    for (char *p = line; *p && n < cap; p++)
        if (*p == '\t') *p = '\0', f[n++] = p + 1;
    return n;
}

static FILE *open_fixture(const char *dir, const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cannot open fixture %s (run gen_irv2_fixture.py)\n", path);
        exit(1);
    }
    return f;
}

static void shape_text(const wn_layer *l, char *out, size_t n) {
    if (l->type == WN_LAYER_GAP || l->type == WN_LAYER_DENSE)
        snprintf(out, n, "%d", l->out_c);
    else
        snprintf(out, n, "%d,%d,%d", l->out_h, l->out_w, l->out_c);
}

static void weights_text(const wn_layer *l, char *out, size_t n) {
    out[0] = '\0';
    for (int j = 0; j < l->n_weights; j++) {
        const wn_weight *w = &l->weights[j];
        size_t len = strlen(out);
        snprintf(out + len, n - len, "%s%s:", j ? ";" : "", w->name);
        for (int d = 0; d < w->rank; d++) {
            len = strlen(out);
            snprintf(out + len, n - len, "%s%d", d ? "," : "", w->dims[d]);
        }
    }
}

static void check_backbone(const char *dir, const char *arch, const char *file, int size) {
    wn_graph g;
    if (wn_backbone_build_graph(&g, arch, size, size) != WN_OK) {
        fprintf(stderr, "FAIL building %s at %d: %s\n", arch, size, wn_last_error());
        exit(1);
    }
    FILE *f = open_fixture(dir, file);
    static char line[1 << 20];
    char *fl[8], text[1024];
    int rows = 0;
    size_t total = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        int nf = split(line, fl, 8);
        CHECK(nf >= 5, "%s: short line", file);
        int i = atoi(fl[0]);
        CHECK(i == rows && i < g.n_layers, "%s: row %d has index %s (graph has %d layers)",
              file, rows, fl[0], g.n_layers);
        if (i != rows || i >= g.n_layers) break;
        const wn_layer *l = &g.layers[i];
        CHECK(!strcmp(l->name, fl[1]), "%s[%d]: name %s, Keras %s", file, i, l->name, fl[1]);
        CHECK(!strcmp(wn_layer_keras_class(l), fl[2]), "%s[%d] %s: class %s, Keras %s",
              file, i, l->name, wn_layer_keras_class(l), fl[2]);
        shape_text(l, text, sizeof text);
        CHECK(!strcmp(text, fl[3]), "%s[%d] %s: shape %s, Keras %s", file, i, l->name, text,
              fl[3]);
        CHECK(l->param_count == (size_t)atoll(fl[4]), "%s[%d] %s: %zu params, Keras %s", file,
              i, l->name, l->param_count, fl[4]);
        weights_text(l, text, sizeof text);
        CHECK(!strcmp(text, nf > 5 ? fl[5] : ""), "%s[%d] %s: weights %s, Keras %s", file, i,
              l->name, text, nf > 5 ? fl[5] : "");
        total += l->param_count;
        rows++;
    }
    fclose(f);
    CHECK(rows == g.n_layers, "%s: Keras has %d layers, wastenet %d", file, rows, g.n_layers);
    CHECK(g.n_params + g.n_stats == total, "%s: params+stats %zu != sum %zu", file,
          g.n_params + g.n_stats, total);
    printf("%s %dx%d: %d layers, %zu params (%zu trainable-capable, %zu BN statistics)\n",
           arch, size, size, g.n_layers, g.n_params + g.n_stats, g.n_params, g.n_stats);
    wn_graph_free(&g);
}

static void check_model(const char *dir) {
    wn_model m;
    if (wn_model_create(&m, "irv2", 320, 320, 6, 1) != WN_OK) {
        fprintf(stderr, "FAIL building the notebook model: %s\n", wn_last_error());
        exit(1);
    }
    /* Trainable counts per boundary, as Keras counted them. */
    FILE *f = open_fixture(dir, "irv2_trainable.tsv");
    static char line[1 << 20];
    char *fl[8];
    int checked = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        split(line, fl, 8);
        int n = atoi(fl[0]);
        CHECK(wn_model_set_fine_tune(&m, n) == WN_OK, "set_fine_tune(%d): %s", n,
              wn_last_error());
        size_t want = (size_t)atoll(fl[1]);
        CHECK(wn_model_backbone_trainable(&m) == want,
              "fine_tune_at %d: backbone trainable %zu, Keras %zu", n,
              wn_model_backbone_trainable(&m), want);
        /* The suffix of params is exactly the trainable set plus the Dense head. */
        size_t head = m.graph.layers[m.logits_layer].trainable_count;
        CHECK(wn_model_trainable_count(&m) == want + head,
              "fine_tune_at %d: trainable suffix %zu != %zu + %zu", n,
              wn_model_trainable_count(&m), want, head);
        checked++;
    }
    fclose(f);
    CHECK(checked >= 10, "only %d boundaries in the fixture", checked);
    CHECK(wn_model_set_fine_tune(&m, 781) != WN_OK, "fine_tune_at 781 accepted");

    /* The outer model with the backbone frozen, as the notebook's summary. */
    wn_model_set_fine_tune(&m, WN_FINE_TUNE_NONE);
    wn_summary_row rows[32];
    int nrows = wn_model_summary_rows(&m, rows, 32);
    size_t total = 0, trainable = 0;
    for (int i = 0; i < nrows; i++) total += rows[i].params, trainable += rows[i].trainable;
    f = open_fixture(dir, "notebook.tsv");
    int r = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        int nf = split(line, fl, 8);
        if (!strcmp(fl[0], "total")) {
            CHECK(total == (size_t)atoll(fl[1]), "total %zu, Keras %s", total, fl[1]);
        } else if (!strcmp(fl[0], "trainable")) {
            CHECK(trainable == (size_t)atoll(fl[1]), "trainable %zu, Keras %s", trainable,
                  fl[1]);
        } else if (!strcmp(fl[0], "non_trainable")) {
            CHECK(total - trainable == (size_t)atoll(fl[1]), "non-trainable %zu, Keras %s",
                  total - trainable, fl[1]);
        } else if (!strcmp(fl[0], "backbone_input")) {
            CHECK(!strcmp(m.graph.layers[m.backbone_first].name, fl[1]),
                  "backbone input %s, Keras %s", m.graph.layers[m.backbone_first].name, fl[1]);
        } else {
            CHECK(nf >= 5 && r < nrows, "notebook row %d missing", r);
            if (r >= nrows) break;
            const wn_summary_row *w = &rows[r];
            char shape[64];
            if (w->rank == 1)
                snprintf(shape, sizeof shape, "%d", w->c);
            else
                snprintf(shape, sizeof shape, "%d,%d,%d", w->h, w->w, w->c);
            CHECK(atoi(fl[0]) == r && !strcmp(w->name, fl[1]) &&
                      !strcmp(w->keras_class, fl[2]) && !strcmp(shape, fl[3]) &&
                      w->params == (size_t)atoll(fl[4]),
                  "notebook row %d: %s %s %s %zu, Keras %s %s %s %s", r, w->name,
                  w->keras_class, shape, w->params, fl[1], fl[2], fl[3], fl[4]);
            if (!strcmp(w->keras_class, "Functional")) {
                /* The nested model's weights with the backbone frozen: every layer's
                 * weights in layer order (the order of its h5 group's weight_names). */
                static char all[1 << 20];
                all[0] = '\0';
                for (int i = w->first_layer; i <= w->last_layer; i++) {
                    char one[1024];
                    weights_text(&m.graph.layers[i], one, sizeof one);
                    if (one[0] && all[0]) strcat(all, ";");
                    strcat(all, one);
                }
                CHECK(nf > 5 && !strcmp(all, fl[5]), "nested weight list differs from Keras's");
            }
            r++;
        }
    }
    fclose(f);
    CHECK(r == nrows, "notebook: Keras %d rows, wastenet %d", r, nrows);
    printf("notebook model: %d rows, total %zu, trainable %zu (backbone frozen)\n", nrows,
           total, trainable);
    wn_model_free(&m);
}

/* Another backbone (gen_backbone_fixtures.py): trainable parameters per boundary as
 * Keras counted them, and block-name aliases of --fine-tune-at resolving to the index
 * a Keras user computes. */
static void check_trainable_and_aliases(const char *dir, const char *arch, int size) {
    wn_model m;
    if (wn_model_create(&m, arch, size, size, 6, 1) != WN_OK) {
        fprintf(stderr, "FAIL building the %s model: %s\n", arch, wn_last_error());
        exit(1);
    }
    static char line[1 << 16];
    char *fl[8], file[128];
    int checked = 0;
    snprintf(file, sizeof file, "%s_trainable.tsv", arch);
    FILE *f = open_fixture(dir, file);
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        split(line, fl, 8);
        int n = atoi(fl[0]);
        CHECK(wn_model_set_fine_tune(&m, n) == WN_OK, "%s set_fine_tune(%d): %s", arch, n,
              wn_last_error());
        CHECK(wn_model_backbone_trainable(&m) == (size_t)atoll(fl[1]),
              "%s fine_tune_at %d: backbone trainable %zu, Keras %s", arch, n,
              wn_model_backbone_trainable(&m), fl[1]);
        checked++;
    }
    fclose(f);
    CHECK(checked >= 5, "%s: only %d boundaries in the fixture", arch, checked);
    CHECK(wn_model_set_fine_tune(&m, m.backbone_count + 1) != WN_OK, "%s: %d accepted", arch,
          m.backbone_count + 1);
    snprintf(file, sizeof file, "%s_aliases.tsv", arch);
    f = open_fixture(dir, file);
    checked = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        split(line, fl, 8);
        int at = -2;
        CHECK(wn_fine_tune_resolve(&m.graph, m.backbone_first, m.backbone_count, fl[0], &at) ==
                      WN_OK && at == atoi(fl[1]),
              "%s --fine-tune-at %s: %d, Keras users compute %s (%s)", arch, fl[0], at, fl[1],
              wn_last_error());
        checked++;
    }
    fclose(f);
    int at;
    CHECK(wn_fine_tune_resolve(&m.graph, m.backbone_first, m.backbone_count, "no_such_block",
                               &at) != WN_OK,
          "%s: an unknown block name accepted", arch);
    printf("%s: trainable counts and %d block aliases as Keras\n", arch, checked);
    wn_model_free(&m);
}

int main(int argc, char **argv) {
    if (argc >= 4) { /* FIXTURE_DIR ARCH SIZE...: another backbone */
        char file[128];
        for (int i = 3; i < argc; i++) {
            snprintf(file, sizeof file, "%s_%s.tsv", argv[2], argv[i]);
            check_backbone(argv[1], argv[2], file, atoi(argv[i]));
        }
        check_trainable_and_aliases(argv[1], argv[2], atoi(argv[3]));
        const wn_backbone_def *def = wn_backbone_find(argv[2]);
        wn_graph g;
        CHECK(def && wn_backbone_build_graph(&g, argv[2], def->min_size - 1, def->min_size) !=
                         WN_OK && strstr(wn_last_error(), "too small"),
              "%s: %d px accepted or unclear message (%s)", argv[2], def ? def->min_size - 1 : 0,
              wn_last_error());
        return test_finish("test_graph_layers (backbone aliases)");
    }
    if (argc != 2) {
        fprintf(stderr, "usage: %s FIXTURE_DIR [ARCH SIZE...]\n", argv[0]);
        return 2;
    }
    check_backbone(argv[1], "irv2", "irv2_320.tsv", 320);
    check_backbone(argv[1], "irv2", "irv2_75.tsv", 75);
    check_model(argv[1]);
    /* Below the smallest input Keras accepts. */
    wn_graph g;
    CHECK(wn_backbone_build_graph(&g, "irv2", 74, 80) != WN_OK, "74x80 accepted");
    return test_finish("test_graph_layers");
}
