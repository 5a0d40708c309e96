/*
 * cache — an in-memory edge cache for what the upstream marks cacheable (OTT's assets).
 *
 * Owns: cache.* settings; the shared object store (one mutex; a hash table and an LRU list
 * bounded in bytes; objects are refcounted so a hit is sent without a copy); the caching
 * policy (GET/HEAD, 200, Cache-Control/Expires freshness, no Set-Cookie, no Authorization,
 * nothing private/no-store/no-cache, Vary); request coalescing (concurrent misses of one
 * key wait for a single upstream request; waiters on other worker threads are woken
 * through a per-thread h2o multithread queue); 304 answers to conditional requests on
 * hits; the cache metrics.
 * Must not touch: the upstream connection (libh2o's proxy), compression (pkg/compress:
 * the key carries the coding oe_compress_choose() picks), WebSocket upgrades (bypassed).
 *
 * Registration order matters: libh2o runs a path's filters in REVERSE registration order,
 * so call oe_cache_register() before oe_compress_register(): the cache's capture filter
 * then runs after the compressor and stores encoded variants.
 */
#ifndef OE_CACHE_H
#define OE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "h2o_compat.h"

typedef struct oe_cache_settings {
    int enabled;              /* cache.enabled (default 1) */
    uint64_t max_size;        /* cache.max_size: bytes of objects held (default 64 MiB) */
    uint64_t max_object;      /* cache.max_object: larger bodies are not stored (default 8 MiB) */
    uint64_t lock_timeout_ms; /* cache.lock_timeout: a coalesced miss waits at most this (0: no cap) */
} oe_cache_settings_t;

/* The settings in effect for cfg (the cache.* keys); cfg NULL gives the defaults. */
void oe_cache_settings_from_config(const oe_config_t *cfg, oe_cache_settings_t *out);

/* Registers the lookup handler (answers hits, parks coalesced misses) and the capture
 * filter on pc. Does nothing when cache.enabled is off. Call once at startup, after the
 * server's accounting handler and before oe_compress_register() and the proxy. */
int oe_cache_register(h2o_pathconf_t *pc, const oe_config_t *cfg, char *err, size_t errlen);

/* Whether req is being answered from the cache (a hit or a 304 from a stored entry), as
 * opposed to by the upstream. For response filters such as the proxy's health observer. */
int oe_cache_served(h2o_req_t *req);

/* ---- policy (pure functions; exposed for the unit tests) ---------------------------- */

typedef struct oe_cache_cc {
    unsigned no_store : 1, no_cache : 1, private_ : 1, public_ : 1;
    int64_t max_age;  /* seconds; -1 when absent */
    int64_t s_maxage; /* seconds; -1 when absent */
} oe_cache_cc_t;

/* Folds one Cache-Control header line into cc (start from OE_CACHE_CC_INIT). */
#define OE_CACHE_CC_INIT                                                                                               \
    {                                                                                                                  \
        .max_age = -1, .s_maxage = -1                                                                                  \
    }
void oe_cache_parse_cc(const char *v, size_t len, oe_cache_cc_t *cc);

/* How long (seconds) a 200 response with these headers stays fresh in a shared cache,
 * counting the Age it already has; 0 when it must not be stored. */
int64_t oe_cache_response_ttl(const h2o_headers_t *headers);

/* Whether a request may be answered from or stored into the cache at all. */
int oe_cache_request_eligible(h2o_req_t *req);

/* Weak comparison of an entity tag against an If-None-Match value ("*" or a list). */
int oe_cache_etag_matches(const char *inm, size_t inm_len, const char *etag, size_t etag_len);

/* ---- the store (exposed for the unit tests; cache.c is its only other user) --------- */

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
