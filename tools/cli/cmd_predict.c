/* tools/cli/cmd_predict.c — `wastenet predict --weights FILE [--weights FILE2 ...]
 * [--tta flip] IMAGE...`: the top-k classes of each image with their probabilities,
 * as text or JSON. Several --weights average the models' probabilities (an
 * ensemble), --tta flip averages each image's with its mirror's
 * (engine/ensemble_eval.h).
 *
 * Each image is decoded and resized exactly as training saw it (host/image_decode.h,
 * host/resize.h: tf.image.resize bilinear, rounded to uint8), then the model runs in
 * inference mode (preprocess only, no augmentation, no dropout) and the softmax
 * probabilities are ranked. Weights and class names: tools/inference.h; several
 * members: tools/member_options.h.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/runtime/backend.h"
#include "engine/train/ensemble_eval.h"
#include "host/base/error.h"
#include "engine/runtime/executor.h"
#include "engine/train/metrics.h"
#include "engine/model/model.h"
#include "engine/train/run_report.h"
#include "host/image_decode.h"
#include "host/resize.h"
#include "tools/cli/commands.h"
#include "tools/cli/option_bounds.h"
#include "tools/cli/inference.h"
#include "tools/cli/member_options.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: wastenet predict --weights FILE [--weights FILE2 ...] [options] IMAGE...\n\n"
            "Prints the most likely classes of each image with their probabilities.\n"
            "Several --weights give an ensemble: the mean of the models' probabilities.\n\n"
            "options:\n"
            "  --weights FILE      a wastenet checkpoint (runs/<run>/<phase>.ckpt) or the\n"
            "                      whole model's weights: runs/<run>/<phase>_weights.h5, or\n"
            "                      what Keras saves of the notebook's model (tf-keras 2 or\n"
            "                      Keras 3: .h5, .weights.h5, .keras); repeat for an ensemble\n"
            "  --model NAME        backbone of an .h5 file (default irv2; a checkpoint names\n"
            "                      its own); once for every .h5, or once per --weights\n"
            "  --image-size N      input size of an .h5 file's model (default: a .keras\n"
            "                      archive's own input shape, else 320; a checkpoint has\n"
            "                      its own); once, or once per --weights\n"
            "  --tta flip          average each image's probabilities with its left-right\n"
            "                      mirror's (test-time augmentation; default none)\n"
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

/* Fills dst [size, size, 3] from an image file, as the training loader does. */
static int load_image(wn_image_decoder *dec, wn_resizer *rs, const char *path, size_t max_pixels,
                      int h, int w, uint8_t *dst) {
    wn_image img;
    if (wn_image_decode_file(dec, path, max_pixels, &img) != WN_OK) return WN_ERR;
    return wn_resize_bilinear_u8(rs, img.pixels, img.height, img.width, dst, h, w);
}

