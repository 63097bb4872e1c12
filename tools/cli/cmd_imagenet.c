/* tools/cli/cmd_imagenet.c — `wastenet imagenet`: what an ImageNet-pretrained backbone sees.
 *
 * Builds ARCH with the ImageNet top (the notebook's head with 1000 classes is
 * exactly Keras's top: GlobalAveragePooling2D -> Dropout -> Dense(1000)), loads a
 * weight file that has the backbone *and* its classifier (tools/convert_efficientnet_lite.py
 * without --notop writes one: layers matched by name, the classifier from the file's
 * "predictions" layer), runs the photos through wastenet's own decode, resize and
 * preprocess on the CPU backend, and prints the top-k ImageNet classes.
 *
 * It is how the converted weights were proven (tools/check_efficientnet_torch.py):
 * --dump-input writes the preprocessed input the network saw ([N, S, S, 3] float32)
 * and --dump-logits the 1000 logits per image ([N, 1000] float32), raw little-endian.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/runtime/backend.h"
#include "engine/backends/cpu/backend_cpu.h"
#include "host/base/error.h"
#include "engine/runtime/executor.h"
#include "engine/model/model.h"
#include "host/base/atomic_file.h"
#include "host/h5_keras.h"
#include "host/image_decode.h"
#include "host/resize.h"
#include "tools/cli/commands.h"
#include "host/regular_file.h"
#include "tools/cli/option_bounds.h"

enum { IMAGENET_CLASSES = 1000, NAME_LEN = 64 };

static void usage(FILE *out) {
    fprintf(out,
            "usage: wastenet imagenet --weights FILE [options] IMAGE...\n\n"
            "Top-k ImageNet classes of photos from a backbone with its ImageNet classifier\n"
            "(a weight file with the backbone's layers and a 'predictions' Dense layer,\n"
            "as tools/convert_efficientnet_lite.py writes without --notop).\n\n"
            "options:\n"
            "  --model NAME         backbone (default efficientnet_lite0)\n"
            "  --weights FILE       the weight file (required)\n"
            "  --image-size N       input size (default 224)\n"
            "  --top K              classes shown per image (default 5)\n"
            "  --classes FILE       imagenet_class_index.json for class names\n"
            "  --dump-input FILE    write the preprocessed input [N,S,S,3] float32\n"
            "  --dump-logits FILE   write the logits [N,1000] float32\n"
            "  -h, --help           this help\n\n"
            "example:\n"
            "  wastenet imagenet --weights weights/efficientnet_lite0_imagenet.h5 \\\n"
            "      --classes ../shared/imagenet/imagenet_class_index.json dataset_images/test/glass/*.jpg\n");
}

/* Reads {"0": ["n01440764", "tench"], ...}: names[i] = the second string of key i. */
static int read_class_names(const char *path, char (*names)[NAME_LEN]) {
    const char *why;
    FILE *f = wn_fopen_regular(path, "rb", &why);
    if (!f) return wn_fail("%s: cannot open the class index: %s", path, why);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    rewind(f);
    char *text = malloc((size_t)size + 1);
    if (!text || fread(text, 1, (size_t)size, f) != (size_t)size) {
        free(text);
        fclose(f);
        return wn_fail("%s: cannot read the class index", path);
    }
    fclose(f);
    text[size] = '\0';
    int found = 0;
    for (int i = 0; i < IMAGENET_CLASSES; i++) {
        char key[16];
        snprintf(key, sizeof key, "\"%d\"", i);
        const char *p = strstr(text, key);
        /* from the key's opening quote: its closing quote, the id's two quotes, then
         * the name's opening quote */
        for (int quote = 0; p && quote < 4; quote++) p = strchr(p + 1, '"');
        if (!p) break;
        const char *q = strchr(p + 1, '"');
        if (!q) break;
        snprintf(names[i], NAME_LEN, "%.*s", (int)(q - p - 1), p + 1);
        found++;
    }
    free(text);
    if (found != IMAGENET_CLASSES)
        return wn_fail("%s: found %d of the 1000 class names; expected Keras's "
                       "imagenet_class_index.json",
                       path, found);
    return WN_OK;
}

/* Loads every backbone layer with weights by name, and "predictions" into the Dense. */
static int load_with_top(wn_model *m, const char *path) {
    wn_h5_file *f;
    if (wn_h5_open(path, &f) != WN_OK) return WN_ERR;
    int rc = WN_OK;
    for (int i = m->backbone_first; rc == WN_OK && i <= m->logits_layer; i++) {
        const wn_layer *l = &m->graph.layers[i];
        if (l->n_weights == 0) continue;
        const char *want = i == m->logits_layer ? "predictions" : l->name;
        int fl = wn_h5_find_layer(f, want);
        if (fl < 0) {
            rc = wn_fail("%s: no layer '%s' (model %s); convert the weights without --notop",
                         path, want, m->backbone->name);
            break;
        }
        const wn_h5_layer *hl = &f->layers[fl];
        if (hl->n_weights != l->n_weights) {
            rc = wn_fail("%s: layer '%s' has %d weights, the model's %s has %d", path, want,
                         hl->n_weights, l->name, l->n_weights);
            break;
        }
        for (int k = 0; rc == WN_OK && k < l->n_weights; k++) {
            const wn_weight *w = &l->weights[k];
            const wn_h5_weight *hw = &hl->weights[k];
            int same = hw->rank == w->rank;
            for (int d = 0; same && d < w->rank; d++) same = hw->dims[d] == w->dims[d];
            if (!same) {
                rc = wn_fail("%s: weight '%s' does not have the shape of the model's %s "
                             "(wrong model or image classes?)",
                             path, hw->name, w->name);
                break;
            }
            rc = wn_h5_weight_read(f, fl, k, wn_model_weight_data(m, w), w->count);
        }
    }
    wn_h5_close(f);
    return rc;
}

