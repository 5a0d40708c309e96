/* Unit tests for pkg/httpget: the request it sends, status lines, head_only, deadlines,
 * bounded reads, refused connections, bad arguments and name resolution. A tiny server
 * thread on 127.0.0.1 (an ephemeral port) plays the other side, one connection per test. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "httpget/httpget.h"

typedef struct {
    int lfd;
    const char *answer; /* written after the request head; NULL: write nothing */
    size_t answer_len;  /* 0: strlen(answer) */
    int hold_ms;        /* keep the connection open this long after answering */
    char request[2048]; /* what arrived */
} server_t;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *serve_one(void *arg)
{
    server_t *s = arg;
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    size_t got = 0;
    while (got < sizeof(s->request) - 1 && !strstr(s->request, "\r\n\r\n")) {
        ssize_t n = recv(fd, s->request + got, sizeof(s->request) - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
        s->request[got] = '\0';
    }
    if (s->answer != NULL) {
        size_t len = s->answer_len ? s->answer_len : strlen(s->answer);
        for (size_t off = 0; off < len;) {
            ssize_t n = send(fd, s->answer + off, len - off, MSG_NOSIGNAL);
            if (n <= 0)
                break;
            off += (size_t)n;
        }
    }
    if (s->hold_ms > 0)
        usleep((useconds_t)s->hold_ms * 1000);
    close(fd);
    return NULL;
}

static uint16_t listen_any(int *lfd)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    *lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (*lfd < 0 || bind(*lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(*lfd, 4) != 0 ||
        getsockname(*lfd, (struct sockaddr *)&sa, &len) != 0)
        return 0;
    return ntohs(sa.sin_port);
}

static long long last_took_ms; /* how long the last exchange's oe_httpget() took */

/* Runs one GET against a server answering `answer`; returns oe_httpget's code. */
static int exchange(server_t *s, oe_httpget_req_t *req, char *buf, size_t cap, oe_httpget_resp_t *resp, char *err,
                    size_t errlen)
{
    pthread_t t;
    s->request[0] = '\0';
    req->port = listen_any(&s->lfd);
    if (req->port == 0) {
        snprintf(err, errlen, "cannot listen");
        return -1;
    }
    pthread_create(&t, NULL, serve_one, s);
    long long t0 = now_ms();
    int rc = oe_httpget(req, buf, cap, resp, err, errlen);
    last_took_ms = now_ms() - t0;
    shutdown(s->lfd, SHUT_RDWR); /* unblocks accept() when the client never connected */
    pthread_join(t, NULL);
    close(s->lfd);
    return rc;
}

int main(void)
{
    char buf[512], err[256];
    oe_httpget_resp_t resp;

    /* the request line and headers; the status; the body kept in buf */
    {
        server_t s = {.answer = "HTTP/1.1 204 No Content\r\nX: y\r\n\r\n"};
        oe_httpget_req_t req = {
            .host = "127.0.0.1", .path = "/api/status?x=1", .user_agent = "ua/1", .timeout_ms = 2000};
        int rc = exchange(&s, &req, buf, sizeof(buf), &resp, err, sizeof(err));
        CHECK(rc == OE_HTTPGET_OK, "rc %d: %s", rc, err);
        CHECK(resp.status == 204);
        CHECK(strncmp(buf, "HTTP/1.1 204", 12) == 0 && resp.len == strlen(buf));
        char host[64];
        snprintf(host, sizeof(host), "\r\nHost: 127.0.0.1:%u\r\n", (unsigned)req.port);
        CHECK(strncmp(s.request, "GET /api/status?x=1 HTTP/1.1\r\n", 30) == 0, "request: %s", s.request);
        CHECK(strstr(s.request, host) != NULL, "request: %s", s.request);
        CHECK(strstr(s.request, "\r\nUser-Agent: ua/1\r\n") != NULL);
        CHECK(strstr(s.request, "\r\nConnection: close\r\n") != NULL);
    }
    /* HTTP/1.0 on request; a 500 is still an answer (the caller judges it) */
    {
        server_t s = {.answer = "HTTP/1.0 500 Internal Server Error\r\n\r\nboom"};
        oe_httpget_req_t req = {.host = "127.0.0.1", .path = "/", .http10 = 1, .timeout_ms = 2000};
        int rc = exchange(&s, &req, buf, sizeof(buf), &resp, err, sizeof(err));
        CHECK(rc == OE_HTTPGET_OK && resp.status == 500, "rc %d status %d", rc, resp.status);
        CHECK(strncmp(s.request, "GET / HTTP/1.0\r\n", 16) == 0);
        CHECK(strstr(s.request, "User-Agent") == NULL);
        CHECK(strstr(buf, "\r\n\r\nboom") != NULL);
    }
    /* head_only: returns once the head is in, although the server keeps the connection */
    {
        server_t s = {.answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", .hold_ms = 1500};
        oe_httpget_req_t req = {.host = "127.0.0.1", .path = "/", .head_only = 1, .timeout_ms = 3000};
        int rc = exchange(&s, &req, buf, sizeof(buf), &resp, err, sizeof(err));
        CHECK(rc == OE_HTTPGET_OK && resp.status == 200, "rc %d: %s", rc, err);
        CHECK(!resp.timed_out);
        CHECK(last_took_ms < 1000, "took %lld ms", last_took_ms);
    }
    /* without head_only the same answer is read until the deadline, then still counts */
    {
        server_t s = {.answer = "HTTP/1.1 200 OK\r\n\r\n", .hold_ms = 1000};
        oe_httpget_req_t req = {.host = "127.0.0.1", .path = "/", .timeout_ms = 300};
        int rc = exchange(&s, &req, buf, sizeof(buf), &resp, err, sizeof(err));
        CHECK(rc == OE_HTTPGET_OK && resp.status == 200 && resp.timed_out, "rc %d: %s", rc, err);
    }
    /* no answer at all: E_NOANSWER at the deadline, not later */
    {
        server_t s = {.answer = NULL, .hold_ms = 1000};
        oe_httpget_req_t req = {.host = "127.0.0.1", .path = "/", .timeout_ms = 300};
        int rc = exchange(&s, &req, buf, sizeof(buf), &resp, err, sizeof(err));
        CHECK(rc == OE_HTTPGET_E_NOANSWER, "rc %d: %s", rc, err);
        CHECK(last_took_ms >= 290 && last_took_ms < 800, "took %lld ms", last_took_ms);
        CHECK(strstr(err, "no answer within 300 ms") != NULL, "%s", err);
        CHECK(resp.status == 0);
    }
    /* closed without a byte */
    {
        server_t s = {.answer = ""};
        oe_httpget_req_t req = {.host = "127.0.0.1", .path = "/", .timeout_ms = 2000};
        int rc = exchange(&s, &req, buf, sizeof(buf), &resp, err, sizeof(err));
        CHECK(rc == OE_HTTPGET_E_NOANSWER && strstr(err, "connection closed") != NULL, "rc %d: %s", rc, err);
    }
    /* not HTTP, or a malformed status line */
    {
        const char *bad[] = {"hello\r\n",
                             "HTTP/1.1 99 Low\r\n\r\n",
                             "HTTP/1.1 600 High\r\n\r\n",
                             "HTTP/1.1 2000 Long\r\n\r\n",
                             "HTTP/1.1  200 Space\r\n\r\n",
                             "HTTP/x.1 200 OK\r\n\r\n",
                             "ICY 200 OK\r\n\r\n"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            server_t s = {.answer = bad[i]};
            oe_httpget_req_t req = {.host = "127.0.0.1", .path = "/", .timeout_ms = 2000};
            int rc = exchange(&s, &req, buf, sizeof(buf), &resp, err, sizeof(err));
            CHECK(rc == OE_HTTPGET_E_BADANSWER && resp.status == 0, "%zu: rc %d status %d", i, rc, resp.status);
        }
    }
    /* a NUL in the answer does not hide the head; a status line cut at the code counts */
    {
        static const char nul[] = "HTTP/1.1 200 OK\r\nX: \0y\r\n\r\n";
        server_t s = {.answer = nul, .answer_len = sizeof(nul) - 1, .hold_ms = 1000};
        oe_httpget_req_t req = {.host = "127.0.0.1", .path = "/", .head_only = 1, .timeout_ms = 800};
        int rc = exchange(&s, &req, buf, sizeof(buf), &resp, err, sizeof(err));
        CHECK(rc == OE_HTTPGET_OK && resp.status == 200 && !resp.timed_out, "rc %d: %s", rc, err);
        server_t s2 = {.answer = "HTTP/1.1 302"};
        oe_httpget_req_t req2 = {.host = "127.0.0.1", .path = "/", .timeout_ms = 2000};
        rc = exchange(&s2, &req2, buf, sizeof(buf), &resp, err, sizeof(err));
        CHECK(rc == OE_HTTPGET_OK && resp.status == 302, "rc %d: %s", rc, err);
    }
    /* an answer larger than the buffer: reading stops at cap - 1 bytes */
    {
        static char big[64 * 1024];
        memset(big, 'a', sizeof(big));
        memcpy(big, "HTTP/1.1 200 OK\r\n\r\n", 19);
        server_t s = {.answer = big, .answer_len = sizeof(big)};
        char small[64];
        oe_httpget_req_t req = {.host = "127.0.0.1", .path = "/", .timeout_ms = 2000};
        int rc = exchange(&s, &req, small, sizeof(small), &resp, err, sizeof(err));
        CHECK(rc == OE_HTTPGET_OK && resp.status == 200 && resp.len == sizeof(small) - 1, "rc %d len %zu", rc,
              resp.len);
        CHECK(small[sizeof(small) - 1] == '\0');
    }
    /* nothing listening: E_CONNECT with the reason */
    {
        int lfd;
        uint16_t port = listen_any(&lfd);
        close(lfd);
        oe_httpget_req_t req = {.host = "127.0.0.1", .port = port, .path = "/", .timeout_ms = 2000};
        int rc = oe_httpget(&req, buf, sizeof(buf), &resp, err, sizeof(err));
        CHECK(rc == OE_HTTPGET_E_CONNECT && strstr(err, "refused") != NULL, "rc %d: %s", rc, err);
    }
    /* bad arguments never reach the network */
    {
        const char *paths[] = {"", "x", "/a b", "/a\r\nX: y", "/\x7f"};
        for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
            oe_httpget_req_t req = {.host = "127.0.0.1", .port = 1, .path = paths[i], .timeout_ms = 100};
            CHECK(oe_httpget(&req, buf, sizeof(buf), &resp, err, sizeof(err)) == OE_HTTPGET_E_ARG, "path %zu", i);
        }
        oe_httpget_req_t req = {.host = "a\r\nb", .port = 1, .path = "/", .timeout_ms = 100};
        CHECK(oe_httpget(&req, buf, sizeof(buf), &resp, err, sizeof(err)) == OE_HTTPGET_E_ARG);
        req.host = "127.0.0.1";
        req.user_agent = "x\r\nInjected: 1";
        CHECK(oe_httpget(&req, buf, sizeof(buf), &resp, err, sizeof(err)) == OE_HTTPGET_E_ARG);
        req.user_agent = NULL;
        req.port = 0;
        CHECK(oe_httpget(&req, buf, sizeof(buf), &resp, err, sizeof(err)) == OE_HTTPGET_E_ARG);
        req.port = 1;
        CHECK(oe_httpget(&req, buf, 8, &resp, err, sizeof(err)) == OE_HTTPGET_E_ARG);
    }
    /* a name goes through the resolver thread ("localhost" is in /etc/hosts) */
    {
        server_t s = {.answer = "HTTP/1.1 200 OK\r\n\r\n"};
        oe_httpget_req_t req = {.host = "localhost", .path = "/", .timeout_ms = 2000, .connect_timeout_ms = 1000};
        int rc = exchange(&s, &req, buf, sizeof(buf), &resp, err, sizeof(err));
        CHECK(rc == OE_HTTPGET_OK && resp.status == 200, "rc %d: %s", rc, err);
        char host[64];
        snprintf(host, sizeof(host), "\r\nHost: localhost:%u\r\n", (unsigned)req.port);
        CHECK(strstr(s.request, host) != NULL, "request: %s", s.request);
    }
    /* a name that does not resolve: E_RESOLVE within the connect deadline */
    {
        oe_httpget_req_t req = {
            .host = "no-such-host.invalid", .port = 80, .path = "/", .timeout_ms = 2000, .connect_timeout_ms = 500};
        long long t0 = now_ms();
        int rc = oe_httpget(&req, buf, sizeof(buf), &resp, err, sizeof(err));
        long long took = now_ms() - t0;
        CHECK(rc == OE_HTTPGET_E_RESOLVE, "rc %d: %s", rc, err);
        CHECK(took < 1500, "took %lld ms", took);
    }
    return CHECK_DONE();
}
