/*
 * http — libcurl transport for the ACME client (see http.h). libcurl is reached through
 * curl_api's table (loaded on first use), never linked.
 */
#include "acme/http.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "acme/curl_api.h"

#ifndef OE_VERSION
#define OE_VERSION "dev"
#endif

struct oe_acme_http {
    const oe_curl_api_t *cu;
    CURL *curl;
    char *ca_file;
    const int *stop;
    char errbuf[CURL_ERROR_SIZE];
};

struct xfer {
    oe_acme_resp_t *resp;
    size_t cap;
    int too_large;
};

oe_acme_http_t *oe_acme_http_new(const char *ca_file, const int *stop, char *err, size_t errlen)
{
    const oe_curl_api_t *cu = oe_curl_api(err, errlen);
    if (cu == NULL)
        return NULL;
    oe_acme_http_t *h = calloc(1, sizeof(*h));
    if (!h || !(h->curl = cu->easy_init())) {
        free(h);
        snprintf(err, errlen, "cannot initialise libcurl");
        return NULL;
    }
    h->cu = cu;
    if (ca_file && !(h->ca_file = strdup(ca_file))) {
        cu->easy_cleanup(h->curl);
        free(h);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->stop = stop;
    return h;
}

void oe_acme_http_free(oe_acme_http_t *h)
{
    if (!h)
        return;
    h->cu->easy_cleanup(h->curl);
    free(h->ca_file);
    free(h);
}

void oe_acme_resp_free(oe_acme_resp_t *resp)
{
    free(resp->body);
    memset(resp, 0, sizeof(*resp));
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct xfer *x = arg;
    oe_acme_resp_t *r = x->resp;
    size_t len = size * n;
    if (r->body_len + len > OE_ACME_BODY_MAX) {
        x->too_large = 1;
        return 0; /* aborts the transfer */
    }
    if (r->body_len + len + 1 > x->cap) {
        size_t cap = x->cap ? x->cap : 4096;
        while (cap < r->body_len + len + 1)
            cap *= 2;
        char *b = realloc(r->body, cap);
        if (!b)
            return 0;
        r->body = b;
        x->cap = cap;
    }
    memcpy(r->body + r->body_len, data, len);
    r->body_len += len;
    r->body[r->body_len] = '\0';
    return len;
}

/* If the header line is "name: value", copies the trimmed value into out. */
static int header_value(const char *line, size_t len, const char *name, char *out, size_t cap)
{
    size_t nlen = strlen(name);
    if (len <= nlen || line[nlen] != ':' || strncasecmp(line, name, nlen) != 0)
        return 0;
    const char *v = line + nlen + 1;
    size_t vlen = len - nlen - 1;
    while (vlen > 0 && (*v == ' ' || *v == '\t'))
        v++, vlen--;
    while (vlen > 0 && isspace((unsigned char)v[vlen - 1]))
        vlen--;
    if (vlen >= cap)
        vlen = cap - 1; /* truncated values are then rejected by their parsers */
    memcpy(out, v, vlen);
    out[vlen] = '\0';
    return 1;
}

static size_t on_header(char *line, size_t size, size_t n, void *arg)
{
    struct xfer *x = arg;
    oe_acme_resp_t *r = x->resp;
    size_t len = size * n;
    char link[OE_ACME_URL_MAX + 256];
    if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) { /* a new response (after 100, etc.) */
        r->nonce[0] = r->location[0] = r->retry_after[0] = r->links[0] = r->content_type[0] = '\0';
        return len;
    }
    if (header_value(line, len, "replay-nonce", r->nonce, sizeof(r->nonce)) ||
        header_value(line, len, "location", r->location, sizeof(r->location)) ||
        header_value(line, len, "retry-after", r->retry_after, sizeof(r->retry_after)) ||
        header_value(line, len, "content-type", r->content_type, sizeof(r->content_type)))
        return len;
    if (header_value(line, len, "link", link, sizeof(link))) {
        size_t used = strlen(r->links), add = strlen(link);
        if (used + add + 3 < sizeof(r->links)) {
            if (used)
                memcpy(r->links + used, ", ", 2), used += 2;
            memcpy(r->links + used, link, add + 1);
        }
    }
    return len;
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    const int *stop = arg;
    return stop && __atomic_load_n(stop, __ATOMIC_RELAXED) ? 1 : 0;
}

int oe_acme_http_do(oe_acme_http_t *h, const char *method, const char *url, const char *body, const char *accept,
                    oe_acme_resp_t *resp, char *err, size_t errlen)
{
    memset(resp, 0, sizeof(*resp));
    struct xfer x = {.resp = resp};
    struct curl_slist *hdrs = NULL;
    CURL *c = h->curl;
    const oe_curl_api_t *cu = h->cu;
    int is_post = strcmp(method, "POST") == 0, is_head = strcmp(method, "HEAD") == 0;

    cu->easy_reset(c); /* keeps the connection cache */
    cu->easy_setopt(c, CURLOPT_URL, url);
    cu->easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https"); /* RFC 8555 §6.1: HTTPS only */
    cu->easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    cu->easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    cu->easy_setopt(c, CURLOPT_TIMEOUT_MS, 60000L);
    cu->easy_setopt(c, CURLOPT_USERAGENT, "ott-edge/" OE_VERSION " libcurl");
    cu->easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
    cu->easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    cu->easy_setopt(c, CURLOPT_WRITEDATA, &x);
    cu->easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    cu->easy_setopt(c, CURLOPT_HEADERDATA, &x);
    cu->easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    cu->easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    cu->easy_setopt(c, CURLOPT_XFERINFODATA, (void *)h->stop);
    if (h->ca_file)
        cu->easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
    if (is_head)
        cu->easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (is_post) {
        hdrs = cu->slist_append(hdrs, "Content-Type: application/jose+json");
        cu->easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
        cu->easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)(body ? strlen(body) : 0));
    }
    if (accept) {
        char a[128];
        snprintf(a, sizeof(a), "Accept: %s", accept);
        hdrs = cu->slist_append(hdrs, a);
    }
    hdrs = cu->slist_append(hdrs, "Expect:"); /* no 100-continue round trip */
    cu->easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);

    h->errbuf[0] = '\0';
    CURLcode rc = cu->easy_perform(c);
    cu->slist_free_all(hdrs);
    if (rc != CURLE_OK) {
        if (x.too_large)
            snprintf(err, errlen, "%s %s: response larger than %u bytes", method, url, OE_ACME_BODY_MAX);
        else if (rc == CURLE_ABORTED_BY_CALLBACK)
            snprintf(err, errlen, "%s %s: stopped", method, url);
        else
            snprintf(err, errlen, "%s %s: %s", method, url, h->errbuf[0] ? h->errbuf : cu->easy_strerror(rc));
        oe_acme_resp_free(resp);
        return -1;
    }
    cu->easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
    if (!resp->body) {
        resp->body = calloc(1, 1);
        if (!resp->body) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    return 0;
}
