/* loop — see loop.h. */
#include "loop/loop.h"

#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

typedef struct {
    uint64_t ms;
    h2o_timeout_t t;
} slot_t;

static __thread slot_t slots[OE_LOOP_MAX_TIMEOUTS];
static __thread size_t nslots;
static __thread h2o_loop_t *slots_loop;

h2o_timeout_t *oe_loop_timeout(h2o_loop_t *loop, uint64_t ms)
{
    if (slots_loop != loop) { /* a thread has one loop; a new one (tests) starts afresh */
        nslots = 0;
        slots_loop = loop;
    }
    for (size_t i = 0; i < nslots; i++)
        if (slots[i].ms == ms)
            return &slots[i].t;
    if (nslots < OE_LOOP_MAX_TIMEOUTS) {
        slot_t *s = &slots[nslots++];
        s->ms = ms;
        h2o_timeout_init(loop, &s->t, ms);
        return &s->t;
    }
    slot_t *best = NULL, *longest = &slots[0];
    for (size_t i = 0; i < nslots; i++) {
        if (slots[i].ms > longest->ms)
            longest = &slots[i];
        if (slots[i].ms > ms && (best == NULL || slots[i].ms < best->ms))
            best = &slots[i];
    }
    return best != NULL ? &best->t : &longest->t;
}

int oe_loop_wake_open(void)
{
    return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

static void on_wake(h2o_socket_t *sock, const char *err)
{
    (void)err;                                           /* an eventfd does not fail or end */
    h2o_buffer_consume(&sock->input, sock->input->size); /* the counter: the wake-up is the message */
}

h2o_socket_t *oe_loop_wake_attach(h2o_loop_t *loop, int fd)
{
    if (fd < 0)
        return NULL;
    h2o_socket_t *sock = h2o_evloop_socket_create(loop, fd, 0);
    h2o_socket_read_start(sock, on_wake);
    return sock;
}

void oe_loop_wake_ring(int fd)
{
    uint64_t one = 1;
    if (fd < 0)
        return;
    while (write(fd, &one, sizeof(one)) < 0 && errno == EINTR)
        ; /* EAGAIN: the counter is full, so a wake-up is already pending */
}
