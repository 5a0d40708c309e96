/* wsframe — following WebSocket frame boundaries (RFC 6455 §5.2); see tunnel.h. */
#include "tunnel/wsframe.h"

/* Header length once its first two bytes are known. */
static size_t header_len(const uint8_t *h)
{
    size_t n = 2;
    uint8_t len7 = h[1] & 0x7f;
    if (len7 == 126)
        n += 2;
    else if (len7 == 127)
        n += 8;
    if (h[1] & 0x80)
        n += 4;
    return n;
}

static uint64_t payload_len(const uint8_t *h)
{
    uint8_t len7 = h[1] & 0x7f;
    if (len7 < 126)
        return len7;
    if (len7 == 126)
        return (uint64_t)h[2] << 8 | h[3];
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | h[2 + i];
    return v;
}

static void frame_done(oe_wsframe_t *t)
{
    t->frames++;
    if (t->opcode == 0x8)
        t->closes++;
}

size_t oe_wsframe_feed(oe_wsframe_t *t, const uint8_t *buf, size_t len, int stop_at_boundary)
{
    size_t i = 0;
    for (;;) {
        if (stop_at_boundary && oe_wsframe_at_boundary(t))
            return i;
        if (i == len)
            return len;
        if (t->left > 0) { /* payload */
            uint64_t n = len - i < t->left ? len - i : t->left;
            t->left -= n;
            i += (size_t)n;
            if (t->left == 0)
                frame_done(t);
            continue;
        }
        t->hdr[t->hdr_len++] = buf[i++];
        if (t->hdr_len < 2 || t->hdr_len < header_len(t->hdr))
            continue;
        t->opcode = t->hdr[0] & 0x0f;
        t->left = payload_len(t->hdr);
        t->hdr_len = 0;
        if (t->left == 0)
            frame_done(t);
    }
}

size_t oe_wsframe_close(uint8_t *buf, uint16_t code, const uint8_t *mask)
{
    uint8_t payload[2] = {(uint8_t)(code >> 8), (uint8_t)(code & 0xff)};
    buf[0] = 0x88; /* FIN + close */
    if (mask == NULL) {
        buf[1] = 2;
        buf[2] = payload[0];
        buf[3] = payload[1];
        return 4;
    }
    buf[1] = 0x80 | 2;
    for (int i = 0; i < 4; i++)
        buf[2 + i] = mask[i];
    buf[6] = payload[0] ^ mask[0];
    buf[7] = payload[1] ^ mask[1];
    return 8;
}
