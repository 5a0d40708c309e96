/*
 * httpget — one plain-HTTP GET (or empty POST) over a blocking-style socket with hard deadlines, for the
 * two small clients that need no more: the upstream health prober (proxy/health.c, on its
 * own thread) and the `ott-edge healthcheck` subcommand (admin/healthcheck.c).
 *
 * Owns: name resolution with a deadline (numeric hosts directly; names on a short-lived
 * detached thread that is abandoned when the deadline passes), a non-blocking connect
 * and send/recv driven by poll(), and parsing the status line. What it reads is bounded
 * by the caller's buffer; nothing else from the network is interpreted. One connection
 * per call ("Connection: close"), never reused. No TLS, no redirects, no body decoding.
 * Must not touch: logging, configuration, server or proxy state; it is safe to call from
 * any thread and from a short-lived process.
 */
#ifndef OE_HTTPGET_H
#define OE_HTTPGET_H

#include <stddef.h>
#include <stdint.h>

typedef struct oe_httpget_req {
    const char *host;            /* DNS name, IPv4 or IPv6 literal (no brackets) */
    uint16_t port;               /* also the Host header's port */
    const char *path;            /* origin-form: starts with '/', no spaces or controls */
    const char *user_agent;      /* NULL: no User-Agent header */
    const char *authorization;   /* NULL: no Authorization header; else its value ("Bearer ...") */
    int post;                    /* POST with an empty body instead of GET */
    int http10;                  /* send HTTP/1.0, else HTTP/1.1 */
    int head_only;               /* stop reading once the header block is complete */
    unsigned timeout_ms;         /* the whole exchange */
    unsigned connect_timeout_ms; /* resolution + connect (0: timeout_ms) */
} oe_httpget_req_t;

/* What went wrong (the return value of oe_httpget); err always has the detail. */
enum {
    OE_HTTPGET_OK = 0,      /* a valid status line arrived */
    OE_HTTPGET_E_ARG,       /* bad host, path or buffer */
    OE_HTTPGET_E_RESOLVE,   /* the name did not resolve (or not in time) */
    OE_HTTPGET_E_CONNECT,   /* no address accepted the connection in time */
    OE_HTTPGET_E_SEND,      /* the request could not be sent */
    OE_HTTPGET_E_NOANSWER,  /* nothing came back before close or the deadline */
    OE_HTTPGET_E_BADANSWER, /* something came back, but no valid "HTTP/1.x NNN" line */
};

typedef struct oe_httpget_resp {
    int status;    /* 100..599 when OE_HTTPGET_OK, else 0 */
    size_t len;    /* bytes kept in buf (NUL-terminated): status line, headers, start of body */
    int timed_out; /* reading stopped at the deadline (the answer may be cut short) */
} oe_httpget_resp_t;

/*
 * GET req->path from req->host:req->port. Reads the answer into buf (at most cap - 1
 * bytes) until the peer closes, buf is full, the deadline passes or (head_only) the
 * header block is complete. Returns OE_HTTPGET_OK with resp->status set, or one of the
 * OE_HTTPGET_E_* codes with a one-line reason in err.
 */
int oe_httpget(const oe_httpget_req_t *req, char *buf, size_t cap, oe_httpget_resp_t *resp, char *err, size_t errlen);

#endif
