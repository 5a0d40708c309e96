/*
 * exec.c — the `exec` DNS-01 provider's hook runner (see internal.h).
 *
 * The hook runs under /bin/sh, which writes the hook's exit status to a pipe of its own
 * (fd 3) once it ends: in entrypoint mode the supervisor reaps every child with
 * waitpid(-1), so the status could not be learned from waitpid here. The hook gets its own
 * process group (a timeout stops it and whatever it started), an empty signal mask and
 * default signal dispositions (ott-edge blocks SIGTERM and friends and ignores SIGPIPE),
 * stdin from /dev/null, and no descriptor of ours beyond stdout/stderr (a pipe whose lines
 * are logged).
 */
#define _GNU_SOURCE
#include "dns/internal.h"
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log/log.h"

extern char **environ;

#define LINE_MAX_LOGGED  512
#define LINES_MAX_LOGGED 200
#define KILL_GRACE_MS    2000
#define STOP_GRACE_MS    5000
#define ENV_MAX          4096

/* "$@" runs the hook without fd 3; its status then goes to fd 3. */
static const char wrapper[] = "\"$@\" 3>&-; echo \"$?\" >&3";

struct output {
    const char *action;
    char line[LINE_MAX_LOGGED + 1];
    size_t len;
    unsigned lines, dropped;
    char last[LINE_MAX_LOGGED + 1]; /* the last non-empty line, for the error message */
};

static void flush_line(struct output *o)
{
    if (o->len == 0)
        return;
    o->line[o->len] = '\0';
    snprintf(o->last, sizeof(o->last), "%s", o->line);
    if (o->lines < LINES_MAX_LOGGED)
        oe_log(OE_LOG_INFO, "acme_dns_exec_output", "action", o->action, "line", o->line, NULL);
    else
        o->dropped++;
    o->lines++;
    o->len = 0;
}

static void take_output(struct output *o, const char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (buf[i] == '\n' || buf[i] == '\r') {
            flush_line(o);
            continue;
        }
        if (o->len == LINE_MAX_LOGGED)
            flush_line(o);
        o->line[o->len++] = buf[i];
    }
}

/* A descriptor at 10 or above, so that the dup2()s onto 1, 2 and 3 never hit a pipe end. */
static int high_fd(int fd)
{
    if (fd < 0 || fd >= 10)
        return fd;
    int h = fcntl(fd, F_DUPFD_CLOEXEC, 10);
    close(fd);
    return h;
}

static int make_pipe(int p[2])
{
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    p[0] = high_fd(p[0]);
    p[1] = high_fd(p[1]);
    if (p[0] < 0 || p[1] < 0) {
        if (p[0] >= 0)
            close(p[0]);
        if (p[1] >= 0)
            close(p[1]);
        return -1;
    }
    return 0;
}

static int stopping(const int *stop)
{
    return stop && __atomic_load_n(stop, __ATOMIC_RELAXED);
}

