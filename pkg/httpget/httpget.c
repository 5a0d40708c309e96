/*
 * httpget — one plain-HTTP GET with deadlines (see httpget.h).
 */
#define _GNU_SOURCE /* memmem */
#include "httpget/httpget.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/util.h"

#define DRAIN_MAX (64 * 1024) /* what is discarded after a head_only answer, to close without a reset */

/* Deadlines are monotonic milliseconds, signed so that "time left" can go below zero. */
static long long now_ms(void)
{
    return (long long)oe_util_now_ms();
}

/* Waits until fd is ready for events or the deadline passes. Returns 0 when ready. */
static int wait_fd(int fd, short events, long long deadline)
{
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0)
            return -1;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)left);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

/* ---- name resolution with a deadline --------------------------------------------- */

/* getaddrinfo() has no timeout: a name is resolved on a detached thread, and a caller
 * whose deadline passes drops its reference and leaves; the last reference frees. */
struct resolve_job {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* CLOCK_MONOTONIC */
    int refs, done, rc;
    struct addrinfo *res;
    char host[256], port[8];
};

static void job_unref(struct resolve_job *j)
{
    pthread_mutex_lock(&j->lock);
    int last = --j->refs == 0;
    pthread_mutex_unlock(&j->lock);
    if (!last)
        return;
    if (j->res != NULL)
        freeaddrinfo(j->res);
    pthread_cond_destroy(&j->cond);
    pthread_mutex_destroy(&j->lock);
    free(j);
}

static void *resolve_main(void *arg)
{
    struct resolve_job *j = arg;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(j->host, j->port, &hints, &res);
    pthread_mutex_lock(&j->lock);
    j->rc = rc;
    j->res = rc == 0 ? res : NULL;
    j->done = 1;
    pthread_cond_signal(&j->cond);
    pthread_mutex_unlock(&j->lock);
    job_unref(j);
    return NULL;
}

static int resolve(const char *host, const char *port, long long deadline, struct addrinfo **out, char *err,
                   size_t errlen)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
    int rc = getaddrinfo(host, port, &hints, out);
    if (rc == 0)
        return 0;
    if (rc != EAI_NONAME) {
        snprintf(err, errlen, "cannot resolve '%s': %s", host, gai_strerror(rc));
        return -1;
    }

    struct resolve_job *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        snprintf(err, errlen, "cannot resolve '%s': out of memory", host);
        return -1;
    }
    snprintf(j->host, sizeof(j->host), "%s", host);
    snprintf(j->port, sizeof(j->port), "%s", port);
    j->refs = 2; /* this caller and the thread */
    pthread_mutex_init(&j->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&j->cond, &ca);
    pthread_condattr_destroy(&ca);

    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&t, &attr, resolve_main, j);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        j->refs = 1;
        job_unref(j);
        snprintf(err, errlen, "cannot resolve '%s': cannot start a resolver thread", host);
        return -1;
    }

    struct timespec ts = {.tv_sec = (time_t)(deadline / 1000), .tv_nsec = (long)(deadline % 1000) * 1000000};
    pthread_mutex_lock(&j->lock);
    while (!j->done && pthread_cond_timedwait(&j->cond, &j->lock, &ts) != ETIMEDOUT)
        ;
    int done = j->done;
    rc = j->rc;
    *out = j->res;
    j->res = NULL; /* ours now (NULL when not done) */
    pthread_mutex_unlock(&j->lock);
    job_unref(j);
    if (!done) {
        snprintf(err, errlen, "cannot resolve '%s': timed out", host);
        return -1;
    }
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve '%s': %s", host, gai_strerror(rc));
        return -1;
    }
    return 0;
}

/* ---- connect, send, receive ------------------------------------------------------- */

/* Connects to one resolved address without blocking past the deadline. */
static int connect_one(const struct addrinfo *ai, long long deadline, int *err_out)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
        *err_out = errno;
        return -1;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno != EINPROGRESS) {
            *err_out = errno;
            close(fd);
            return -1;
        }
        if (wait_fd(fd, POLLOUT, deadline) != 0) {
            *err_out = ETIMEDOUT;
            close(fd);
            return -1;
        }
        int soerr = 0;
        socklen_t len = sizeof(soerr);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
            soerr = errno;
        if (soerr != 0) {
            *err_out = soerr;
            close(fd);
            return -1;
        }
    }
    return fd;
}

static int send_all(int fd, const char *p, size_t len, long long deadline, int *err_out)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(fd, p + off, len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && errno == EAGAIN) {
            if (wait_fd(fd, POLLOUT, deadline) != 0) {
                *err_out = ETIMEDOUT;
                return -1;
            }
        } else {
            *err_out = n < 0 ? errno : ECONNRESET;
            return -1;
        }
    }
    return 0;
}

static int head_complete(const char *buf, size_t len)
{
    return memmem(buf, len, "\r\n\r\n", 4) != NULL || memmem(buf, len, "\n\n", 2) != NULL;
}

/* "HTTP/1.x NNN" at the start of buf, followed by a space, CR, LF or the end of what came.
 * Returns the status, or 0. */
