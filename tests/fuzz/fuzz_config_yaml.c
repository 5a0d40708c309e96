/*
 * fuzz_config_yaml — the YAML config loader on hostile bytes: the input is the whole file,
 * read through oe_config_load() from a memfd, with a fixed environment; when it loads, the
 * effective configuration is printed (to /dev/null) to exercise every field.
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
        oe_config_print(cfg, devnull);
        (void)oe_config_acme_enabled(cfg);
        oe_config_free(cfg);
    } else if (err[0] == '\0' || memchr(err, '\0', sizeof(err)) == NULL) {
        __builtin_trap(); /* every failure must say why */
    }
    close(fd);
    return 0;
}
