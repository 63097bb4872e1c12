/* tools/cli/main.c — `wastenet`: dispatches to the subcommands of tools/commands.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/cli/commands.h"

#ifndef WN_VERSION
#define WN_VERSION "0.1.0"
#endif

static int cmd_version(int argc, char **argv) {
    (void)argc, (void)argv;
    printf("wastenet %s\n", WN_VERSION);
    return 0;
}

static const wn_command wn_commands[] = {
    {"version", "print the version", cmd_version},
    {"data", "report a data set: counts, image sizes, bad files", cmd_data},
    {"bench-loader", "measure the data pipeline (decode, resize, batches)", cmd_bench_loader},
    {"export", "write weights Keras loads (--format h5 [--backbone-only])", cmd_export},
    {"train", "one training phase with early stopping, test accuracy and reports", cmd_train},
    {"run", "the notebook: transfer learning, fine-tuning, test, per-class analysis", cmd_run},
    {"predict", "top classes of images with their probabilities (--json)", cmd_predict},
    {"evaluate", "loss, accuracy, per-class report of a labeled folder (ensembles, --tta)", cmd_evaluate},
    {"cv", "k-fold cross-validation of a train/run recipe over train + validation", cmd_cv},
    {"imagenet", "ImageNet top classes of images from a backbone with its classifier", cmd_imagenet},
    {"bench-ops", "time a backend's convolutions on a backbone's shapes, or the op cases", cmd_bench_ops},
    {"summary", "the model's layers, parameters and FLOPs, like Keras's summary()", cmd_summary},
    {"bench", "time full training steps (forward, backward, Adam) of a model", cmd_bench},
    {"selftest", "check a backend's ops against the CPU backend (--backend cuda)", cmd_selftest},
    {"bench-peak", "measure this CPU's float32 FMA and bf16/fp16 dot-product peaks", cmd_bench_peak},
};
static const int wn_command_count = (int)(sizeof wn_commands / sizeof wn_commands[0]);

static void print_usage(FILE *out) {
    fprintf(out,
            "wastenet %s — train image classifiers by transfer learning and fine-tuning\n\n"
            "usage: wastenet <command> [options]\n"
            "       wastenet <command> --help\n\ncommands:\n",
            WN_VERSION);
    for (int i = 0; i < wn_command_count; i++)
        fprintf(out, "  %-14s %s\n", wn_commands[i].name, wn_commands[i].summary);
    fprintf(out, "\nexamples:\n"
                 "  wastenet data dataset_images\n"
                 "  wastenet run --data dataset_images --model irv2 --weights "
                 "weights/inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5\n");
}

/* OpenMP threads spin-wait by default between parallel regions. On a busy machine
 * (CI, a shared workstation, the loader's decode threads beside the backend's) that
 * made training steps several times slower (docs/PERF.md), so wastenet waits
 * passively unless the user chose a policy. libgomp reads the variable when it is
 * loaded, before main(), hence the one re-exec. */
static void prefer_passive_openmp_wait(char **argv) {
    if (getenv("OMP_WAIT_POLICY")) return;
    setenv("OMP_WAIT_POLICY", "passive", 1);
    execv("/proc/self/exe", argv); /* returns only on failure: run on with the default */
}

int main(int argc, char **argv) {
    prefer_passive_openmp_wait(argv);
    if (argc < 2) {
        print_usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
        print_usage(stdout);
        return 0;
    }
    if (!strcmp(name, "--version")) return cmd_version(argc - 1, argv + 1);
    for (int i = 0; i < wn_command_count; i++)
        if (!strcmp(name, wn_commands[i].name)) return wn_commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "wastenet: unknown command '%s' (see 'wastenet --help')\n", name);
    return 2;
}
