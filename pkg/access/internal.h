/*
 * access/internal.h — shared between the files of the access module (access.c, table.c,
 * users.c, auth.c) and its unit test; nothing else includes it.
 * Owns: the pure parts: client keys, the token bucket, the fixed-size client table, the
 * htpasswd parser, the Basic credentials parser and path-prefix matching.
 */
#ifndef OE_ACCESS_INTERNAL_H
#define OE_ACCESS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config/config.h"

/* ---- client keys ------------------------------------------------------------------- */

/* A client as the limits count it: IPv4 as ::ffff:a.b.c.d, IPv6 cut to a prefix. */
typedef struct oe_access_key {
    uint8_t b[16];
} oe_access_key_t;

/* The key of an AF_INET/AF_INET6 address (IPv4-mapped IPv6 counts as IPv4); IPv6 keeps its
 * first v6_prefix bits. Returns 0, or -1 for another family. */
int oe_access_key_of(const struct sockaddr *sa, unsigned v6_prefix, oe_access_key_t *out);

/* Address ranges compiled for the request path: each as a 16-byte prefix and mask over the
 * IPv4-mapped form (a.b.c.d/p is ::ffff:a.b.c.d/96+p), so a match is two masked 64-bit
 * compares. Same answers as oe_cidr_match() (an IPv4 client is also seen as
 * ::ffff:a.b.c.d; an IPv4-mapped one also as a.b.c.d). */
typedef struct oe_access_range {
    uint64_t hi, lo, mhi, mlo;
} oe_access_range_t;

/* Compiles n ranges into *out (malloc'ed; NULL when n is 0). Returns 0, or -1 out of memory. */
int oe_access_ranges_compile(const oe_cidr_t *list, size_t n, oe_access_range_t **out);
/* Whether the address (in the 16-byte form oe_access_key_of() gives with v6_prefix 128) is
 * in one of the ranges. */
int oe_access_ranges_match(const oe_access_range_t *r, size_t n, const oe_access_key_t *addr);

/* Parses a numeric address ("192.0.2.1", "2001:db8::1"; not NUL-terminated) into ss.
 * Returns 0, or -1 when it is not one. */
int oe_access_parse_ip(const char *s, size_t len, struct sockaddr_storage *ss);

/* ---- token bucket ------------------------------------------------------------------ */

/* A rate: `requests` per `per_ms`, at most `burst` at once. A bucket holds "units": one
 * request costs per_ms units and every millisecond adds `requests` units, so the arithmetic
 * is exact in integers (no drift, no rounding). */
typedef struct oe_access_rate {
    uint64_t requests; /* >= 1 */
    uint64_t per_ms;   /* >= 1 */
    uint64_t burst;    /* >= 1 */
} oe_access_rate_t;

/* A full bucket's units. */
static inline uint64_t oe_access_bucket_full(const oe_access_rate_t *r)
{
    return r->burst * r->per_ms;
}

/* Refills the bucket (units, stamp_ms: its state) up to now_ms, then takes one request.
 * Returns 1 when the request may pass, else 0 with *retry_ms: the wait for the next one. */
int oe_access_bucket_take(uint64_t *units, uint64_t *stamp_ms, const oe_access_rate_t *r, uint64_t now_ms,
                          uint64_t *retry_ms);

/* ---- the client table --------------------------------------------------------------- */

/*
 * A fixed number of entries in sets of OE_ACCESS_WAYS, each set under one of a few striped
 * locks; an entry is (client key, scope): scope OE_ACCESS_SCOPE_CLIENT holds the client's
 * open connections and WebSockets, every other scope is one token bucket. The set is chosen
 * by a hash keyed with random bytes at start (not predictable from outside).
 * Eviction: a new entry takes a free way of its set, else the way least recently used among
 * those with nothing open (a bucket, or a client with no connection or WebSocket open). When
 * every way of the set has something open, the new client is not tracked (its request
 * passes; counted in `full`). Memory: capacity * sizeof(entry), fixed at creation.
 */
#define OE_ACCESS_WAYS         8
#define OE_ACCESS_SCOPE_FREE   0u
#define OE_ACCESS_SCOPE_CLIENT 1u

typedef struct oe_access_table oe_access_table_t;

enum { OE_ACCESS_CONNS = 0, OE_ACCESS_WEBSOCKETS = 1 };

