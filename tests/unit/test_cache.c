/* test_cache — the cache's policy (Cache-Control, lifetimes, entity tags) and its store
 * (byte bound, LRU order, replacement, expiry, PASS markers, coalescing bookkeeping,
 * references outliving eviction), plus a multi-threaded hammer of the store. */
#include <pthread.h>
#include <string.h>

#include "cache/cache.h"
#include "cache/store.h"
#include "check.h"

static h2o_mem_pool_t pool;

static void add(h2o_headers_t *h, const h2o_token_t *t, const char *v)
{
    h2o_add_header(&pool, h, t, NULL, v, strlen(v));
}

static int64_t ttl_of(const char *cc, const char *extra_name, const char *extra_value)
{
    h2o_headers_t h = {NULL};
    if (cc != NULL)
        add(&h, H2O_TOKEN_CACHE_CONTROL, cc);
    if (extra_name != NULL)
        add(&h, h2o_lookup_token(extra_name, strlen(extra_name)), extra_value);
    return oe_cache_response_ttl(&h);
}

static void test_policy(void)
{
    oe_cache_cc_t cc = OE_CACHE_CC_INIT;
    oe_cache_parse_cc(H2O_STRLIT("public, max-age=31536000, immutable"), &cc);
    CHECK(cc.public_ && cc.max_age == 31536000 && cc.s_maxage == -1 && !cc.no_store, "parse public max-age");
    cc = (oe_cache_cc_t)OE_CACHE_CC_INIT;
    oe_cache_parse_cc(H2O_STRLIT("Private,NO-STORE , s-maxage=\"60\",max-age=x"), &cc);
    CHECK(cc.private_ && cc.no_store && cc.s_maxage == 60 && cc.max_age == 0, "parse odd spellings");

    CHECK(ttl_of("public, max-age=600", NULL, NULL) == 600, "max-age");
    CHECK(ttl_of("max-age=600, s-maxage=30", NULL, NULL) == 30, "s-maxage wins in a shared cache");
    CHECK(ttl_of("public, max-age=600", "age", "100") == 500, "Age is counted");
    CHECK(ttl_of("public, max-age=600", "age", "900") == 0, "already stale");
    CHECK(ttl_of("public", NULL, NULL) == 0, "public without a lifetime: not stored");
    CHECK(ttl_of(NULL, NULL, NULL) == 0, "no Cache-Control, no Expires");
    CHECK(ttl_of("private, max-age=600", NULL, NULL) == 0, "private");
    CHECK(ttl_of("no-store, max-age=600", NULL, NULL) == 0, "no-store");
    CHECK(ttl_of("no-cache, max-age=600", NULL, NULL) == 0, "no-cache");
    CHECK(ttl_of("no-cache=\"set-cookie\", max-age=600", NULL, NULL) == 0, "qualified no-cache");
    CHECK(ttl_of("public, max-age=600", "set-cookie", "a=b") == 0, "Set-Cookie");
    CHECK(ttl_of("public, max-age=600", "vary", "*") == 0, "Vary: *");
    CHECK(ttl_of("public, max-age=600", "vary", "accept-encoding") == 600, "Vary: accept-encoding is fine");
    CHECK(ttl_of("max-age=99999999999999999999", NULL, NULL) > 0, "huge max-age clamps, no overflow");

    h2o_headers_t h = {NULL};
    add(&h, H2O_TOKEN_DATE, "Mon, 01 Jan 2001 00:00:00 GMT");
    add(&h, H2O_TOKEN_EXPIRES, "Mon, 01 Jan 2001 01:00:00 GMT");
    CHECK(oe_cache_response_ttl(&h) == 3600, "Expires - Date");
    h = (h2o_headers_t){NULL};
    add(&h, H2O_TOKEN_EXPIRES, "0");
    CHECK(oe_cache_response_ttl(&h) == 0, "malformed Expires");

    CHECK(oe_cache_etag_matches(H2O_STRLIT("\"abc\""), H2O_STRLIT("\"abc\"")), "etag exact");
    CHECK(oe_cache_etag_matches(H2O_STRLIT("W/\"abc\""), H2O_STRLIT("\"abc\"")), "weak vs strong");
    CHECK(oe_cache_etag_matches(H2O_STRLIT("\"x\", W/\"abc\""), H2O_STRLIT("W/\"abc\"")), "in a list");
    CHECK(oe_cache_etag_matches(H2O_STRLIT("\"a,b\",\"c\""), H2O_STRLIT("\"c\"")), "comma inside quotes");
    CHECK(!oe_cache_etag_matches(H2O_STRLIT("\"a,b\""), H2O_STRLIT("\"b\"")), "no match inside quotes");
    CHECK(oe_cache_etag_matches(H2O_STRLIT("*"), H2O_STRLIT("\"q\"")), "star");
    CHECK(!oe_cache_etag_matches(H2O_STRLIT("\"abcd\""), H2O_STRLIT("\"abc\"")), "prefix is no match");
    CHECK(!oe_cache_etag_matches(H2O_STRLIT("\"abc\""), H2O_STRLIT("")), "no etag");
}

