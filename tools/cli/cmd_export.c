/* tools/cli/cmd_export.c — `wastenet export --format h5`: writes a model's weights in the
 * HDF5 layout Keras's model.load_weights() reads (engine/train/model_weights.h): the
 * notebook's whole get_model() (nested backbone group + head), or with
 * --backbone-only the notop layout; the Keras 3 formats (engine/train/model_keras.h);
 * or `--format onnx`, the whole model for ONNX Runtime (engine/train/model_onnx.h).
 * The input is a wastenet checkpoint or any weight file wastenet loads. The output is
 * written atomically, then read back and compared bit for bit (weights; the ONNX
 * file's bytes) before the command reports success. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/train/checkpoint.h"
#include "host/base/error.h"
#include "engine/model/model.h"
#include "host/h5_keras.h"
#include "engine/train/model_weights.h"
#include "tools/cli/commands.h"
#include "host/base/atomic_file.h"
#include "host/regular_file.h"
#include "tools/cli/option_bounds.h"
#include "engine/train/model_keras.h"
#include "engine/train/model_onnx.h"
#include "tools/cli/inference.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: wastenet export --format FORMAT --weights FILE --out FILE [options]\n\n"
            "Writes weights that Keras loads. By default the notebook's whole model, for\n"
            "`model.load_weights(FILE)` on its get_model() (InceptionResNetV2 as a nested\n"
            "model, then GlobalAveragePooling2D, Dropout and Dense); with --backbone-only the\n"
            "backbone alone, in the layout of Keras's official *_notop.h5 files. The file is\n"
            "written atomically and read back bit-exactly before success is reported.\n\n"
            "formats (which file for which Keras):\n"
            "  h5          legacy HDF5 (x.h5): tf-keras 2 and Keras 3 model.load_weights(),\n"
            "              for get_model() as built (backbone frozen). Keras matches it by\n"
            "              position in trainable-then-frozen order, so a model with a\n"
            "              trainable backbone fails with \"Shape mismatch in layer #0\":\n"
            "              freeze it (base.trainable = False) before load_weights, or use\n"
            "              weights-h5 with Keras 3.\n"
            "  weights-h5  Keras 3 (x.weights.h5): model.load_weights() in Keras 3 whatever\n"
            "              the trainable split (matched per layer). tf-keras 2 cannot read it.\n"
            "  keras       Keras 3 (x.keras): keras.models.load_model(FILE) gives the whole\n"
            "              model (architecture + weights), no code needed. Not tf-keras 2.\n"
            "  h5-model    tf-keras 2 (x.h5 with model_config): tf_keras.models.load_model\n"
            "              (FILE) gives the whole model, as tf-keras's model.save(\"x.h5\").\n"
            "              Also a weight file for load_weights, like h5.\n"
            "  onnx        ONNX Runtime and other ONNX runtimes (x.onnx, opset 13): the whole\n"
            "              model in inference mode, preprocessing included. Input \"image\":\n"
            "              float32 [batch, S, S, 3] NHWC, RGB in [0, 255], resized to the\n"
            "              model's size S by the caller; output \"probabilities\": float32\n"
            "              [batch, classes], softmax. Class names in the metadata (\"classes\").\n\n"
            "options:\n"
            "  --format F          h5 (default), weights-h5, keras, h5-model or onnx\n"
            "  --weights FILE      a wastenet checkpoint (<run>/<phase>.ckpt: its current\n"
            "                      weights), a Keras 2/3 .h5 or .weights.h5, or a .keras\n"
            "  --out FILE          the file to write (replaced atomically); Keras 3 wants\n"
            "                      the .weights.h5 suffix for weights-h5\n"
            "  --backbone-only     write the backbone alone (notop layout)\n"
            "  --model NAME        backbone of an .h5 input (default irv2; a checkpoint\n"
            "                      names its own)\n"
            "  --classes N         classes of an .h5 input's head (default: read from its\n"
            "                      dense layer, else 6)\n"
            "  --image-size N      input size in a keras/h5-model config and of the onnx\n"
            "                      input, and in MobileNetV2's model name\n"
            "                      (mobilenetv2_1.00_<N> for N in 96..224 as Keras's\n"
            "                      weights='imagenet', else _224) (default: a checkpoint's\n"
            "                      or a .keras archive's own, else 320, the notebook's)\n"
            "  -h, --help          this help\n\n"
            "examples:\n"
            "  wastenet export --format h5 --weights runs/R/finetune.ckpt --out weights/model.h5\n"
            "  wastenet export --format h5 --backbone-only --weights runs/R/finetune.ckpt \\\n"
            "      --out weights/backbone_notop.h5\n"
            "  wastenet export --format weights-h5 --weights runs/R/finetune.ckpt \\\n"
            "      --out weights/model.weights.h5\n"
            "  wastenet export --format keras --weights runs/R/finetune.ckpt --out model.keras\n"
            "  wastenet export --format onnx --weights runs/R/finetune.ckpt --out model.onnx\n");
}

typedef enum { INPUT_UNKNOWN, INPUT_H5, INPUT_CHECKPOINT } input_kind;

static input_kind sniff(const char *path) {
    unsigned char magic[8] = {0};
    FILE *fp = wn_fopen_regular(path, "rb", NULL);
    if (!fp) return INPUT_UNKNOWN;
    size_t n = fread(magic, 1, sizeof magic, fp);
    fclose(fp);
    if (n == 8 && !memcmp(magic, "\x89HDF\r\n\x1a\n", 8)) return INPUT_H5;
    if (n >= 4 && !memcmp(magic, "PK\x03\x04", 4)) return INPUT_H5; /* a .keras archive */
    if (n >= 6 && !memcmp(magic, "WNCKPT", 6)) return INPUT_CHECKPOINT;
    return INPUT_UNKNOWN;
}