int oe_dns_exec_run(const char *command, const char *action, const char *fqdn, const char *value, uint64_t timeout_ms,
                    const int *stop, char *err, size_t errlen)
{
    int out[2] = {-1, -1}, st[2] = {-1, -1}, rc = -1;
    char **envp = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int fa_ok = 0, attr_ok = 0;
    pid_t pid = -1;

    if (make_pipe(out) != 0 || make_pipe(st) != 0) {
        snprintf(err, errlen, "acme.dns.exec.command: cannot make a pipe: %s", strerror(errno));
        goto done;
    }
    /* the environment, minus ott-edge's own variables (some hold secrets) */
    size_t n = 0;
    envp = calloc(ENV_MAX + 1, sizeof(char *));
    for (char **e = environ; envp && e && *e && n < ENV_MAX; e++)
        if (strncmp(*e, "OTT_EDGE_", 9) != 0)
            envp[n++] = *e;
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    fa_ok = envp && posix_spawn_file_actions_init(&fa) == 0;
    attr_ok = fa_ok && posix_spawnattr_init(&attr) == 0;
    if (!attr_ok) {
        snprintf(err, errlen, "acme.dns.exec.command: out of memory");
        goto done;
    }
    if (posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0) != 0 ||
        posix_spawn_file_actions_adddup2(&fa, out[1], 1) != 0 ||
        posix_spawn_file_actions_adddup2(&fa, out[1], 2) != 0 || posix_spawn_file_actions_adddup2(&fa, st[1], 3) != 0 ||
        posix_spawn_file_actions_addclosefrom_np(&fa, 4) != 0 ||
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF) != 0 ||
        posix_spawnattr_setpgroup(&attr, 0) != 0 || posix_spawnattr_setsigmask(&attr, &none) != 0 ||
        posix_spawnattr_setsigdefault(&attr, &all) != 0) {
        snprintf(err, errlen, "acme.dns.exec.command: cannot prepare the hook process");
        goto done;
    }
    char *argv[] = {
        "/bin/sh",     "-c", (char *)wrapper, "ott-edge-dns-hook", (char *)command, (char *)action, (char *)fqdn,
        (char *)value, NULL};
    int e = posix_spawn(&pid, "/bin/sh", &fa, &attr, argv, envp);
    if (e != 0) {
        pid = -1;
        snprintf(err, errlen, "acme.dns.exec.command: cannot start /bin/sh for \"%s\": %s", command, strerror(e));
        goto done;
    }
    close(out[1]);
    close(st[1]);
    out[1] = st[1] = -1;

    struct output o = {.action = action};
    char status[32] = "";
    size_t status_len = 0;
    uint64_t t0 = oe_util_now_ms(), deadline = t0 + timeout_ms, kill_at = 0;
    int timed_out = 0, stopped = 0, status_eof = 0, out_eof = 0;
    while (!status_eof) {
        uint64_t now = oe_util_now_ms();
        if (!kill_at && stopping(stop)) {
            uint64_t grace = strcmp(action, "cleanup") == 0 ? STOP_GRACE_MS : 0;
            if (now + grace < deadline) {
                deadline = now + grace;
                stopped = 1;
            }
        }
        if (!kill_at && now >= deadline) {
            timed_out = !stopped;
            kill(-pid, SIGTERM);
            kill_at = now + KILL_GRACE_MS;
        } else if (kill_at && now >= kill_at) {
            kill(-pid, SIGKILL);
            kill_at = UINT64_MAX; /* sent; sh ends and closes fd 3 */
        }
        struct pollfd pf[2] = {{.fd = st[0], .events = POLLIN}, {.fd = out_eof ? -1 : out[0], .events = POLLIN}};
        if (poll(pf, 2, 100) < 0 && errno != EINTR)
            break;
        char buf[4096];
        if (pf[1].revents) {
            ssize_t r = read(out[0], buf, sizeof(buf));
            if (r > 0)
                take_output(&o, buf, (size_t)r);
            else if (r == 0 || (errno != EINTR && errno != EAGAIN))
                out_eof = 1;
        }
        if (pf[0].revents) {
            ssize_t r = read(st[0], buf, sizeof(buf));
            if (r > 0) {
                size_t k = (size_t)r < sizeof(status) - 1 - status_len ? (size_t)r : sizeof(status) - 1 - status_len;
                memcpy(status + status_len, buf, k);
                status_len += k;
                status[status_len] = '\0';
            } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
                status_eof = 1;
            }
        }
    }
    /* what the hook wrote just before it ended (a background child holding the pipe is not waited for) */
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    for (int i = 0; i < 16 && !out_eof; i++) {
        char buf[4096];
        ssize_t r = read(out[0], buf, sizeof(buf));
        if (r <= 0)
            break;
        take_output(&o, buf, (size_t)r);
    }
    flush_line(&o);
    if (o.dropped) {
        char d[16];
        snprintf(d, sizeof(d), "%u", o.dropped);
        oe_log(OE_LOG_WARN, "acme_dns_exec_output_truncated", "action", action, "lines_not_logged", d, NULL);
    }
    /* reap it unless the entrypoint supervisor already did (ECHILD) */
    for (int i = 0; i < 100; i++) {
        pid_t w = waitpid(pid, NULL, WNOHANG);
        if (w == pid || (w < 0 && errno != EINTR))
            break;
        usleep(10000);
    }

    uint64_t ms = oe_util_now_ms() - t0;
    char ms_s[24];
    snprintf(ms_s, sizeof(ms_s), "%llu", (unsigned long long)ms);
    char *end = NULL;
    long code = status_len ? strtol(status, &end, 10) : -1;
    int have_code = status_len && end != status && (*end == '\n' || *end == '\0');
    const char *tail = o.last[0] ? ": " : "";
    if (stopped && !have_code) {
        snprintf(err, errlen, "stopped");
    } else if (timed_out && !have_code) {
        snprintf(err, errlen,
                 "acme.dns.exec.command %s %s did not finish within %llu s (acme.dns_propagation_timeout) and was "
                 "stopped%s%s",
                 action, fqdn, (unsigned long long)(timeout_ms / 1000), tail, o.last);
    } else if (!have_code) {
        snprintf(err, errlen, "acme.dns.exec.command %s %s was killed before it finished%s%s", action, fqdn, tail,
                 o.last);
    } else if (code != 0) {
        snprintf(err, errlen, "acme.dns.exec.command %s %s exited with status %ld%s%s%s", action, fqdn, code,
                 code == 127   ? " (command not found)"
                 : code == 126 ? " (not executable)"
                               : "",
                 tail, o.last);
    } else {
        rc = 0;
    }
    char code_s[16];
    snprintf(code_s, sizeof(code_s), "%ld", have_code ? code : -1L);
    oe_log(rc == 0 ? OE_LOG_INFO : OE_LOG_WARN, "acme_dns_exec", "action", action, "fqdn", fqdn, "status", code_s,
           "duration_ms", ms_s, "timed_out", timed_out ? "true" : "false", NULL);
done:
    if (fa_ok)
        posix_spawn_file_actions_destroy(&fa);
    if (attr_ok)
        posix_spawnattr_destroy(&attr);
    for (int i = 0; i < 2; i++) {
        if (out[i] >= 0)
            close(out[i]);
        if (st[i] >= 0)
            close(st[i]);
    }
    free(envp);
    return rc;
}
