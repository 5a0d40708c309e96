/* util/listen — the one way ott-edge opens a listening socket (see util.h). */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/config.h"
#include "util/util.h"

int oe_util_listen(const char *addr, const char *key, unsigned flags, int backlog, char *err, size_t errlen)
{
    char host[256];
    uint16_t port;
    if (oe_config_split_hostport(addr, host, sizeof(host), &port) != 0) {
        snprintf(err, errlen, "%s: cannot parse \"%s\"", key, addr);
        return -1;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res = NULL;
    char portstr[8];
    snprintf(portstr, sizeof(portstr), "%u", port);
    int any = host[0] == '\0';
    int gai = getaddrinfo(any ? "::" : host, portstr, &hints, &res);
    if (gai != 0 && any) /* no IPv6 here: listen on IPv4 only */
        gai = getaddrinfo("0.0.0.0", portstr, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "%s: cannot resolve \"%s\": %s", key, addr, gai_strerror(gai));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 && any && res->ai_family == AF_INET6) { /* IPv6 compiled in but disabled */
        freeaddrinfo(res);
        res = NULL;
        if (getaddrinfo("0.0.0.0", portstr, &hints, &res) != 0) {
            snprintf(err, errlen, "%s: cannot resolve 0.0.0.0 for \"%s\"", key, addr);
            return -1;
        }
        fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    }
    int one = 1, zero = 0;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        ((flags & OE_UTIL_LISTEN_REUSEPORT) && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) ||
        (res->ai_family == AF_INET6 && any && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) != 0) ||
        ((flags & OE_UTIL_LISTEN_NODELAY) && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, backlog) != 0) {
        int e = errno;
        snprintf(err, errlen, "%s: cannot listen on %s: %s%s", key, addr, strerror(e),
                 e == EACCES ? " (ports below 1024 need root or CAP_NET_BIND_SERVICE)" : "");
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    return fd;
}
