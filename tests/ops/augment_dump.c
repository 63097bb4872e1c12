/* tests/ops/augment_dump.c — runs the CPU backend's augment_preprocess on images
 * from a file, for the TensorFlow comparison (test_augment_tf.py).
 *
 * usage: augment_dump N H W C IN.u8 PARAMS.txt OUT.f32 [tf|caffe|torch]
 *   IN.u8      N*H*W*C bytes, NHWC
 *   PARAMS.txt N lines "flip angle" (angle in radians, float32 written in full), or
 *              "flip angle zoom_x zoom_y dx dy contrast" on every line: the zoom,
 *              translation and contrast layers too (zoom 1, shift 0 and contrast 1
 *              leave an image as it is)
 *   OUT.f32    N*H*W*C little-endian float32, NHWC
 *   mode       preprocess_input mode (default tf; kernels/augment.h)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/runtime/backend.h"
#include "engine/backends/cpu/backend_cpu.h"
#include "host/base/error.h"
#include "kernels/augment/augment.h"

int main(int argc, char **argv) {
    int mode = WN_AUG_PRE_TF;
    if (argc == 9 && !strcmp(argv[8], "caffe")) mode = WN_AUG_PRE_CAFFE;
    else if (argc == 9 && !strcmp(argv[8], "torch")) mode = WN_AUG_PRE_TORCH;
    else if (argc == 9 && strcmp(argv[8], "tf")) argc = 0; /* unknown mode: usage */
    if (argc != 8 && argc != 9) {
        fprintf(stderr, "usage: augment_dump N H W C IN.u8 PARAMS.txt OUT.f32 [tf|caffe|torch]\n");
        return 2;
    }
    int n = atoi(argv[1]), h = atoi(argv[2]), w = atoi(argv[3]), c = atoi(argv[4]);
    size_t count = (size_t)n * h * w * c;
    uint8_t *x = malloc(count), *flip = malloc((size_t)n);
    float *angle = malloc((size_t)n * sizeof(float)), *y = malloc(count * sizeof(float));
    float *zoom = malloc((size_t)n * 2 * sizeof(float)), *shift = malloc((size_t)n * 2 * sizeof(float));
    float *contrast = malloc((size_t)n * sizeof(float));
    int layers = 0; /* 1: the lines carry the zoom, translation and contrast */
    FILE *f = fopen(argv[5], "rb");
    if (!x || !flip || !angle || !y || !f || fread(x, 1, count, f) != count) {
        fprintf(stderr, "augment_dump: cannot read %zu bytes from %s\n", count, argv[5]);
        return 1;
    }
    fclose(f);
    f = fopen(argv[6], "r");
    if (!zoom || !shift || !contrast) return fprintf(stderr, "augment_dump: out of memory\n"), 1;
    for (int i = 0; i < n; i++) {
        int fl;
        char line[512];
        if (!f || !fgets(line, sizeof line, f)) {
            fprintf(stderr, "augment_dump: %s needs %d lines \"flip angle\"\n", argv[6], n);
            return 1;
        }
        int got = sscanf(line, "%d %f %f %f %f %f %f", &fl, &angle[i], &zoom[2 * i], &zoom[2 * i + 1],
                         &shift[2 * i], &shift[2 * i + 1], &contrast[i]);
        if (i == 0) layers = got == 7;
        if (got != (layers ? 7 : 2)) {
            fprintf(stderr, "augment_dump: %s line %d: expected %s\n", argv[6], i + 1,
                    layers ? "flip angle zoom_x zoom_y dx dy contrast" : "flip angle");
            return 1;
        }
        flip[i] = (uint8_t)fl;
    }
    fclose(f);
    wn_backend *be = wn_backend_cpu();
    wn_augment_batch aug = {flip, angle, layers ? zoom : NULL, layers ? shift : NULL,
                            layers ? contrast : NULL};
    if (!be || wn_op_augment(be, n, h, w, c, x, &aug, y, mode) != WN_OK) {
        fprintf(stderr, "augment_dump: %s\n", wn_last_error());
        return 1;
    }
    f = fopen(argv[7], "wb");
    if (!f || fwrite(y, sizeof(float), count, f) != count || fclose(f) != 0) {
        fprintf(stderr, "augment_dump: cannot write %s\n", argv[7]);
        return 1;
    }
    wn_backend_destroy(be);
    free(x), free(flip), free(angle), free(y), free(zoom), free(shift), free(contrast);
    return 0;
}
