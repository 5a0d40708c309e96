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
 * The shared store's API is module-internal (cache/store.h).
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
    int enabled;              /* cache.enabled */
    uint64_t max_size;        /* cache.max_size: bytes of objects held */
    uint64_t max_object;      /* cache.max_object: larger bodies are not stored */
    uint64_t lock_timeout_ms; /* cache.lock_timeout: a coalesced miss waits at most this (0: no cap) */
} oe_cache_settings_t;

/* The settings in effect for cfg (the cache.* keys; their defaults live in the config key
 * table only). */
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

/* Counters for the status page (the same numbers as the ott_edge_cache_* metrics). */
typedef struct oe_cache_counters {
    int enabled;
    uint64_t hits, misses, not_modified, stored_bytes, objects;
} oe_cache_counters_t;
void oe_cache_counters(oe_cache_counters_t *out);

#endif
