/* access/table.c — client keys, the token bucket and the fixed-size client table (see internal.h). */
#include "access/internal.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#define NLOCKS 256 /* striped: set i is under lock i % NLOCKS */

/* ---- client keys ------------------------------------------------------------------- */

int oe_access_key_of(const struct sockaddr *sa, unsigned v6_prefix, oe_access_key_t *out)
{
    memset(out, 0, sizeof(*out));
    if (sa->sa_family == AF_INET) {
        out->b[10] = out->b[11] = 0xff;
        memcpy(out->b + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return 0;
    }
    if (sa->sa_family != AF_INET6)
        return -1;
    const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    memcpy(out->b, a->s6_addr, 16);
    if (IN6_IS_ADDR_V4MAPPED(a))
        return 0;
    if (v6_prefix > 128)
        v6_prefix = 128;
    for (unsigned i = 0; i < 16; i++) {
        unsigned keep = v6_prefix > i * 8 ? v6_prefix - i * 8 : 0;
        if (keep < 8)
            out->b[i] &= (uint8_t)(0xff00u >> keep);
    }
    return 0;
}

int oe_access_ranges_compile(const oe_cidr_t *list, size_t n, oe_access_range_t **out)
{
    *out = NULL;
    if (n == 0)
        return 0;
    if ((*out = calloc(n, sizeof(**out))) == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        uint8_t addr[16] = {0}, mask[16] = {0};
        unsigned prefix = list[i].prefix;
        if (list[i].family == AF_INET) {
            addr[10] = addr[11] = 0xff;
            memcpy(addr + 12, list[i].addr, 4);
            prefix = 96 + (prefix > 32 ? 32 : prefix);
        } else {
            memcpy(addr, list[i].addr, 16);
            if (prefix > 128)
                prefix = 128;
        }
        for (unsigned b = 0; b < 16; b++) {
            unsigned keep = prefix > b * 8 ? prefix - b * 8 : 0;
            mask[b] = keep >= 8 ? 0xff : (uint8_t)(0xff00u >> keep);
            addr[b] &= mask[b];
        }
        oe_access_range_t *r = &(*out)[i];
        memcpy(&r->hi, addr, 8);
        memcpy(&r->lo, addr + 8, 8);
        memcpy(&r->mhi, mask, 8);
        memcpy(&r->mlo, mask + 8, 8);
    }
    return 0;
}

int oe_access_ranges_match(const oe_access_range_t *r, size_t n, const oe_access_key_t *addr)
{
    uint64_t hi, lo;

    memcpy(&hi, addr->b, 8);
    memcpy(&lo, addr->b + 8, 8);
    for (size_t i = 0; i < n; i++)
        if ((hi & r[i].mhi) == r[i].hi && (lo & r[i].mlo) == r[i].lo)
            return 1;
    return 0;
}

int oe_access_parse_ip(const char *s, size_t len, struct sockaddr_storage *ss)
{
    char tmp[INET6_ADDRSTRLEN + 1];

    if (len == 0 || len >= sizeof(tmp))
        return -1;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, tmp, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
        ss->ss_family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, tmp, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
        ss->ss_family = AF_INET6;
        return 0;
    }
    return -1;
}

/* ---- token bucket ------------------------------------------------------------------ */

int oe_access_bucket_take(uint64_t *units, uint64_t *stamp_ms, const oe_access_rate_t *r, uint64_t now_ms,
                          uint64_t *retry_ms)
{
    uint64_t full = oe_access_bucket_full(r);

    if (now_ms > *stamp_ms) {
        uint64_t elapsed = now_ms - *stamp_ms;
        /* elapsed >= full means full whatever the rate (requests >= 1); below it no overflow */
        if (elapsed >= full || *units + elapsed * r->requests >= full)
            *units = full;
        else
            *units += elapsed * r->requests;
        *stamp_ms = now_ms;
    }
    if (*units >= r->per_ms) {
        *units -= r->per_ms;
        return 1;
    }
    *retry_ms = (r->per_ms - *units + r->requests - 1) / r->requests;
    return 0;
}

/* ---- the table --------------------------------------------------------------------- */

typedef struct entry {
    oe_access_key_t key;
    uint32_t scope; /* OE_ACCESS_SCOPE_FREE: unused */
    uint32_t open[2];
    uint32_t pad;
    uint64_t units;    /* bucket scopes */
    uint64_t stamp_ms; /* bucket: last refill; every entry: last use (the eviction order) */
} entry_t;

