/* tests/host/test_protobuf_writer.c — host/protobuf_writer.h byte for byte against the
 * encodings the protobuf documentation gives (protobuf.dev, "Encoding"): varints
 * (150 -> 96 01), negative int64 (ten bytes), floats (fixed32, little-endian), strings,
 * nested messages whose lengths take one and two bytes (the memmove in wn_pb_end),
 * three levels deep, and a message left open reported by wn_pb_status. */
#include <string.h>

#include "host/protobuf_writer.h"
#include "tests/host/check.h"

static int bytes_are(const wn_pb *pb, const uint8_t *want, size_t n) {
    return pb->len == n && !memcmp(pb->data, want, n);
}

int main(void) {
    wn_pb pb;

    /* message Test1 { optional int32 a = 1; } with a = 150: 08 96 01 */
    wn_pb_init(&pb);
    wn_pb_varint(&pb, 1, 150);
    static const uint8_t t1[] = {0x08, 0x96, 0x01};
    CHECK(bytes_are(&pb, t1, sizeof t1), "varint 150");
    wn_pb_free(&pb);

    /* a string field 2 = "testing": 12 07 74 65 73 74 69 6e 67 */
    wn_pb_init(&pb);
    wn_pb_string(&pb, 2, "testing");
    static const uint8_t t2[] = {0x12, 0x07, 't', 'e', 's', 't', 'i', 'n', 'g'};
    CHECK(bytes_are(&pb, t2, sizeof t2), "string");
    wn_pb_free(&pb);

    /* int64 -2: ten bytes, two's complement; field 16 needs a two-byte tag (80 01) */
    wn_pb_init(&pb);
    wn_pb_int64(&pb, 16, -2);
    static const uint8_t t3[] = {0x80, 0x01, 0xfe, 0xff, 0xff, 0xff, 0xff,
                                 0xff, 0xff, 0xff, 0xff, 0x01};
    CHECK(bytes_are(&pb, t3, sizeof t3), "negative int64 / two-byte tag");
    wn_pb_free(&pb);

    /* float 1.0 in field 2: 15 00 00 80 3f; raw float bytes 1.0, -2.0 */
    wn_pb_init(&pb);
    wn_pb_float(&pb, 2, 1.0f);
    const float f[2] = {1.0f, -2.0f};
    wn_pb_floats_le(&pb, 9, f, 2);
    static const uint8_t t4[] = {0x15, 0x00, 0x00, 0x80, 0x3f, 0x4a, 0x08, 0x00,
                                 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0};
    CHECK(bytes_are(&pb, t4, sizeof t4), "float and raw floats");
    wn_pb_free(&pb);

    /* message Test3 { optional Test1 c = 3; } with c.a = 150: 1a 03 08 96 01 */
    wn_pb_init(&pb);
    size_t m = wn_pb_begin(&pb, 3);
    wn_pb_varint(&pb, 1, 150);
    wn_pb_end(&pb, m);
    static const uint8_t t5[] = {0x1a, 0x03, 0x08, 0x96, 0x01};
    CHECK(bytes_are(&pb, t5, sizeof t5), "nested message");
    CHECK(wn_pb_status(&pb) == WN_OK, "status after a closed message: %s", wn_last_error());
    wn_pb_free(&pb);

    /* three levels; the middle one 300 bytes long (length ac 02), then a field after */
    wn_pb_init(&pb);
    size_t outer = wn_pb_begin(&pb, 1);
    size_t mid = wn_pb_begin(&pb, 2);
    uint8_t blob[295];
    for (size_t i = 0; i < sizeof blob; i++) blob[i] = (uint8_t)i;
    wn_pb_bytes(&pb, 4, blob, sizeof blob); /* 1 tag + 2 length + 295 = 298 */
    size_t inner = wn_pb_begin(&pb, 5);     /* 1 tag + 1 length */
    wn_pb_end(&pb, inner);
    wn_pb_end(&pb, mid); /* 300 bytes */
    wn_pb_varint(&pb, 3, 1);
    wn_pb_end(&pb, outer); /* 1 + 2 + 300 + 2 = 305 bytes */
    CHECK(pb.len == 1 + 2 + 305, "three levels: %zu bytes", pb.len);
    static const uint8_t head[] = {0x0a, 0xb1, 0x02, 0x12, 0xac, 0x02, 0x22, 0xa7, 0x02, 0x00};
    CHECK(pb.len >= sizeof head && !memcmp(pb.data, head, sizeof head),
          "three levels: lengths 305 and 300 as two-byte varints, the blob's 295");
    static const uint8_t tail[] = {0x26, 0x2a, 0x00, 0x18, 0x01};
    CHECK(pb.len >= sizeof tail && !memcmp(pb.data + pb.len - sizeof tail, tail, sizeof tail),
          "three levels: blob end, empty message, the field after");
    wn_pb_free(&pb);

    /* a nested message never closed */
    wn_pb_init(&pb);
    wn_pb_begin(&pb, 1);
    CHECK(wn_pb_status(&pb) == WN_ERR && strstr(wn_last_error(), "open"),
          "an open message is reported: %s", wn_last_error());
    wn_pb_free(&pb);
    return CHECK_DONE("test_protobuf_writer");
}
