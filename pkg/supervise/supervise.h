/*
 * supervise — the single-container entrypoint mode: `ott-edge [options] -- COMMAND ...`.
 *
 * Owns: starting COMMAND as a child (and watching other children: new ott-edge processes
 * started by an upgrade), PID-1 duties (reaping every zombie, including
 * re-parented grandchildren: the process marks itself a child subreaper), forwarding
 * signals to the child, and stopping it with a grace period then SIGKILL.
 * Must not touch: the server or ACME; main.c decides when to call these.
 */
#ifndef OE_SUPERVISE_H
#define OE_SUPERVISE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Starts argv[0] (searched in PATH) with argv. The child gets a clean signal mask and
 * default dispositions. Returns the pid, or -1 with a message. */
pid_t oe_supervise_spawn(char *const argv[], char *err, size_t errlen);

/* Also keeps the exit status of pid (a child started otherwise, e.g. by an upgrade), for
 * oe_supervise_reap(pid, ...). oe_supervise_spawn() watches its child itself. */
void oe_supervise_watch(pid_t pid);

/* Reaps every exited process without blocking. Returns 1 and sets *status (exit code,
 * or 128+signal) when `child` was among them, else 0. */
int oe_supervise_reap(pid_t child, int *status);

/* Sends sig to the child. */
void oe_supervise_forward(pid_t child, int sig);

/* SIGTERM, waits up to grace_ms (reaping), then SIGKILL. Returns the child's status as
 * oe_supervise_reap() does. Safe when the child already exited (returns saved status). */
int oe_supervise_stop(pid_t child, uint64_t grace_ms);

#endif
