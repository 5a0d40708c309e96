/*
 * util — the few helpers every module shares, so each exists once: the monotonic clock,
 * a bounded string builder, and opening a listening TCP socket.
 *
 * Owns: nothing stateful (no globals, no threads). The listen helper reads listener
 * addresses with oe_config_split_hostport and reports errors naming the config key.
 * Must not touch: logging, h2o, any other module's state; a helper that needs one of
 * those belongs in that module.
 */
#ifndef OE_UTIL_H
#define OE_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* CLOCK_MONOTONIC in milliseconds (never goes back; not the wall clock). */
uint64_t oe_util_now_ms(void);

/*
 * A bounded string builder over caller-owned memory: never writes past cap, always
 * NUL-terminated, and remembers whether anything was cut. Writes that do not fit are cut
 * at the end of the room left (use oe_util_buf_rewind to drop a partial piece).
 */
typedef struct oe_util_buf {
    char *p;
    size_t len; /* bytes written, without the NUL */
    size_t cap; /* size of p, including the NUL */
    int truncated;
} oe_util_buf_t;

void oe_util_buf_init(oe_util_buf_t *b, char *mem, size_t cap);
/* Appends n bytes of s; returns 0, or -1 when it was cut. */
int oe_util_buf_put(oe_util_buf_t *b, const char *s, size_t n);
int oe_util_buf_puts(oe_util_buf_t *b, const char *s);
int oe_util_buf_printf(oe_util_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int oe_util_buf_vprintf(oe_util_buf_t *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Goes back to an earlier length (a mark taken from b->len); clears truncated. */
void oe_util_buf_rewind(oe_util_buf_t *b, size_t mark);

/* oe_util_listen flags */
enum { OE_UTIL_LISTEN_REUSEPORT = 1, OE_UTIL_LISTEN_NODELAY = 2 };

/*
 * Opens a listening TCP socket (close-on-exec, SO_REUSEADDR) on addr, "host:port",
 * "[v6]:port" or ":port". An empty host means every address: IPv6 and IPv4 on one
 * dual-stack socket, or IPv4 alone where the machine has no IPv6. Returns the fd, or -1
 * with a message that starts with key (e.g. "listen.admin: cannot listen on ...").
 */
int oe_util_listen(const char *addr, const char *key, unsigned flags, int backlog, char *err, size_t errlen);

#endif
