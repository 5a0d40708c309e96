/*
 * admin/healthcheck — the client side of `ott-edge healthcheck`: one HTTP/1.0 GET on the
 * admin listener over a plain socket, so container images need no curl.
 *
 * Owns: oe_admin_healthcheck() only (declared in admin.h). Must not touch the admin
 * listener itself or any server state: it runs in a separate short-lived process.
 */
#define _GNU_SOURCE
#include "admin/admin.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HC_TIMEOUT_MS   2000
#define HC_RESPONSE_MAX 2048 /* the status line plus a short reason is all we read */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
        if (soerr != 0) {
            *err_out = soerr;
            close(fd);
            return -1;
        }
    }
    return fd;
}

/* Copies the first line of s (at most n bytes) into out, for messages. */
static void first_line(const char *s, char *out, size_t outlen)
{
    size_t n = strcspn(s, "\r\n");
    if (n >= outlen)
        n = outlen - 1;
    memcpy(out, s, n);
    out[n] = '\0';
}

int oe_admin_healthcheck(const char *admin_addr, const char *path, char *err, size_t errlen)
{
    char host[256], portstr[8];
    uint16_t port;
    if (admin_addr == NULL || admin_addr[0] == '\0') {
        snprintf(err, errlen, "the admin listener is disabled (listen.admin is empty): nothing to check");
        return 1;
    }
    if (oe_config_split_hostport(admin_addr, host, sizeof(host), &port) != 0 || port == 0) {
        snprintf(err, errlen, "bad admin address '%s': expected HOST:PORT, [V6]:PORT or :PORT", admin_addr);
        return 1;
    }
    /* A wildcard listen address is reached over loopback. */
    if (host[0] == '\0' || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "*") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    else if (strcmp(host, "::") == 0)
        snprintf(host, sizeof(host), "::1");
    snprintf(portstr, sizeof(portstr), "%u", (unsigned)port);

    long long deadline = now_ms() + HC_TIMEOUT_MS;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve admin host '%s': %s", host, gai_strerror(rc));
        return 1;
    }
    int fd = -1, cerr = 0;
    for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next)
        fd = connect_one(ai, deadline, &cerr);
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, errlen, "cannot connect to the admin listener at %s:%s: %s", host, portstr, strerror(cerr));
        return 1;
    }

    char req[512];
    int reqlen = snprintf(req, sizeof(req),
                          "GET %s HTTP/1.0\r\nHost: %s%s%s:%s\r\nUser-Agent: ott-edge-healthcheck\r\n"
                          "Connection: close\r\n\r\n",
                          path, strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "", portstr);
    if (reqlen < 0 || (size_t)reqlen >= sizeof(req)) {
        close(fd);
        snprintf(err, errlen, "health path too long");
        return 1;
    }
    for (int off = 0; off < reqlen;) {
        ssize_t n = send(fd, req + off, (size_t)(reqlen - off), MSG_NOSIGNAL);
        if (n > 0) {
            off += (int)n;
        } else if (n < 0 && (errno == EINTR || (errno == EAGAIN && wait_fd(fd, POLLOUT, deadline) == 0))) {
            continue;
        } else {
            snprintf(err, errlen, "sending the request to %s:%s failed: %s", host, portstr,
                     n < 0 ? strerror(errno) : "connection closed");
            close(fd);
            return 1;
        }
    }

    /* Read until the peer closes (HTTP/1.0), the buffer is full, or the deadline. */
    char buf[HC_RESPONSE_MAX + 1];
    size_t got = 0;
    int timed_out = 0;
    while (got < HC_RESPONSE_MAX) {
        ssize_t n = recv(fd, buf + got, HC_RESPONSE_MAX - got, 0);
        if (n > 0) {
            got += (size_t)n;
        } else if (n == 0) {
            break;
        } else if (errno == EINTR || (errno == EAGAIN && wait_fd(fd, POLLIN, deadline) == 0)) {
            continue;
        } else {
            timed_out = errno == EAGAIN;
            break;
        }
    }
    close(fd);
    buf[got] = '\0';

    /* "HTTP/1.x NNN ..." */
    int status = -1;
    const char *sp = strchr(buf, ' ');
    if (strncmp(buf, "HTTP/", 5) == 0 && sp != NULL) {
        char *end;
        long v = strtol(sp + 1, &end, 10);
        if (end == sp + 4 && v >= 100 && v <= 599)
            status = (int)v;
    }
    if (status < 0) {
        if (got == 0)
            snprintf(err, errlen, "no answer from %s:%s%s within %d ms", host, portstr, path, HC_TIMEOUT_MS);
        else
            snprintf(err, errlen, "not an HTTP answer from %s:%s%s%s", host, portstr, path,
                     timed_out ? " (timed out)" : "");
        return 1;
    }
    char line[160], reason[160] = "";
    first_line(buf, line, sizeof(line));
    const char *body = strstr(buf, "\r\n\r\n");
    if (body != NULL)
        first_line(body + 4, reason, sizeof(reason));
    if (status != 200) {
        snprintf(err, errlen, "%s answered \"%s\"%s%s", path, line, reason[0] ? ": " : "", reason);
        return 1;
    }
    snprintf(err, errlen, "%s answered \"%s\"", path, line);
    return 0;
}