static oe_cache_obj_t *obj(const char *key, size_t body, uint64_t expires)
{
    h2o_iovec_t b = h2o_iovec_init(body ? calloc(1, body) : NULL, body);
    oe_cache_obj_t *o = oe_cache_obj_new(OE_CACHE_OBJ, key, strlen(key), 0, 0, b);
    o->expires_ms = expires;
    return o;
}

/* Stores o through the coalescing path, like the cache does. */
static void put(oe_cache_store_t *s, oe_cache_obj_t *o, uint64_t now)
{
    oe_cache_obj_t *hit = NULL;
    oe_cache_pending_t *p = NULL;
    h2o_linklist_t woken;
    h2o_linklist_init_anchor(&woken);
    int r = oe_cache_store_acquire(s, o->key.base, o->key.len, now, 0, 1, NULL, &hit, &p);
    if (r != OE_CACHE_LEAD) {
        CHECK(0, "put %.*s: not leading (%d)", (int)o->key.len, o->key.base, r);
        oe_cache_obj_release(o);
        return;
    }
    oe_cache_store_resolve(s, p, o, NULL, now, &woken);
}

static int present(oe_cache_store_t *s, const char *key, uint64_t now)
{
    oe_cache_obj_t *o = oe_cache_store_get(s, key, strlen(key), now);
    oe_cache_obj_release(o);
    return o != NULL;
}

static void test_store_bound(void)
{
    oe_cache_store_t *s = oe_cache_store_new(100000, 30000);
    oe_cache_stats_t st;
    char key[32];
    for (int i = 0; i < 50; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        put(s, obj(key, 10000, 1000000), 1);
        oe_cache_store_stats(s, &st);
        CHECK(st.bytes <= 100000, "bound kept after %d inserts: %llu", i, (unsigned long long)st.bytes);
        if (i == 5) { /* touch k0: it becomes most recently used */
            oe_cache_obj_t *hit = NULL;
            oe_cache_pending_t *p = NULL;
            CHECK(oe_cache_store_acquire(s, H2O_STRLIT("k0"), 2, 1, 0, NULL, &hit, &p) == OE_CACHE_HIT, "hit k0");
            oe_cache_obj_release(hit);
        }
    }
    oe_cache_store_stats(s, &st);
    CHECK(st.objects >= 8 && st.objects <= 9, "objects %llu", (unsigned long long)st.objects);
    CHECK(st.evictions == 50 - st.objects, "evictions %llu", (unsigned long long)st.evictions);
    CHECK(present(s, "k49", 2) && !present(s, "k1", 2), "LRU order: newest kept, oldest gone");
    CHECK(!present(s, "k0", 2), "k0 was touched early, then aged out");

    put(s, obj("big", 40000, 1000000), 2);
    CHECK(!present(s, "big", 2), "above max_object: rejected");

    /* replacement keeps one entry per key */
    oe_cache_store_stats(s, &st);
    uint64_t before = st.objects;
    put(s, obj("k49", 5000, 1000000), 3);
    oe_cache_store_stats(s, &st);
    CHECK(st.objects == before, "replace: %llu -> %llu", (unsigned long long)before, (unsigned long long)st.objects);

    /* expiry */
    put(s, obj("short", 10, 100), 3);
    CHECK(present(s, "short", 99), "fresh before expiry");
    CHECK(!present(s, "short", 100), "stale at expiry");

    /* a reference outlives eviction (a hit being sent while the store drops it) */
    oe_cache_obj_t *ref = oe_cache_store_get(s, H2O_STRLIT("k49"), 4);
    CHECK(ref != NULL, "k49 there");
    for (int i = 100; i < 130; i++) {
        snprintf(key, sizeof(key), "n%d", i);
        put(s, obj(key, 10000, 1000000), 5);
    }
    CHECK(!present(s, "k49", 6), "k49 evicted");
    CHECK(ref != NULL && ref->body.len == 5000 && !ref->in_store, "still readable after eviction");
    oe_cache_obj_release(ref);
    oe_cache_store_free(s);
}

