/*
 * fuzz_common — small helpers shared by the libFuzzer targets in tests/fuzz/.
 * Owns: nothing but test scaffolding; never linked into ott-edge.
 */
#ifndef OE_FUZZ_COMMON_H
#define OE_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Splits the input at the first occurrence of sep (a byte that is not data): the parts are
 * heap copies, NUL-terminated, so a parser reading one byte too far is caught by ASan. */
typedef struct {
    const uint8_t *p;
    size_t left;
} fuzz_reader_t;

/* Next chunk up to sep (sep excluded); returns a malloc'ed exact-size copy and its length. */
static inline char *fuzz_next(fuzz_reader_t *r, uint8_t sep, size_t *len)
{
    const uint8_t *end = r->left ? memchr(r->p, sep, r->left) : NULL;
    size_t n = end ? (size_t)(end - r->p) : r->left;
    char *out = malloc(n ? n : 1);
    if (n)
        memcpy(out, r->p, n);
    r->p += n;
    r->left -= n;
    if (end) {
        r->p++;
        r->left--;
    }
    *len = n;
    return out;
}

/* Same, NUL-terminated (one extra byte), for APIs that take C strings. */
static inline char *fuzz_next_str(fuzz_reader_t *r, uint8_t sep, size_t *len)
{
    size_t n;
    char *raw = fuzz_next(r, sep, &n);
    char *s = malloc(n + 1);
    memcpy(s, raw, n);
    s[n] = '\0';
    free(raw);
    *len = n;
    return s;
}

static inline uint8_t fuzz_byte(fuzz_reader_t *r)
{
    if (r->left == 0)
        return 0;
    r->left--;
    return *r->p++;
}

#endif
