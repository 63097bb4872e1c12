/* tests/h5/test_export_cli.c — `wastenet export` end to end on a small registered
 * backbone (tiny_cnn): from a training checkpoint to both layouts, each read back
 * bit-exactly by the loader; from an .h5 to an .h5; and the command's refusals (bad
 * usage, unknown format, unreadable input, a backbone-only file asked for a whole
 * model, an output folder that does not exist) with the right exit status and no
 * output file left behind.
 *
 * usage: test_export_cli WASTENET */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/train/checkpoint.h"
#include "host/base/error.h"
#include "engine/model/model.h"
#include "engine/train/model_weights.h"
#include "tests/common/check.h"


static char dir[256];
static const char *wastenet;

static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, 512, "%s/%s", dir, name);
    return p;
}

/* Runs `wastenet export ARGS` with output to a log; returns the exit status. */
static int export_run(const char *args) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' export %s > '%s/log' 2>&1", wastenet, args, dir);
    int st = system(cmd);
    int rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    char log[512];
    snprintf(log, sizeof log, "%s/log", dir);
    FILE *fp = fopen(log, "r");
    char line[1024];
    while (fp && fgets(line, sizeof line, fp)) printf("    | %s", line);
    if (fp) fclose(fp);
    return rc;
}

static int log_has(const char *s) {
    char log[512], buf[8192] = {0};
    snprintf(log, sizeof log, "%s/log", dir);
    FILE *fp = fopen(log, "r");
    if (!fp) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    buf[n] = 0;
    fclose(fp);
    return strstr(buf, s) != NULL;
}

static int same_weights(const wn_model *a, const wn_model *b, int backbone_only) {
    for (int i = 0; i < a->graph.n_layers; i++) {
        const wn_layer *l = &a->graph.layers[i];
        if (backbone_only && l->block != 1) continue;
        for (int k = 0; k < l->n_weights; k++) {
            const wn_weight *w = &l->weights[k];
            const float *pa = (w->in_stats ? a->stats : a->params) + w->offset;
            const float *pb = (w->in_stats ? b->stats : b->params) + w->offset;
            if (memcmp(pa, pb, w->count * sizeof(float))) return 0;
        }
    }
    return 1;
}