/* capacity: entries, rounded up to a power of two, at least OE_ACCESS_WAYS. NULL when out of memory. */
oe_access_table_t *oe_access_table_new(size_t capacity);
void oe_access_table_free(oe_access_table_t *t);
size_t oe_access_table_capacity(const oe_access_table_t *t);
size_t oe_access_table_bytes(const oe_access_table_t *t);

/* Takes one request from the bucket (key, scope) at now_ms (a new bucket starts full).
 * Returns 1: passes; 0: over the rate (*retry_ms set); -1: not tracked (passes). */
int oe_access_table_take(oe_access_table_t *t, const oe_access_key_t *key, uint32_t scope, const oe_access_rate_t *r,
                         uint64_t now_ms, uint64_t *retry_ms);

/* Whether the bucket (key, scope) has a request to give now, without taking it (an unknown
 * bucket is full). Returns 1, or 0 with *retry_ms. */
int oe_access_table_peek(oe_access_table_t *t, const oe_access_key_t *key, uint32_t scope, const oe_access_rate_t *r,
                         uint64_t now_ms, uint64_t *retry_ms);

/* Counts one more connection or WebSocket (which) of the client unless it has limit open
 * already (limit 0: no limit). Returns 1 with *ticket (for the release), 0 when at the
 * limit, -1 when not tracked (*ticket 0; passes). */
int oe_access_table_acquire(oe_access_table_t *t, const oe_access_key_t *key, int which, uint32_t limit,
                            uint64_t now_ms, uint32_t *ticket);
/* Gives back what a ticket from oe_access_table_acquire counted (ticket 0: nothing). */
void oe_access_table_release(oe_access_table_t *t, uint32_t ticket, int which);
/* How many connections or WebSockets (which) the client has open. */
uint32_t oe_access_table_open(oe_access_table_t *t, const oe_access_key_t *key, int which);

typedef struct oe_access_table_stats {
    uint64_t used;      /* entries in use now */
    uint64_t evictions; /* entries taken over by another client (or bucket) */
    uint64_t untracked; /* new entries refused: every way of their set had something open */
} oe_access_table_stats_t;
void oe_access_table_stats(oe_access_table_t *t, oe_access_table_stats_t *out);

/* ---- htpasswd ------------------------------------------------------------------------ */

#define OE_ACCESS_USERS_MAX    10000
#define OE_ACCESS_USER_MAX     255 /* bytes of a user name */
#define OE_ACCESS_PASSWORD_MAX 255 /* bytes of a password */

typedef struct oe_access_users oe_access_users_t;

/* Parses htpasswd text: "user:hash" lines (blank lines and "#" comments skipped, CRLF
 * accepted); every hash must be one libxcrypt rates as strong (crypt_checksalt: bcrypt
 * $2a$/$2b$/$2y$, SHA-512-crypt $6$, yescrypt $y$, scrypt $7$ ...). Loads libcrypt the
 * first time (not linked). Returns NULL with a message naming the line on failure (or
 * "cannot load libcrypt.so.1 (...): install libcrypt1"). */
oe_access_users_t *oe_access_users_parse(const char *text, size_t len, char *err, size_t errlen);
void oe_access_users_free(oe_access_users_t *u);
size_t oe_access_users_count(const oe_access_users_t *u);
/* The user's index, or -1. */
long oe_access_users_find(const oe_access_users_t *u, const char *user, size_t len);
const char *oe_access_users_hash(const oe_access_users_t *u, long i);
/* A strong hash of the file's first kind, to verify unknown users against (so that an
 * unknown user costs the same time as a wrong password). */
const char *oe_access_users_decoy(const oe_access_users_t *u);

/* Whether password matches hash (crypt_rn from libxcrypt; the comparison takes the same
 * time whatever the bytes; 0 when libcrypt is not loaded). data: scratch of
 * sizeof(struct crypt_data). */
int oe_access_verify(const char *hash, const char *password, void *data);

/* Parses an Authorization value "Basic <base64 of user:password>" (scheme in any case).
 * Returns 0 with user/password NUL-terminated, -1 when it is not Basic credentials, -2
 * when it is malformed (bad base64, no ':', control characters, too long). */
int oe_access_parse_basic(const char *value, size_t len, char *user, size_t ucap, char *password, size_t pcap);

/* ---- paths ------------------------------------------------------------------------- */

/* Whether prefix (no trailing '/' unless it is "/") covers path: the same, or path goes on
 * with '/' after it; letters in any case (the upstream's routing, Express's, ignores case). */
int oe_access_prefix_match(const char *prefix, size_t plen, const char *path, size_t len);

#endif