static void test_coalescing(void)
{
    oe_cache_store_t *s = oe_cache_store_new(1 << 20, 1 << 20);
    oe_cache_obj_t *hit = NULL;
    oe_cache_pending_t *p = NULL, *p2 = NULL;
    oe_cache_waiter_t w[3];
    h2o_linklist_t woken;
    h2o_linklist_init_anchor(&woken);

    CHECK(oe_cache_store_acquire(s, H2O_STRLIT("u"), 1, 0, 1, &w[0], &hit, &p) == OE_CACHE_LEAD, "first leads");
    CHECK(oe_cache_store_acquire(s, H2O_STRLIT("u"), 1, 0, 1, &w[0], &hit, &p2) == OE_CACHE_WAIT, "second waits");
    CHECK(oe_cache_store_acquire(s, H2O_STRLIT("u"), 1, 0, 1, &w[1], &hit, &p2) == OE_CACHE_WAIT, "third waits");
    CHECK(oe_cache_store_acquire(s, H2O_STRLIT("u"), 1, 0, 1, &w[2], &hit, &p2) == OE_CACHE_WAIT, "fourth waits");
    CHECK(oe_cache_store_acquire(s, H2O_STRLIT("u"), 1, 0, 1, NULL, &hit, &p2) == OE_CACHE_PASS_ON,
          "no waiting allowed: pass on");
    CHECK(oe_cache_store_cancel_wait(s, &w[1]) == 1, "a waiter that leaves is unqueued");

    oe_cache_obj_t *o = obj("u", 100, 1000);
    oe_cache_store_resolve(s, p, o, NULL, 1, &woken);
    int n = 0;
    while (!h2o_linklist_is_empty(&woken)) {
        oe_cache_waiter_t *x = H2O_STRUCT_FROM_MEMBER(oe_cache_waiter_t, link, woken.next);
        h2o_linklist_unlink(&x->link);
        CHECK(x->woken && x->obj == o, "woken with the object");
        oe_cache_obj_release(x->obj);
        n++;
    }
    CHECK(n == 2, "two waiters woken (one left): %d", n);
    CHECK(oe_cache_store_cancel_wait(s, &w[0]) == 0, "cancel after wake: message in flight");
    CHECK(oe_cache_store_acquire(s, H2O_STRLIT("u"), 2, 1, 1, NULL, &hit, &p2) == OE_CACHE_HIT, "then a hit");
    oe_cache_obj_release(hit);
    CHECK(oe_cache_store_acquire(s, H2O_STRLIT("u"), 2, 0, 1, NULL, &hit, &p2) == OE_CACHE_LEAD,
          "use_stored=0 (client no-cache) leads a refetch");
    oe_cache_store_resolve(s, p2, NULL, NULL, 2, &woken);

    /* an uncacheable answer leaves a PASS marker: nobody waits on that URL for a while */
    CHECK(oe_cache_store_acquire(s, H2O_STRLIT("v"), 1, 1, 1, NULL, &hit, &p) == OE_CACHE_LEAD, "v leads");
    oe_cache_obj_t *m = oe_cache_obj_new(OE_CACHE_PASS, H2O_STRLIT("v"), 0, 0, h2o_iovec_init(NULL, 0));
    m->expires_ms = 50;
    oe_cache_store_resolve(s, p, NULL, m, 1, &woken);
    CHECK(oe_cache_store_acquire(s, H2O_STRLIT("v"), 10, 1, 1, &w[2], &hit, &p) == OE_CACHE_PASS_ON, "pass marker");
    CHECK(oe_cache_store_acquire(s, H2O_STRLIT("v"), 60, 1, 1, NULL, &hit, &p) == OE_CACHE_LEAD, "marker expired");
    oe_cache_store_resolve(s, p, NULL, NULL, 60, &woken);

    /* a refetch that fails (PASS marker) keeps the fresh copy it was refreshing */
    put(s, obj("w", 10, 1000), 60);
    CHECK(oe_cache_store_acquire(s, H2O_STRLIT("w"), 61, 0, 1, NULL, &hit, &p) == OE_CACHE_LEAD, "w refetch");
    m = oe_cache_obj_new(OE_CACHE_PASS, H2O_STRLIT("w"), 0, 0, h2o_iovec_init(NULL, 0));
    m->expires_ms = 500;
    oe_cache_store_resolve(s, p, NULL, m, 62, &woken);
    CHECK(oe_cache_store_acquire(s, H2O_STRLIT("w"), 63, 1, 1, NULL, &hit, &p) == OE_CACHE_HIT, "still a hit");
    oe_cache_obj_release(hit);
    oe_cache_store_free(s);
}

