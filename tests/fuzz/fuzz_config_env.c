/*
 * fuzz_config_env — the OTT_EDGE_* environment overrides on hostile bytes. The input is
 * split into lines; each line is one "K=V" variable (OTT_EDGE_ is prefixed to K when
 * missing). A *_FILE variable's value is written to a memfd and the variable points at it,
 * so the _FILE path is fuzzed without reading arbitrary files. Also fuzzes the standalone
 * value parsers with each value.
 */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/config.h"
#include "fuzz_common.h"

#define MAX_VARS 32

static FILE *devnull;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *envp[MAX_VARS + 2];
    int fds[MAX_VARS];
    size_t n = 0, nfd = 0;
    char err[OE_CONFIG_ERR_MAX];

    if (size > 64 * 1024)
        return 0;
    if (devnull == NULL)
        devnull = fopen("/dev/null", "w");
    /* an empty YAML file so /etc/ott-edge/config.yaml on the machine is never read */
    int empty = memfd_create("fuzz-empty", MFD_CLOEXEC);
    char empty_path[64];
    snprintf(empty_path, sizeof(empty_path), "/proc/self/fd/%d", empty);

    fuzz_reader_t r = {data, size};
    while (r.left > 0 && n < MAX_VARS) {
        size_t len;
        char *line = fuzz_next_str(&r, '\n', &len);
        char *eq = memchr(line, '=', len);
        size_t klen = eq ? (size_t)(eq - line) : len;
        const char *val = eq ? eq + 1 : "";
        int has_prefix = klen >= 9 && memcmp(line, "OTT_EDGE_", 9) == 0;
        char *var;
        if (klen > 5 && memcmp(line + klen - 5, "_FILE", 5) == 0 && nfd < MAX_VARS) {
            int fd = memfd_create("fuzz-env-file", MFD_CLOEXEC);
            if (fd >= 0) {
                size_t vlen = strlen(val);
                if (vlen && write(fd, val, vlen) < 0) {
                }
                fds[nfd++] = fd;
                size_t cap = klen + 64;
                var = malloc(cap);
                snprintf(var, cap, "%s%.*s=/proc/self/fd/%d", has_prefix ? "" : "OTT_EDGE_", (int)klen, line, fd);
            } else {
                var = strdup("OTT_EDGE_X=");
            }
        } else {
            size_t cap = len + 16;
            var = malloc(cap);
            snprintf(var, cap, "%s%s", has_prefix ? "" : "OTT_EDGE_", line);
            /* the standalone parsers get the raw value too */
            uint64_t u;
            int b;
            oe_cidr_t c;
            char host[256];
            uint16_t port;
            (void)oe_config_parse_duration(val, &u);
            (void)oe_config_parse_size(val, &u);
            (void)oe_config_parse_bool(val, &b);
            if (oe_config_parse_cidr(val, &c) == 0) {
                struct sockaddr_in6 sa = {.sin6_family = AF_INET6};
                (void)oe_cidr_match(&c, 1, (struct sockaddr *)&sa);
            }
            (void)oe_config_split_hostport(val, host, sizeof(host), &port);
        }
        envp[n++] = var;
        free(line);
    }
    envp[n] = NULL;

    oe_config_t *cfg = oe_config_load(empty_path, envp, err, sizeof(err));
    if (cfg != NULL) {
        oe_config_print(cfg, devnull);
        oe_config_free(cfg);
    } else if (err[0] == '\0') {
        __builtin_trap(); /* every failure must say why */
    }
    for (size_t i = 0; i < n; i++)
        free(envp[i]);
    for (size_t i = 0; i < nfd; i++)
        close(fds[i]);
    close(empty);
    return 0;
}
