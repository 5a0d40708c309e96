/*
 * wsframe.h — following the frame boundaries of a WebSocket byte stream (RFC 6455 §5.2),
 * and writing close frames (part of the tunnel module; pure and bounded: a fuzz target).
 */
#ifndef OE_WSFRAME_H
#define OE_WSFRAME_H

#include <stddef.h>
#include <stdint.h>

typedef struct oe_wsframe {
    uint8_t hdr[14]; /* header bytes of the frame being read */
    uint8_t hdr_len; /* how many of them so far (0: at a boundary or in a payload) */
    uint64_t left;   /* payload bytes left of the current frame */
    uint8_t opcode;  /* of the current (or last) frame */
    uint32_t closes; /* close frames completed so far */
    uint64_t frames; /* frames completed so far */
} oe_wsframe_t;

/* Follows len bytes of a frame stream. With stop_at_boundary, stops at the first frame
 * boundary (possibly offset 0) and returns its offset; otherwise (or when no boundary
 * comes) returns len with everything followed. */
size_t oe_wsframe_feed(oe_wsframe_t *t, const uint8_t *buf, size_t len, int stop_at_boundary);

/* Whether the stream is between frames. */
static inline int oe_wsframe_at_boundary(const oe_wsframe_t *t)
{
    return t->hdr_len == 0 && t->left == 0;
}

/* Writes a close frame with code into buf (at least 8 bytes): unmasked (server to client)
 * when mask is NULL, else masked with the 4 bytes at mask (client to server). Returns its
 * length. */
size_t oe_wsframe_close(uint8_t *buf, uint16_t code, const uint8_t *mask);

#endif
