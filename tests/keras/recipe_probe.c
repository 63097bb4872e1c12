/* tests/keras/recipe_probe.c — the recipe options' kernels for
 * test_recipe_parity.py to compare with tf-keras:
 *
 *   recipe_probe xent N K S LOGITS.f32 LABELS.i32 OUT.f32
 *       the CPU backend's softmax_xent with label smoothing S on N x K logits:
 *       writes [batch-mean loss, dloss/dz (N x K)] as float32
 *   recipe_probe lr constant|cosine|step INITIAL DECAY_STEPS EVERY FACTOR N
 *       prints the learning rate of steps 0..N-1, one per line (%.9g)
 * Exit status: 0, 1 (failure, reason on stderr), 2 (usage). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/runtime/backend.h"
#include "engine/backends/cpu/backend_cpu.h"
#include "host/base/error.h"
#include "engine/train/lr_schedule.h"

static int read_file(const char *path, void *dst, size_t bytes) {
    FILE *f = fopen(path, "rb");
    if (!f) return fprintf(stderr, "cannot open %s\n", path), 1;
    size_t got = fread(dst, 1, bytes, f);
    fclose(f);
    if (got != bytes) return fprintf(stderr, "%s: %zu bytes, expected %zu\n", path, got, bytes), 1;
    return 0;
}

static int cmd_xent(char **a) {
    int n = atoi(a[0]), k = atoi(a[1]);
    float s = (float)atof(a[2]);
    float *z = malloc((size_t)n * k * sizeof *z), *out = malloc((1 + (size_t)n * k) * sizeof *out);
    int32_t *labels = malloc((size_t)n * sizeof *labels);
    if (!z || !out || !labels) return fprintf(stderr, "out of memory\n"), 1;
    if (read_file(a[3], z, (size_t)n * k * sizeof *z) || read_file(a[4], labels, (size_t)n * sizeof *labels))
        return 1;
    wn_backend *be = wn_backend_cpu();
    float stats[2] = {0, 0};
    if (!be || wn_op_softmax_xent(be, n, k, z, labels, s, (float)n, NULL, out + 1, stats) != WN_OK)
        return fprintf(stderr, "softmax_xent: %s\n", wn_last_error()), 1;
    out[0] = stats[0] / (float)n;
    FILE *f = fopen(a[5], "wb");
    if (!f || fwrite(out, sizeof *out, 1 + (size_t)n * k, f) != 1 + (size_t)n * k)
        return fprintf(stderr, "cannot write %s\n", a[5]), 1;
    fclose(f);
    wn_backend_destroy(be);
    free(z), free(out), free(labels);
    return 0;
}

static int cmd_lr(char **a) {
    wn_lr_schedule s;
    memset(&s, 0, sizeof s);
    if (wn_lr_kind_parse(a[0], &s.kind) != WN_OK) return fprintf(stderr, "%s\n", wn_last_error()), 2;
    s.initial = (float)atof(a[1]);
    s.decay_steps = atol(a[2]);
    s.every = atol(a[3]);
    s.factor = (float)atof(a[4]);
    long n = atol(a[5]);
    for (long i = 0; i < n; i++) printf("%.9g\n", wn_lr_at(&s, i));
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 8 && !strcmp(argv[1], "xent")) return cmd_xent(argv + 2);
    if (argc == 8 && !strcmp(argv[1], "lr")) return cmd_lr(argv + 2);
    fprintf(stderr, "usage: see the top of tests/keras/recipe_probe.c\n");
    return 2;
}
