/* tunnel — see tunnel.h. */
#include "tunnel/tunnel.h"

#include <stdlib.h>

#include "loop/loop.h"

enum { CLIENT = 0, UPSTREAM = 1 };

typedef struct side {
    h2o_socket_t *sock;
    oe_wsframe_t in;           /* the frames arriving on sock */
    size_t in_flight;          /* bytes of sock->input being written to the peer */
    uint8_t frame[8];          /* a close frame being written to sock */
    unsigned writing : 1;      /* a write to sock is in flight */
    unsigned eof : 1;          /* nothing more can be read from sock */
    unsigned close_sent : 1;   /* a close frame went into sock (relayed or ours): nothing may follow */
    unsigned close_wanted : 1; /* send ours at the next frame boundary of the peer's stream */
} side_t;

struct tunnel {
    h2o_linklist_t link; /* in the thread's list */
    side_t side[2];
    h2o_loop_t *loop;
    h2o_timeout_t *idle_timeout;
    h2o_timeout_entry_t idle;
    h2o_timeout_entry_t wait; /* bounds a closing handshake */
    uint16_t code;            /* of the close frames we send */
    unsigned closing : 1;
    unsigned done : 1;
    oe_tunnel_closed_cb on_closed;
    void *data;
};
typedef struct tunnel tunnel_t;

static __thread h2o_linklist_t thread_tunnels;
static __thread size_t thread_count;

static void on_read(h2o_socket_t *sock, const char *err);
static void on_write_done(h2o_socket_t *sock, const char *err);

static side_t *side_of(tunnel_t *t, h2o_socket_t *sock)
{
    return t->side[CLIENT].sock == sock ? &t->side[CLIENT] : &t->side[UPSTREAM];
}

static side_t *peer_of(tunnel_t *t, side_t *s)
{
    return s == &t->side[CLIENT] ? &t->side[UPSTREAM] : &t->side[CLIENT];
}

/* Closes both sockets once no write is in flight (a close frame must leave first). */
static void finish(tunnel_t *t)
{
    t->done = 1;
    if (t->side[CLIENT].writing || t->side[UPSTREAM].writing)
        return; /* on_write_done comes back here */
    if (h2o_timeout_is_linked(&t->idle))
        h2o_timeout_unlink(&t->idle);
    if (h2o_timeout_is_linked(&t->wait))
        h2o_timeout_unlink(&t->wait);
    h2o_linklist_unlink(&t->link);
    thread_count--;
    for (int i = 0; i < 2; i++) {
        t->side[i].sock->data = NULL;
        h2o_socket_close(t->side[i].sock);
    }
    oe_tunnel_closed_cb cb = t->on_closed;
    void *data = t->data;
    free(t);
    if (cb != NULL)
        cb(data);
}

/* During a closing handshake: done once each side sent its close (or went away). */
static void check_closed(tunnel_t *t)
{
    if (!t->closing || t->done)
        return;
    for (int i = 0; i < 2; i++)
        if (!t->side[i].eof && t->side[i].in.closes == 0)
            return;
    finish(t);
}

/* Writes our close frame into s if its peer's stream is between frames and s is idle. */
static void try_inject(tunnel_t *t, side_t *s)
{
    if (!s->close_wanted || s->writing || s->close_sent || t->done)
        return;
    if (!oe_wsframe_at_boundary(&peer_of(t, s)->in))
        return; /* relay() injects it where the current frame ends */
    uint8_t mask[4];
    if (s == &t->side[UPSTREAM])
        arc4random_buf(mask, sizeof(mask)); /* a client's frames are masked (RFC 6455 §5.3) */
    h2o_iovec_t v =
        h2o_iovec_init(s->frame, oe_wsframe_close(s->frame, t->code, s == &t->side[UPSTREAM] ? mask : NULL));
    s->close_wanted = 0;
    s->close_sent = 1;
    s->writing = 1;
    h2o_socket_write(s->sock, &v, 1, on_write_done);
}

static void start_close(tunnel_t *t, uint16_t code)
{
    if (t->closing || t->done)
        return;
    t->closing = 1;
    t->code = code;
    for (int i = 0; i < 2; i++) {
        side_t *s = &t->side[i];
        if (!s->close_sent && !s->eof) {
            s->close_wanted = 1;
            try_inject(t, s);
        }
    }
    h2o_timeout_link(t->loop, oe_loop_timeout(t->loop, OE_TUNNEL_CLOSE_WAIT_MS), &t->wait);
    check_closed(t);
}

static void on_idle(h2o_timeout_entry_t *e)
{
    start_close(H2O_STRUCT_FROM_MEMBER(tunnel_t, idle, e), OE_WS_GOING_AWAY);
}

static void on_wait(h2o_timeout_entry_t *e)
{
    finish(H2O_STRUCT_FROM_MEMBER(tunnel_t, wait, e));
}

