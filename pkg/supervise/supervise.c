/*
 * supervise — the single-container entrypoint mode: `ott-edge [options] -- COMMAND ...`.
 *
 * Owns: starting COMMAND as a child, PID-1 duties (reaping every zombie, including
 * re-parented grandchildren: the process marks itself a child subreaper), forwarding
 * signals to the child, and stopping it with a grace period then SIGKILL.
 * Must not touch: the server or ACME; main.c decides when to call these.
 *
 * Reaping uses waitpid(-1, WNOHANG), so it collects every child of this process: nothing
 * else in ott-edge may wait for a child of its own. Once the supervised child has been
 * reaped its pid may be reused by the kernel, so it is never signalled again; its status
 * is kept here so that later calls can still return it.
 */
#define _GNU_SOURCE
#include "supervise/supervise.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>

#include "util/util.h"

extern char **environ;

/* The watched children (the supervised command, ott-edge processes started by an upgrade)
 * and their exit once reaped (by reap() or stop(), from any thread). A slot is reused once
 * its child has been reaped and another is watched. */
#define WATCH_MAX 16
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    pid_t pid; /* 0: free */
    int done, status;
} watched[WATCH_MAX];

/* Bounds one reaping pass; a pass stops earlier as soon as nothing is left to reap. */
#define REAP_MAX_PER_CALL 4096

static int decode_status(int wstatus)
{
    if (WIFEXITED(wstatus))
        return WEXITSTATUS(wstatus);
    if (WIFSIGNALED(wstatus))
        return 128 + WTERMSIG(wstatus);
    return 1;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Whether the child has been reaped already; copies its status. Caller holds lock. */
static int is_done_locked(pid_t child, int *status)
{
    for (size_t i = 0; child > 0 && i < WATCH_MAX; i++)
        if (watched[i].pid == child && watched[i].done) {
            if (status != NULL)
                *status = watched[i].status;
            return 1;
        }
    return 0;
}

/* Caller holds lock. Prefers a free slot, else the oldest reaped one. */
static void watch_locked(pid_t pid)
{
    size_t k = WATCH_MAX;
    for (size_t i = 0; i < WATCH_MAX && k == WATCH_MAX; i++)
        if (watched[i].pid == 0 || watched[i].pid == pid)
            k = i;
    for (size_t i = 0; i < WATCH_MAX && k == WATCH_MAX; i++)
        if (watched[i].done)
            k = i;
    if (k < WATCH_MAX)
        watched[k].pid = pid, watched[k].done = 0, watched[k].status = 0;
}

void oe_supervise_watch(pid_t pid)
{
    if (pid <= 0)
        return;
    pthread_mutex_lock(&lock);
    watch_locked(pid);
    pthread_mutex_unlock(&lock);
}

pid_t oe_supervise_spawn(char *const argv[], char *err, size_t errlen)
{
    if (argv == NULL || argv[0] == NULL || argv[0][0] == '\0') {
        snprintf(err, errlen, "no command given after --");
        return -1;
    }

    /* Orphaned grandchildren are re-parented to us instead of to init, so we reap them. */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
        snprintf(err, errlen, "cannot become a child subreaper: %s", strerror(errno));
        return -1;
    }

    /* The child starts with an empty signal mask and every signal at its default, whatever
     * ott-edge's threads have blocked or installed. */
    posix_spawnattr_t attr;
    sigset_t mask, all;
    int rc = posix_spawnattr_init(&attr);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start %s: %s", argv[0], strerror(rc));
        return -1;
    }
    sigemptyset(&mask);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &mask);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

    pid_t pid = -1;
    rc = posix_spawnp(&pid, argv[0], NULL, &attr, argv, environ);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start %s: %s%s", argv[0], strerror(rc),
                 rc == ENOENT ? " (not found in PATH)" : "");
        return -1;
    }

    oe_supervise_watch(pid);
    return pid;
}

int oe_supervise_reap(pid_t child, int *status)
{
    pthread_mutex_lock(&lock);
    for (int i = 0; i < REAP_MAX_PER_CALL; i++) {
        int wstatus;
        pid_t pid = waitpid(-1, &wstatus, WNOHANG);
        if (pid < 0 && errno == EINTR)
            continue;
        if (pid <= 0) /* 0: children left but none exited; -1/ECHILD: no children */
            break;
        for (size_t k = 0; k < WATCH_MAX; k++)
            if (watched[k].pid == pid && !watched[k].done)
                watched[k].done = 1, watched[k].status = decode_status(wstatus);
    }
    int done = is_done_locked(child, status);
    pthread_mutex_unlock(&lock);
    return done;
}

void oe_supervise_forward(pid_t child, int sig)
{
    if (child <= 0)
        return;
    pthread_mutex_lock(&lock);
    /* Under the lock, so the pid cannot be reaped (and reused) between check and kill. */
    if (!is_done_locked(child, NULL))
        kill(child, sig);
    pthread_mutex_unlock(&lock);
}

int oe_supervise_stop(pid_t child, uint64_t grace_ms)
{
    int status = 1;
    if (child <= 0)
        return 1;
    if (oe_supervise_reap(child, &status))
        return status;

    oe_supervise_forward(child, SIGTERM);
    uint64_t deadline = oe_util_now_ms() + grace_ms;
    for (;;) {
        if (oe_supervise_reap(child, &status))
            return status;
        if (oe_util_now_ms() >= deadline)
            break;
        sleep_ms(20);
    }

    oe_supervise_forward(child, SIGKILL);
    /* SIGKILL cannot be caught; the wait is bounded in case the child is stuck in the
     * kernel (uninterruptible I/O), so ott-edge itself can still exit. */
    deadline = oe_util_now_ms() + 5000;
    while (oe_util_now_ms() < deadline) {
        if (oe_supervise_reap(child, &status))
            return status;
        sleep_ms(10);
    }
    return 128 + SIGKILL;
}
