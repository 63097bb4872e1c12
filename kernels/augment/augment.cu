/* kernels/augment/augment.cu — the fused augmentation + preprocess (kernels/augment.h):
 * uint8 NHWC in, float NHWC out; per image an optional horizontal flip and a
 * rotation (reflect fill, bilinear), then the backbone's preprocess_input (`mode`).
 *
 * The host turns each image's angle into its transform with wn_augment_rotation
 * (float32, the same call the CPU backend makes) and uploads the N transforms and
 * flips with the launch; the kernel runs one thread per output element through
 * wn_augment_pixel, whose round-to-nearest intrinsics keep nvcc from fusing
 * multiply-adds, so the GPU's pixels are the CPU's bits. Angle 0 takes the same
 * direct-copy path as the CPU (bit-identical to the general path either way).
 */
#include <stdlib.h>

#include "kernels/common/cuda_ctx.h"
#include "kernels/augment/augment.h"

typedef struct augment_param {
    wn_augment_xform t;
    int flip;
    int rotate; /* 0: angle was 0, copy (flipped) pixels */
} augment_param;

static __global__ void augment_kernel(int n, int h, int w, int c, const uint8_t *__restrict__ x,
                                      const augment_param *__restrict__ params, int mode,
                                      float *__restrict__ y) {
    size_t image = (size_t)h * w * c;
    WN_GRID_LOOP(i, (size_t)n * image) {
        size_t img = i / image, r = i % image;
        int ch = (int)(r % c);
        int col = (int)((r / c) % w);
        int row = (int)(r / ((size_t)c * w));
        const uint8_t *src = x + img * image;
        augment_param p = params[img];
        if (!p.rotate) {
            int sx = p.flip ? w - 1 - col : col;
            int sc = wn_preprocess_source(mode, c, ch);
            y[i] = wn_preprocess_value(mode, (float)src[((size_t)row * w + sx) * c + sc], ch);
        } else {
            y[i] = wn_augment_pixel(src, h, w, c, p.flip, &p.t, row, col, ch, mode);
        }
    }
}

int wn_cuda_augment_preprocess(wn_backend *be, int n, int h, int w, int c, const uint8_t *x,
                               const uint8_t *flip, const float *angle, float *y, int mode) {
    wn_cuda_ctx *ctx = wn_cuda_ctx_of(be);
    augment_param *host = (augment_param *)calloc((size_t)n, sizeof *host);
    if (!host) return wn_fail("augment_preprocess: out of host memory");
    for (int i = 0; i < n; i++) {
        float a = angle ? angle[i] : 0.0f;
        host[i].flip = flip ? flip[i] != 0 : 0;
        host[i].rotate = a != 0.0f;
        if (host[i].rotate) host[i].t = wn_augment_rotation(a, h, w);
    }
    size_t bytes = (size_t)n * sizeof *host;
    augment_param *dev = (augment_param *)wn_cuda_scratch(be, bytes, "augmentation parameters",
                                                          "augment");
    if (!dev) {
        free(host);
        return WN_ERR;
    }
    /* Through the reused pinned ring (the copy is staged there): freeing host is safe. */
    int rc = wn_cuda_upload_small(be, dev, host, bytes, "augment");
    free(host);
    if (rc != WN_OK) {
        wn_cuda_scratch_free(be, dev);
        return WN_ERR;
    }
    size_t count = (size_t)n * h * w * c;
    augment_kernel<<<wn_cuda_blocks(ctx, count), WN_CUDA_THREADS, 0, ctx->stream>>>(n, h, w, c, x,
                                                                                   dev, mode, y);
    wn_cuda_scratch_free(be, dev);
    return wn_cuda_op_done(be, "augment_preprocess kernel", "augment");
}
