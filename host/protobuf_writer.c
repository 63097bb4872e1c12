/* host/protobuf_writer.c — Protocol Buffers wire format, written (see protobuf_writer.h). */
#include "host/protobuf_writer.h"

#include <stdlib.h>
#include <string.h>

#include "host/base/error.h"

enum { WIRE_VARINT = 0, WIRE_LEN = 2, WIRE_FIXED32 = 5 };

void wn_pb_init(wn_pb *pb) { memset(pb, 0, sizeof *pb); }

void wn_pb_free(wn_pb *pb) {
    free(pb->data);
    memset(pb, 0, sizeof *pb);
}

int wn_pb_status(const wn_pb *pb) {
    if (pb->failed) return wn_fail("protobuf: out of memory building a %zu-byte message", pb->len);
    if (pb->open) return wn_fail("protobuf: %d nested message(s) left open", pb->open);
    return WN_OK;
}

/* Room for `more` bytes; 0 (and the sticky failure) when it cannot be had. */
static int reserve(wn_pb *pb, size_t more) {
    if (pb->failed) return 0;
    if (more <= pb->cap - pb->len) return 1;
    size_t cap = pb->cap ? pb->cap : 4096;
    while (cap - pb->len < more) {
        if (cap > SIZE_MAX / 2) {
            pb->failed = 1;
            return 0;
        }
        cap *= 2;
    }
    uint8_t *p = realloc(pb->data, cap);
    if (!p) {
        pb->failed = 1;
        return 0;
    }
    pb->data = p, pb->cap = cap;
    return 1;
}

/* The varint encoding of v into out (at most 10 bytes); returns its length. */
static size_t encode_varint(uint64_t v, uint8_t out[10]) {
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

static void put(wn_pb *pb, const void *bytes, size_t n) {
    if (!reserve(pb, n)) return;
    if (n) memcpy(pb->data + pb->len, bytes, n);
    pb->len += n;
}

static void put_varint(wn_pb *pb, uint64_t v) {
    uint8_t b[10];
    put(pb, b, encode_varint(v, b));
}

static void put_tag(wn_pb *pb, int field, int wire) {
    put_varint(pb, ((uint64_t)(uint32_t)field << 3) | (uint64_t)wire);
}

void wn_pb_varint(wn_pb *pb, int field, uint64_t value) {
    put_tag(pb, field, WIRE_VARINT);
    put_varint(pb, value);
}

static void put_u32_le(wn_pb *pb, uint32_t u) {
    uint8_t b[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
    put(pb, b, 4);
}

void wn_pb_float(wn_pb *pb, int field, float value) {
    uint32_t u;
    memcpy(&u, &value, 4);
    put_tag(pb, field, WIRE_FIXED32);
    put_u32_le(pb, u);
}

void wn_pb_bytes(wn_pb *pb, int field, const void *data, size_t size) {
    put_tag(pb, field, WIRE_LEN);
    put_varint(pb, size);
    put(pb, data, size);
}

void wn_pb_string(wn_pb *pb, int field, const char *s) { wn_pb_bytes(pb, field, s, strlen(s)); }

void wn_pb_floats_le(wn_pb *pb, int field, const float *values, size_t count) {
    put_tag(pb, field, WIRE_LEN);
    put_varint(pb, (uint64_t)count * 4);
    if (!reserve(pb, count * 4)) return;
    uint8_t *out = pb->data + pb->len;
    for (size_t i = 0; i < count; i++) {
        uint32_t u;
        memcpy(&u, &values[i], 4);
        out[4 * i] = (uint8_t)u, out[4 * i + 1] = (uint8_t)(u >> 8);
        out[4 * i + 2] = (uint8_t)(u >> 16), out[4 * i + 3] = (uint8_t)(u >> 24);
    }
    pb->len += count * 4;
}

size_t wn_pb_begin(wn_pb *pb, int field) {
    put_tag(pb, field, WIRE_LEN);
    pb->open++;
    return pb->len;
}

void wn_pb_end(wn_pb *pb, size_t mark) {
    pb->open--;
    if (pb->failed) return;
    size_t body = pb->len - mark;
    uint8_t b[10];
    size_t n = encode_varint(body, b);
    if (!reserve(pb, n)) return;
    memmove(pb->data + mark + n, pb->data + mark, body);
    memcpy(pb->data + mark, b, n);
    pb->len += n;
}
