/* tests/train/make_shapes.c — a small synthetic data set for the end-to-end tests:
 * 32x32 RGB PNG images of three classes (circle, square, triangle), each shape
 * filled with a random colour leaning to the class's channel (red, green, blue) at
 * a random size, position and orientation on a random dark, noisy background.
 *
 * usage: make_shapes DIR [TRAIN_PER_CLASS VAL_PER_CLASS TEST_PER_CLASS [SEED]]
 * writes DIR/{train,validation,test}/{circle,square,triangle}/NNN.png
 * (defaults 60 20 20, seed 1). The same arguments always give the same files. */
#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "host/base/rng.h"

enum { S = 32 };

static uint64_t rng_state;
static double uniform(void) { return wn_splitmix64_unit(&rng_state); }

/* Is (x, y) inside the shape of class k centred at (cx, cy), size r, angle a? */
static int inside(int k, double x, double y, double cx, double cy, double r, double a) {
    double dx = x - cx, dy = y - cy;
    double u = cos(a) * dx + sin(a) * dy, v = -sin(a) * dx + cos(a) * dy;
    if (k == 0) return dx * dx + dy * dy <= r * r;
    if (k == 1) return fabs(u) <= r * 0.8 && fabs(v) <= r * 0.8;
    /* equilateral triangle with circumradius r: three half-planes */
    for (int i = 0; i < 3; i++) {
        double t = 2 * M_PI * i / 3;
        if (cos(t) * u + sin(t) * v > r * 0.5) return 0;
    }
    return 1;
}

static int write_png(const char *path, const uint8_t *rgb) {
    FILE *f = fopen(path, "wb");
    if (!f) return fprintf(stderr, "make_shapes: %s: %s\n", path, strerror(errno)), -1;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        fclose(f);
        return fprintf(stderr, "make_shapes: %s: libpng error\n", path), -1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, S, S, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < S; y++) png_write_row(png, (png_bytep)(rgb + y * S * 3));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return fclose(f) == 0 ? 0 : -1;
}

static void make_image(int k, uint8_t *rgb) {
    double bg[3], fg[3];
    /* The shape's colour leans to channel k (circle red, square green, triangle blue):
     * shape and colour both tell the class, so a tiny CNN learns it in seconds. */
    for (int c = 0; c < 3; c++)
        bg[c] = 20 + 60 * uniform(), fg[c] = c == k ? 190 + 65 * uniform() : 60 + 90 * uniform();
    double r = 7 + 5 * uniform(), cx = 10 + 12 * uniform(), cy = 10 + 12 * uniform();
    double a = 2 * M_PI * uniform();
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            /* 4x supersampling for soft edges */
            int hits = 0;
            for (int sy = 0; sy < 2; sy++)
                for (int sx = 0; sx < 2; sx++)
                    hits += inside(k, x + 0.25 + 0.5 * sx, y + 0.25 + 0.5 * sy, cx, cy, r, a);
            double cover = hits / 4.0;
            for (int c = 0; c < 3; c++) {
                double v = cover * fg[c] + (1 - cover) * bg[c] + 16 * (uniform() - 0.5);
                rgb[(y * S + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
}

static int mkdir_p(const char *p) { return mkdir(p, 0777) == 0 || errno == EEXIST ? 0 : -1; }

int main(int argc, char **argv) {
    if (argc != 2 && argc != 5 && argc != 6) {
        fprintf(stderr, "usage: make_shapes DIR [TRAIN VAL TEST [SEED]]\n");
        return 2;
    }
    int counts[3] = {60, 20, 20};
    if (argc >= 5)
        for (int i = 0; i < 3; i++) counts[i] = atoi(argv[2 + i]);
    rng_state = argc == 6 ? strtoull(argv[5], NULL, 0) : 1;
    const char *splits[3] = {"train", "validation", "test"};
    const char *classes[3] = {"circle", "square", "triangle"};
    char path[4096];
    uint8_t rgb[S * S * 3];
    if (mkdir_p(argv[1])) return perror(argv[1]), 1;
    for (int s = 0; s < 3; s++) {
        snprintf(path, sizeof path, "%s/%s", argv[1], splits[s]);
        if (mkdir_p(path)) return perror(path), 1;
        for (int k = 0; k < 3; k++) {
            snprintf(path, sizeof path, "%s/%s/%s", argv[1], splits[s], classes[k]);
            if (mkdir_p(path)) return perror(path), 1;
            for (int i = 0; i < counts[s]; i++) {
                make_image(k, rgb);
                snprintf(path, sizeof path, "%s/%s/%s/%03d.png", argv[1], splits[s], classes[k], i);
                if (write_png(path, rgb)) return 1;
            }
        }
    }
    return 0;
}
