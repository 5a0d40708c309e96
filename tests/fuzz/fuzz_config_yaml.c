/*
 * fuzz_config_yaml — the YAML config loader on hostile bytes: the input is the whole file,
 * read through oe_config_load() from a memfd, with a fixed environment; when it loads, the
 * effective configuration is printed (to /dev/null) to exercise every field, and a few host
 * names are routed (every result a valid site index or -1; every site has an upstream).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config/config.h"

static FILE *devnull;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char *const envp[] = {"PATH=/usr/bin:/bin", "HOME=/nonexistent", NULL};
    char path[64], err[OE_CONFIG_ERR_MAX];

    if (size > 256 * 1024)
        return 0;
    if (devnull == NULL)
        devnull = fopen("/dev/null", "w");
    int fd = memfd_create("fuzz-config", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (size > 0 && write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    oe_config_t *cfg = oe_config_load(path, envp, err, sizeof(err));
    if (cfg != NULL) {
        static const char *const hosts[] = {"ott.example.com", "A.Blog.Example.com.", "[::1]", "x", ""};
        oe_config_print(cfg, devnull);
        (void)oe_config_acme_enabled(cfg);
        for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
            int s = oe_config_site_for_host(cfg, hosts[i], strlen(hosts[i]));
            if (s < -1 || s >= (int)cfg->sites_count)
                __builtin_trap();
        }
        if (cfg->sites_count == 0 || cfg->default_site >= (int)cfg->sites_count)
            __builtin_trap(); /* always at least one site, and a default that exists */
        for (size_t i = 0; i < cfg->sites_count; i++)
            if (cfg->sites[i].upstreams_count == 0 || cfg->sites[i].name == NULL)
                __builtin_trap();
        oe_config_free(cfg);
    } else if (err[0] == '\0' || memchr(err, '\0', sizeof(err)) == NULL) {
        __builtin_trap(); /* every failure must say why */
    }
    close(fd);
    return 0;
}