static int parse_status(const char *b, size_t len)
{
    if (len < 12 || memcmp(b, "HTTP/", 5) != 0 || b[5] < '0' || b[5] > '9' || b[6] != '.' || b[7] < '0' || b[7] > '9' ||
        b[8] != ' ')
        return 0;
    int st = 0;
    for (int i = 9; i < 12; i++) {
        if (b[i] < '0' || b[i] > '9')
            return 0;
        st = st * 10 + (b[i] - '0');
    }
    if (len > 12 && b[12] != ' ' && b[12] != '\r' && b[12] != '\n')
        return 0;
    return st >= 100 && st <= 599 ? st : 0;
}

static int path_ok(const char *p)
{
    if (p == NULL || p[0] != '/')
        return 0;
    for (; *p != '\0'; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p == 0x7f)
            return 0;
    return 1;
}

static int agent_ok(const char *p)
{
    for (; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
            return 0;
    return 1;
}

int oe_httpget(const oe_httpget_req_t *req, char *buf, size_t cap, oe_httpget_resp_t *resp, char *err, size_t errlen)
{
    long long start = now_ms();
    long long deadline = start + req->timeout_ms;
    long long cdeadline = start + (req->connect_timeout_ms ? req->connect_timeout_ms : req->timeout_ms);
    if (cdeadline > deadline)
        cdeadline = deadline;
    memset(resp, 0, sizeof(*resp));
    if (cap > 0)
        buf[0] = '\0';
    if (cap < 16 || req->host == NULL || req->host[0] == '\0' || strlen(req->host) >= 256 || !agent_ok(req->host) ||
        strchr(req->host, ' ') != NULL || req->port == 0) {
        snprintf(err, errlen, "bad host or buffer");
        return OE_HTTPGET_E_ARG;
    }
    if (!path_ok(req->path)) {
        snprintf(err, errlen, "bad path (it must start with '/' and have no spaces or control characters)");
        return OE_HTTPGET_E_ARG;
    }
    if (req->user_agent != NULL && !agent_ok(req->user_agent)) {
        snprintf(err, errlen, "bad User-Agent");
        return OE_HTTPGET_E_ARG;
    }
    if (req->authorization != NULL && (!agent_ok(req->authorization) || strlen(req->authorization) > 1024)) {
        snprintf(err, errlen, "bad Authorization value");
        return OE_HTTPGET_E_ARG;
    }

    char request[2048];
    int v6 = strchr(req->host, ':') != NULL;
    int reqlen = snprintf(request, sizeof(request),
                          "%s %s HTTP/1.%c\r\nHost: %s%s%s:%u\r\n%s%s%s%s%s%sAccept: */*\r\n%s"
                          "Connection: close\r\n\r\n",
                          req->post ? "POST" : "GET", req->path, req->http10 ? '0' : '1', v6 ? "[" : "", req->host,
                          v6 ? "]" : "", (unsigned)req->port, req->user_agent ? "User-Agent: " : "",
                          req->user_agent ? req->user_agent : "", req->user_agent ? "\r\n" : "",
                          req->authorization ? "Authorization: " : "", req->authorization ? req->authorization : "",
                          req->authorization ? "\r\n" : "", req->post ? "Content-Length: 0\r\n" : "");
    if (reqlen < 0 || (size_t)reqlen >= sizeof(request)) {
        snprintf(err, errlen, "path too long");
        return OE_HTTPGET_E_ARG;
    }

    char portstr[8];
    snprintf(portstr, sizeof(portstr), "%u", (unsigned)req->port);
    struct addrinfo *res = NULL;
    if (resolve(req->host, portstr, cdeadline, &res, err, errlen) != 0)
        return OE_HTTPGET_E_RESOLVE;
    int fd = -1, cerr = ETIMEDOUT;
    for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next)
        fd = connect_one(ai, cdeadline, &cerr);
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, errlen, "%s", strerror(cerr));
        return OE_HTTPGET_E_CONNECT;
    }
    int serr = 0;
    if (send_all(fd, request, (size_t)reqlen, deadline, &serr) != 0) {
        close(fd);
        snprintf(err, errlen, "%s", strerror(serr));
        return OE_HTTPGET_E_SEND;
    }

    size_t got = 0;
    int rerr = 0, closed = 0;
    while (got < cap - 1) {
        ssize_t n = recv(fd, buf + got, cap - 1 - got, 0);
        if (n > 0) {
            got += (size_t)n;
            if (req->head_only && head_complete(buf, got))
                break;
        } else if (n == 0) {
            closed = 1;
            break;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN) {
            if (wait_fd(fd, POLLIN, deadline) != 0) {
                resp->timed_out = 1;
                break;
            }
        } else {
            rerr = errno;
            break;
        }
    }
    if (!closed && rerr == 0) {
        /* discard what already arrived (without waiting), so closing does not reset */
        char scratch[4096];
        size_t drained = 0;
        ssize_t n;
        while (drained < DRAIN_MAX && (n = recv(fd, scratch, sizeof(scratch), MSG_DONTWAIT)) > 0)
            drained += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    resp->len = got;

    resp->status = parse_status(buf, got);
    if (resp->status != 0)
        return OE_HTTPGET_OK;
    if (got == 0) {
        if (resp->timed_out)
            snprintf(err, errlen, "no answer within %u ms", req->timeout_ms);
        else
            snprintf(err, errlen, "no answer (%s)", rerr ? strerror(rerr) : "connection closed");
        return OE_HTTPGET_E_NOANSWER;
    }
    snprintf(err, errlen, "not an HTTP answer%s", resp->timed_out ? " (timed out)" : "");
    return OE_HTTPGET_E_BADANSWER;
}
