/* tests/train/test_augment_preview.c — the preview's versions: the first is the
 * image itself; with rotation factor 0 every version is exactly the image or its
 * mirror; with rotation the pixels stay a reflection-filled rotation (no value
 * outside the image's range, no black fill corners); the .npy header is valid. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/train/augment_preview.h"
#include "host/base/error.h"
#include "tests/common/check.h"


enum { H = 12, W = 9, N_AUG = 8 };

int main(void) {
    uint8_t img[H * W * 3], mirror[H * W * 3];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < 3; c++) img[(y * W + x) * 3 + c] = (uint8_t)(40 + 9 * x + 11 * y + c);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            memcpy(mirror + (y * W + x) * 3, img + (y * W + (W - 1 - x)) * 3, 3);
    static uint8_t out[(1 + N_AUG) * H * W * 3];
    wn_rng rng;
    wn_rng_seed(&rng, 5, 0);
    wn_augment_preview_make(img, H, W, N_AUG, &rng, 0.0f, out);
    CHECK(!memcmp(out, img, sizeof img), "version 0 is the image");
    int flipped = 0, plain = 0;
    for (int k = 1; k <= N_AUG; k++) {
        const uint8_t *v = out + (size_t)k * sizeof img;
        if (!memcmp(v, img, sizeof img)) plain++;
        else if (!memcmp(v, mirror, sizeof img)) flipped++;
    }
    CHECK(plain + flipped == N_AUG && plain > 0 && flipped > 0,
          "factor 0: only identity (%d) or mirror (%d)", plain, flipped);
    /* With rotation: reflect fill keeps every value inside the image's range. */
    wn_augment_preview_make(img, H, W, N_AUG, &rng, 0.2f, out);
    int lo = 255, hi = 0, changed = 0;
    for (int k = 1; k <= N_AUG; k++) {
        const uint8_t *v = out + (size_t)k * sizeof img;
        changed += memcmp(v, img, sizeof img) != 0 && memcmp(v, mirror, sizeof img) != 0;
        for (size_t i = 0; i < sizeof img; i++) {
            if (v[i] < lo) lo = v[i];
            if (v[i] > hi) hi = v[i];
        }
    }
    CHECK(lo >= 40 && hi <= 40 + 9 * 8 + 11 * 11 + 2, "values in the image's range (%d..%d)", lo, hi);
    CHECK(changed == N_AUG, "every rotated version differs (%d of %d)", changed, N_AUG);
    /* .npy: magic, version 1.0, header length making data 64-byte aligned. */
    char path[] = "/tmp/wn_test_npy_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    CHECK(wn_npy_write_images(path, out, 1 + N_AUG, H, W) == 0, "write: %s", wn_last_error());
    FILE *f = fopen(path, "rb");
    unsigned char head[10];
    CHECK(f && fread(head, 1, 10, f) == 10, "read header");
    int hlen = head[8] | head[9] << 8;
    CHECK(!memcmp(head, "\x93NUMPY\x01\x00", 8) && (10 + hlen) % 64 == 0, "npy lead bytes");
    char *dict = calloc((size_t)hlen + 1, 1);
    CHECK(fread(dict, 1, (size_t)hlen, f) == (size_t)hlen, "dict");
    CHECK(strstr(dict, "'shape': (9, 12, 9, 3)") && dict[hlen - 1] == '\n', "shape in header: %s", dict);
    fseek(f, 0, SEEK_END);
    CHECK(ftell(f) == 10 + hlen + (long)sizeof out, "file size");
    fclose(f);
    free(dict);
    remove(path);
    if (test_failures) {
        fprintf(stderr, "test_augment_preview: %d failure(s)\n", test_failures);
        return 1;
    }
    printf("test_augment_preview: all checks passed\n");
    return 0;
}
