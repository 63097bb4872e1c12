/* engine/train/model_onnx.h — a wn_model as an ONNX model for inference
 * (ONNX Runtime, or any runtime of ONNX opset 13), written with host/protobuf_writer.h.
 *
 * The graph is the notebook's model in inference mode, what `wastenet predict`
 * computes after decoding and resizing:
 *   input  "image"          float32 [batch, H, W, 3], NHWC, RGB values in [0, 255]
 *                           (the resized image as Keras's model input takes it; cast a
 *                           uint8 image to float32: the values are exact). batch is
 *                           symbolic ("batch"); H and W are the model's image size.
 *                           Resizing is left to the caller (wastenet resizes with
 *                           tf.image.resize's bilinear rule, rounded to uint8).
 *   output "probabilities"  float32 [batch, classes], the softmax of the Dense layer.
 * Preprocessing is part of the graph (the backbone's preprocess_input: x/127.5 - 1,
 * EfficientNet-Lite's (x - 127)/128, 'caffe' or 'torch'), then one Transpose to NCHW;
 * augmentation and dropout are left out (inference). Each BatchNormalization is an
 * ONNX BatchNormalization in inference form (its moving statistics), not folded:
 * runtimes fold it themselves. ZeroPadding2D is a Pad node, SeparableConv2D a depthwise
 * then a pointwise Conv, CustomScaleLayer a Mul and an Add, ReLU6 a Clip.
 *
 * Why opset 13 (IR version 7): it is old enough for every maintained runtime
 * (ONNX Runtime since 1.6, TensorRT, OpenVINO), and the first with the single-axis
 * Softmax the output needs. Why float32 input: it is what the Keras model takes,
 * what other resizers produce, and wastenet's uint8 pixels convert to it exactly.
 *
 * Initializers carry the Keras weight names ("conv2d/kernel", in ONNX's OIHW layout);
 * node outputs the Keras layer names. metadata_props: the architecture, image size
 * and, when known, the class names in label order ("classes", comma-separated).
 */
#ifndef WN_MODEL_ONNX_H
#define WN_MODEL_ONNX_H

#include "engine/model/model.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WN_ONNX_OPSET 13
#define WN_ONNX_IR_VERSION 7
#define WN_ONNX_INPUT_NAME "image"
#define WN_ONNX_OUTPUT_NAME "probabilities"

/* Writes m to `path` atomically (host/base/atomic_file.h) and reads the file back to
 * compare it byte for byte. class_names: m->num_classes names for the metadata, or
 * NULL. */
int wn_model_save_onnx(const wn_model *m, const char *path, const char *const *class_names);

#ifdef __cplusplus
}
#endif
#endif
