/* tools/cli/cmd_predict.c — `wastenet predict --weights FILE IMAGE...`: the top-k
 * classes of each image with their probabilities, as text or JSON.
 *
 * Each image is decoded and resized exactly as training saw it (host/image_decode.h,
 * host/resize.h: tf.image.resize bilinear, rounded to uint8), then the model runs in
 * inference mode (preprocess only, no augmentation, no dropout) and the softmax
 * probabilities are ranked. The weights are a wastenet checkpoint (which names its
 * model, image size and class count) or a Keras/wastenet .h5 of the whole model.
 * Class names come from --classes, else classes.txt beside the weights (what
 * `wastenet train/run` writes in a run folder), else the notebook's six classes when
 * the head has six outputs, else class_0, class_1, ...
 */
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/runtime/backend.h"
#include "engine/train/checkpoint.h"
#include "host/base/error.h"
#include "engine/runtime/executor.h"
#include "engine/train/metrics.h"
#include "engine/model/model.h"
#include "engine/train/run_report.h"
#include "host/h5_keras.h"
#include "host/image_decode.h"
#include "engine/train/model_weights.h"
#include "host/resize.h"
#include "tools/cli/commands.h"
#include "host/regular_file.h"
#include "tools/cli/option_bounds.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: wastenet predict --weights FILE [options] IMAGE...\n\n"
            "Prints the most likely classes of each image with their probabilities.\n\n"
            "options:\n"
            "  --weights FILE      a wastenet checkpoint (runs/<run>/<phase>.ckpt) or a .h5\n"
            "                      of the whole model (runs/<run>/<phase>_weights.h5, or\n"
            "                      Keras's model.save_weights of the notebook's model)\n"
            "  --model NAME        backbone of an .h5 file (default irv2; a checkpoint names\n"
            "                      its own)\n"
            "  --image-size N      input size of an .h5 file's model (default 320; a\n"
            "                      checkpoint has its own)\n"
            "  --classes A,B,...   class names in label order (default: classes.txt beside\n"
            "                      the weights, else the notebook's six when the model has six\n"
            "                      outputs, else class_0, class_1, ...)\n"
            "  --top K             classes shown per image (default 3)\n"
            "  --json              one JSON document on stdout instead of text\n"
            "  --backend NAME      auto (default), cpu or cuda\n"
            "  --batch N           images per forward pass (default 16)\n"
            "  --max-pixels N      refuse images larger than N pixels (width x height;\n"
            "                      default %zu), checked from the header\n"
            "  -h, --help          this help\n\n"
            "example:\n"
            "  wastenet predict --weights runs/R/finetune_weights.h5 dataset_images/test/glass/*.jpg\n",
            (size_t)WN_DEFAULT_MAX_PIXELS);
}

static const char *const notebook_classes[6] = {"cardboard", "glass", "metal",
                                                 "paper",     "plastic", "trash"};

typedef struct names {
    int n;
    char **v;
} names;

static void names_free(names *c) {
    for (int i = 0; i < c->n; i++) free(c->v[i]);
    free(c->v);
    c->n = 0, c->v = NULL;
}

static int names_push(names *c, const char *s, size_t len) {
    char **v = realloc(c->v, (size_t)(c->n + 1) * sizeof *v);
    if (!v) return wn_fail("out of memory");
    c->v = v;
    c->v[c->n] = strndup(s, len);
    if (!c->v[c->n]) return wn_fail("out of memory");
    c->n++;
    return WN_OK;
}

static int names_from_list(names *c, const char *list) {
    for (const char *p = list;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == 0) return wn_fail("--classes %s: empty class name", list);
        if (names_push(c, p, len) != WN_OK) return WN_ERR;
        if (!comma) return WN_OK;
        p = comma + 1;
    }
}

/* classes.txt beside the weights file; 0 when there is none. */
static int names_from_run_folder(names *c, const char *weights) {
    char copy[4096], path[4200];
    snprintf(copy, sizeof copy, "%s", weights);
    snprintf(path, sizeof path, "%s/classes.txt", dirname(copy));
    FILE *f = wn_fopen_regular(path, "r", NULL);
    if (!f) return 0;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        size_t len = strcspn(line, "\r\n");
        if (len && names_push(c, line, len) != WN_OK) break;
    }
    fclose(f);
    return c->n;
}

