/* Unit tests for the cluster.* value parsers in pkg/config: the Redis URL and the 32-byte
 * encryption key file (raw, hex, base64), and what they refuse. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "config/config.h"

static const char *write_tmp(const char *name, const void *data, size_t len)
{
    static char path[256];
    snprintf(path, sizeof(path), "/tmp/oe-test-cluster-%d-%s", (int)getpid(), name);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(data, 1, len, f);
        fclose(f);
    }
    return path;
}

int main(void)
{
    char msg[512];
    oe_redis_url_t u;

    CHECK(oe_config_parse_redis_url("redis://127.0.0.1:6380/2", &u, msg, sizeof(msg)) == 0, "%s", msg);
    CHECK(strcmp(u.host, "127.0.0.1") == 0 && u.port == 6380 && u.db == 2 && !u.user[0] && !u.password[0]);
    CHECK(oe_config_parse_redis_url("redis://redis", &u, msg, sizeof(msg)) == 0, "%s", msg);
    CHECK(strcmp(u.host, "redis") == 0 && u.port == 6379 && u.db == 0);
    CHECK(oe_config_parse_redis_url("redis://ott-edge:p%40ss%3Aword@redis:6379/0", &u, msg, sizeof(msg)) == 0, "%s",
          msg);
    CHECK(strcmp(u.user, "ott-edge") == 0 && strcmp(u.password, "p@ss:word") == 0, "user %s password %s", u.user,
          u.password);
    CHECK(oe_config_parse_redis_url("redis://:secret@[::1]:7000/", &u, msg, sizeof(msg)) == 0, "%s", msg);
    CHECK(strcmp(u.host, "::1") == 0 && u.port == 7000 && !u.user[0] && strcmp(u.password, "secret") == 0);

    static const char *const bad[] = {
        "http://redis:6379", "redis://",         "redis://:6379",      "redis://host:0", "redis://host:70000",
        "redis://host:x",    "redis://host/abc", "redis://host/1?x=1", "redis://[::1",   "redis://u:%zz@host",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(oe_config_parse_redis_url(bad[i], NULL, msg, sizeof(msg)) != 0, "accepted %s", bad[i]);

    /* the key file: raw, hex, base64 (with a newline), and what is not 32 bytes */
    unsigned char key[32], want[32];
    for (int i = 0; i < 32; i++)
        want[i] = (unsigned char)(i * 7 + 1);
    CHECK(oe_config_read_key32(write_tmp("raw", want, 32), key, msg, sizeof(msg)) == 0 && memcmp(key, want, 32) == 0,
          "raw: %s", msg);
    char hex[80] = "";
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", want[i]);
    strcat(hex, "\n");
    memset(key, 0, 32);
    CHECK(oe_config_read_key32(write_tmp("hex", hex, strlen(hex)), key, msg, sizeof(msg)) == 0 &&
              memcmp(key, want, 32) == 0,
          "hex: %s", msg);
    const char *b64 = "AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09o=\n";
    memset(key, 0, 32);
    CHECK(oe_config_read_key32(write_tmp("b64", b64, strlen(b64)), key, msg, sizeof(msg)) == 0 &&
              memcmp(key, want, 32) == 0,
          "base64: %s", msg);
    CHECK(oe_config_read_key32(write_tmp("short", "short\n", 6), key, msg, sizeof(msg)) != 0);
    CHECK(strstr(msg, "32-byte key") != NULL, "%s", msg);
    CHECK(oe_config_read_key32("/nonexistent/key", key, msg, sizeof(msg)) != 0 && strstr(msg, "cannot read") != NULL);
    unlink(write_tmp("raw", "", 0));
    unlink(write_tmp("hex", "", 0));
    unlink(write_tmp("b64", "", 0));
    unlink(write_tmp("short", "", 0));
    return CHECK_DONE();
}
