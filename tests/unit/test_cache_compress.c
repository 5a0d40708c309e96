/* test_cache_compress — Accept-Encoding negotiation and the compressible-type patterns of
 * pkg/compress (the cache keys on the same negotiation), and the settings both modules
 * take from a configuration with every key at its default (the key table's). */
#include <string.h>

#include "cache/cache.h"
#include "check.h"
#include "compress/compress.h"
#include "config/config.h"

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

/* Every key at its default: an empty file and no environment. */
static oe_config_t *defaults(void)
{
    char *noenv[] = {NULL}, err[OE_CONFIG_ERR_MAX];
    oe_config_t *cfg = oe_config_load("/dev/null", noenv, err, sizeof(err));
    CHECK(cfg != NULL, "loading the defaults: %s", err);
    return cfg;
}

static void test_defaults(void)
{
    oe_config_t *cfg = defaults();
    if (cfg == NULL)
        return;
    oe_compress_settings_t s;
    oe_compress_settings_from_config(cfg, &s);
    CHECK(s.enabled && s.min_size == 1024 && s.level == 5, "compress defaults");
    CHECK(s.offered == (OE_ENC_MASK(OE_ENC_GZIP) | OE_ENC_MASK(OE_ENC_BR)), "gzip and br offered");
#define T(ct) oe_compress_type_matches(s.types, s.types_count, ct, strlen(ct))
    CHECK(T("text/html; charset=utf-8") && T("application/javascript") && T("text/css") && T("application/json") &&
              T("image/svg+xml") && T("application/manifest+json") && T("text/javascript"),
          "OTT's text types compress by default");
    CHECK(!T("image/png") && !T("image/webp") && !T("video/mp4") && !T("font/woff2") && !T("application/zip"),
          "already-compressed types do not");
#undef T
    oe_cache_settings_t c;
    oe_cache_settings_from_config(cfg, &c);
    CHECK(c.enabled && c.max_size == 64ull << 20 && c.max_object == 8ull << 20 && c.lock_timeout_ms == 1000,
          "cache defaults: enabled %d, max_size %llu, max_object %llu, lock_timeout %llu ms", c.enabled,
          (unsigned long long)c.max_size, (unsigned long long)c.max_object, (unsigned long long)c.lock_timeout_ms);
    oe_config_free(cfg);
}

int main(void)
{
    test_negotiate();
    test_types();
    test_defaults();
    return CHECK_DONE();
}
