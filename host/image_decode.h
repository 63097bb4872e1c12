/* host/image_decode.h — decode an image file to 8-bit RGB, as Keras's loader does
 * (tf.image.decode_image(channels=3, expand_animations=False)).
 *
 * - The format is sniffed from the first bytes, never from the extension (a PNG
 *   named .jpg decodes as a PNG, like decode_image).
 * - JPEG (TurboJPEG with decode_jpeg's defaults: the fast integer DCT, which is
 *   TensorFlow's choice when dct_method is "", and fancy upsampling): RGB/YCbCr as is; grayscale replicated to RGB; CMYK/YCCK converted to
 *   RGB with TensorFlow's formula (jpeg_mem.cc: Adobe-inverted data gives
 *   R = C*K/255, else R = (255-C)(255-K)/255, integer division). A truncated JPEG is
 *   an error (TensorFlow refuses it too, try_recover_truncated=False); other libjpeg
 *   warnings (e.g. extraneous bytes) are tolerated, like TensorFlow.
 * - PNG (libpng): 1/2/4/8/16-bit, gray, gray+alpha, palette, RGB, RGBA, interlaced;
 *   palettes and low bit depths expanded, 16-bit reduced to 8 by dropping the low
 *   byte (png_set_strip_16, as TensorFlow's png_io.cc does), gray replicated to RGB,
 *   alpha dropped (not composited), no gamma correction.
 * - GIF and BMP are refused with a message saying to convert them to PNG or JPEG.
 *   Keras would read them, but none of our data uses them and a faithful GIF/BMP
 *   decoder (LZW, first frame, BMP variants) is code we would have to maintain and
 *   test against TensorFlow for no current user. The refusal names the file.
 * - Size: width*height is checked against max_pixels from the header, before any
 *   pixel buffer is allocated; the file itself may be at most 8 bytes per allowed
 *   pixel plus 16 MiB (the largest a valid compressed image of that size can be).
 *
 * JPEG frames are limited to 65535x65535 by the format; PNG to 2^31-1 each side.
 * Library code: never prints; errors name the file and the problem (wn_last_error()).
 */
#ifndef WN_IMAGE_DECODE_H
#define WN_IMAGE_DECODE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Default limit on width*height: 64 Mpx (e.g. 8192x8192, 192 MB as RGB). */
#define WN_DEFAULT_MAX_PIXELS ((size_t)64 << 20)

typedef enum wn_image_format {
    WN_IMAGE_UNKNOWN = 0,
    WN_IMAGE_JPEG,
    WN_IMAGE_PNG,
    WN_IMAGE_GIF,
    WN_IMAGE_BMP,
} wn_image_format;

/* The format from the first bytes (JPEG FF D8 FF, PNG's 8-byte signature, "GIF8",
 * "BM"); WN_IMAGE_UNKNOWN otherwise. */
wn_image_format wn_image_sniff(const uint8_t *data, size_t size);
const char *wn_image_format_name(wn_image_format f);

typedef struct wn_image {
    const uint8_t *pixels; /* [height, width, 3] RGB, owned by the decoder */
    int height, width;
    wn_image_format format;
    int channels_in_file;  /* 1 gray, 2 gray+alpha, 3 RGB/YCbCr, 4 RGBA or CMYK */
} wn_image;

/* One per thread: a TurboJPEG handle and buffers reused from image to image. */
typedef struct wn_image_decoder wn_image_decoder;

wn_image_decoder *wn_image_decoder_new(void); /* NULL (and wn_last_error) when out of memory */
void wn_image_decoder_free(wn_image_decoder *d);

/* Decodes `path`; out->pixels stays valid until the next decode with d.
 * max_pixels 0 means WN_DEFAULT_MAX_PIXELS. */
int wn_image_decode_file(wn_image_decoder *d, const char *path, size_t max_pixels,
                         wn_image *out);

/* The same from memory; `name` is used in error messages. */
int wn_image_decode_memory(wn_image_decoder *d, const uint8_t *data, size_t size,
                           const char *name, size_t max_pixels, wn_image *out);

#ifdef __cplusplus
}
#endif
#endif
