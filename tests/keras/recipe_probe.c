/* tests/keras/recipe_probe.c — the recipe options' kernels for
 * test_recipe_parity.py to compare with tf-keras:
 *
 *   recipe_probe xent N K S LOGITS.f32 LABELS.i32 OUT.f32
 *       the CPU backend's softmax_xent with label smoothing S on N x K logits:
 *       writes [batch-mean loss, dloss/dz (N x K)] as float32
 *   recipe_probe lr constant|cosine|step INITIAL DECAY_STEPS EVERY FACTOR N
 *       prints the learning rate of steps 0..N-1, one per line (%.9g)
 *   recipe_probe adam COUNT STEPS WD P0.f32 GRADS.f32 LRS.f32 OUT.f32
 *       STEPS Adam steps (Keras's defaults, weight decay WD) of the CPU backend's
 *       adam_update on COUNT parameters from P0, step s with gradient GRADS[s] and
 *       learning rate LRS[s]: writes the parameters after each step (STEPS x COUNT)
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

static int cmd_adam(char **a) {
    size_t count = (size_t)atol(a[0]);
    long steps = atol(a[1]);
    float wd = (float)atof(a[2]);
    float *p = malloc(count * sizeof *p), *g = malloc((size_t)steps * count * sizeof *g);
    float *lrs = malloc((size_t)steps * sizeof *lrs), *out = malloc((size_t)steps * count * sizeof *out);
    float *m = calloc(count, sizeof *m), *v = calloc(count, sizeof *v);
    if (!p || !g || !lrs || !out || !m || !v) return fprintf(stderr, "out of memory\n"), 1;
    if (read_file(a[3], p, count * sizeof *p) || read_file(a[4], g, (size_t)steps * count * sizeof *g) ||
        read_file(a[5], lrs, (size_t)steps * sizeof *lrs))
        return 1;
    wn_backend *be = wn_backend_cpu();
    if (!be) return fprintf(stderr, "cpu backend: %s\n", wn_last_error()), 1;
    for (long s = 0; s < steps; s++) {
        wn_adam_params k = WN_ADAM_KERAS(lrs[s]);
        k.weight_decay = wd;
        if (wn_op_adam_update(be, count, p, g + (size_t)s * count, m, v, &k, s + 1) != WN_OK)
            return fprintf(stderr, "adam_update: %s\n", wn_last_error()), 1;
        memcpy(out + (size_t)s * count, p, count * sizeof *p);
    }
    FILE *f = fopen(a[6], "wb");
    if (!f || fwrite(out, sizeof *out, (size_t)steps * count, f) != (size_t)steps * count || fclose(f))
        return fprintf(stderr, "cannot write %s\n", a[6]), 1;
    wn_backend_destroy(be);
    free(p), free(g), free(lrs), free(out), free(m), free(v);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 9 && !strcmp(argv[1], "adam")) return cmd_adam(argv + 2);
    if (argc == 8 && !strcmp(argv[1], "xent")) return cmd_xent(argv + 2);
    if (argc == 8 && !strcmp(argv[1], "lr")) return cmd_lr(argv + 2);
    fprintf(stderr, "usage: see the top of tests/keras/recipe_probe.c\n");
    return 2;
}
