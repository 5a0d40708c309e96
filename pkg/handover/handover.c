/* handover — see handover.h. */
#define _GNU_SOURCE
#include "handover/handover.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/config.h"
#include "log/log.h"
#include "util/util.h"

#define NOTIFY_ENV "OE_HANDOVER_NOTIFY_FD" /* our readiness pipe (not a configuration key) */
#define LIBSYSTEMD "libsystemd.so.0"
#define FDS_START  3

typedef struct {
    char name[32];
    int fd;
    int taken;
} inherited_t;

static inherited_t inherited[OE_HANDOVER_MAX_FDS];
static size_t ninherited;
static int notify_fd = -1;
static char exe_path[4096];

extern char **environ;

/* ---- libsystemd, loaded when systemd's variables ask for it ------------------------------ */

static void *libsystemd(void)
{
    static void *h;
    if (h == NULL)
        h = dlopen(LIBSYSTEMD, RTLD_NOW | RTLD_LOCAL);
    return h;
}

static void *sym(const char *name)
{
    void *h = libsystemd(), *p = h != NULL ? dlsym(h, name) : NULL;
    return p;
}

/* ---- the new process --------------------------------------------------------------------- */

int oe_handover_init(char *err, size_t errlen)
{
    ssize_t n = readlink("/proc/self/exe", exe_path, sizeof(exe_path) - 1);
    exe_path[n > 0 ? n : 0] = '\0';
    const char *nf = getenv(NOTIFY_ENV);
    if (nf != NULL) {
        notify_fd = (int)strtol(nf, NULL, 10);
        fcntl(notify_fd, F_SETFD, FD_CLOEXEC);
        unsetenv(NOTIFY_ENV);
    }
    const char *pid = getenv("LISTEN_PID");
    if (pid == NULL || strtol(pid, NULL, 10) != (long)getpid())
        return 0;
    int (*listen_fds)(int, char ***) = NULL;
    void *p = sym("sd_listen_fds_with_names");
    if (p == NULL) {
        snprintf(err, errlen, "sockets were handed over (LISTEN_FDS) but %s cannot be loaded: install libsystemd0",
                 LIBSYSTEMD);
        return -1;
    }
    memcpy(&listen_fds, &p, sizeof(listen_fds));
    char **names = NULL;
    int count = listen_fds(1, &names); /* 1: unset LISTEN_* so that children do not see them */
    if (count < 0) {
        snprintf(err, errlen, "the sockets handed over cannot be read: %s", strerror(-count));
        return -1;
    }
    for (int i = 0; i < count; i++) {
        if ((size_t)i < OE_HANDOVER_MAX_FDS) {
            inherited_t *e = &inherited[ninherited++];
            snprintf(e->name, sizeof(e->name), "%s", names != NULL && names[i] != NULL ? names[i] : "unknown");
            e->fd = FDS_START + i;
            fcntl(e->fd, F_SETFD, FD_CLOEXEC);
        } else {
            close(FDS_START + i);
        }
        if (names != NULL)
            free(names[i]);
    }
    free(names);
    return count;
}

/* Whether the listening socket fd is bound to addr ("host:port", ":port", "[v6]:port"). */
static int bound_to(int fd, const char *addr)
{
    char host[256];
    uint16_t port;
    struct sockaddr_storage ss = {0};
    socklen_t sl = sizeof(ss);
    int on = 0;
    socklen_t ol = sizeof(on);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &ol) != 0 || !on || getsockname(fd, (void *)&ss, &sl) != 0 ||
        oe_config_split_hostport(addr, host, sizeof(host), &port) != 0)
        return 0;
    struct sockaddr_in v4[1] = {0};
    struct sockaddr_in6 v6[1] = {0};
    uint16_t have;
    if (ss.ss_family == AF_INET && sl >= sizeof(*v4)) {
        memcpy(v4, &ss, sizeof(*v4));
        have = ntohs(v4->sin_port);
    } else if (ss.ss_family == AF_INET6 && sl >= sizeof(*v6)) {
        memcpy(v6, &ss, sizeof(*v6));
        have = ntohs(v6->sin6_port);
    } else {
        return 0;
    }
    if (have != port)
        return 0;
    if (host[0] == '\0') /* every address: a wildcard socket */
        return ss.ss_family == AF_INET ? v4->sin_addr.s_addr == htonl(INADDR_ANY)
                                       : memcmp(&v6->sin6_addr, &in6addr_any, sizeof(in6addr_any)) == 0;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res = NULL, *ai;
    if (getaddrinfo(host, NULL, &hints, &res) != 0)
        return 0;
    int same = 0;
    for (ai = res; ai != NULL && !same; ai = ai->ai_next) {
        if (ai->ai_family != ss.ss_family)
            continue;
        if (ai->ai_family == AF_INET)
            same = ((struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr == v4->sin_addr.s_addr;
        else
            same = memcmp(&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, &v6->sin6_addr, 16) == 0;
    }
    freeaddrinfo(res);
    return same;
}

size_t oe_handover_take(const char *name, const char *addr, int *fds, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < ninherited && n < max; i++) {
        inherited_t *e = &inherited[i];
        if (e->taken || strcmp(e->name, name) != 0 || !bound_to(e->fd, addr))
            continue;
        e->taken = 1;
        fds[n++] = e->fd;
    }
    return n;
}

