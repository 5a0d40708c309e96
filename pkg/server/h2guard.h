/*
 * h2guard — per-connection budgets against HTTP/2 floods that libh2o 2.2.5 does not
 * stop: rapid reset (CVE-2023-44487: streams opened and cancelled at once), PING /
 * SETTINGS / PRIORITY floods, and CONTINUATION floods (an endless header block).
 * Part of the server module. The scanner reads the decrypted frames libh2o is about to
 * parse (it never changes them) and only counts; the server cuts the connection when a
 * budget is exceeded. Pure and bounded: a fuzz target.
 */
#ifndef OE_H2GUARD_H
#define OE_H2GUARD_H

#include <stddef.h>
#include <stdint.h>

#define OE_H2GUARD_WINDOW_MS        10000        /* budgets are per 10 s window */
#define OE_H2GUARD_MAX_RESETS       100          /* RST_STREAM from the client ... */
#define OE_H2GUARD_MAX_CONTROL      1000         /* PING + SETTINGS + PRIORITY frames */
#define OE_H2GUARD_MAX_HEADER_BLOCK (256 * 1024) /* HEADERS + CONTINUATION bytes of one block */

typedef struct oe_h2guard {
    uint64_t window_start_ms;
    uint32_t headers; /* HEADERS frames in the window */
    uint32_t resets;  /* RST_STREAM frames in the window */
    uint32_t control; /* PING/SETTINGS/PRIORITY frames in the window */
    uint32_t block;   /* bytes of the header block being received */
    int preface_seen;
} oe_h2guard_t;

/*
 * Counts the complete frames at the start of buf (what the parser has not consumed yet:
 * it consumes whole frames, so buf starts at a frame boundary, or at the client
 * preface). Returns NULL while within budget, else a short reason to cut the
 * connection.
 */
const char *oe_h2guard_scan(oe_h2guard_t *g, const uint8_t *buf, size_t len, uint64_t now_ms);

#endif
