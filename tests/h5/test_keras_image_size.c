/* tests/h5/test_keras_image_size.c — a .keras archive names its model's input size
 * (config.json's batch_shape), and the commands that take --image-size use it when
 * none is given: `wastenet predict` (and so evaluate, which shares the loading) runs the
 * tiny_cnn model at the archive's 48x48, with the same probabilities as with
 * --image-size 48 given; an explicit --image-size still wins; `wastenet export
 * --format onnx` of the archive gets the 48x48 input too.
 *
 * usage: test_keras_image_size WASTENET IMAGE */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/model/model.h"
#include "engine/train/model_keras.h"
#include "host/base/error.h"
#include "tests/common/check.h"

static char dir[256], out_text[3][16384];

/* Runs `wastenet ARGS`, keeping stdout in out_text[slot]; returns the exit status. */
static int wastenet_run(const char *wastenet, const char *args, int slot) {
    char cmd[2048], log[300];
    snprintf(log, sizeof log, "%s/out%d", dir, slot);
    snprintf(cmd, sizeof cmd, "'%s' %s > '%s' 2>&1", wastenet, args, log);
    int st = system(cmd);
    FILE *fp = fopen(log, "r");
    size_t n = fp ? fread(out_text[slot], 1, sizeof out_text[slot] - 1, fp) : 0;
    out_text[slot][n] = '\0';
    if (fp) fclose(fp);
    printf("  $ wastenet %s\n    | %.300s\n", args, out_text[slot]);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The text from `"predictions"` on: the probabilities, without the header that
 * names the image size. */
static const char *predictions(int slot) {
    const char *p = strstr(out_text[slot], "\"predictions\"");
    return p ? p : "";
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: test_keras_image_size WASTENET IMAGE\n");
        return 2;
    }
    const char *wastenet = argv[1], *image = argv[2];
    snprintf(dir, sizeof dir, "/tmp/wn_keras_size_XXXXXX");
    if (!mkdtemp(dir)) return 1;
    char keras[300], onnx[300], args[1024];
    snprintf(keras, sizeof keras, "%s/tiny48.keras", dir);
    snprintf(onnx, sizeof onnx, "%s/tiny48.onnx", dir);

    wn_model m;
    CHECK_OK(wn_model_create(&m, "tiny_cnn", 48, 48, 6, 7));
    CHECK_OK(wn_model_save_keras_archive(&m, keras));
    wn_model_free(&m);

    snprintf(args, sizeof args, "predict --json --backend cpu --model tiny_cnn --weights '%s' '%s'",
             keras, image);
    CHECK(wastenet_run(wastenet, args, 0) == 0, "predict on the .keras without --image-size");
    CHECK(strstr(out_text[0], "\"image_size\": [48, 48]") != NULL,
          "predict took the archive's 48x48 input");
    snprintf(args, sizeof args,
             "predict --json --backend cpu --model tiny_cnn --image-size 48 --weights '%s' '%s'",
             keras, image);
    CHECK(wastenet_run(wastenet, args, 1) == 0, "predict with --image-size 48");
    CHECK(*predictions(0) && !strcmp(predictions(0), predictions(1)),
          "the same probabilities as with --image-size 48");
    snprintf(args, sizeof args,
             "predict --json --backend cpu --model tiny_cnn --image-size 64 --weights '%s' '%s'",
             keras, image);
    CHECK(wastenet_run(wastenet, args, 2) == 0 &&
              strstr(out_text[2], "\"image_size\": [64, 64]") != NULL,
          "an explicit --image-size 64 wins over the archive's");

    snprintf(args, sizeof args, "export --format onnx --model tiny_cnn --weights '%s' --out '%s'",
             keras, onnx);
    CHECK(wastenet_run(wastenet, args, 2) == 0 && strstr(out_text[2], "48x48") != NULL,
          "export --format onnx of the .keras: a 48x48 input");

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_finish("test_keras_image_size");
}