void oe_handover_close_unused(void)
{
    for (size_t i = 0; i < ninherited; i++) {
        if (inherited[i].taken || inherited[i].fd < 0)
            continue;
        oe_log(OE_LOG_INFO, "handover_socket_closed", "listener", inherited[i].name, "msg",
               "its address is no longer configured", NULL);
        close(inherited[i].fd);
        inherited[i].fd = -1;
    }
}

void oe_handover_ready(void)
{
    if (notify_fd >= 0) {
        ssize_t w = write(notify_fd, "ready\n", 6);
        (void)w;
        close(notify_fd);
        notify_fd = -1;
    }
    if (getenv("NOTIFY_SOCKET") != NULL) {
        int (*notify)(int, const char *) = NULL;
        void *p = sym("sd_notify");
        if (p != NULL) {
            char state[64];
            snprintf(state, sizeof(state), "READY=1\nMAINPID=%ld", (long)getpid());
            memcpy(&notify, &p, sizeof(notify));
            notify(0, state);
        }
    }
}

/* ---- the old process ------------------------------------------------------------------- */

/* Async-signal-safe decimal formatting (for after fork()). */
static char *fmt_ulong(char *p, unsigned long v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n != 0)
        *p++ = tmp[--n];
    *p = '\0';
    return p;
}

pid_t oe_handover_spawn(const char *exe, char *const argv[], const char *extra_env, const oe_handover_fd_t *fds,
                        size_t n, int *ready_fd, char *err, size_t errlen)
{
    int p[2];
    if (n > OE_HANDOVER_MAX_FDS) {
        snprintf(err, errlen, "upgrade: too many sockets to hand over (%zu)", n);
        return -1;
    }
    /* everything the child needs is made before fork(): after it, only async-signal-safe
     * calls (the other threads may hold locks) */
    size_t env_n = 0;
    while (environ[env_n] != NULL)
        env_n++;
    char **envp = calloc(env_n + 6, sizeof(char *));
    char *names = calloc(n + 1, 33), fdsenv[32], notifyenv[48], pidenv[40];
    int high[OE_HANDOVER_MAX_FDS + 1];
    if (envp == NULL || names == NULL || pipe2(p, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "upgrade: %s", envp == NULL || names == NULL ? "out of memory" : strerror(errno));
        free(envp);
        free(names);
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < env_n; i++)
        if (strncmp(environ[i], "LISTEN_", 7) != 0 && strncmp(environ[i], NOTIFY_ENV "=", sizeof(NOTIFY_ENV)) != 0 &&
            (extra_env == NULL || strncmp(environ[i], extra_env, strcspn(extra_env, "=") + 1) != 0))
            envp[k++] = environ[i];
    char *q = stpcpy(names, "LISTEN_FDNAMES=");
    for (size_t i = 0; i < n; i++)
        q = stpcpy(stpcpy(q, i == 0 ? "" : ":"), fds[i].name);
    snprintf(fdsenv, sizeof(fdsenv), "LISTEN_FDS=%zu", n);
    snprintf(notifyenv, sizeof(notifyenv), NOTIFY_ENV "=%zu", FDS_START + n);
    strcpy(pidenv, "LISTEN_PID=");
    envp[k++] = names;
    envp[k++] = fdsenv;
    envp[k++] = notifyenv;
    envp[k++] = pidenv;
    if (extra_env != NULL)
        envp[k++] = (char *)extra_env;
    envp[k] = NULL;

    pid_t pid = fork();
    if (pid == 0) {
        /* move every fd out of the way first, then into place: 3, 4, ... and the pipe */
        int top = FDS_START + (int)n + 1;
        for (size_t i = 0; i < n; i++)
            high[i] = fcntl(fds[i].fd, F_DUPFD_CLOEXEC, top);
        high[n] = fcntl(p[1], F_DUPFD_CLOEXEC, top);
        for (size_t i = 0; i <= n; i++)
            if (high[i] < 0 || dup2(high[i], FDS_START + (int)i) < 0) /* dup2: the copy is inherited */
                _exit(126);
        fmt_ulong(pidenv + sizeof("LISTEN_PID=") - 1, (unsigned long)getpid());
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execve(exe, argv, envp);
        _exit(127);
    }
    int e = errno;
    close(p[1]);
    free(envp);
    free(names);
    if (pid < 0) {
        close(p[0]);
        snprintf(err, errlen, "upgrade: cannot fork: %s", strerror(e));
        return -1;
    }
    *ready_fd = p[0];
    return pid;
}

int oe_handover_wait_ready(int ready_fd, uint64_t timeout_ms, char *err, size_t errlen)
{
    uint64_t end = oe_util_now_ms() + timeout_ms;
    char buf[16];
    size_t got = 0;
    for (;;) {
        uint64_t now = oe_util_now_ms();
        if (now >= end) {
            snprintf(err, errlen, "the new process did not say it serves within %llu ms",
                     (unsigned long long)timeout_ms);
            return -1;
        }
        struct pollfd pf = {.fd = ready_fd, .events = POLLIN};
        int r = poll(&pf, 1, (int)(end - now));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue;
        ssize_t n = read(ready_fd, buf + got, sizeof(buf) - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(err, errlen, "the new process exited before it served (see its log lines)");
            return -1;
        }
        got += (size_t)n;
        buf[got] = '\0';
        if (strstr(buf, "ready") != NULL)
            return 0;
        if (got == sizeof(buf) - 1)
            got = 0;
    }
}

const char *oe_handover_exe(void)
{
    return exe_path;
}