/* Decodes and resizes the images, as the training pipeline does (uint8 cache). */
static int load_images(char **paths, int n, int size, uint8_t *out) {
    wn_image_decoder *dec = wn_image_decoder_new();
    wn_resizer *rs = wn_resizer_new();
    int rc = dec && rs ? WN_OK : wn_fail("out of memory");
    for (int i = 0; rc == WN_OK && i < n; i++) {
        wn_image img;
        rc = wn_image_decode_file(dec, paths[i], 0, &img);
        if (rc == WN_OK)
            rc = wn_resize_bilinear_u8(rs, img.pixels, img.height, img.width,
                                       out + (size_t)i * size * size * 3, size, size);
    }
    wn_resizer_free(rs);
    wn_image_decoder_free(dec);
    return rc;
}

static int dump(const char *path, const float *x, size_t count) {
    wn_atomic_file f;
    if (wn_atomic_open(&f, path) != WN_OK) return WN_ERR;
    if (fwrite(x, sizeof *x, count, f.fp) != count) {
        wn_atomic_abort(&f);
        return wn_fail("%s: write failed", path);
    }
    return wn_atomic_commit(&f);
}

int cmd_imagenet(int argc, char **argv) {
    const char *arch = "efficientnet_lite0", *weights = NULL, *classes = NULL;
    const char *dump_input = NULL, *dump_logits = NULL;
    int size = 224, top = 5;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},      {"weights", required_argument, 0, 'w'},
        {"image-size", required_argument, 0, 's'}, {"top", required_argument, 0, 'k'},
        {"classes", required_argument, 0, 'c'},    {"dump-input", required_argument, 0, 'i'},
        {"dump-logits", required_argument, 0, 'l'}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    int o;
    long v;
    optind = 1;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'm': arch = optarg; break;
        case 'w': weights = optarg; break;
        case 's':
            if (wn_opt_int("imagenet", "--image-size", optarg, 1, 8192, NULL, &v)) return 2;
            size = (int)v;
            break;
        case 'k':
            if (wn_opt_int("imagenet", "--top", optarg, 1, IMAGENET_CLASSES, NULL, &v)) return 2;
            top = (int)v;
            break;
        case 'c': classes = optarg; break;
        case 'i': dump_input = optarg; break;
        case 'l': dump_logits = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    int n = argc - optind;
    if (!weights || n < 1 || size < 1 || top < 1 || top > IMAGENET_CLASSES) {
        usage(stderr);
        return 2;
    }
    char **paths = argv + optind;

    static char names[IMAGENET_CLASSES][NAME_LEN];
    wn_model m;
    int model_ok = 0;
    wn_backend *be = NULL;
    wn_executor *ex = NULL;
    uint8_t *images = malloc((size_t)n * size * size * 3);
    float *logits = malloc((size_t)n * IMAGENET_CLASSES * sizeof(float));
    float *input = malloc((size_t)n * size * size * 3 * sizeof(float));
    int rc = images && logits && input ? WN_OK : wn_fail("out of memory for %d images", n);
    if (rc == WN_OK && classes) rc = read_class_names(classes, names);
    if (rc == WN_OK) rc = wn_model_create(&m, arch, size, size, IMAGENET_CLASSES, 0);
    if (rc == WN_OK) model_ok = 1;
    if (rc == WN_OK) rc = load_with_top(&m, weights);
    if (rc == WN_OK) rc = load_images(paths, n, size, images);
    if (rc == WN_OK && !(be = wn_backend_cpu())) rc = WN_ERR;
    if (rc == WN_OK)
        rc = wn_executor_create(&ex, &m, be, n, WN_EXEC_INFERENCE_ONLY | WN_EXEC_KEEP_ALL);
    if (rc == WN_OK) rc = wn_executor_forward(ex, images, n, 0, NULL, NULL, 0);
    if (rc == WN_OK) rc = wn_executor_read_output(ex, m.logits_layer, logits);
    /* graph layer 1: the fused augment + preprocess layer (engine/model/model.h) */
    if (rc == WN_OK && dump_input) rc = wn_executor_read_output(ex, 1, input);
    if (rc == WN_OK && dump_input) rc = dump(dump_input, input, (size_t)n * size * size * 3);
    if (rc == WN_OK && dump_logits) rc = dump(dump_logits, logits, (size_t)n * IMAGENET_CLASSES);

    for (int i = 0; rc == WN_OK && i < n; i++) {
        const float *z = logits + (size_t)i * IMAGENET_CLASSES;
        double zmax = z[0], sum = 0;
        for (int c = 1; c < IMAGENET_CLASSES; c++) zmax = z[c] > zmax ? z[c] : zmax;
        for (int c = 0; c < IMAGENET_CLASSES; c++) sum += exp(z[c] - zmax);
        printf("%s\n", paths[i]);
        int shown[IMAGENET_CLASSES] = {0};
        for (int k = 0; k < top; k++) {
            int best = -1;
            for (int c = 0; c < IMAGENET_CLASSES; c++)
                if (!shown[c] && (best < 0 || z[c] > z[best])) best = c;
            shown[best] = 1;
            printf("  %4d  %6.2f%%  %s\n", best, 100.0 * exp(z[best] - zmax) / sum,
                   classes ? names[best] : "");
        }
    }
    if (rc != WN_OK) fprintf(stderr, "wastenet imagenet: %s\n", wn_last_error());
    if (ex) wn_executor_destroy(ex);
    if (be) wn_backend_destroy(be);
    if (model_ok) wn_model_free(&m);
    free(images), free(logits), free(input);
    return rc == WN_OK ? 0 : 1;
}
