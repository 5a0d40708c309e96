/*
 * access/users.c — htpasswd files, password checks (libxcrypt) and Basic credentials (see
 * internal.h).
 *
 * libcrypt (~70 KiB resident) is not linked: it is loaded (util/dynlib) when the first
 * htpasswd file is read, so an ott-edge without basic_auth never maps it, and one whose
 * libcrypt1 is missing fails at configuration time naming the basic_auth key. Its three
 * calls below go through a table.
 */
#include "access/internal.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/dynlib.h"

#define CRYPT_SYMS(X) X(crypt_rn) X(crypt_gensalt_rn) X(crypt_checksalt)

OE_DYNLIB_DEFINE(crypt_api_t, libcrypt, lib, CRYPT_SYMS, "libcrypt.so.1", "libcrypt1");

/* the calls below, through the table (loaded by oe_access_users_parse before any of them) */
#define crypt_rn         (libcrypt.crypt_rn)
#define crypt_gensalt_rn (libcrypt.crypt_gensalt_rn)
#define crypt_checksalt  (libcrypt.crypt_checksalt)

struct oe_access_users {
    size_t count;
    char **user; /* sorted by name, for the lookup */
    char **hash;
    char *decoy; /* a hash no password matches cheaply guessed: "$2b$..." of random bytes */
};

void oe_access_users_free(oe_access_users_t *u)
{
    if (u == NULL)
        return;
    for (size_t i = 0; i < u->count; i++) {
        free(u->user[i]);
        free(u->hash[i]);
    }
    free(u->user);
    free(u->hash);
    free(u->decoy);
    free(u);
}

size_t oe_access_users_count(const oe_access_users_t *u)
{
    return u->count;
}

const char *oe_access_users_hash(const oe_access_users_t *u, long i)
{
    return i >= 0 && (size_t)i < u->count ? u->hash[i] : NULL;
}

const char *oe_access_users_decoy(const oe_access_users_t *u)
{
    return u->decoy;
}

static int cmp_users(const void *a, const void *b)
{
    return strcmp(**(char *const *const *)a, **(char *const *const *)b);
}

