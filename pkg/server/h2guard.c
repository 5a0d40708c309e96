/* h2guard — see h2guard.h. */
#include "server/h2guard.h"

#include <string.h>

#define PREFACE      "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define FRAME_HEADER 9

enum { F_HEADERS = 0x1, F_PRIORITY = 0x2, F_RST_STREAM = 0x3, F_SETTINGS = 0x4, F_PING = 0x6, F_CONTINUATION = 0x9 };
enum { FLAG_END_HEADERS = 0x4 };

const char *oe_h2guard_scan(oe_h2guard_t *g, const uint8_t *buf, size_t len, uint64_t now_ms)
{
    size_t off = 0;
    if (!g->preface_seen) {
        size_t n = len < sizeof(PREFACE) - 1 ? len : sizeof(PREFACE) - 1;
        if (memcmp(buf, PREFACE, n) != 0)
            return NULL; /* not HTTP/2 as we know it: libh2o will refuse it */
        if (n < sizeof(PREFACE) - 1)
            return NULL;
        off = sizeof(PREFACE) - 1;
        g->preface_seen = 1;
    }
    if (now_ms - g->window_start_ms > OE_H2GUARD_WINDOW_MS) {
        g->window_start_ms = now_ms;
        g->headers = g->resets = g->control = 0;
    }
    while (len - off >= FRAME_HEADER) {
        const uint8_t *f = buf + off;
        size_t flen = ((size_t)f[0] << 16) | ((size_t)f[1] << 8) | f[2];
        uint8_t type = f[3], flags = f[4];
        if (len - off - FRAME_HEADER < flen)
            break; /* incomplete: counted once it is whole */
        switch (type) {
        case F_HEADERS:
            g->headers++;
            g->block = (uint32_t)flen;
            if (flags & FLAG_END_HEADERS)
                g->block = 0;
            break;
        case F_CONTINUATION:
            g->block += (uint32_t)flen;
            if (g->block > OE_H2GUARD_MAX_HEADER_BLOCK)
                return "header block too large (CONTINUATION flood)";
            if (flags & FLAG_END_HEADERS)
                g->block = 0;
            break;
        case F_RST_STREAM:
            g->resets++;
            break;
        case F_PING:
        case F_SETTINGS:
        case F_PRIORITY:
            g->control++;
            break;
        default:
            break;
        }
        off += FRAME_HEADER + flen;
    }
    if (g->resets >= OE_H2GUARD_MAX_RESETS && g->resets * 2 >= g->headers)
        return "streams cancelled right after opening (HTTP/2 rapid reset)";
    if (g->control >= OE_H2GUARD_MAX_CONTROL)
        return "too many PING/SETTINGS/PRIORITY frames";
    return NULL;
}
