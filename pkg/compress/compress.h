/*
 * compress — on-the-fly compression of responses on the HTTPS path.
 *
 * Owns: the response filter that brotli- or gzip-encodes compressible responses
 * (compress.* settings: types, minimum size, level), Accept-Encoding negotiation with
 * q-values, Vary: Accept-Encoding, weakening a strong ETag on an encoded variant, and the
 * brotli encoder behind libh2o's compressor interface (gzip is libh2o's own; libbrotlienc
 * is loaded at run time, at the first br response).
 * Must not touch: caching (pkg/cache keys on oe_compress_choose() so both agree), the
 * upstream connection, or responses the upstream already encoded (passed as they are).
 */
#ifndef OE_COMPRESS_H
#define OE_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "h2o_compat.h"

/* Content codings, in the order of preference when a client accepts several equally. */
enum { OE_ENC_IDENTITY = 0, OE_ENC_GZIP = 1, OE_ENC_BR = 2, OE_ENC_COUNT = 3 };
#define OE_ENC_MASK(e) (1u << (e))

typedef struct oe_compress_settings {
    int enabled;              /* compress.enabled */
    const char *const *types; /* compress.types: "text/html", "type/any", "+json" ... */
    size_t types_count;
    uint64_t min_size; /* compress.min_size: bodies of known length below it stay as they are */
    int level;         /* compress.level 1..9: zlib level and brotli quality */
    unsigned offered;  /* OE_ENC_MASK() of the codings produced: gzip and br */
} oe_compress_settings_t;

/* The settings in effect for cfg (the compress.* keys; their defaults live in the config
 * key table only). */
void oe_compress_settings_from_config(const oe_config_t *cfg, oe_compress_settings_t *out);

/* Registers the filter on pc (before any filter that should see encoded bodies, such as
 * the cache's). Does nothing when compress.enabled is off. Call once at startup. */
void oe_compress_register(h2o_pathconf_t *pc, const oe_config_t *cfg);

/* The coding a response to req would get if compressible: the client's best choice among
 * the codings registered; OE_ENC_IDENTITY when compression is off or nothing fits. */
int oe_compress_choose(h2o_req_t *req);

/* Accept-Encoding negotiation (RFC 9110 12.5.3): highest q wins, ties go to the later
 * OE_ENC_* value (br before gzip); "*" covers codings not named; q=0 refuses.
 * Returns OE_ENC_IDENTITY when no offered coding is acceptable. */
int oe_compress_negotiate(const char *accept_encoding, size_t len, unsigned offered);

/* Whether the media type of a Content-Type value matches one of the patterns
 * ("type/subtype", "type/" followed by a star, or "+suffix" such as "+json"). */
int oe_compress_type_matches(const char *const *types, size_t count, const char *ctype, size_t len);

/* The name of a coding ("br", "gzip", "identity"). */
const char *oe_compress_name(int enc);

/* Opens a brotli compressor with libh2o's compressor interface (memory in pool); NULL when
 * out of memory or when libbrotlienc cannot be loaded. */
h2o_compress_context_t *oe_compress_brotli_open(h2o_mem_pool_t *pool, int quality, size_t size_hint);

/* libbrotlienc is loaded at run time, at the first response to be br-encoded (not linked:
 * an ott-edge that never sends br never maps it). load: 0, or -1 after logging once that it
 * cannot be loaded; missing: 1 once loading failed (br is then not offered any more). */
int oe_compress_brotli_load(void);
int oe_compress_brotli_missing(void);

#endif
