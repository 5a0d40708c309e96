/*
 * http_listener — what the plain-HTTP listener answers: ACME HTTP-01 tokens from the
 * challenge table, and a 308 redirect to HTTPS for everything else.
 * Part of the server module; must not touch the proxy or TLS.
 */
#ifndef OE_HTTP_LISTENER_H
#define OE_HTTP_LISTENER_H

#include "config/config.h"
#include "h2o_compat.h"

void oe_http_listener_register(h2o_hostconf_t *host, const oe_config_t *cfg);

/* Builds "https://<host>[:port]<path>" into buf from a Host header value; returns the
 * length, or -1 when the host is not a valid host name / address. Exposed for tests. */
int oe_http_listener_location(const char *authority, size_t authority_len, const char *path, size_t path_len,
                              unsigned https_port, char *buf, size_t cap);

#endif
