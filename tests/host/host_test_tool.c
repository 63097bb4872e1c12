/* tests/host/host_test_tool.c — what the Python tests need from the C side:
 *   host_test_tool fixtures DIR          write DIR/formats (every format) and DIR/bad
 *   host_test_tool scan DIR [CLASS...]   the scan: "Found ..." then "label<TAB>path" lines
 *   host_test_tool dump H W OUT FILE...  per file i, OUT/<i>.bin: int32 height, width;
 *                                        decoded RGB uint8 [h,w,3]; resized float32
 *                                        [H,W,3]; resized uint8 [H,W,3]
 * Exit status 0, or 1 with the error on stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/base/error.h"
#include "fixtures.h"
#include "host/dataset.h"
#include "host/image_decode.h"
#include "host/resize.h"

static int dump(int H, int W, const char *out, int n, char **files) {
    wn_image_decoder *d = wn_image_decoder_new();
    wn_resizer *r = wn_resizer_new();
    float *f = malloc((size_t)H * W * 3 * sizeof *f);
    uint8_t *u = malloc((size_t)H * W * 3);
    int rc = d && r && f && u ? 0 : 1;
    for (int i = 0; rc == 0 && i < n; i++) {
        wn_image img;
        if (wn_image_decode_file(d, files[i], 0, &img) != WN_OK ||
            wn_resize_bilinear_f32(r, img.pixels, img.height, img.width, f, H, W) != WN_OK ||
            wn_resize_bilinear_u8(r, img.pixels, img.height, img.width, u, H, W) != WN_OK) {
            fprintf(stderr, "%s\n", wn_last_error());
            rc = 1;
            break;
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/%d.bin", out, i);
        FILE *fp = fopen(path, "wb");
        int32_t hw[2] = {img.height, img.width};
        if (!fp || fwrite(hw, sizeof hw, 1, fp) != 1 ||
            fwrite(img.pixels, (size_t)img.height * img.width * 3, 1, fp) != 1 ||
            fwrite(f, (size_t)H * W * 3 * sizeof *f, 1, fp) != 1 ||
            fwrite(u, (size_t)H * W * 3, 1, fp) != 1) {
            fprintf(stderr, "%s: write failed\n", path);
            rc = 1;
        }
        if (fp) fclose(fp);
    }
    wn_image_decoder_free(d);
    wn_resizer_free(r);
    free(f), free(u);
    return rc;
}

int main(int argc, char **argv) {
    if (argc >= 3 && !strcmp(argv[1], "fixtures")) {
        char a[4096], b[4096];
        snprintf(a, sizeof a, "%s/formats", argv[2]);
        snprintf(b, sizeof b, "%s/bad", argv[2]);
        if (fx_write_format_set(a) != 0 || fx_write_bad_set(b) != 0) {
            fprintf(stderr, "cannot write fixtures in %s\n", argv[2]);
            return 1;
        }
        return 0;
    }
    if (argc >= 3 && !strcmp(argv[1], "scan")) {
        wn_dataset ds;
        const char *const *names = argc > 3 ? (const char *const *)argv + 3 : NULL;
        if (wn_dataset_scan(&ds, argv[2], names, argc - 3, NULL) != WN_OK) {
            fprintf(stderr, "%s\n", wn_last_error());
            return 1;
        }
        wn_dataset_print_found(&ds, stdout);
        for (int i = 0; i < ds.n_files; i++) printf("%d\t%s\n", ds.labels[i], ds.paths[i]);
        wn_dataset_free(&ds);
        return 0;
    }
    if (argc >= 6 && !strcmp(argv[1], "dump"))
        return dump(atoi(argv[2]), atoi(argv[3]), argv[4], argc - 5, argv + 5);
    fprintf(stderr, "usage: host_test_tool fixtures DIR | scan DIR [CLASS...] | dump H W OUT FILE...\n");
    return 2;
}
