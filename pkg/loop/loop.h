/*
 * loop — small per-worker-thread helpers on libh2o's event loop.
 *
 * Owns: one h2o_timeout_t per (thread, duration), made on first use. libh2o's timeouts
 * are FIFO lists of one fixed duration each, and ott-edge needs a few durations per site
 * (upstream timeout, WebSocket idle, keep-alive, connect); modules ask here instead of
 * each keeping its own table.
 * Must not touch: sockets, requests.
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

#endif
