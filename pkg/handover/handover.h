/*
 * handover — the binary upgrade: a running ott-edge starts a new one (the binary at its own
 * path, so a replaced file is picked up), hands it its listening sockets, and learns when it
 * serves; the new one takes the sockets over and tells the old one (and systemd) it is ready.
 *
 * Owns: systemd's socket-passing protocol (LISTEN_PID / LISTEN_FDS / LISTEN_FDNAMES, the
 * sockets at fd 3 onwards), read back with libsystemd's sd_listen_fds_with_names(); the
 * readiness pipe between the two processes; sd_notify() (READY=1 and MAINPID= for a
 * Type=notify service). libsystemd is loaded at run time and only when systemd's variables
 * are there, so an ott-edge outside systemd never maps it.
 * Must not touch: what the sockets are used for (server and admin decide), connections,
 * configuration.
 * The same protocol lets systemd itself pass sockets (socket activation).
 */
#ifndef OE_HANDOVER_H
#define OE_HANDOVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define OE_HANDOVER_MAX_FDS 256

/* ---- the new process ------------------------------------------------------------------ */

/* Reads the sockets handed to this process (LISTEN_* for this pid); call once at start.
 * Returns how many were handed over (0 when none), -1 with a message on a broken handover. */
int oe_handover_init(char *err, size_t errlen);

/*
 * Takes the handed-over listening sockets named name ("https", "http", "admin") that are
 * bound to addr (a listener address as in the configuration): up to max fds into fds;
 * returns how many. A socket of that name bound elsewhere (the address changed) is not
 * taken; oe_handover_close_unused() closes it.
 */
size_t oe_handover_take(const char *name, const char *addr, int *fds, size_t max);
void oe_handover_close_unused(void);

/* This process serves now: tells the process that started it (when it was started by an
 * upgrade) and systemd (READY=1, MAINPID=). */
void oe_handover_ready(void);

/* ---- the old process ---------------------------------------------------------------- */

typedef struct oe_handover_fd {
    const char *name;
    int fd;
} oe_handover_fd_t;

/*
 * Starts exe with argv and this environment (plus extra_env, one "NAME=value", when not
 * NULL), handing it fds (they stay open here too). *ready_fd gets the read end of the
 * readiness pipe. Returns the child's pid, or -1 with a message.
 */
pid_t oe_handover_spawn(const char *exe, char *const argv[], const char *extra_env, const oe_handover_fd_t *fds,
                        size_t n, int *ready_fd, char *err, size_t errlen);

/* Waits up to timeout_ms for the new process to say it serves. 0 when it did; -1 with a
 * message when it exited, closed the pipe or took too long. */
int oe_handover_wait_ready(int ready_fd, uint64_t timeout_ms, char *err, size_t errlen);

/* The absolute path of the running binary as it was at start (before a package upgrade
 * replaces the file); call once at start. */
const char *oe_handover_exe(void);

#endif
