/*
 * abuse — memory of peers whose connections were cut for abuse (e.g. HTTP/2 rapid
 * reset), so that reconnecting again and again does not reset their budget.
 * Part of the server module. A fixed-size table (bounded memory whatever the attacker
 * does), mutex-protected, touched only on abuse events and, while it holds anything,
 * once per accepted connection.
 */
#ifndef OE_ABUSE_H
#define OE_ABUSE_H

#include <stdint.h>
#include <sys/socket.h>

#define OE_ABUSE_STRIKES   2     /* connections cut within the window before a block */
#define OE_ABUSE_WINDOW_MS 60000 /* strikes older than this are forgotten */
#define OE_ABUSE_BLOCK_MS  60000 /* how long a blocked peer's connections are refused */

/* Records that a connection from sa was cut for abuse. Returns 1 when the peer is now
 * blocked. */
int oe_abuse_strike(const struct sockaddr *sa, uint64_t now_ms);
/* 1 when new connections from sa are to be refused now. */
int oe_abuse_blocked(const struct sockaddr *sa, uint64_t now_ms);
/* Forget everything (tests). */
void oe_abuse_reset(void);

#endif
