/*
 * http — the ACME client's HTTPS transport over libcurl (loaded at run time by
 * curl_api.h on the first oe_acme_http_new(); ott-edge is not linked against it).
 *
 * Owns: one CURL handle reused for every request (keep-alive to the CA), the trust
 * anchor for the CA (acme.ca_file or the system store), timeouts, a cap on response
 * bodies, and capture of the headers ACME needs (Replay-Nonce, Location, Retry-After,
 * Link, Content-Type). A stop flag aborts a transfer in progress.
 * Must not touch: keys, JWS, ACME semantics, logging.
 */
#ifndef OE_ACME_HTTP_H
#define OE_ACME_HTTP_H

#include <stddef.h>

#include "acme/acme_parse.h"

#define OE_ACME_BODY_MAX  (1u << 20)
#define OE_ACME_LINKS_MAX 8192

typedef struct oe_acme_http oe_acme_http_t;

typedef struct oe_acme_resp {
    long status;
    char *body; /* NUL-terminated, at most OE_ACME_BODY_MAX bytes */
    size_t body_len;
    char content_type[128];
    char nonce[256];
    char location[OE_ACME_URL_MAX];
    char retry_after[128];
    char links[OE_ACME_LINKS_MAX]; /* every Link header value, joined with ", " */
} oe_acme_resp_t;

/* ca_file NULL: system trust. stop: read atomically; non-zero aborts a transfer. */
oe_acme_http_t *oe_acme_http_new(const char *ca_file, const int *stop, char *err, size_t errlen);
void oe_acme_http_free(oe_acme_http_t *h);

/* method "GET", "HEAD" or "POST" (body sent as application/jose+json). accept may be NULL.
 * Returns 0 when a response arrived (any status), -1 on a transport error with err set. */
int oe_acme_http_do(oe_acme_http_t *h, const char *method, const char *url, const char *body, const char *accept,
                    oe_acme_resp_t *resp, char *err, size_t errlen);
void oe_acme_resp_free(oe_acme_resp_t *resp);

#endif
