/* host/protobuf_writer.h — a small Protocol Buffers wire-format encoder (no library).
 *
 * Enough of the encoding (protobuf.dev, "Encoding") to write messages whose schema
 * the caller knows by field number (engine/train/model_onnx.c writes ONNX's
 * ModelProto with it):
 *   varint fields      wire type 0: int32, int64 (negative: ten bytes, two's
 *                      complement), enums, bools
 *   fixed32 fields     wire type 5: float (IEEE 754, little-endian)
 *   length-delimited   wire type 2: strings, bytes and nested messages
 * A repeated scalar field is written as one field per value (proto2's default,
 * unpacked), by calling the scalar writer once per value.
 * The message is built in one growable memory buffer. A nested message is opened
 * with wn_pb_begin (its tag is written, its position remembered) and closed with
 * wn_pb_end, which then knows the length and inserts it as a minimal varint in
 * front of the contents (one memmove of the contents), so the output is canonical.
 * Nested messages close innermost first.
 *
 * Errors are sticky: after a failed allocation every call does nothing, and
 * wn_pb_status() reports the first failure (host/base/error.h style), so a writer
 * checks once at the end:
 *
 *   wn_pb pb; wn_pb_init(&pb);
 *   size_t node = wn_pb_begin(&pb, 1);   // GraphProto.node
 *   wn_pb_string(&pb, 4, "Relu");        // NodeProto.op_type
 *   wn_pb_end(&pb, node);
 *   if (wn_pb_status(&pb) != WN_OK) ...; fwrite(pb.data, 1, pb.len, fp);
 *   wn_pb_free(&pb);
 */
#ifndef WN_PROTOBUF_WRITER_H
#define WN_PROTOBUF_WRITER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wn_pb {
    uint8_t *data;
    size_t len, cap;
    int failed; /* an allocation failed: the buffer is incomplete */
    int open;   /* nested messages begun and not yet ended */
} wn_pb;

void wn_pb_init(wn_pb *pb);
void wn_pb_free(wn_pb *pb);

/* WN_OK, or WN_ERR with a reason (out of memory, or a nested message left open). */
int wn_pb_status(const wn_pb *pb);

/* Field `field` as a varint: uint64 / enum / bool values, and int64 / int32 values
 * (a negative one cast to uint64 is ten bytes, as protobuf encodes it). */
void wn_pb_varint(wn_pb *pb, int field, uint64_t value);
static inline void wn_pb_int64(wn_pb *pb, int field, int64_t value) {
    wn_pb_varint(pb, field, (uint64_t)value);
}
/* A float field (fixed32, little-endian). */
void wn_pb_float(wn_pb *pb, int field, float value);
/* Length-delimited: raw bytes, a NUL-terminated string. */
void wn_pb_bytes(wn_pb *pb, int field, const void *data, size_t size);
void wn_pb_string(wn_pb *pb, int field, const char *s);
/* Raw bytes of float32 values in little-endian order (whatever the host's), as one
 * length-delimited field: ONNX's TensorProto.raw_data. */
void wn_pb_floats_le(wn_pb *pb, int field, const float *values, size_t count);

/* Opens a nested message in field `field`; returns the mark wn_pb_end takes. */
size_t wn_pb_begin(wn_pb *pb, int field);
void wn_pb_end(wn_pb *pb, size_t mark);

#ifdef __cplusplus
}
#endif
#endif
