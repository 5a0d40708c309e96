/*
 * loop — small per-worker-thread helpers on libh2o's event loop.
 *
 * Owns: one h2o_timeout_t per (thread, duration), made on first use. libh2o's timeouts
 * are FIFO lists of one fixed duration each, and ott-edge needs a few durations per site
 * (upstream timeout, WebSocket idle, keep-alive, connect); modules ask here instead of
 * each keeping its own table. And a loop's wake-up: an eventfd another thread rings when
 * something the loop polls for (drain, stop) has changed.
 * Must not touch: sockets other than the wake-up's, requests.
 */
#ifndef OE_LOOP_H
#define OE_LOOP_H

#include <stdint.h>

#include "h2o_compat.h"

/* The calling thread's timeout list for ms on loop (at most OE_LOOP_MAX_TIMEOUTS distinct
 * durations per thread; beyond that the nearest longer one is returned, else the
 * longest). Never NULL once the thread has a loop. */
#define OE_LOOP_MAX_TIMEOUTS 64
h2o_timeout_t *oe_loop_timeout(h2o_loop_t *loop, uint64_t ms);

/* A wake-up: open it on any thread (an eventfd, or -1 with errno); attach it on the loop's
 * own thread before that loop runs (libh2o's sockets take their buffers from the thread
 * that makes them, so a socket made on one thread must not be read on another); ring it
 * from any thread: the loop's next wait returns at once. Ringing before the attach is
 * kept. The fd stays open for the life of the process (a ring after the loop ended must
 * not reach a reused descriptor). */
int oe_loop_wake_open(void);
/* Returns the socket (keep it: the loop lives as long as the process), NULL for fd -1. */
h2o_socket_t *oe_loop_wake_attach(h2o_loop_t *loop, int fd);
void oe_loop_wake_ring(int fd);

#endif
