/*
 * admin/healthcheck — the client side of `ott-edge healthcheck`: one HTTP/1.0 GET on the
 * admin listener over a plain socket (httpget), so container images need no curl.
 *
 * Owns: oe_admin_healthcheck() only (declared in admin.h) and its messages; which address
 * to ask is oe_admin_target() (client.c), shared with `ott-edge status`. Must not touch the admin listener itself or
 * any server state: it runs in a separate short-lived process.
 */
#include "admin/admin.h"
#include "admin/internal.h"

#include <stdio.h>
#include <string.h>

#include "httpget/httpget.h"

#define HC_TIMEOUT_MS   2000
#define HC_RESPONSE_MAX 2048 /* the status line plus a short reason is all we read */

/* Copies the first line of s (at most n bytes) into out, for messages. */
static void first_line(const char *s, char *out, size_t outlen)
{
    size_t n = strcspn(s, "\r\n");
    if (n >= outlen)
        n = outlen - 1;
    memcpy(out, s, n);
    out[n] = '\0';
}

int oe_admin_healthcheck(const char *admin_addr, const char *path, char *err, size_t errlen)
{
    char host[256];
    uint16_t port;
    if (oe_admin_target(admin_addr, host, sizeof(host), &port, err, errlen) != 0)
        return 1;
    oe_httpget_req_t req = {.host = host,
                            .port = port,
                            .path = path,
                            .user_agent = "ott-edge-healthcheck",
                            .http10 = 1,
                            .timeout_ms = HC_TIMEOUT_MS};
    oe_httpget_resp_t resp;
    char buf[HC_RESPONSE_MAX + 1], e[256];
    int rc = oe_httpget(&req, buf, sizeof(buf), &resp, e, sizeof(e));
    switch (rc) {
    case OE_HTTPGET_OK:
        break;
    case OE_HTTPGET_E_RESOLVE:
        snprintf(err, errlen, "admin host: %s", e);
        return 1;
    case OE_HTTPGET_E_CONNECT:
        snprintf(err, errlen, "cannot connect to the admin listener at %s:%u: %s", host, (unsigned)port, e);
        return 1;
    case OE_HTTPGET_E_SEND:
        snprintf(err, errlen, "sending the request to %s:%u failed: %s", host, (unsigned)port, e);
        return 1;
    case OE_HTTPGET_E_NOANSWER:
    case OE_HTTPGET_E_BADANSWER:
        snprintf(err, errlen, "%s from %s:%u%s", e, host, (unsigned)port, path);
        return 1;
    default:
        snprintf(err, errlen, "admin healthcheck of %s: %s", path, e);
        return 1;
    }

    char line[160], reason[160] = "";
    first_line(buf, line, sizeof(line));
    const char *body = strstr(buf, "\r\n\r\n");
    if (body != NULL)
        first_line(body + 4, reason, sizeof(reason));
    if (resp.status != 200) {
        snprintf(err, errlen, "%s answered \"%s\"%s%s", path, line, reason[0] ? ": " : "", reason);
        return 1;
    }
    snprintf(err, errlen, "%s answered \"%s\"", path, line);
    return 0;
}