/* Relays what a has read to its peer b (one write at a time per direction). */
static void relay(tunnel_t *t, side_t *a)
{
    side_t *b = peer_of(t, a);
    h2o_buffer_t *in = a->sock->input;
    if (in->size == 0 || a->in_flight != 0 || t->done)
        return;
    if (!t->closing) {
        h2o_timeout_unlink(&t->idle);
        h2o_timeout_link(t->loop, t->idle_timeout, &t->idle);
    }
    if (b->close_sent || b->eof) {
        /* nothing may follow a close frame: only watch for a's own close */
        oe_wsframe_feed(&a->in, (const uint8_t *)in->bytes, in->size, 0);
        h2o_buffer_consume(&a->sock->input, in->size);
        return; /* (callers call check_closed() last: it may free t) */
    }
    h2o_iovec_t v[2];
    size_t nv = 0, n;
    uint32_t closes = a->in.closes;
    if (b->close_wanted) {
        n = oe_wsframe_feed(&a->in, (const uint8_t *)in->bytes, in->size, 1);
    } else {
        n = oe_wsframe_feed(&a->in, (const uint8_t *)in->bytes, in->size, 0);
    }
    if (n != 0)
        v[nv++] = h2o_iovec_init(in->bytes, n);
    a->in_flight = n;
    if (a->in.closes != closes)
        b->close_sent = 1; /* a's close frame goes through to b */
    if (b->close_wanted && oe_wsframe_at_boundary(&a->in)) {
        uint8_t mask[4];
        if (b == &t->side[UPSTREAM])
            arc4random_buf(mask, sizeof(mask));
        v[nv++] = h2o_iovec_init(b->frame, oe_wsframe_close(b->frame, t->code, b == &t->side[UPSTREAM] ? mask : NULL));
        b->close_wanted = 0;
        b->close_sent = 1;
        a->in_flight = in->size; /* what followed the boundary is dropped */
    }
    h2o_socket_read_stop(a->sock);
    b->writing = 1;
    h2o_socket_write(b->sock, v, nv, on_write_done);
}

static void on_write_done(h2o_socket_t *sock, const char *err)
{
    tunnel_t *t = sock->data;
    side_t *b = side_of(t, sock), *a = peer_of(t, b);
    b->writing = 0;
    if (a->in_flight != 0) {
        h2o_buffer_consume(&a->sock->input, a->in_flight);
        a->in_flight = 0;
    }
    if (err != NULL || t->done) {
        finish(t);
        return;
    }
    try_inject(t, b);
    if (!a->eof && !h2o_socket_is_reading(a->sock))
        h2o_socket_read_start(a->sock, on_read);
    relay(t, a);
    check_closed(t);
}

static void on_eof(tunnel_t *t, side_t *a)
{
    side_t *b = peer_of(t, a);
    if (a == &t->side[CLIENT] && !t->closing) {
        finish(t); /* the browser is gone: the upstream sees its connection close */
        return;
    }
    if (a == &t->side[UPSTREAM] && !t->closing) {
        t->closing = 1;
        t->code = OE_WS_INTERNAL_ERROR;
        if (a->in.closes == 0) {
            /* died without a close frame: tell the browser, unless it is mid-frame */
            if (!oe_wsframe_at_boundary(&a->in)) {
                finish(t);
                return;
            }
            b->close_wanted = 1;
            try_inject(t, b);
        }
        h2o_timeout_link(t->loop, oe_loop_timeout(t->loop, OE_TUNNEL_CLOSE_WAIT_MS), &t->wait);
    }
    check_closed(t);
}

static void on_read(h2o_socket_t *sock, const char *err)
{
    tunnel_t *t = sock->data;
    side_t *a = side_of(t, sock);
    if (err != NULL) {
        a->eof = 1;
        h2o_socket_read_stop(sock);
        relay(t, a); /* bytes that came with the end */
        if (!t->done)
            on_eof(t, a);
        return;
    }
    relay(t, a);
    check_closed(t);
}

void oe_tunnel_start(h2o_context_t *ctx, h2o_socket_t *client, h2o_socket_t *upstream, uint64_t idle_ms,
                     oe_tunnel_closed_cb on_closed, void *data)
{
    tunnel_t *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        h2o_socket_close(client);
        h2o_socket_close(upstream);
        if (on_closed != NULL)
            on_closed(data);
        return;
    }
    t->loop = ctx->loop;
    t->side[CLIENT].sock = client;
    t->side[UPSTREAM].sock = upstream;
    t->on_closed = on_closed;
    t->data = data;
    t->idle.cb = on_idle;
    t->wait.cb = on_wait;
    t->idle_timeout = oe_loop_timeout(ctx->loop, idle_ms);
    if (thread_tunnels.next == NULL)
        h2o_linklist_init_anchor(&thread_tunnels);
    h2o_linklist_insert(&thread_tunnels, &t->link);
    thread_count++;
    h2o_timeout_link(t->loop, t->idle_timeout, &t->idle);
    for (int i = 0; i < 2; i++) {
        t->side[i].sock->data = t;
        h2o_socket_read_start(t->side[i].sock, on_read);
    }
    relay(t, &t->side[UPSTREAM]);
    relay(t, &t->side[CLIENT]);
}

void oe_tunnel_close_all(uint16_t code)
{
    if (thread_tunnels.next == NULL)
        return;
    for (h2o_linklist_t *l = thread_tunnels.next, *next; l != &thread_tunnels; l = next) {
        next = l->next;
        start_close(H2O_STRUCT_FROM_MEMBER(tunnel_t, link, l), code);
    }
}

size_t oe_tunnel_count(void)
{
    return thread_count;
}