static int load_model(wn_model *m, const char *weights, const char *arch, int size) {
    const char *why;
    FILE *probe = wn_fopen_regular(weights, "rb", &why);
    if (!probe) return wn_fail("%s: cannot read the weights: %s", weights, why);
    fclose(probe);
    if (wn_checkpoint_is_file(weights)) return wn_checkpoint_load_model(m, weights);
    int classes = wn_model_weights_head_classes(weights);
    if (classes < 0) return WN_ERR; /* unreadable: its reason names the file */
    if (classes == 0)
        return wn_fail("%s: no dense head found: predict needs the whole model's weights (a "
                       "checkpoint, or a *_weights.h5 from a run), not a backbone-only file",
                       weights);
    if (wn_model_create(m, arch, size, size, classes, 0) != WN_OK) return WN_ERR;
    wn_weights_info info;
    if (wn_model_weights_load(m, weights, &info) != WN_OK) {
        wn_model_free(m);
        return WN_ERR;
    }
    if (info.scope == WN_WEIGHTS_BACKBONE_ONLY) {
        wn_model_free(m);
        return wn_fail("%s holds the backbone only: predict needs a trained head", weights);
    }
    return WN_OK;
}

/* Fills dst [size, size, 3] from an image file, as the training loader does. */
static int load_image(wn_image_decoder *dec, wn_resizer *rs, const char *path, size_t max_pixels,
                      int h, int w, uint8_t *dst) {
    wn_image img;
    if (wn_image_decode_file(dec, path, max_pixels, &img) != WN_OK) return WN_ERR;
    return wn_resize_bilinear_u8(rs, img.pixels, img.height, img.width, dst, h, w);
}

static void print_text(const char *path, const float *p, const names *cls, int top) {
    printf("%s\n", path);
    int used[4096] = {0};
    for (int t = 0; t < top; t++) {
        int best = -1;
        for (int c = 0; c < cls->n; c++)
            if (!used[c] && (best < 0 || p[c] > p[best])) best = c;
        used[best] = 1;
        printf("  %-12s %.4f\n", cls->v[best], p[best]);
    }
}

static void print_json_entry(const char *path, const float *p, const names *cls, int top,
                             const char *error, int first) {
    printf("%s\n    {\"path\": ", first ? "" : ",");
    wn_json_write_string(stdout, path);
    if (error) {
        printf(", \"error\": ");
        wn_json_write_string(stdout, error);
        printf("}");
        return;
    }
    printf(", \"top\": [");
    int used[4096] = {0};
    for (int t = 0; t < top; t++) {
        int best = -1;
        for (int c = 0; c < cls->n; c++)
            if (!used[c] && (best < 0 || p[c] > p[best])) best = c;
        used[best] = 1;
        printf("%s{\"class\": ", t ? ", " : "");
        wn_json_write_string(stdout, cls->v[best]);
        printf(", \"probability\": %.9g}", p[best]);
    }
    printf("], \"probabilities\": {");
    for (int c = 0; c < cls->n; c++) {
        printf("%s", c ? ", " : "");
        wn_json_write_string(stdout, cls->v[c]);
        printf(": %.9g", p[c]);
    }
    printf("}}");
}

