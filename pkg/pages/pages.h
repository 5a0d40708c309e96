/*
 * pages — the small 4xx/5xx answers ott-edge writes itself (404 for an unknown name, 403
 * and 429 from access control, 502/504 from the proxy): JSON for clients that ask for
 * JSON, else a little HTML page, never cached.
 *
 * Owns: the page text and its headers. Must not touch: what the status means, counters,
 * logging (the caller decides and records; this only writes the answer).
 */
#ifndef OE_PAGES_H
#define OE_PAGES_H

#include "h2o_compat.h"

/* Answers req with status and a page saying message. reason and message must be static or
 * outlive the request, and hold no quote or markup (they are written as-is). */
void oe_pages_send(h2o_req_t *req, int status, const char *reason, const char *message);

#endif
