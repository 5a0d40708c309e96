/* test_util — pkg/util: the bounded string builder (never past cap, always terminated,
 * truncation remembered, rewind), the monotonic clock, and the listen helper (dual-stack
 * wildcard, literal addresses, errors that name the key). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "util/util.h"

static void test_buf(void)
{
    char mem[8];
    oe_util_buf_t b;
    oe_util_buf_init(&b, mem, sizeof(mem));
    CHECK(b.len == 0 && mem[0] == '\0' && !b.truncated);
    CHECK(oe_util_buf_puts(&b, "abc") == 0 && b.len == 3 && strcmp(mem, "abc") == 0);
    CHECK(oe_util_buf_printf(&b, "%d", 1234) == 0 && strcmp(mem, "abc1234") == 0 && !b.truncated, "%s", mem);
    CHECK(oe_util_buf_put(&b, "x", 1) == -1 && b.truncated && b.len == 7 && mem[7] == '\0', "full: %s", mem);
    oe_util_buf_rewind(&b, 3);
    CHECK(b.len == 3 && strcmp(mem, "abc") == 0 && !b.truncated);
    CHECK(oe_util_buf_printf(&b, "%s", "defghij") == -1 && b.truncated && strcmp(mem, "abcdefg") == 0, "%s", mem);
    oe_util_buf_rewind(&b, 0);
    CHECK(oe_util_buf_printf(&b, "%s", "") == 0 && b.len == 0 && mem[0] == '\0');

    /* a guard byte after the buffer is never written */
    char guarded[5] = {'?', '?', '?', '?', 'G'};
    oe_util_buf_init(&b, guarded, 4);
    oe_util_buf_printf(&b, "%s", "0123456789");
    oe_util_buf_put(&b, "zz", 2);
    CHECK(guarded[4] == 'G' && strcmp(guarded, "012") == 0 && b.truncated, "%s", guarded);

    oe_util_buf_t empty;
    oe_util_buf_init(&empty, NULL, 0);
    CHECK(oe_util_buf_puts(&empty, "a") == -1 && empty.truncated);
}

static void test_clock(void)
{
    uint64_t a = oe_util_now_ms();
    usleep(20000);
    uint64_t b = oe_util_now_ms();
    CHECK(a > 0 && b >= a + 15 && b < a + 2000, "%llu -> %llu", (unsigned long long)a, (unsigned long long)b);
}

static int family_of(int fd, uint16_t *port)
{
    struct sockaddr_storage ss;
    socklen_t l = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &l) != 0)
        return -1;
    *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                           : ((struct sockaddr_in *)&ss)->sin_port);
    return ss.ss_family;
}

/* Connects to host:port; returns 0 when accepted by the backlog. */
static int can_connect(int family, const char *host, uint16_t port)
{
    struct sockaddr_storage ss = {0};
    socklen_t l;
    if (family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        inet_pton(AF_INET6, host, &s6->sin6_addr);
        l = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        inet_pton(AF_INET, host, &s4->sin_addr);
        l = sizeof(*s4);
    }
    int fd = socket(family, SOCK_STREAM, 0);
    int rc = fd >= 0 ? connect(fd, (struct sockaddr *)&ss, l) : -1;
    if (fd >= 0)
        close(fd);
    return rc;
}

/* A port nothing listens on now (port 0 is not a valid listen address in the config). */
static uint16_t free_port(void)
{
    struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof(s4);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&s4, l) != 0 || getsockname(fd, (struct sockaddr *)&s4, &l) != 0) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    close(fd);
    return ntohs(s4.sin_port);
}

static void test_listen(void)
{
    char err[256], addr[48];
    uint16_t port = 0;
    /* wildcard: one dual-stack socket (this machine has IPv6 on loopback) */
    snprintf(addr, sizeof(addr), ":%u", free_port());
    int fd = oe_util_listen(addr, "listen.admin", 0, 16, err, sizeof(err));
    CHECK(fd >= 0, "%s", err);
    if (fd >= 0) {
        int fam = family_of(fd, &port);
        CHECK(fam == AF_INET6 || fam == AF_INET, "family %d", fam);
        CHECK(can_connect(AF_INET, "127.0.0.1", port) == 0, "IPv4 to a wildcard listener");
        if (fam == AF_INET6)
            CHECK(can_connect(AF_INET6, "::1", port) == 0, "IPv6 to a wildcard listener");
        close(fd);
    }
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", free_port());
    fd = oe_util_listen(addr, "listen.https", OE_UTIL_LISTEN_REUSEPORT | OE_UTIL_LISTEN_NODELAY, 16, err, sizeof(err));
    CHECK(fd >= 0 && family_of(fd, &port) == AF_INET, "%s", err);
    /* the same port again without SO_REUSEPORT: refused, and the message names the key */
    int again = oe_util_listen(addr, "listen.admin", 0, 16, err, sizeof(err));
    CHECK(again < 0 && strncmp(err, "listen.admin: cannot listen on 127.0.0.1:", 41) == 0 && strstr(err, "in use"),
          "%s", err);
    if (fd >= 0)
        close(fd);
    snprintf(addr, sizeof(addr), "[::1]:%u", free_port());
    fd = oe_util_listen(addr, "listen.admin", 0, 16, err, sizeof(err));
    CHECK(fd >= 0 && family_of(fd, &port) == AF_INET6, "%s", err);
    if (fd >= 0)
        close(fd);
    CHECK(oe_util_listen("no-port", "listen.http", 0, 16, err, sizeof(err)) < 0 &&
              strcmp(err, "listen.http: cannot parse \"no-port\"") == 0,
          "%s", err);
    CHECK(oe_util_listen("name.invalid:80", "listen.http", 0, 16, err, sizeof(err)) < 0 &&
              strncmp(err, "listen.http: cannot resolve \"name.invalid:80\"", 44) == 0,
          "%s", err);
}

int main(void)
{
    test_buf();
    test_clock();
    test_listen();
    return CHECK_DONE();
}