long oe_access_users_find(const oe_access_users_t *u, const char *user, size_t len)
{
    size_t lo = 0, hi = u->count;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strncmp(u->user[mid], user, len);
        if (c == 0)
            c = u->user[mid][len] == '\0' ? 0 : 1;
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* A decoy of the same kind and cost as a real hash: its setting with a fresh salt, hashed
 * once here (crypt_gensalt_rn keeps the cost of the setting it is given). */
static char *make_decoy(const char *like)
{
    char setting[CRYPT_GENSALT_OUTPUT_SIZE], prefix[8] = "";
    struct crypt_data *cd = calloc(1, sizeof(*cd));
    unsigned long cost = 0;
    char *out = NULL;

    if (cd == NULL)
        return NULL;
    if (strncmp(like, "$2", 2) == 0 && strlen(like) > 7) {
        snprintf(prefix, sizeof(prefix), "%.4s", like);
        cost = strtoul(like + 4, NULL, 10);
    } else if (strncmp(like, "$6$", 3) == 0) {
        snprintf(prefix, sizeof(prefix), "$6$");
        if (strncmp(like + 3, "rounds=", 7) == 0)
            cost = strtoul(like + 10, NULL, 10);
    }
    /* other kinds (yescrypt, scrypt): their default cost, which is what their tools write */
    if (crypt_gensalt_rn(prefix[0] != '\0' ? prefix : NULL, cost, NULL, 0, setting, sizeof(setting)) != NULL &&
        crypt_rn("ott-edge-decoy", setting, cd, sizeof(*cd)) != NULL && cd->output[0] != '*')
        out = strdup(cd->output);
    free(cd);
    return out;
}

/* The costs above which one check takes seconds (htpasswd -B writes 5, mkpasswd 5000
 * rounds): refused, so neither a login nor the decoy made at load can stall. */
#define BCRYPT_COST_MAX   14
#define SHA512_ROUNDS_MAX 1000000UL

static const char *too_costly(const char *hash)
{
    if (strncmp(hash, "$2", 2) == 0 && strlen(hash) > 7 && strtoul(hash + 4, NULL, 10) > BCRYPT_COST_MAX)
        return "a bcrypt cost above 14 (each login would take seconds; htpasswd -B -C 5..14)";
    if (strncmp(hash, "$6$rounds=", 10) == 0 && strtoul(hash + 10, NULL, 10) > SHA512_ROUNDS_MAX)
        return "more than 1000000 SHA-512-crypt rounds (each login would take seconds)";
    return NULL;
}

oe_access_users_t *oe_access_users_parse(const char *text, size_t len, char *err, size_t errlen)
{
    oe_access_users_t *u = calloc(1, sizeof(*u));
    size_t cap = 0, line = 0;
    const char *p = text, *end = text + len;

    if (oe_dynlib_load(&lib, err, errlen) != 0) {
        free(u);
        return NULL;
    }
    if (u == NULL)
        goto nomem;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *colon;
        size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
        const char *next = p + n + (nl != NULL);
        char *user, *hash;
        line++;
        if (n > 0 && p[n - 1] == '\r')
            n--;
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n == 0 || p[0] == '#') {
            p = next;
            continue;
        }
        if (memchr(p, '\0', n) != NULL) {
            snprintf(err, errlen, "line %zu: a NUL byte", line);
            goto fail;
        }
        colon = memchr(p, ':', n);
        if (colon == NULL || colon == p || (size_t)(colon - p) > OE_ACCESS_USER_MAX) {
            snprintf(err, errlen, "line %zu: expected user:hash (as htpasswd -B or mkpasswd write)", line);
            goto fail;
        }
        for (const char *c = p; c < colon; c++) {
            if ((unsigned char)*c < 0x20 || *c == 0x7f) {
                snprintf(err, errlen, "line %zu: a control character in the user name", line);
                goto fail;
            }
        }
        if (u->count == OE_ACCESS_USERS_MAX) {
            snprintf(err, errlen, "line %zu: more than %d users", line, OE_ACCESS_USERS_MAX);
            goto fail;
        }
        if (u->count == cap) {
            size_t nc = cap ? cap * 2 : 16;
            char **nu = realloc(u->user, nc * sizeof(char *)), **nh;
            if (nu == NULL)
                goto nomem;
            u->user = nu;
            if ((nh = realloc(u->hash, nc * sizeof(char *))) == NULL)
                goto nomem;
            u->hash = nh;
            cap = nc;
        }
        user = strndup(p, (size_t)(colon - p));
        hash = strndup(colon + 1, n - (size_t)(colon + 1 - p));
        if (user == NULL || hash == NULL) {
            free(user);
            free(hash);
            goto nomem;
        }
        u->user[u->count] = user;
        u->hash[u->count] = hash;
        u->count++;
        /* bcrypt, SHA-512-crypt, yescrypt (and other strong kinds) pass; MD5 ($apr1$, $1$), DES,
         * {SHA}, SHA-256-crypt and plain text do not */
        int cs = hash[0] == '\0' ? CRYPT_SALT_INVALID : crypt_checksalt(hash);
        if (cs != CRYPT_SALT_OK) {
            snprintf(err, errlen,
                     "line %zu (user \"%.64s\"): %s (use bcrypt, SHA-512-crypt or yescrypt: htpasswd -B, or mkpasswd "
                     "-m bcrypt|sha512crypt|yescrypt)",
                     line, user,
                     cs == CRYPT_SALT_METHOD_LEGACY ? "a weak hash kind"
                     : cs == CRYPT_SALT_INVALID     ? "not a hash libxcrypt knows (apr1/MD5, {SHA} and plain text "
                                                      "are not accepted)"
                                                    : "a hash kind this system does not allow");
            goto fail;
        }
        const char *costly = too_costly(hash);
        if (costly != NULL) {
            snprintf(err, errlen, "line %zu (user \"%.64s\"): %s", line, user, costly);
            goto fail;
        }
        p = next;
    }
    if (u->count == 0) {
        snprintf(err, errlen, "no users (lines are user:hash)");
        goto fail;
    }
    /* sort (user, hash) pairs together by name: sort indexes, then permute */
    {
        char ***idx = malloc(u->count * sizeof(*idx));
        char **su = malloc(u->count * sizeof(char *)), **sh = malloc(u->count * sizeof(char *));
        if (idx == NULL || su == NULL || sh == NULL) {
            free(idx);
            free(su);
            free(sh);
            goto nomem;
        }
        for (size_t i = 0; i < u->count; i++)
            idx[i] = &u->user[i];
        qsort(idx, u->count, sizeof(*idx), cmp_users);
        for (size_t i = 0; i < u->count; i++) {
            size_t j = (size_t)(idx[i] - u->user);
            su[i] = u->user[j];
            sh[i] = u->hash[j];
        }
        free(idx);
        free(u->user);
        free(u->hash);
        u->user = su;
        u->hash = sh;
        for (size_t i = 1; i < u->count; i++) {
            if (strcmp(u->user[i - 1], u->user[i]) == 0) {
                snprintf(err, errlen, "user \"%.64s\" is listed twice", u->user[i]);
                goto fail;
            }
        }
    }
    if ((u->decoy = make_decoy(u->hash[0])) == NULL) {
        snprintf(err, errlen, "cannot make a decoy hash like the first user's (libxcrypt)");
        goto fail;
    }
    return u;
