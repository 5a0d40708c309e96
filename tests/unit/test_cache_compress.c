/* test_cache_compress — Accept-Encoding negotiation and the compressible-type patterns of
 * pkg/compress (the cache keys on the same negotiation). */
#include <string.h>

#include "check.h"
#include "compress/compress.h"

static const unsigned BOTH = OE_ENC_MASK(OE_ENC_GZIP) | OE_ENC_MASK(OE_ENC_BR);

static int neg(const char *ae, unsigned offered)
{
    return oe_compress_negotiate(ae, strlen(ae), offered);
}

static void test_negotiate(void)
{
    static const struct {
        const char *ae;
        unsigned offered;
        int want;
    } cases[] = {
        {"gzip, deflate, br", BOTH, OE_ENC_BR},
        {"gzip, deflate, br, zstd", BOTH, OE_ENC_BR},
        {"br;q=1.0, gzip;q=0.8, *;q=0.1", BOTH, OE_ENC_BR},
        {"gzip;q=1.0, br;q=0.5", BOTH, OE_ENC_GZIP},
        {"gzip", BOTH, OE_ENC_GZIP},
        {"GZIP", BOTH, OE_ENC_GZIP},
        {"x-gzip", BOTH, OE_ENC_GZIP},
        {"br", OE_ENC_MASK(OE_ENC_GZIP), OE_ENC_IDENTITY},
        {"gzip, br", OE_ENC_MASK(OE_ENC_GZIP), OE_ENC_GZIP},
        {"br;q=0, gzip", BOTH, OE_ENC_GZIP},
        {"br; q=0 , gzip ; q=0.001", BOTH, OE_ENC_GZIP},
        {"gzip;q=0, br;q=0", BOTH, OE_ENC_IDENTITY},
        {"gzip;q=0.000", BOTH, OE_ENC_IDENTITY},
        {"*", BOTH, OE_ENC_BR},
        {"*;q=0", BOTH, OE_ENC_IDENTITY},
        {"*;q=0.5, br;q=0", BOTH, OE_ENC_GZIP},
        {"identity", BOTH, OE_ENC_IDENTITY},
        {"deflate", BOTH, OE_ENC_IDENTITY},
        {"", BOTH, OE_ENC_IDENTITY},
        {",,, ,", BOTH, OE_ENC_IDENTITY},
        {"gzip;level=9", BOTH, OE_ENC_GZIP},
        {"gzip;q=junk", BOTH, OE_ENC_GZIP},
        {"brotli, gzipx", BOTH, OE_ENC_IDENTITY},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int got = neg(cases[i].ae, cases[i].offered);
        CHECK(got == cases[i].want, "\"%s\": got %s, want %s", cases[i].ae, oe_compress_name(got),
              oe_compress_name(cases[i].want));
    }
}

static void test_types(void)
{
    static const char *const types[] = {"text/html", "application/javascript", "text/*", "+json", "image/svg+xml"};
    size_t n = sizeof(types) / sizeof(types[0]);
#define T(ct) oe_compress_type_matches(types, n, ct, strlen(ct))
    CHECK(T("text/html; charset=utf-8"), "html with charset");
    CHECK(T("Application/JavaScript"), "case-insensitive");
    CHECK(T("text/css"), "text/*");
    CHECK(T("application/ld+json; charset=utf-8"), "+json suffix");
    CHECK(T(" image/svg+xml "), "spaces");
    CHECK(!T("image/png"), "png");
    CHECK(!T("application/octet-stream"), "octet-stream");
    CHECK(!T("texty/plain"), "not a prefix match on the type");
    CHECK(!T("json"), "no slash");
    CHECK(!T(""), "empty");
    CHECK(!T("application/json-seq"), "suffix must be +json");
#undef T
}

static void test_defaults(void)
{
    oe_compress_settings_t s;
    oe_compress_settings_from_config(NULL, &s);
    CHECK(s.enabled && s.min_size == 1024 && s.level == 5, "defaults");
#define T(ct) oe_compress_type_matches(s.types, s.types_count, ct, strlen(ct))
    CHECK(T("text/html; charset=utf-8") && T("application/javascript") && T("text/css") && T("application/json") &&
              T("image/svg+xml") && T("application/manifest+json") && T("text/javascript"),
          "OTT's text types compress by default");
    CHECK(!T("image/png") && !T("image/webp") && !T("video/mp4") && !T("font/woff2") && !T("application/zip"),
          "already-compressed types do not");
#undef T
}

int main(void)
{
    test_negotiate();
    test_types();
    test_defaults();
    return CHECK_DONE();
}
