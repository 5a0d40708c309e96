/*
 * http1 — the HTTP/1.1 side of the HTTPS and HTTP listeners: ott-edge's own connection
 * handler around libh2o's request object (h2o_req_t), in place of libh2o 2.2.5's HTTP/1
 * server.
 *
 * Why our own: libh2o 2.2.5's HTTP/1 server lets framing conflicts through
 * (Content-Length with Transfer-Encoding, differing Content-Lengths, bare-LF line ends:
 * the leftover bytes became a second request, i.e. request smuggling behind any front
 * proxy), sends a response head and a small body as two TLS records, formats the head
 * with sprintf, and takes the client socket out of epoll and back for every request.
 *
 * Owns: parsing request heads (libh2o's picohttpparser, bounded in bytes and lines), the
 * framing rules of RFC 9112 (a conflict gets 400 and the connection is closed), request
 * bodies (Content-Length or chunked, bounded by the global max_request_entity_size),
 * Expect: 100-continue, keep-alive and pipelining (one request at a time, in order),
 * writing responses (a head and a small body in one write, so one TLS record; an
 * unknown length is chunked by libh2o's chunked filter), the request, keep-alive and
 * send timeouts, graceful shutdown of idle connections, and handing an upgraded socket
 * over.
 * Must not touch: TLS, routing, the upstream: a parsed request goes to
 * h2o_process_request() like any libh2o protocol's, so handlers and filters see one
 * request model for HTTP/1.1 and HTTP/2.
 */
#ifndef OE_HTTP1_H
#define OE_HTTP1_H

#include <stddef.h>

#include "h2o_compat.h"

#define OE_HTTP1_MAX_HEADERS    100         /* request header lines */
#define OE_HTTP1_MAX_HEAD_BYTES (64 * 1024) /* request line + headers */

/* Serves HTTP/1.x on sock (TLS already done, or plain). Takes the socket. */
void oe_http1_accept(h2o_accept_ctx_t *ctx, h2o_socket_t *sock, struct timeval connected_at);

/* Whether req arrived on a connection of this module (so oe_http1_upgrade applies). */
int oe_http1_is_request(h2o_req_t *req);

/*
 * Switches protocols: writes the response head in req->res (status 101, its headers; the
 * module adds "connection: upgrade"), then detaches the socket from HTTP and hands it to
 * cb, with sock->input holding only what the client sent after its request. On a write
 * error cb gets sock == NULL. The request is disposed (its loggers run) before cb.
 */
typedef void (*oe_http1_upgrade_cb)(void *data, h2o_socket_t *sock);
void oe_http1_upgrade(h2o_req_t *req, oe_http1_upgrade_cb cb, void *data);

/* Graceful shutdown on the calling worker's loop: idle keep-alive connections are closed
 * now, busy ones after their current response (which says "connection: close"), and ones
 * just accepted after their first response (or their request timeout). */
void oe_http1_shutdown(h2o_context_t *ctx);

/* Connections (all workers) accepted whose first request has not begun: a drain waits for
 * them, as a client that has just connected sends its request next. */
uint64_t oe_http1_fresh(void);

/* Open HTTP/1 connections on the calling worker's loop. */
size_t oe_http1_count(void);

#endif
