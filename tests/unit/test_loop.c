/* test_loop — a loop's wake-up (pkg/loop: oe_loop_wake_*): a ring from another thread ends
 * the loop's wait at once (the wait is 10 s; the checks allow 5), a ring made before the
 * attach is kept, and -1 (no eventfd) is harmless. */
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "loop/loop.h"

#define LONG_WAIT_MS 10000

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct waiter {
    int fd;
    int attached; /* set by the loop thread once its wake-up is attached */
    uint64_t waited_ms;
};

static void *wait_once(void *arg)
{
    struct waiter *w = arg;
    h2o_evloop_t *loop = h2o_evloop_create();
    h2o_socket_t *sock = oe_loop_wake_attach(loop, w->fd);
    __atomic_store_n(&w->attached, sock != NULL, __ATOMIC_RELEASE);
    uint64_t t0 = now_ms();
    h2o_evloop_run(loop, LONG_WAIT_MS);
    w->waited_ms = now_ms() - t0;
    h2o_socket_close(sock);
    h2o_evloop_run(loop, 0);
    h2o_evloop_destroy(loop);
    return NULL;
}

int main(void)
{
    /* rung from another thread while that loop waits */
    struct waiter w = {.fd = oe_loop_wake_open()};
    CHECK(w.fd >= 0, "eventfd");
    pthread_t t;
    CHECK(pthread_create(&t, NULL, wait_once, &w) == 0);
    while (!__atomic_load_n(&w.attached, __ATOMIC_ACQUIRE))
        usleep(1000);
    usleep(100 * 1000); /* the loop is in its wait by now */
    oe_loop_wake_ring(w.fd);
    pthread_join(t, NULL);
    CHECK(w.waited_ms < LONG_WAIT_MS / 2, "a ring did not end the wait (%llu ms)", (unsigned long long)w.waited_ms);

    /* rung before the attach: kept */
    struct waiter early = {.fd = oe_loop_wake_open()};
    oe_loop_wake_ring(early.fd);
    oe_loop_wake_ring(early.fd);
    CHECK(pthread_create(&t, NULL, wait_once, &early) == 0);
    pthread_join(t, NULL);
    CHECK(early.waited_ms < LONG_WAIT_MS / 2, "a ring before the attach was lost (%llu ms)",
          (unsigned long long)early.waited_ms);

    /* no eventfd: nothing to attach, nothing rung */
    h2o_evloop_t *loop = h2o_evloop_create();
    CHECK(oe_loop_wake_attach(loop, -1) == NULL);
    oe_loop_wake_ring(-1);
    h2o_evloop_destroy(loop);
    return CHECK_DONE();
}