int cmd_predict(int argc, char **argv) {
    static const struct option opts[] = {
        {"weights", required_argument, 0, 'w'}, {"model", required_argument, 0, 'm'},
        {"image-size", required_argument, 0, 's'}, {"classes", required_argument, 0, 'c'},
        {"top", required_argument, 0, 'k'}, {"json", no_argument, 0, 'j'},
        {"backend", required_argument, 0, 'b'}, {"batch", required_argument, 0, 'B'},
        {"max-pixels", required_argument, 0, 'p'}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *weights = NULL, *arch = "irv2", *class_list = NULL, *backend = "auto";
    int size = 320, top = 3, json = 0, batch = 16, opt;
    size_t max_pixels = WN_DEFAULT_MAX_PIXELS;
    optind = 0;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        long v;
        switch (opt) {
        case 'w':
            if (wn_opt_path("predict", "--weights", optarg)) return 2;
            weights = optarg;
            break;
        case 'm': arch = optarg; break;
        case 's':
            if (wn_opt_int("predict", "--image-size", optarg, 1, 8192, "(pixels per side)", &v))
                return 2;
            size = (int)v;
            break;
        case 'c':
            if (wn_opt_path("predict", "--classes", optarg)) return 2;
            class_list = optarg;
            break;
        case 'k':
            if (wn_opt_int("predict", "--top", optarg, 1, 100000, NULL, &v)) return 2;
            top = (int)v;
            break;
        case 'j': json = 1; break;
        case 'b':
            if (strcmp(optarg, "auto") && strcmp(optarg, "cpu") && strcmp(optarg, "cuda")) {
                fprintf(stderr, "wastenet predict: --backend %s: expected auto, cpu or cuda\n", optarg);
                return 2;
            }
            backend = optarg;
            break;
        case 'B':
            if (wn_opt_int("predict", "--batch", optarg, 1, 4096, "(images per batch)", &v)) return 2;
            batch = (int)v;
            break;
        case 'p':
            if (wn_opt_int("predict", "--max-pixels", optarg, 1, 1L << 40, "(width x height)", &v))
                return 2;
            max_pixels = (size_t)v;
            break;
        case 'h': usage(stdout); return 0;
        case ':':
            fprintf(stderr, "wastenet predict: %s needs a value\n", argv[optind - 1]);
            return 2;
        default: return wn_opt_unknown("predict", argc, argv, optind, optopt);
        }
    }
    if (!weights || optind >= argc) {
        fprintf(stderr, "wastenet predict: %s (see 'wastenet predict --help')\n",
                !weights ? "--weights FILE is required" : "no image given");
        return 2;
    }

    wn_model m;
    names cls = {0, NULL};
    wn_backend *be = NULL;
    wn_executor *ex = NULL;
    wn_image_decoder *dec = NULL;
    wn_resizer *rs = NULL;
    uint8_t *pixels = NULL;
    float *probs = NULL;
    int have_model = 0, status = 1, n_img = argc - optind;
    char **paths = argv + optind;
    char **errors = calloc((size_t)n_img, sizeof *errors);
    if (!errors) goto fail;
    if (load_model(&m, weights, arch, size) != WN_OK) goto fail;
    have_model = 1;
    int k = m.num_classes;
    if (class_list) {
        if (names_from_list(&cls, class_list) != WN_OK) goto fail;
    } else if (!names_from_run_folder(&cls, weights) && k == 6) {
        for (int c = 0; c < 6; c++) names_push(&cls, notebook_classes[c], strlen(notebook_classes[c]));
    }
    if (cls.n == 0)
        for (int c = 0; c < k; c++) {
            char name[32];
            snprintf(name, sizeof name, "class_%d", c);
            names_push(&cls, name, strlen(name));
        }
    if (cls.n != k) {
        wn_fail("%d class names for a model with %d outputs: pass --classes with %d names", cls.n,
                k, k);
        goto fail;
    }
    if (top > k) top = k;
    if (k > 4096) {
        wn_fail("%d classes: at most 4096 supported by predict", k);
        goto fail;
    }
    if (batch > n_img) batch = n_img;
    if (!strcmp(backend, "cuda") || (!strcmp(backend, "auto") && wn_cuda_available()))
        be = wn_backend_cuda(0, WN_PRECISION_TF32);
    else
        be = wn_backend_cpu();
    if (!be || wn_executor_create(&ex, &m, be, batch, WN_EXEC_INFERENCE_ONLY) != WN_OK) goto fail;
    size_t per = (size_t)m.image_h * (size_t)m.image_w * 3;
    pixels = malloc((size_t)batch * per);
    probs = malloc((size_t)batch * (size_t)k * sizeof *probs);
    dec = wn_image_decoder_new();
    rs = wn_resizer_new();
    if (!pixels || !probs || !dec || !rs) {
        wn_fail("out of memory");
        goto fail;
    }
    if (json) {
        printf("{\"weights\": ");
        wn_json_write_string(stdout, weights);
        printf(", \"model\": ");
        wn_json_write_string(stdout, m.backbone->name);
        printf(", \"image_size\": [%d, %d], \"classes\": [", m.image_h, m.image_w);
        for (int c = 0; c < k; c++) printf("%s", c ? ", " : ""), wn_json_write_string(stdout, cls.v[c]);
        printf("],\n  \"predictions\": [");
    }
    int failed = 0, printed = 0;
    for (int start = 0; start < n_img; start += batch) {
        int n = 0;
        for (int i = start; i < n_img && i < start + batch; i++) {
            if (load_image(dec, rs, paths[i], max_pixels, m.image_h, m.image_w,
                           pixels + (size_t)n * per) != WN_OK) {
                errors[i] = strdup(wn_last_error());
                failed++;
                continue;
            }
            n++;
        }
        if (n && wn_executor_predict(ex, pixels, n, probs) != WN_OK) goto fail;
        int j = 0;
        for (int i = start; i < n_img && i < start + batch; i++) {
            const float *p = errors[i] ? NULL : probs + (size_t)j * k;
            if (!errors[i]) j++;
            if (json) {
                print_json_entry(paths[i], p, &cls, top, errors[i], printed == 0);
            } else if (errors[i]) {
                fprintf(stderr, "wastenet predict: %s\n", errors[i]);
            } else {
                print_text(paths[i], p, &cls, top);
            }
            printed++;
        }
    }
    if (json) printf("\n  ]\n}\n");
    status = failed ? 1 : 0;
    goto done;
fail:
    fprintf(stderr, "wastenet predict: %s\n", wn_last_error());
    status = 1;
done:
    if (errors)
        for (int i = 0; i < n_img; i++) free(errors[i]);
    free(errors);
    free(pixels), free(probs);
    if (dec) wn_image_decoder_free(dec);
    if (rs) wn_resizer_free(rs);
    if (ex) wn_executor_destroy(ex);
    wn_backend_destroy(be);
    if (have_model) wn_model_free(&m);
    names_free(&cls);
    return status;
}