/* Builds the model `weights` describes and fills its weights. */
static int load_input(wn_model *m, const char *weights, const char *arch, int classes,
                      int image_h, int image_w, int backbone_only) {
    switch (sniff(weights)) {
    case INPUT_CHECKPOINT:
        return wn_checkpoint_load_model(m, weights);
    case INPUT_H5: {
        if (classes <= 0) classes = wn_model_weights_head_classes(weights);
        if (classes <= 0) classes = 6;
        const wn_backbone_def *def = wn_backbone_find(arch);
        if (!def) return WN_ERR;
        /* weights do not depend on the image size (only a .keras config does) */
        int h = image_h ? image_h : def->min_size, w = image_w ? image_w : def->min_size;
        if (wn_model_create(m, arch, h, w, classes, 0) != WN_OK)
            return WN_ERR;
        wn_weights_info info;
        if (wn_model_weights_load(m, weights, &info) != WN_OK) {
            wn_model_free(m);
            return WN_ERR;
        }
        if (info.scope == WN_WEIGHTS_BACKBONE_ONLY && !backbone_only) {
            wn_model_free(m);
            return wn_fail("%s holds the backbone only (no head); export it with "
                           "--backbone-only, or export a trained model's checkpoint",
                           weights);
        }
        return WN_OK;
    }
    default:
        return wn_fail("%s: neither a wastenet checkpoint nor an HDF5 weight file (or "
                       "unreadable)",
                       weights);
    }
}

/* Reads `path` back into a second model and compares every weight bit for bit. */
static int verify(const wn_model *m, const char *arch, const char *path, int backbone_only) {
    wn_model back;
    if (wn_model_create(&back, arch, m->image_h, m->image_w, m->num_classes, 1) != WN_OK)
        return WN_ERR;
    /* make every value differ from m's first, so an unloaded weight cannot pass */
    for (size_t i = 0; i < back.graph.n_params; i++) back.params[i] = -m->params[i] - 1.0f;
    for (size_t i = 0; i < back.graph.n_stats; i++) back.stats[i] = -m->stats[i] - 1.0f;
    int rc = wn_model_weights_load(&back, path, NULL);
    for (int i = 0; rc == WN_OK && i < m->graph.n_layers; i++) {
        const wn_layer *l = &m->graph.layers[i];
        if (backbone_only && l->block != 1) continue;
        for (int k = 0; k < l->n_weights; k++) {
            const wn_weight *w = &l->weights[k];
            const float *a = (w->in_stats ? m->stats : m->params) + w->offset;
            const float *b = (w->in_stats ? back.stats : back.params) + w->offset;
            if (memcmp(a, b, w->count * sizeof(float))) {
                rc = wn_fail("%s: read back, layer '%s' weight '%s' differs from what was "
                             "written",
                             path, l->name, w->name);
                break;
            }
        }
    }
    wn_model_free(&back);
    return rc;
}

/* --format onnx: the class names predict would print go into the metadata. Frees m. */
static int export_onnx(wn_model *m, const char *weights, const char *out) {
    wn_class_list cls = {0, NULL, 0};
    int rc = wn_class_list_resolve(&cls, NULL, weights, m->num_classes);
    if (rc == WN_OK) rc = wn_model_save_onnx(m, out, (const char *const *)cls.v);
    if (rc != WN_OK) fprintf(stderr, "wastenet export: %s\n", wn_last_error());
    else
        printf("wrote %s: ONNX opset %d, whole model in inference mode (%s, %dx%d, %d "
               "classes), input \"%s\" float32 [batch, %d, %d, 3] NHWC 0..255, output \"%s\" "
               "softmax, read back byte-exactly\n",
               out, WN_ONNX_OPSET, m->backbone->keras_name, m->image_h, m->image_w,
               m->num_classes, WN_ONNX_INPUT_NAME, m->image_h, m->image_w, WN_ONNX_OUTPUT_NAME);
    wn_class_list_free(&cls);
    wn_model_free(m);
    return rc == WN_OK ? 0 : 1;
}