nomem:
    snprintf(err, errlen, "out of memory");
fail:
    oe_access_users_free(u);
    return NULL;
}

int oe_access_verify(const char *hash, const char *password, void *data)
{
    struct crypt_data *cd = data;
    size_t hl = strlen(hash);

    if (oe_dynlib_load(&lib, NULL, 0) != 0) /* loaded with the users: a cheap check */
        return 0;
    memset(cd, 0, sizeof(*cd));
    if (crypt_rn(password, hash, cd, sizeof(*cd)) == NULL || cd->output[0] == '*')
        return 0;
    /* the result has the hash's length when it is one of the same kind; the bytes are
     * compared in constant time */
    return strlen(cd->output) == hl && CRYPTO_memcmp(cd->output, hash, hl) == 0;
}

int oe_access_parse_basic(const char *value, size_t len, char *user, size_t ucap, char *password, size_t pcap)
{
    unsigned char dec[((OE_ACCESS_USER_MAX + OE_ACCESS_PASSWORD_MAX + 1) / 3 + 2) * 3 + 4];
    size_t i = 0, b64, pad = 0;
    int n;

    if (len < 6 || strncasecmp(value, "basic", 5) != 0 || (value[5] != ' ' && value[5] != '\t'))
        return -1;
    for (i = 5; i < len && (value[i] == ' ' || value[i] == '\t'); i++)
        ;
    while (len > i && (value[len - 1] == ' ' || value[len - 1] == '\t'))
        len--;
    b64 = len - i;
    if (b64 == 0 || b64 % 4 != 0 || b64 / 4 * 3 > sizeof(dec) - 4)
        return -2;
    for (size_t j = i; j < len; j++) {
        char c = value[j];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
        if (c == '=' && j >= len - 2) {
            pad++;
            continue;
        }
        if (!ok || pad > 0)
            return -2;
    }
    n = EVP_DecodeBlock(dec, (const unsigned char *)value + i, (int)b64);
    if (n < 0 || (size_t)n < pad)
        return -2;
    n -= (int)pad;
    const unsigned char *colon = memchr(dec, ':', (size_t)n);
    if (colon == NULL)
        return -2;
    size_t ul = (size_t)(colon - dec), pl = (size_t)n - ul - 1;
    if (ul >= ucap || ul > OE_ACCESS_USER_MAX || pl >= pcap || pl > OE_ACCESS_PASSWORD_MAX)
        return -2;
    for (int j = 0; j < n; j++)
        if (dec[j] < 0x20 || dec[j] == 0x7f)
            return -2;
    memcpy(user, dec, ul);
    user[ul] = '\0';
    memcpy(password, colon + 1, pl);
    password[pl] = '\0';
    OPENSSL_cleanse(dec, sizeof(dec));
    return 0;
}
