/*
 * fuzz_access — the parsers of pkg/access on hostile input: the Authorization header's
 * Basic credentials (an exact-size copy, not NUL-terminated, as libh2o hands it over), an
 * htpasswd file, a client address with its key, and path-prefix matching.
 * Layout: byte 0 picks the parser (0: Basic, 1: htpasswd, 2: address + key, 3: prefix
 * "\n" path); the rest is its input. Checks the results' invariants.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "access/internal.h"
#include "fuzz_common.h"

#define CHECK(x)                                                                                                       \
    do {                                                                                                               \
        if (!(x))                                                                                                      \
            __builtin_trap();                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 64 * 1024)
        return 0;
    fuzz_reader_t r = {data + 1, size - 1};
    size_t n;
    char *in = fuzz_next(&r, 0xff, &n); /* exact size: a read past the end is caught */

    switch (data[0] % 4) {
    case 0: {
        char user[OE_ACCESS_USER_MAX + 1], password[OE_ACCESS_PASSWORD_MAX + 1];
        int rc = oe_access_parse_basic(in, n, user, sizeof(user), password, sizeof(password));
        CHECK(rc == 0 || rc == -1 || rc == -2);
        if (rc == 0) {
            CHECK(strlen(user) <= OE_ACCESS_USER_MAX && strlen(password) <= OE_ACCESS_PASSWORD_MAX);
            CHECK(strchr(user, ':') == NULL);
            for (const char *p = user; *p; p++)
                CHECK((unsigned char)*p >= 0x20 && *p != 0x7f);
            for (const char *p = password; *p; p++)
                CHECK((unsigned char)*p >= 0x20 && *p != 0x7f);
        }
        break;
    }
    case 1: {
        char err[256];
        if (n > 4096) /* each accepted file hashes a decoy once: keep runs short */
            break;
        oe_access_users_t *u = oe_access_users_parse(in, n, err, sizeof(err));
        if (u != NULL) {
            CHECK(oe_access_users_count(u) >= 1 && oe_access_users_decoy(u) != NULL);
            for (long i = 0; i < (long)oe_access_users_count(u); i++)
                CHECK(oe_access_users_hash(u, i) != NULL);
            CHECK(oe_access_users_find(u, "", 0) < 0);
        } else {
            CHECK(err[0] != '\0');
        }
        oe_access_users_free(u);
        break;
    }
    case 2: {
        struct sockaddr_storage ss;
        oe_access_key_t k1, k2;
        if (oe_access_parse_ip(in, n, &ss) == 0) {
            CHECK(ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
            CHECK(oe_access_key_of((struct sockaddr *)&ss, 64, &k1) == 0);
            CHECK(oe_access_key_of((struct sockaddr *)&ss, 128, &k2) == 0);
            CHECK(memcmp(k1.b, k2.b, 8) == 0); /* a /64 keeps the first 8 bytes */
        }
        break;
    }
    default: {
        size_t pl;
        fuzz_reader_t r2 = {(const uint8_t *)in, n};
        char *prefix = fuzz_next(&r2, '\n', &pl);
        size_t rest = r2.left;
        int m = oe_access_prefix_match(prefix, pl, (const char *)r2.p, rest);
        if (m && !(pl == 1 && prefix[0] == '/'))
            CHECK(rest >= pl && (rest == pl || r2.p[pl] == '/'));
        free(prefix);
        break;
    }
    }
    free(in);
    return 0;
}
