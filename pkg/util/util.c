/* util — the clock and the bounded string builder (see util.h). */
#include "util/util.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

uint64_t oe_util_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void oe_util_buf_init(oe_util_buf_t *b, char *mem, size_t cap)
{
    *b = (oe_util_buf_t){.p = mem, .cap = cap};
    if (cap > 0)
        mem[0] = '\0';
}

int oe_util_buf_put(oe_util_buf_t *b, const char *s, size_t n)
{
    if (b->cap == 0) {
        b->truncated = 1;
        return -1;
    }
    size_t room = b->cap - 1 - b->len;
    int cut = n > room;
    if (cut)
        n = room;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    if (cut)
        b->truncated = 1;
    return cut ? -1 : 0;
}

int oe_util_buf_puts(oe_util_buf_t *b, const char *s)
{
    return oe_util_buf_put(b, s, strlen(s));
}

int oe_util_buf_vprintf(oe_util_buf_t *b, const char *fmt, va_list ap)
{
    if (b->cap == 0) {
        b->truncated = 1;
        return -1;
    }
    size_t room = b->cap - b->len; /* vsnprintf counts the NUL in it */
    int n = vsnprintf(b->p + b->len, room, fmt, ap);
    if (n < 0) {
        b->p[b->len] = '\0';
        b->truncated = 1;
        return -1;
    }
    if ((size_t)n >= room) {
        b->len = b->cap - 1;
        b->truncated = 1;
        return -1;
    }
    b->len += (size_t)n;
    return 0;
}

int oe_util_buf_printf(oe_util_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = oe_util_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void oe_util_buf_rewind(oe_util_buf_t *b, size_t mark)
{
    if (mark < b->len) {
        b->len = mark;
        b->p[mark] = '\0';
    }
    b->truncated = 0;
}