/* Threads insert, look up, lead and resolve on a small store: the bound holds, nothing
 * crashes (run under ASan/TSan-free builds to catch use-after-free). */
static oe_cache_store_t *hammer_store;

static void *hammer(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    uintptr_t bad = 0; /* CHECK's counters are not thread-safe: report back instead */
    char key[16];
    for (int i = 0; i < 20000; i++) {
        seed = seed * 1103515245 + 12345;
        snprintf(key, sizeof(key), "h%u", (seed >> 8) % 200);
        oe_cache_obj_t *hit = NULL;
        oe_cache_pending_t *p = NULL;
        int r = oe_cache_store_acquire(hammer_store, key, strlen(key), (uint64_t)i, 1, 1, NULL, &hit, &p);
        if (r == OE_CACHE_HIT) {
            bad += hit->body.len != 3000;
            oe_cache_obj_release(hit);
        } else if (r == OE_CACHE_LEAD) {
            h2o_linklist_t woken;
            h2o_linklist_init_anchor(&woken);
            oe_cache_store_resolve(hammer_store, p, obj(key, 3000, (uint64_t)i + 500), NULL, (uint64_t)i, &woken);
        }
    }
    return (void *)bad;
}

static void test_threads(void)
{
    hammer_store = oe_cache_store_new(100000, 100000);
    pthread_t t[4];
    for (uintptr_t i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, hammer, (void *)(i + 1));
    for (int i = 0; i < 4; i++) {
        void *bad = NULL;
        pthread_join(t[i], &bad);
        CHECK(bad == NULL, "thread %d saw %zu wrong bodies", i, (size_t)(uintptr_t)bad);
    }
    oe_cache_stats_t st;
    oe_cache_store_stats(hammer_store, &st);
    CHECK(st.bytes <= 100000 && st.evictions > 0, "bound under threads: %llu bytes, %llu evictions",
          (unsigned long long)st.bytes, (unsigned long long)st.evictions);
    oe_cache_store_free(hammer_store);
}

int main(void)
{
    h2o_mem_init_pool(&pool);
    test_policy();
    test_store_bound();
    test_coalescing();
    test_threads();
    h2o_mem_clear_pool(&pool);
    return CHECK_DONE();
}
