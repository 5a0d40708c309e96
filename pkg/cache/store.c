/* store — the shared object store of the cache (see cache.h). One mutex guards the hash
 * table, the LRU list and the table of misses under way; critical sections are a lookup
 * and a few pointer moves, never I/O or copies of bodies. */
#include "cache/store.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

struct oe_cache_pending {
    oe_cache_pending_t *hnext;
    uint64_t hash;
    h2o_iovec_t key; /* copy, after the struct */
    h2o_linklist_t waiters;
};

typedef struct {
    void **buckets; /* oe_cache_obj_t* or oe_cache_pending_t* chains (hnext first) */
    size_t nbuckets, count;
} table_t;

struct oe_cache_store {
    pthread_mutex_t mu;
    uint64_t seed;
    table_t objs, pend;
    oe_cache_obj_t lru; /* sentinel: lnext is the most recently used */
    uint64_t max_bytes, max_object;
    oe_cache_stats_t st;
};

/* Keys hold client-chosen paths: a seeded hash keeps chains short against crafted ones. */
static uint64_t hash_key(uint64_t seed, const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 0x100000001b3ull;
    h ^= h >> 33; /* finalizer (splitmix64/murmur3) spreads the low bits used for buckets */
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

/* Both node types start with their next pointer; hash and key are read through these. */
#define OBJ(n)  ((oe_cache_obj_t *)(n))
#define PEND(n) ((oe_cache_pending_t *)(n))

static int table_init(table_t *t, size_t n)
{
    t->buckets = calloc(n, sizeof(void *));
    t->nbuckets = n;
    t->count = 0;
    return t->buckets != NULL ? 0 : -1;
}

static void **slot_of(table_t *t, uint64_t hash)
{
    return &t->buckets[hash & (t->nbuckets - 1)];
}

/* ---- objects ----------------------------------------------------------------------- */

oe_cache_obj_t *oe_cache_obj_new(int kind, const char *key, size_t keylen, size_t nheaders, size_t strbytes,
                                 h2o_iovec_t body)
{
    size_t sz = sizeof(oe_cache_obj_t) + nheaders * sizeof(oe_cache_header_t) + keylen + strbytes;
    oe_cache_obj_t *o = calloc(1, sz);
    if (o == NULL) {
        free(body.base);
        return NULL;
    }
    o->refs = 1;
    o->kind = kind;
    o->headers = (oe_cache_header_t *)(o + 1);
    o->nheaders = nheaders;
    char *p = (char *)(o->headers + nheaders);
    memcpy(p, key, keylen);
    o->key = h2o_iovec_init(p, keylen);
    o->body = body;
    o->charge = sz + body.len;
    return o;
}

void oe_cache_obj_addref(oe_cache_obj_t *o)
{
    __atomic_fetch_add(&o->refs, 1, __ATOMIC_RELAXED);
}

void oe_cache_obj_release(oe_cache_obj_t *o)
{
    if (o != NULL && __atomic_sub_fetch(&o->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        free(o->body.base);
        free(o);
    }
}

/* ---- the store --------------------------------------------------------------------- */

oe_cache_store_t *oe_cache_store_new(uint64_t max_bytes, uint64_t max_object)
{
    oe_cache_store_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    if (table_init(&s->objs, 1024) != 0 || table_init(&s->pend, 256) != 0) {
        free(s->objs.buckets);
        free(s);
        return NULL;
    }
    if (getrandom(&s->seed, sizeof(s->seed), 0) != (ssize_t)sizeof(s->seed))
        s->seed = (uint64_t)(uintptr_t)s * 0x9e3779b97f4a7c15ull;
    pthread_mutex_init(&s->mu, NULL);
    s->lru.lnext = s->lru.lprev = &s->lru;
    s->max_bytes = max_bytes;
    s->max_object = max_object < max_bytes ? max_object : max_bytes;
    return s;
}

static void *table_find(table_t *t, uint64_t hash, const char *key, size_t keylen, int pend)
{
    for (void *n = *slot_of(t, hash); n != NULL; n = pend ? (void *)PEND(n)->hnext : (void *)OBJ(n)->hnext) {
        uint64_t h = pend ? PEND(n)->hash : OBJ(n)->hash;
        h2o_iovec_t k = pend ? PEND(n)->key : OBJ(n)->key;
        if (h == hash && h2o_memis(k.base, k.len, key, keylen))
            return n;
    }
    return NULL;
}

static void table_unlink(table_t *t, void *node, int pend)
{
    uint64_t hash = pend ? PEND(node)->hash : OBJ(node)->hash;
    void **pp = slot_of(t, hash);
    while (*pp != node)
        pp = pend ? (void **)&PEND(*pp)->hnext : (void **)&OBJ(*pp)->hnext;
    *pp = pend ? (void *)PEND(node)->hnext : (void *)OBJ(node)->hnext;
    t->count--;
}

static void table_grow(table_t *t, int pend)
{
    size_t n = t->nbuckets * 2;
    void **nb = calloc(n, sizeof(void *));
    if (nb == NULL)
        return; /* longer chains; still correct */
    for (size_t i = 0; i < t->nbuckets; i++) {
        for (void *node = t->buckets[i], *next; node != NULL; node = next) {
            next = pend ? (void *)PEND(node)->hnext : (void *)OBJ(node)->hnext;
            uint64_t h = pend ? PEND(node)->hash : OBJ(node)->hash;
            void **slot = &nb[h & (n - 1)];
            if (pend)
                PEND(node)->hnext = *slot;
            else
                OBJ(node)->hnext = *slot;
            *slot = node;
        }
    }
    free(t->buckets);
    t->buckets = nb;
    t->nbuckets = n;
}

static void table_insert(table_t *t, void *node, int pend)
{
    if (t->count >= t->nbuckets)
        table_grow(t, pend);
    void **slot = slot_of(t, pend ? PEND(node)->hash : OBJ(node)->hash);
    if (pend)
        PEND(node)->hnext = *slot;
    else
        OBJ(node)->hnext = *slot;
    *slot = node;
    t->count++;
}

static void lru_unlink(oe_cache_obj_t *o)
{
    o->lprev->lnext = o->lnext;
    o->lnext->lprev = o->lprev;
}

static void lru_push_front(oe_cache_store_t *s, oe_cache_obj_t *o)
{
    o->lnext = s->lru.lnext;
    o->lprev = &s->lru;
    s->lru.lnext->lprev = o;
    s->lru.lnext = o;
}

/* Takes o out of the store and drops the store's reference. */
static void remove_obj(oe_cache_store_t *s, oe_cache_obj_t *o)
{
    table_unlink(&s->objs, o, 0);
    lru_unlink(o);
    o->in_store = 0;
    s->st.objects--;
    s->st.bytes -= o->charge;
    oe_cache_obj_release(o);
}

/* Inserts o (taking the caller's reference), replacing an entry with the same key and
 * evicting from the LRU tail until it fits. */
static void insert_obj(oe_cache_store_t *s, oe_cache_obj_t *o, uint64_t now_ms)
{
    if (o->charge > s->max_bytes || (o->kind == OE_CACHE_OBJ && o->body.len > s->max_object)) {
        s->st.rejected++;
        oe_cache_obj_release(o);
        return;
    }
    o->hash = hash_key(s->seed, o->key.base, o->key.len);
    o->stored_ms = now_ms;
    oe_cache_obj_t *old = table_find(&s->objs, o->hash, o->key.base, o->key.len, 0);
    if (old != NULL)
        remove_obj(s, old);
    while (s->st.bytes + o->charge > s->max_bytes && s->lru.lprev != &s->lru) {
        remove_obj(s, s->lru.lprev);
        s->st.evictions++;
    }
    table_insert(&s->objs, o, 0);
    lru_push_front(s, o);
    o->in_store = 1;
    s->st.objects++;
    s->st.inserts++;
    s->st.bytes += o->charge;
}

/* The fresh entry under key, or NULL (a stale one is dropped on the way). */
static oe_cache_obj_t *find_fresh(oe_cache_store_t *s, const char *key, size_t keylen, uint64_t hash, uint64_t now_ms)
{
    oe_cache_obj_t *o = table_find(&s->objs, hash, key, keylen, 0);
    if (o != NULL && now_ms >= o->expires_ms) {
        remove_obj(s, o);
        o = NULL;
    }
    return o;
}

oe_cache_obj_t *oe_cache_store_get(oe_cache_store_t *s, const char *key, size_t keylen, uint64_t now_ms)
{
    uint64_t hash = hash_key(s->seed, key, keylen);
    pthread_mutex_lock(&s->mu);
    oe_cache_obj_t *o = find_fresh(s, key, keylen, hash, now_ms);
    if (o != NULL)
        oe_cache_obj_addref(o);
    pthread_mutex_unlock(&s->mu);
    return o;
}

int oe_cache_store_acquire(oe_cache_store_t *s, const char *key, size_t keylen, uint64_t now_ms, int use_stored,
                           int can_lead, oe_cache_waiter_t *w, oe_cache_obj_t **hit, oe_cache_pending_t **pending)
{
    uint64_t hash = hash_key(s->seed, key, keylen);
    int r = OE_CACHE_PASS_ON;

    pthread_mutex_lock(&s->mu);
    oe_cache_obj_t *o = find_fresh(s, key, keylen, hash, now_ms);
    if (o != NULL && o->kind == OE_CACHE_PASS)
        goto Exit; /* known uncacheable: nobody waits for anybody */
    if (o != NULL && o->kind == OE_CACHE_OBJ && use_stored) {
        oe_cache_obj_addref(o);
        lru_unlink(o);
        lru_push_front(s, o);
        *hit = o;
        r = OE_CACHE_HIT;
        goto Exit;
    }
    oe_cache_pending_t *p = table_find(&s->pend, hash, key, keylen, 1);
    if (p != NULL) {
        if (w != NULL) {
            w->woken = 0;
            w->obj = NULL;
            h2o_linklist_insert(&p->waiters, &w->link);
            r = OE_CACHE_WAIT;
        }
        goto Exit;
    }
    if (can_lead && (p = malloc(sizeof(*p) + keylen)) != NULL) {
        p->hash = hash;
        p->key = h2o_iovec_init(memcpy(p + 1, key, keylen), keylen);
        h2o_linklist_init_anchor(&p->waiters);
        table_insert(&s->pend, p, 1);
        *pending = p;
        r = OE_CACHE_LEAD;
    }
Exit:
    pthread_mutex_unlock(&s->mu);
    return r;
}

h2o_iovec_t oe_cache_pending_key(oe_cache_pending_t *p)
{
    return p->key;
}

void oe_cache_store_resolve(oe_cache_store_t *s, oe_cache_pending_t *p, oe_cache_obj_t *obj, oe_cache_obj_t *marker,
                            uint64_t now_ms, h2o_linklist_t *woken)
{
    pthread_mutex_lock(&s->mu);
    table_unlink(&s->pend, p, 1);
    while (!h2o_linklist_is_empty(&p->waiters)) {
        oe_cache_waiter_t *w = H2O_STRUCT_FROM_MEMBER(oe_cache_waiter_t, link, p->waiters.next);
        h2o_linklist_unlink(&w->link);
        w->woken = 1;
        w->obj = obj;
        if (obj != NULL)
            oe_cache_obj_addref(obj);
        h2o_linklist_insert(woken, &w->link);
    }
    if (marker != NULL && marker->kind == OE_CACHE_PASS) {
        /* an error or an uncacheable answer does not push out a copy that is still fresh */
        uint64_t h = hash_key(s->seed, marker->key.base, marker->key.len);
        oe_cache_obj_t *o = find_fresh(s, marker->key.base, marker->key.len, h, now_ms);
        if (o != NULL && o->kind == OE_CACHE_OBJ) {
            oe_cache_obj_release(marker);
            marker = NULL;
        }
    }
    if (marker != NULL)
        insert_obj(s, marker, now_ms);
    if (obj != NULL)
        insert_obj(s, obj, now_ms);
    pthread_mutex_unlock(&s->mu);
    free(p);
}

int oe_cache_store_cancel_wait(oe_cache_store_t *s, oe_cache_waiter_t *w)
{
    int queued;
    pthread_mutex_lock(&s->mu);
    queued = !w->woken;
    if (queued)
        h2o_linklist_unlink(&w->link);
    pthread_mutex_unlock(&s->mu);
    return queued;
}

void oe_cache_store_stats(oe_cache_store_t *s, oe_cache_stats_t *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    pthread_mutex_unlock(&s->mu);
}

void oe_cache_store_free(oe_cache_store_t *s)
{
    if (s == NULL)
        return;
    for (oe_cache_obj_t *o = s->lru.lnext, *next; o != &s->lru; o = next) {
        next = o->lnext;
        remove_obj(s, o);
    }
    for (size_t i = 0; i < s->pend.nbuckets; i++)
        for (oe_cache_pending_t *p = s->pend.buckets[i], *next; p != NULL; p = next) {
            next = p->hnext;
            free(p);
        }
    free(s->objs.buckets);
    free(s->pend.buckets);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
