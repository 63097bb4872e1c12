/* kernels/residual.h — element functions of InceptionResNetV2's residual scale layer
 * (Keras CustomScaleLayer / Lambda): y = x + scale * r.
 *
 * Backward: dx = dy, dr = scale * dy. The product is written as in Keras
 * (inputs[0] + inputs[1] * scale) so float results match TensorFlow bit for bit.
 */
#ifndef WN_KERNELS_RESIDUAL_H
#define WN_KERNELS_RESIDUAL_H

#include "kernels/hd.h"

WN_HD static inline float wn_residual_forward(float x, float r, float scale) {
    return x + r * scale;
}

/* Gradient reaching r (the up-projection); x's gradient is dy itself. */
WN_HD static inline float wn_residual_dr(float dy, float scale) { return dy * scale; }

#endif