struct oe_access_table {
    entry_t *e;
    size_t nsets; /* a power of two */
    uint64_t seed[2];
    pthread_mutex_t locks[NLOCKS];
    uint64_t used, evictions, untracked; /* atomics */
};

oe_access_table_t *oe_access_table_new(size_t capacity)
{
    oe_access_table_t *t = calloc(1, sizeof(*t));
    size_t nsets = 1;

    while (nsets * OE_ACCESS_WAYS < capacity && nsets < ((size_t)1 << 24))
        nsets *= 2;
    if (t == NULL || (t->e = calloc(nsets * OE_ACCESS_WAYS, sizeof(entry_t))) == NULL) {
        free(t);
        return NULL;
    }
    t->nsets = nsets;
    if (getrandom(t->seed, sizeof(t->seed), 0) != (ssize_t)sizeof(t->seed)) {
        t->seed[0] = (uint64_t)(uintptr_t)t ^ 0x9e3779b97f4a7c15ull;
        t->seed[1] = (uint64_t)(uintptr_t)t->e * 0xbf58476d1ce4e5b9ull;
    }
    for (size_t i = 0; i < NLOCKS; i++)
        pthread_mutex_init(&t->locks[i], NULL);
    return t;
}

void oe_access_table_free(oe_access_table_t *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < NLOCKS; i++)
        pthread_mutex_destroy(&t->locks[i]);
    free(t->e);
    free(t);
}

size_t oe_access_table_capacity(const oe_access_table_t *t)
{
    return t->nsets * OE_ACCESS_WAYS;
}

size_t oe_access_table_bytes(const oe_access_table_t *t)
{
    return sizeof(*t) + t->nsets * OE_ACCESS_WAYS * sizeof(entry_t);
}

static uint64_t fmix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

/* The set of (key, scope): a seeded mix of the 16 key bytes and the scope. */
static size_t set_of(const oe_access_table_t *t, const oe_access_key_t *k, uint32_t scope)
{
    uint64_t a, b;

    memcpy(&a, k->b, 8);
    memcpy(&b, k->b + 8, 8);
    uint64_t h = fmix64(a ^ t->seed[0]);
    h = fmix64(h ^ b ^ t->seed[1]);
    h = fmix64(h ^ ((uint64_t)scope * 0x9e3779b97f4a7c15ull));
    return (size_t)h & (t->nsets - 1);
}

static pthread_mutex_t *lock_of(oe_access_table_t *t, size_t set)
{
    return &t->locks[set % NLOCKS];
}

/* The entry of (key, scope) in its set (lock held), made when create and absent; NULL when
 * absent and not made. *fresh tells a new entry. */
static entry_t *find(oe_access_table_t *t, size_t set, const oe_access_key_t *k, uint32_t scope, int create,
                     uint64_t now_ms, int *fresh)
{
    entry_t *ways = &t->e[set * OE_ACCESS_WAYS], *victim = NULL;

    *fresh = 0;
    for (int i = 0; i < OE_ACCESS_WAYS; i++)
        if (ways[i].scope == scope && memcmp(&ways[i].key, k, sizeof(*k)) == 0)
            return &ways[i];
    if (!create)
        return NULL;
    for (int i = 0; i < OE_ACCESS_WAYS; i++) {
        entry_t *w = &ways[i];
        if (w->scope == OE_ACCESS_SCOPE_FREE) {
            victim = w;
            break;
        }
        if (w->open[0] == 0 && w->open[1] == 0 && (victim == NULL || w->stamp_ms < victim->stamp_ms))
            victim = w;
    }
    if (victim == NULL) {
        __atomic_fetch_add(&t->untracked, 1, __ATOMIC_RELAXED);
        return NULL;
    }
    if (victim->scope == OE_ACCESS_SCOPE_FREE)
        __atomic_fetch_add(&t->used, 1, __ATOMIC_RELAXED);
    else
        __atomic_fetch_add(&t->evictions, 1, __ATOMIC_RELAXED);
    memset(victim, 0, sizeof(*victim));
    victim->key = *k;
    victim->scope = scope;
    victim->stamp_ms = now_ms;
    *fresh = 1;
    return victim;
}