int cmd_export(int argc, char **argv) {
    static const struct option opts[] = {{"format", required_argument, 0, 'f'},
                                         {"weights", required_argument, 0, 'w'},
                                         {"out", required_argument, 0, 'o'},
                                         {"backbone-only", no_argument, 0, 'b'},
                                         {"model", required_argument, 0, 'm'},
                                         {"classes", required_argument, 0, 'c'},
                                         {"image-size", required_argument, 0, 's'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *format = "h5", *weights = NULL, *out = NULL, *arch = "irv2";
    int backbone_only = 0, classes = 0, image_size = 0, c;
    optind = 1;
    opterr = 0;
    long v;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'f': format = optarg; break;
        case 'w': weights = optarg; break;
        case 'o': out = optarg; break;
        case 'b': backbone_only = 1; break;
        case 'm': arch = optarg; break;
        case 'c':
            if (wn_opt_int("export", "--classes", optarg, 2, 100000, NULL, &v)) return 2;
            classes = (int)v;
            break;
        case 's':
            image_size = atoi(optarg);
            if (image_size < 1) {
                fprintf(stderr, "wastenet export: --image-size needs a positive number\n");
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        case ':':
            fprintf(stderr, "wastenet export: %s needs a value (see 'wastenet export --help')\n",
                    argv[optind - 1]);
            return 2;
        default: return wn_opt_unknown("export", argc, argv, optind, optopt);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "wastenet export: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    int keras3 = !strcmp(format, "weights-h5"), archive = !strcmp(format, "keras");
    int h5_model = !strcmp(format, "h5-model"), onnx = !strcmp(format, "onnx");
    if (strcmp(format, "h5") && !keras3 && !archive && !h5_model && !onnx) {
        fprintf(stderr, "wastenet export: unknown --format '%s' (h5, weights-h5, keras, "
                        "h5-model or onnx)\n",
                format);
        return 2;
    }
    if ((archive || h5_model || onnx) && backbone_only) {
        fprintf(stderr, "wastenet export: --format %s writes the whole model; use --format "
                        "h5 or weights-h5 with --backbone-only for the backbone alone\n",
                format);
        return 2;
    }
    if (!weights || !out) {
        fprintf(stderr, "wastenet export: --weights and --out are required\n\n");
        usage(stderr);
        return 2;
    }

    /* The output first: a device, pipe or folder named by --out is refused before
     * anything is read (host/base/atomic_file.h refuses it again when writing). */
    char target[4096];
    if (!*weights || !*out) {
        fprintf(stderr, "wastenet export: --%s: expected a file name, got an empty string\n",
                !*weights ? "weights" : "out");
        return 2;
    }
    if (wn_atomic_resolve_target(out, target, sizeof target) != WN_OK) {
        fprintf(stderr, "wastenet export: --out %s\n", wn_last_error());
        return 2;
    }

    wn_model m;
    /* the formats with an input shape: a .keras input's own size, else 320 */
    int image_h = image_size, image_w = image_size;
    if (!image_size && (archive || h5_model || onnx) && sniff(weights) != INPUT_CHECKPOINT)
        wn_inference_default_size(weights, &image_h, &image_w);
    if (load_input(&m, weights, arch, classes, image_h, image_w, backbone_only) != WN_OK) {
        fprintf(stderr, "wastenet export: %s\n", wn_last_error());
        return 1;
    }
    const char *model_arch = m.backbone->name;
    wn_weights_scope scope = backbone_only ? WN_WEIGHTS_BACKBONE_ONLY : WN_WEIGHTS_WHOLE_MODEL;
    if (onnx) return export_onnx(&m, weights, out);
    int rc = archive    ? wn_model_save_keras_archive(&m, out)
             : h5_model ? wn_model_save_h5_model(&m, out)
             : keras3 ? wn_model_weights_save_keras3(&m, out, scope)
                      : wn_model_weights_save(&m, out, scope);
    if (rc == WN_OK) rc = verify(&m, model_arch, out, backbone_only);
    if (rc != WN_OK) {
        fprintf(stderr, "wastenet export: %s\n", wn_last_error());
        wn_model_free(&m);
        return 1;
    }
    printf("wrote %s: %s%s (%s, %d classes), %zu weights, read back bit-exactly\n", out,
           archive    ? "Keras 3 .keras archive, "
           : h5_model ? "legacy h5 with model_config, "
           : keras3   ? "Keras 3 .weights.h5, "
                      : "legacy h5, ",
           backbone_only ? "backbone only, Keras notop layout"
                         : "whole model, Keras get_model() layout",
           wn_model_backbone_name(&m), m.num_classes,
           backbone_only ? m.backbone_params : m.graph.n_params + m.graph.n_stats);
    wn_model_free(&m);
    return 0;
}
