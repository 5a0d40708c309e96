/*
 * cache/store — the shared object store behind the edge cache: a hash table and an LRU
 * list bounded in bytes under one mutex, refcounted objects, and the bookkeeping of
 * coalesced misses.
 *
 * Module-internal: included by the files of pkg/cache/ and the store's unit test only; other
 * modules use cache.h. Owns no h2o request state (cache.c does).
 */
#ifndef OE_CACHE_STORE_H
#define OE_CACHE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "h2o_compat.h"

enum { OE_CACHE_OBJ = 0, OE_CACHE_VARY = 1, OE_CACHE_PASS = 2 };

typedef struct oe_cache_header {
    const h2o_token_t *token; /* NULL for a header libh2o has no token for */
    h2o_iovec_t name, value;
} oe_cache_header_t;

/* One stored thing: a response (OBJ), the Vary header names seen for a URL (VARY), or a
 * "do not wait for others" marker for a URL that was not cacheable (PASS). Immutable once
 * inserted; freed when the store and every request using it let go. */
typedef struct oe_cache_obj {
    struct oe_cache_obj *hnext, *lprev, *lnext; /* store's links, under its mutex */
    uint64_t hash;
    int refs;
    int kind;
    int in_store;
    size_t charge;        /* bytes counted against max_size */
    uint64_t stored_ms;   /* monotonic */
    uint64_t expires_ms;  /* monotonic; stale from then on */
    int64_t age_at_store; /* seconds: the Age the response had when stored */
    h2o_iovec_t key;
    h2o_iovec_t vary; /* VARY: lower-case names, "\n"-separated; OBJ: same, for matching */
    oe_cache_header_t *headers;
    size_t nheaders;
    h2o_iovec_t etag, last_modified; /* into headers; len 0 when absent */
    h2o_iovec_t body;                /* malloc'ed separately (captured incrementally) */
} oe_cache_obj_t;

/* A request parked behind another's miss. */
typedef struct oe_cache_waiter {
    h2o_linklist_t link;
    int woken;           /* set under the store mutex when the leader finished */
    oe_cache_obj_t *obj; /* what the leader stored (a reference), or NULL */
} oe_cache_waiter_t;

typedef struct oe_cache_pending oe_cache_pending_t;
typedef struct oe_cache_store oe_cache_store_t;

typedef struct oe_cache_stats {
    uint64_t objects, bytes, evictions, inserts, rejected;
} oe_cache_stats_t;

oe_cache_store_t *oe_cache_store_new(uint64_t max_bytes, uint64_t max_object);
void oe_cache_store_free(oe_cache_store_t *s);

/* An object of kind with room for the key, nheaders headers and strings of strbytes bytes
 * (laid out after it); body is taken over (free()d with the object). refs = 1. */
oe_cache_obj_t *oe_cache_obj_new(int kind, const char *key, size_t keylen, size_t nheaders, size_t strbytes,
                                 h2o_iovec_t body);
void oe_cache_obj_addref(oe_cache_obj_t *o);
void oe_cache_obj_release(oe_cache_obj_t *o);

/* Returns a reference to the fresh entry under key (any kind), or NULL. */
oe_cache_obj_t *oe_cache_store_get(oe_cache_store_t *s, const char *key, size_t keylen, uint64_t now_ms);

enum { OE_CACHE_HIT, OE_CACHE_LEAD, OE_CACHE_WAIT, OE_CACHE_PASS_ON };
/* The atomic step of a lookup: a fresh object (HIT, *hit referenced; only if use_stored),
 * else join a miss under way (WAIT, w queued; only if w != NULL), else start one (LEAD,
 * *pending set; only if can_lead), else PASS_ON (go to the upstream, nothing shared). */
int oe_cache_store_acquire(oe_cache_store_t *s, const char *key, size_t keylen, uint64_t now_ms, int use_stored,
                           int can_lead, oe_cache_waiter_t *w, oe_cache_obj_t **hit, oe_cache_pending_t **pending);

/* Ends a miss: inserts obj (if not NULL; the store takes the caller's reference) and, if
 * marker is not NULL, that too (VARY or PASS); every waiter is marked woken with its own
 * reference to obj and moved to *woken (an initialised list the caller then drains). */
void oe_cache_store_resolve(oe_cache_store_t *s, oe_cache_pending_t *p, oe_cache_obj_t *obj, oe_cache_obj_t *marker,
                            uint64_t now_ms, h2o_linklist_t *woken);

/* The key the leader asked with (valid until resolve). */
h2o_iovec_t oe_cache_pending_key(oe_cache_pending_t *p);

/* Withdraws a waiter whose request went away: 1 when it was still queued (now removed),
 * 0 when it was already woken (its wake-up message is on its way). */
int oe_cache_store_cancel_wait(oe_cache_store_t *s, oe_cache_waiter_t *w);

void oe_cache_store_stats(oe_cache_store_t *s, oe_cache_stats_t *out);

#endif
