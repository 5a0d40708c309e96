/* test_wsframe — following WebSocket frame boundaries (pkg/tunnel/wsframe.c): frames of
 * every header length, masked and not, split at every byte, boundaries found where a close
 * frame may go, and the close frames ott-edge writes. */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "tunnel/wsframe.h"

/* Writes one frame (FIN, opcode, payload of n bytes of 'x', masked when mask != 0). */
static size_t frame(uint8_t *buf, uint8_t opcode, uint64_t n, int mask)
{
    size_t h = 0;
    buf[h++] = 0x80 | opcode;
    uint8_t m = mask ? 0x80 : 0;
    if (n < 126) {
        buf[h++] = m | (uint8_t)n;
    } else if (n < 65536) {
        buf[h++] = m | 126;
        buf[h++] = (uint8_t)(n >> 8);
        buf[h++] = (uint8_t)n;
    } else {
        buf[h++] = m | 127;
        for (int i = 7; i >= 0; i--)
            buf[h++] = (uint8_t)(n >> (8 * i));
    }
    if (mask)
        for (int i = 0; i < 4; i++)
            buf[h++] = (uint8_t)(0x11 * (i + 1));
    memset(buf + h, 'x', n);
    return h + n;
}

static uint8_t stream[300000];

int main(void)
{
    /* three frames: 5 bytes (7-bit length), 300 bytes (16-bit), 70000 bytes (64-bit), masked,
     * then a close: fed whole and byte by byte, the frames and the close are counted */
    size_t len = 0;
    len += frame(stream + len, 0x1, 5, 1);
    len += frame(stream + len, 0x2, 300, 1);
    len += frame(stream + len, 0x2, 70000, 0);
    len += frame(stream + len, 0x8, 2, 1);
    oe_wsframe_t t = {0};
    CHECK(oe_wsframe_feed(&t, stream, len, 0) == len);
    CHECK(t.frames == 4 && t.closes == 1, "frames %llu closes %u", (unsigned long long)t.frames, t.closes);
    CHECK(oe_wsframe_at_boundary(&t));
    memset(&t, 0, sizeof(t));
    for (size_t i = 0; i < len; i++)
        oe_wsframe_feed(&t, stream + i, 1, 0);
    CHECK(t.frames == 4 && t.closes == 1 && oe_wsframe_at_boundary(&t), "byte by byte");

    /* stop_at_boundary: from the start, the first boundary is offset 0; mid-frame it is the
     * frame's end, whatever the split */
    memset(&t, 0, sizeof(t));
    CHECK(oe_wsframe_feed(&t, stream, len, 1) == 0, "a fresh stream is at a boundary");
    size_t first = 2 + 4 + 5; /* the 5-byte masked frame */
    for (size_t cut = 1; cut < first; cut++) {
        memset(&t, 0, sizeof(t));
        oe_wsframe_feed(&t, stream, cut, 0);
        CHECK(!oe_wsframe_at_boundary(&t), "mid-frame after %zu bytes", cut);
        size_t at = oe_wsframe_feed(&t, stream + cut, len - cut, 1);
        CHECK(at == first - cut, "cut %zu: boundary at %zu, not %zu", cut, at, first - cut);
        CHECK(oe_wsframe_at_boundary(&t));
    }

    /* a header split inside its extended length */
    memset(&t, 0, sizeof(t));
    size_t f2 = first, f2len = 2 + 2 + 4 + 300;
    oe_wsframe_feed(&t, stream, f2 + 3, 0);
    CHECK(t.hdr_len == 3 && t.left == 0, "three header bytes of the 16-bit-length frame held");
    CHECK(oe_wsframe_feed(&t, stream + f2 + 3, len, 1) == f2len - 3);

    /* the close frames ott-edge writes parse back as one close frame with the code */
    uint8_t c[8], mask[4] = {1, 2, 3, 4};
    size_t n = oe_wsframe_close(c, 1001, NULL);
    CHECK(n == 4 && c[0] == 0x88 && c[1] == 2 && c[2] == 0x03 && c[3] == 0xe9, "unmasked 1001");
    memset(&t, 0, sizeof(t));
    CHECK(oe_wsframe_feed(&t, c, n, 0) == n && t.closes == 1 && oe_wsframe_at_boundary(&t));
    n = oe_wsframe_close(c, 1011, mask);
    CHECK(n == 8 && c[1] == 0x82 && (uint8_t)(c[6] ^ mask[0]) == 0x03 && (uint8_t)(c[7] ^ mask[1]) == 0xf3,
          "masked 1011");
    memset(&t, 0, sizeof(t));
    CHECK(oe_wsframe_feed(&t, c, n, 0) == n && t.closes == 1 && oe_wsframe_at_boundary(&t));
    return CHECK_DONE();
}
