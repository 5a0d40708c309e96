/* Unit tests for the HTTP listener's redirect target (pkg/server/http_listener.c). */
#include <string.h>

#include "check.h"
#include "server/http_listener.h"

static const char *loc(const char *host, const char *path, unsigned port)
{
    static char buf[512];
    int n = oe_http_listener_location(host, strlen(host), path, strlen(path), port, buf, sizeof(buf));
    return n < 0 ? NULL : buf;
}

int main(void)
{
    const char *l;
    l = loc("example.test", "/a/b?x=1", 443);
    CHECK(l && strcmp(l, "https://example.test/a/b?x=1") == 0, "basic: %s", l ? l : "(null)");
    l = loc("example.test:80", "/", 443);
    CHECK(l && strcmp(l, "https://example.test/") == 0, "port dropped: %s", l ? l : "(null)");
    l = loc("example.test:8081", "/p", 8443);
    CHECK(l && strcmp(l, "https://example.test:8443/p") == 0, "https port added: %s", l ? l : "(null)");
    l = loc("[::1]:80", "/", 443);
    CHECK(l && strcmp(l, "https://[::1]/") == 0, "v6: %s", l ? l : "(null)");
    CHECK(loc("evil.test\r\nSet-Cookie: x", "/", 443) == NULL, "CRLF host refused");
    CHECK(loc("a/b", "/", 443) == NULL, "slash in host refused");
    CHECK(loc("", "/", 443) == NULL, "empty host refused");
    CHECK(loc("[::1", "/", 443) == NULL, "unterminated v6 refused");
    CHECK(loc("ok.test", "/a\r\nb", 443) == NULL, "CRLF path refused");
    l = loc("ok.test", "", 443);
    CHECK(l && strcmp(l, "https://ok.test/") == 0, "empty path -> /");
    char small[16];
    CHECK(oe_http_listener_location("example.test", 12, "/long/path", 10, 443, small, sizeof(small)) < 0,
          "too small buffer refused");
    return CHECK_DONE();
}
