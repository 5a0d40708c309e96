/*
 * fuzz_http01 — what the plain-HTTP listener does with a hostile path and Host header:
 * oe_challenge_http01_get (the token lookup, after a few tokens are put) and
 * oe_http_listener_location (the redirect target). Input: "token\nauthority\npath", with
 * the https port from the first two bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "challenge/challenge.h"
#include "fuzz_common.h"
#include "server/http_listener.h"

#define CHECK(x)                                                                                                       \
    do {                                                                                                               \
        if (!(x))                                                                                                      \
            __builtin_trap();                                                                                          \
    } while (0)

static const char *const tokens[][2] = {
    {"LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0",
     "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"},
    {"evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA", "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.x"},
    {"a", "a.b"},
    {"_-_", "_-_.k"},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        for (size_t i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++)
            if (oe_challenge_http01_put(tokens[i][0], tokens[i][1]) != 0)
                __builtin_trap();
        ready = 1;
    }
    if (size > 64 * 1024)
        return 0;
    fuzz_reader_t r = {data, size};
    unsigned port = (unsigned)fuzz_byte(&r) << 8;
    port |= fuzz_byte(&r);
    size_t tlen, alen, plen;
    char *tok = fuzz_next(&r, '\n', &tlen);
    char *auth = fuzz_next(&r, '\n', &alen);
    char *path = fuzz_next(&r, '\n', &plen);

    char ka[OE_CHALLENGE_KEYAUTHZ_MAX];
    int n = oe_challenge_http01_get(tok, tlen, ka, sizeof(ka));
    if (n >= 0) {
        CHECK((size_t)n == strlen(ka));
        int known = 0;
        for (size_t i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++)
            if (strlen(tokens[i][0]) == tlen && memcmp(tokens[i][0], tok, tlen) == 0 && strcmp(ka, tokens[i][1]) == 0)
                known = 1;
        CHECK(known);
    }
    /* a small buffer must fail, never overflow */
    char small[4];
    n = oe_challenge_http01_get(tok, tlen, small, sizeof(small));
    CHECK(n < (int)sizeof(small));

    char url[4096];
    n = oe_http_listener_location(auth, alen, path, plen, port, url, sizeof(url));
    if (n >= 0) {
        CHECK((size_t)n == strlen(url) && memcmp(url, "https://", 8) == 0);
        for (int i = 0; i < n; i++) /* nothing that could split or smuggle a header */
            CHECK((unsigned char)url[i] > 0x20 && url[i] != 0x7f);
        /* the host part ends at the first '/' after the scheme: it must not be the path's */
        const char *slash = strchr(url + 8, '/');
        CHECK(slash != NULL);
        for (const char *c = url + 8; c < slash; c++)
            CHECK(strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._:[]", *c) != NULL);
    }
    char tiny[16];
    n = oe_http_listener_location(auth, alen, path, plen, port, tiny, sizeof(tiny));
    CHECK(n < (int)sizeof(tiny));
    free(tok);
    free(auth);
    free(path);
    return 0;
}
