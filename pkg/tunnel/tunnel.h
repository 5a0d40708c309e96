/*
 * tunnel — established WebSockets: the bytes between a client socket and an upstream
 * socket after a 101, and how such a connection ends.
 *
 * Owns: relaying both directions without copying (a direction pauses while its write is
 * in flight: TCP backpressure, nothing queued), the idle timeout, following the frame
 * boundaries of both streams (RFC 6455 §5.2) so that ott-edge can end a WebSocket with a
 * close frame instead of a TCP reset: 1001 to the client and a close to the upstream on
 * drain or idle expiry, 1011 to the client when the upstream dies, the closing handshake
 * bounded in time; the per-thread list of open tunnels.
 * Must not touch: HTTP (the upgrade happened before), TLS, the pool the upstream socket
 * came from (an upstream socket that carried a WebSocket is never reused).
 */
#ifndef OE_TUNNEL_H
#define OE_TUNNEL_H

#include <stddef.h>
#include <stdint.h>

#include "h2o_compat.h"
#include "tunnel/wsframe.h"

#define OE_TUNNEL_CLOSE_WAIT_MS 1000 /* how long a closing handshake may take before TCP closes */

enum {
    OE_WS_GOING_AWAY = 1001,     /* drain, idle timeout */
    OE_WS_INTERNAL_ERROR = 1011, /* the upstream went away without a close frame */
};

/* Called once when both sockets are closed (the tunnel is gone). */
typedef void (*oe_tunnel_closed_cb)(void *data);

/*
 * Starts relaying between client and upstream (both sockets are taken). Bytes already in
 * client->input and upstream->input are relayed first. idle_ms closes the WebSocket (with
 * 1001 both ways) after that long without a byte in either direction.
 */
void oe_tunnel_start(h2o_context_t *ctx, h2o_socket_t *client, h2o_socket_t *upstream, uint64_t idle_ms,
                     oe_tunnel_closed_cb on_closed, void *data);

/* On the calling worker's loop: ends every open tunnel with a close frame carrying code
 * (both ways); each is closed once both sides answered or after OE_TUNNEL_CLOSE_WAIT_MS. */
void oe_tunnel_close_all(uint16_t code);

/* Open tunnels on the calling worker's loop. */
size_t oe_tunnel_count(void);

#endif
