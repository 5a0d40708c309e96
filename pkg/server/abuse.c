/* abuse — see abuse.h. */
#include "server/abuse.h"

#include <netinet/in.h>
#include <pthread.h>
#include <string.h>

#define TABLE_SIZE 1024

typedef struct {
    unsigned char addr[16]; /* IPv4 as ::ffff:a.b.c.d */
    int used;
    unsigned strikes;
    uint64_t first_strike_ms;
    uint64_t blocked_until_ms;
} entry_t;

static entry_t table[TABLE_SIZE];
static int active; /* entries in use; read without the lock as a fast path */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static int key_of(const struct sockaddr *sa, unsigned char key[16])
{
    memset(key, 0, 16);
    if (sa->sa_family == AF_INET) {
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        return 0;
    }
    return -1;
}

static unsigned hash(const unsigned char key[16])
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (int i = 0; i < 16; i++)
        h = (h ^ key[i]) * 16777619u;
    return h % TABLE_SIZE;
}

/* Finds the entry for key, or (create) a free/stale slot near it; NULL when none. */
static entry_t *lookup(const unsigned char key[16], int create, uint64_t now)
{
    unsigned h = hash(key);
    entry_t *victim = NULL;
    for (unsigned i = 0; i < 16; i++) { /* short probe: bounded work per call */
        entry_t *e = &table[(h + i) % TABLE_SIZE];
        if (e->used && memcmp(e->addr, key, 16) == 0)
            return e;
        int stale = !e->used || (now > e->blocked_until_ms && now - e->first_strike_ms > OE_ABUSE_WINDOW_MS);
        if (stale && victim == NULL)
            victim = e;
    }
    if (!create || victim == NULL)
        return NULL;
    if (!victim->used)
        active++;
    memset(victim, 0, sizeof(*victim));
    memcpy(victim->addr, key, 16);
    victim->used = 1;
    return victim;
}

int oe_abuse_strike(const struct sockaddr *sa, uint64_t now_ms)
{
    unsigned char key[16];
    if (key_of(sa, key) != 0)
        return 0;
    pthread_mutex_lock(&lock);
    entry_t *e = lookup(key, 1, now_ms);
    int blocked = 0;
    if (e != NULL) {
        if (now_ms - e->first_strike_ms > OE_ABUSE_WINDOW_MS) {
            e->first_strike_ms = now_ms;
            e->strikes = 0;
        }
        if (++e->strikes >= OE_ABUSE_STRIKES) {
            e->blocked_until_ms = now_ms + OE_ABUSE_BLOCK_MS;
            blocked = 1;
        }
    }
    pthread_mutex_unlock(&lock);
    return blocked;
}

int oe_abuse_blocked(const struct sockaddr *sa, uint64_t now_ms)
{
    unsigned char key[16];
    if (__atomic_load_n(&active, __ATOMIC_RELAXED) == 0 || key_of(sa, key) != 0)
        return 0;
    pthread_mutex_lock(&lock);
    entry_t *e = lookup(key, 0, now_ms);
    int blocked = e != NULL && now_ms < e->blocked_until_ms;
    pthread_mutex_unlock(&lock);
    return blocked;
}

void oe_abuse_reset(void)
{
    pthread_mutex_lock(&lock);
    memset(table, 0, sizeof(table));
    active = 0;
    pthread_mutex_unlock(&lock);
}