int oe_access_table_take(oe_access_table_t *t, const oe_access_key_t *key, uint32_t scope, const oe_access_rate_t *r,
                         uint64_t now_ms, uint64_t *retry_ms)
{
    size_t set = set_of(t, key, scope);
    pthread_mutex_t *l = lock_of(t, set);
    int fresh, rc = -1;

    pthread_mutex_lock(l);
    entry_t *e = find(t, set, key, scope, 1, now_ms, &fresh);
    if (e != NULL) {
        if (fresh)
            e->units = oe_access_bucket_full(r);
        if (e->stamp_ms > now_ms) /* another thread read the clock a little later */
            now_ms = e->stamp_ms;
        rc = oe_access_bucket_take(&e->units, &e->stamp_ms, r, now_ms, retry_ms);
    }
    pthread_mutex_unlock(l);
    return rc;
}

int oe_access_table_peek(oe_access_table_t *t, const oe_access_key_t *key, uint32_t scope, const oe_access_rate_t *r,
                         uint64_t now_ms, uint64_t *retry_ms)
{
    size_t set = set_of(t, key, scope);
    pthread_mutex_t *l = lock_of(t, set);
    int fresh, rc = 1;

    pthread_mutex_lock(l);
    entry_t *e = find(t, set, key, scope, 0, now_ms, &fresh);
    if (e != NULL) {
        uint64_t units = e->units, stamp = e->stamp_ms;
        /* take from a copy: a refill moved forward is the same bucket */
        rc = oe_access_bucket_take(&units, &stamp, r, now_ms > stamp ? now_ms : stamp, retry_ms);
    }
    pthread_mutex_unlock(l);
    return rc;
}

int oe_access_table_acquire(oe_access_table_t *t, const oe_access_key_t *key, int which, uint32_t limit,
                            uint64_t now_ms, uint32_t *ticket)
{
    size_t set = set_of(t, key, OE_ACCESS_SCOPE_CLIENT);
    pthread_mutex_t *l = lock_of(t, set);
    int fresh, rc = -1;

    *ticket = 0;
    pthread_mutex_lock(l);
    entry_t *e = find(t, set, key, OE_ACCESS_SCOPE_CLIENT, 1, now_ms, &fresh);
    if (e != NULL) {
        if (limit != 0 && e->open[which] >= limit) {
            rc = 0;
        } else {
            e->open[which]++;
            *ticket = (uint32_t)(e - t->e) + 1;
            rc = 1;
        }
        if (e->stamp_ms < now_ms)
            e->stamp_ms = now_ms;
    }
    pthread_mutex_unlock(l);
    return rc;
}

void oe_access_table_release(oe_access_table_t *t, uint32_t ticket, int which)
{
    if (ticket == 0 || ticket > t->nsets * OE_ACCESS_WAYS)
        return;
    entry_t *e = &t->e[ticket - 1];
    pthread_mutex_t *l = lock_of(t, (ticket - 1) / OE_ACCESS_WAYS);
    pthread_mutex_lock(l);
    if (e->open[which] > 0) /* an entry with something open is never evicted: still ours */
        e->open[which]--;
    pthread_mutex_unlock(l);
}

uint32_t oe_access_table_open(oe_access_table_t *t, const oe_access_key_t *key, int which)
{
    size_t set = set_of(t, key, OE_ACCESS_SCOPE_CLIENT);
    pthread_mutex_t *l = lock_of(t, set);
    uint32_t n = 0;
    int fresh;

    pthread_mutex_lock(l);
    entry_t *e = find(t, set, key, OE_ACCESS_SCOPE_CLIENT, 0, 0, &fresh);
    if (e != NULL)
        n = e->open[which];
    pthread_mutex_unlock(l);
    return n;
}

void oe_access_table_stats(oe_access_table_t *t, oe_access_table_stats_t *out)
{
    out->used = __atomic_load_n(&t->used, __ATOMIC_RELAXED);
    out->evictions = __atomic_load_n(&t->evictions, __ATOMIC_RELAXED);
    out->untracked = __atomic_load_n(&t->untracked, __ATOMIC_RELAXED);
}

/* ---- paths ------------------------------------------------------------------------- */

int oe_access_prefix_match(const char *prefix, size_t plen, const char *path, size_t len)
{
    if (plen == 1 && prefix[0] == '/')
        return len > 0 && path[0] == '/';
    return len >= plen && strncasecmp(path, prefix, plen) == 0 && (len == plen || path[plen] == '/');
}
