/* tests/common/tolerance.h — the tolerances the tests state, in one place, with why.
 * Errors are normalised (max|got - want| / max|want|) unless a test says otherwise. */
#ifndef WN_TESTS_COMMON_TOLERANCE_H
#define WN_TESTS_COMMON_TOLERANCE_H

/* float32 against Keras/TensorFlow float32 (the Keras parity suite's 1e-4): different
 * summation orders in convolutions and reductions, ~1e-6 per op, grow with depth. */
#define TOL_KERAS_FP32 1e-4
/* float32 against float32 on another backend: our element-wise kernels (the same
 * formula, FMA contraction may differ). */
#define TOL_ELEMENTWISE 1e-5
/* convolutions / Dense in float32 (cuDNN or cuBLAS against oneDNN/OpenBLAS). */
#define TOL_MATMUL_FP32 1e-5
/* convolutions / Dense with TF32 tensor cores: 10 mantissa bits, unit roundoff 2^-11. */
#define TOL_MATMUL_TF32 1e-3
/* A whole model's outputs under TF32 (errors of 1e-3 per convolution, three deep plus
 * the head): compared with Keras's float32 outputs. */
#define TOL_MODEL_TF32 1e-2
/* One op in bf16 against the same op in float32, normwise ||bf16 - f32|| / ||f32||:
 * bf16's unit roundoff is 2^-8 ~ 3.9e-3, and a bf16 op rounds its inputs and its
 * output once each (float32 accumulation in between), so the error sits near
 * 1e-3..4e-3; 1e-2 leaves room for an unlucky small tensor, while a wrong index, a
 * missing term or a float32 result read as bf16 is far above it. */
#define TOL_BF16_OP 1e-2
/* The same for a whole model's logits and one training step's weight gradients: the
 * per-op errors add up over the layers (a few hundred roundings on the longest path),
 * mostly at random, so they grow like the square root of the depth. */
#define TOL_BF16_MODEL 5e-2
/* Finite differences against a backward (tests/ops/test_op_grad.c explains it). */
#define TOL_GRAD_FD 1e-3

#endif
