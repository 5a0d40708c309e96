/*
 * access — access control at the edge: who may use a site, and how much.
 *
 * Owns: the access rules of the configuration (top level, sites, `paths` entries) compiled
 * once; the decision for each request on the HTTPS listener (allow/deny by client address,
 * basic authentication against htpasswd files, the request and WebSocket-upgrade token
 * buckets, per-client connection and WebSocket counts) and its answers (403, 401 with
 * WWW-Authenticate, 429 with Retry-After); the fixed-size client table those limits live in;
 * the htpasswd files (re-read on SIGHUP) and the thread that verifies passwords; the
 * /metrics families ott_edge_access_*.
 * The client is the address the proxy's trust rules put in `x-real-ip` (so a spoofed
 * X-Forwarded-For from an untrusted peer never changes a decision); clients inside
 * proxy.trusted_proxies are never limited (IP rules and passwords still apply).
 * Must not touch: the forwarded-header rules (pkg/proxy computes x-real-ip), the upstream,
 * the sockets (pkg/server accepts and closes them; it only asks here whether to).
 */
#ifndef OE_ACCESS_H
#define OE_ACCESS_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "h2o_compat.h"

/* Reads every htpasswd file the configuration names and checks it, without keeping
 * anything (check-config, and before start). Returns 0, or -1 with a message naming the key. */
int oe_access_check(const oe_config_t *cfg, char *err, size_t errlen);

/* Takes cfg's process-wide settings: what the accept path checks (the top-level
 * max_connections, proxy.trusted_proxies, access.ipv6_prefix), the client table when a limit
 * or a password needs it (made once, kept for the process's life: 64 Ki entries whatever
 * the configuration), the password verifier thread when a file is used, the metrics section
 * and a set of counters per site name. Before the server starts, and on a reload once the
 * new generation is built (oe_server_reload); the table, the htpasswd files and the
 * counters carry over. Returns 0, or -1 with a message (out of memory: nothing changed). */
int oe_access_init(const oe_config_t *cfg, char *err, size_t errlen);

/* Compiles site's rules (site is one of cfg->sites; cfg must outlive the handler) and
 * registers its handler on pc. Call it right after the handler that sets x-real-ip (the
 * proxy's pre-handler) and before anything that answers from the edge or the upstream. A
 * site without access rules gets no handler (no cost). The rules belong to the handler and
 * are freed when pc is disposed (h2o_config_dispose_pathconf: a retired generation); the
 * buckets of a new configuration's rules start full. Makes the table, the verifier and the
 * counters cfg needs, but leaves the accept path's rules alone (oe_access_init's), so a
 * reload that fails after this changes nothing in service. */
int oe_access_register(h2o_pathconf_t *pc, const oe_config_t *cfg, const oe_site_t *site, char *err, size_t errlen);

/* The server, when it accepts a connection (any listener, before TLS): returns 0 to go on
 * (*ticket: for oe_access_conn_close), or -1 when the peer already has the top-level
 * access.max_connections open: close the socket. */
int oe_access_conn_open(h2o_socket_t *sock, uint32_t *ticket);
/* The server, when that connection is closed. */
void oe_access_conn_close(uint32_t ticket);

/* The proxy, when a WebSocket upgrade succeeded and its tunnel opens (req still valid):
 * keeps the WebSocket counted (the access handler counted the upgrade when it let it
 * through). Returns what to give oe_access_ws_closed (NULL: nothing counted). */
void *oe_access_ws_open(h2o_req_t *req);
/* The proxy, when that tunnel is gone (also when the handover failed); the signature is an
 * oe_tunnel_closed_cb. */
void oe_access_ws_closed(void *ticket);

/* SIGHUP: re-reads the htpasswd files (a file that fails keeps its users in memory; logged). */
void oe_access_reload(void);

#endif