/* Loads `path` into a fresh tiny_cnn model and compares with `m`. */
static void expect_file_holds(const wn_model *m, const char *path, int backbone_only) {
    wn_model back;
    CHECK(wn_model_create(&back, "tiny_cnn", m->image_h, m->image_w, m->num_classes, 99) ==
              WN_OK,
          "create: %s", wn_last_error());
    wn_weights_info info;
    CHECK(wn_model_weights_load(&back, path, &info) == WN_OK, "load %s: %s", path,
          wn_last_error());
    CHECK(info.scope == (backbone_only ? WN_WEIGHTS_BACKBONE_ONLY : WN_WEIGHTS_WHOLE_MODEL) &&
              info.nested == !backbone_only && info.by_name,
          "%s: scope %d nested %d by_name %d", path, info.scope, info.nested, info.by_name);
    CHECK(same_weights(m, &back, backbone_only), "%s does not hold the checkpoint's weights",
          path);
    wn_model_free(&back);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: test_export_cli WASTENET\n");
        return 2;
    }
    wastenet = argv[1];
    snprintf(dir, sizeof dir, "/tmp/wn_test_export_cli.XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }

    /* a "trained" model: every weight distinct */
    wn_model m;
    if (wn_model_create(&m, "tiny_cnn", 16, 16, 3, 5) != WN_OK) {
        fprintf(stderr, "cannot build tiny_cnn: %s\n", wn_last_error());
        return 1;
    }
    for (size_t i = 0; i < m.graph.n_params; i++) m.params[i] = 0.001f * (float)i - 0.3f;
    for (size_t i = 0; i < m.graph.n_stats; i++) m.stats[i] = 0.5f + 0.002f * (float)i;
    wn_model_set_fine_tune(&m, WN_FINE_TUNE_NONE);
    size_t n_train = m.graph.n_params - m.trainable_first;
    float *zeros = calloc(n_train + 1, sizeof(float));
    wn_checkpoint ck;
    memset(&ck, 0, sizeof ck);
    snprintf(ck.phase, sizeof ck.phase, "transfer");
    snprintf(ck.arch, sizeof ck.arch, "tiny_cnn");
    ck.image_h = ck.image_w = 16;
    ck.num_classes = 3;
    ck.fine_tune_at = WN_FINE_TUNE_NONE;
    ck.epochs_max = 1;
    ck.lr = 1e-3;
    ck.n_params = m.graph.n_params, ck.n_stats = m.graph.n_stats;
    ck.trainable_first = m.trainable_first;
    ck.params = m.params, ck.stats = m.stats;
    ck.adam_m = ck.adam_v = zeros;
    char ckpt[600]; /* own copy: tmp_path's buffers rotate */
    snprintf(ckpt, sizeof ckpt, "%s", tmp_path("transfer.ckpt"));
    CHECK(wn_checkpoint_save(&ck, ckpt) == WN_OK, "checkpoint: %s", wn_last_error());

    char args[1600];
    /* checkpoint -> whole model, and -> backbone only */
    snprintf(args, sizeof args, "--format h5 --weights '%s' --out '%s'", ckpt,
             tmp_path("whole.h5"));
    CHECK(export_run(args) == 0 && log_has("read back bit-exactly"), "export whole");
    expect_file_holds(&m, tmp_path("whole.h5"), 0);
    snprintf(args, sizeof args, "--format h5 --backbone-only --weights '%s' --out '%s'", ckpt,
             tmp_path("notop.h5"));
    CHECK(export_run(args) == 0, "export backbone");
    expect_file_holds(&m, tmp_path("notop.h5"), 1);

    /* .h5 -> .h5 (re-export of our own export), replacing an existing file */
    snprintf(args, sizeof args, "--format h5 --model tiny_cnn --weights '%s' --out '%s'",
             tmp_path("whole.h5"), tmp_path("notop.h5"));
    CHECK(export_run(args) == 0 && log_has("3 classes"), "re-export (classes from the file)");
    expect_file_holds(&m, tmp_path("notop.h5"), 0);

    /* refusals */
    CHECK(export_run("--format h5") == 2 && log_has("--weights and --out are required"),
          "missing options");
    snprintf(args, sizeof args, "--format tflite --weights '%s' --out '%s'", ckpt,
             tmp_path("x.tflite"));
    CHECK(export_run(args) == 2 && log_has("unknown --format"), "format");
    CHECK(access(tmp_path("x.tflite"), F_OK) != 0, "unknown format: no file written");
    /* ONNX from a checkpoint (its own image size); tests/onnx runs the file */
    snprintf(args, sizeof args, "--format onnx --weights '%s' --out '%s'", ckpt,
             tmp_path("x.onnx"));
    CHECK(export_run(args) == 0 && log_has("ONNX opset 13") && access(tmp_path("x.onnx"), F_OK) == 0,
          "onnx from a checkpoint");
    snprintf(args, sizeof args, "--format h5 --weights '%s/log' --out '%s'", dir,
             tmp_path("x.h5"));
    CHECK(export_run(args) == 1 && log_has("neither a wastenet checkpoint nor an HDF5"),
          "garbage input");
    /* a backbone-only file cannot become a whole model (its head would be random) */
    char notop_only[600];
    snprintf(notop_only, sizeof notop_only, "%s", tmp_path("notop_only.h5"));
    CHECK(wn_model_weights_save(&m, notop_only, WN_WEIGHTS_BACKBONE_ONLY) == WN_OK, "save");
    snprintf(args, sizeof args, "--format h5 --model tiny_cnn --weights '%s' --out '%s'",
             notop_only, tmp_path("x.h5"));
    CHECK(export_run(args) == 1 && log_has("backbone only") && log_has("--backbone-only"),
          "backbone-only input");
    snprintf(args, sizeof args, "--format h5 --weights '%s' --out '%s/no/such/dir/x.h5'", ckpt,
             dir);
    CHECK(export_run(args) == 1 && log_has("no/such/dir/x.h5"), "missing output folder");
    CHECK(access(tmp_path("x.h5"), F_OK) != 0, "no output file may be left after a refusal");

    wn_model_free(&m);
    free(zeros);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
    if (test_failures) {
        fprintf(stderr, "test_export_cli: %d failure(s)\n", test_failures);
        return 1;
    }
    printf("test_export_cli: all checks passed\n");
    return 0;
}