static void print_text(const char *path, const float *p, const wn_class_list *cls, int top) {
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

static void print_json_entry(const char *path, const float *p, const wn_class_list *cls, int top,
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

/* One member: adds its probabilities of every image to prob_sum[n_img * K]; an
 * image that cannot be read gets its reason in errors[i] (once). */
static int predict_member(wn_backend *be, const wn_model *m, char **paths, int n_img, int batch,
                          size_t max_pixels, wn_tta tta, char **errors, float *prob_sum) {
    wn_executor *ex = NULL;
    wn_image_decoder *dec = wn_image_decoder_new();
    wn_resizer *rs = wn_resizer_new();
    int k = m->num_classes, rc = WN_ERR;
    size_t per = (size_t)m->image_h * (size_t)m->image_w * 3;
    uint8_t *pixels = malloc((size_t)batch * per);
    uint8_t *scratch = tta == WN_TTA_FLIP ? malloc((size_t)batch * per) : NULL;
    float *sum = malloc((size_t)batch * (size_t)k * sizeof *sum);
    int *slot = malloc((size_t)batch * sizeof *slot);
    if (!dec || !rs || !pixels || !sum || !slot || (tta == WN_TTA_FLIP && !scratch)) {
        wn_fail("out of memory");
        goto out;
    }
    if (wn_executor_create(&ex, (wn_model *)m, be, batch, WN_EXEC_INFERENCE_ONLY) != WN_OK) goto out;
    for (int start = 0; start < n_img; start += batch) {
        int n = 0;
        for (int i = start; i < n_img && i < start + batch; i++) {
            if (errors[i]) continue;
            if (load_image(dec, rs, paths[i], max_pixels, m->image_h, m->image_w,
                           pixels + (size_t)n * per) != WN_OK) {
                errors[i] = strdup(wn_last_error());
                continue;
            }
            slot[n++] = i;
        }
        if (!n) continue;
        memset(sum, 0, (size_t)n * (size_t)k * sizeof *sum);
        if (wn_predict_views(ex, m, pixels, n, tta, scratch, sum, NULL) != WN_OK) goto out;
        for (int j = 0; j < n; j++)
            for (int c = 0; c < k; c++)
                prob_sum[(size_t)slot[j] * k + c] += sum[(size_t)j * k + c];
    }
    rc = WN_OK;
out:
    if (ex) wn_executor_destroy(ex);
    if (dec) wn_image_decoder_free(dec);
    if (rs) wn_resizer_free(rs);
    free(pixels), free(scratch), free(sum), free(slot);
    return rc;
}

int cmd_predict(int argc, char **argv) {
    static const struct option opts[] = {
        {"weights", required_argument, 0, 'w'}, {"model", required_argument, 0, 'm'},
        {"image-size", required_argument, 0, 's'}, {"classes", required_argument, 0, 'c'},
        {"top", required_argument, 0, 'k'}, {"json", no_argument, 0, 'j'},
        {"backend", required_argument, 0, 'b'}, {"batch", required_argument, 0, 'B'},
        {"max-pixels", required_argument, 0, 'p'}, {"tta", required_argument, 0, 't'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *class_list = NULL, *backend = "auto";
    int top = 3, json = 0, batch = 16, opt, rc;
    wn_tta tta = WN_TTA_NONE;
    wn_members mem;
    memset(&mem, 0, sizeof mem);
    size_t max_pixels = WN_DEFAULT_MAX_PIXELS;
    optind = 0;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        long v;
        switch (opt) {
        case 'w': if ((rc = wn_members_add_weights(&mem, "predict", optarg))) return rc; break;
        case 'm': if ((rc = wn_members_add_model(&mem, "predict", optarg))) return rc; break;
        case 's': if ((rc = wn_members_add_size(&mem, "predict", optarg))) return rc; break;
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
        case 't':
            if (wn_tta_parse(optarg, &tta) != WN_OK) {
                fprintf(stderr, "wastenet predict: %s\n", wn_last_error());
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        case ':':
            fprintf(stderr, "wastenet predict: %s needs a value\n", argv[optind - 1]);
            return 2;
        default: return wn_opt_unknown("predict", argc, argv, optind, optopt);
        }
    }
    if ((rc = wn_members_check(&mem, "predict"))) return rc;
    if (optind >= argc) {
        fprintf(stderr, "wastenet predict: no image given (see 'wastenet predict --help')\n");
        return 2;
    }

    wn_model m;
    wn_class_list cls = {0, NULL, 0}, other = {0, NULL, 0};
    wn_backend *be = NULL;
    float *prob_sum = NULL;
    int have_model = 0, status = 1, n_img = argc - optind, k = 0, views = 0;
    int first_h = 0, first_w = 0;
    char first_model[64] = "";
    char **paths = argv + optind;
    char **errors = calloc((size_t)n_img, sizeof *errors);
    if (!errors) goto fail;
    if (batch > n_img) batch = n_img;
    if (!(be = wn_inference_backend(backend))) goto fail;
    for (int i = 0; i < mem.n; i++) {
        const char *w = mem.weights[i];
        if (wn_inference_load_model(&m, w, wn_members_model(&mem, i), wn_members_size(&mem, i),
                                    "predict") != WN_OK)
            goto fail;
        have_model = 1;
        if (i == 0) {
            k = m.num_classes;
            if (k > 4096) {
                wn_fail("%d classes: at most 4096 supported by predict", k);
                goto fail;
            }
            if (wn_class_list_resolve(&cls, class_list, w, k) != WN_OK) goto fail;
            prob_sum = calloc((size_t)n_img * (size_t)k, sizeof *prob_sum);
            if (!prob_sum) {
                wn_fail("out of memory");
                goto fail;
            }
            first_h = m.image_h, first_w = m.image_w;
            snprintf(first_model, sizeof first_model, "%s", m.backbone->name);
        } else {
            if (m.num_classes != k) {
                wn_fail("%s has %d outputs, %s %d: the models of an ensemble must share their "
                        "classes", w, m.num_classes, mem.weights[0], k);
                goto fail;
            }
            if (!class_list) {
                if (wn_class_list_resolve(&other, NULL, w, k) != WN_OK) goto fail;
                int same = wn_class_list_equal(&cls, &other);
                wn_class_list_free(&other);
                if (!same) {
                    wn_fail("%s and %s name their classes differently (classes.txt): the models "
                            "of an ensemble must share their classes", mem.weights[0], w);
                    goto fail;
                }
            }
        }
        if (predict_member(be, &m, paths, n_img, batch, max_pixels, tta, errors, prob_sum) != WN_OK)
            goto fail;
        views += wn_tta_views(tta);
        wn_model_free(&m);
        have_model = 0;
    }
    if (top > k) top = k;
    if (json) {
        printf("{\"weights\": ");
        wn_json_write_string(stdout, mem.weights[0]);
        printf(", \"model\": ");
        wn_json_write_string(stdout, first_model);
        printf(", \"image_size\": [%d, %d], \"tta\": \"%s\", \"ensemble\": [", first_h, first_w,
               wn_tta_name(tta));
        for (int i = 0; i < mem.n; i++) printf("%s", i ? ", " : ""), wn_json_write_string(stdout, mem.weights[i]);
        printf("], \"classes\": [");
        for (int c = 0; c < k; c++) printf("%s", c ? ", " : ""), wn_json_write_string(stdout, cls.v[c]);
        printf("],\n  \"predictions\": [");
    }
    int failed = 0;
    for (int i = 0; i < n_img; i++) {
        float *p = errors[i] ? NULL : prob_sum + (size_t)i * k;
        if (p)
            for (int c = 0; c < k; c++) p[c] /= (float)views;
        failed += errors[i] != NULL;
        if (json) print_json_entry(paths[i], p, &cls, top, errors[i], i == 0);
        else if (errors[i]) fprintf(stderr, "wastenet predict: %s\n", errors[i]);
        else print_text(paths[i], p, &cls, top);
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
    free(prob_sum);
    wn_backend_destroy(be);
    if (have_model) wn_model_free(&m);
    wn_class_list_free(&cls);
    return status;
}
