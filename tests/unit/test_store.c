/* Unit tests for pkg/store: atomic writes, modes, reads, writability probe. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "store/store.h"

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    if (d)
        closedir(d);
    return n;
}

static mode_t mode_of(const char *dir, const char *name)
{
    char p[4096];
    struct stat st;
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    return stat(p, &st) == 0 ? st.st_mode & 07777 : 0;
}

int main(void)
{
    char err[512], base[] = "/tmp/oe-test-store-XXXXXX";
    CHECK(mkdtemp(base) != NULL);
    char dir[256];
    snprintf(dir, sizeof(dir), "%s/a/b/state", base);

    /* mkdirs creates parents, 0700, and is idempotent */
    CHECK(oe_store_mkdirs(dir, err, sizeof(err)) == 0);
    CHECK(oe_store_mkdirs(dir, err, sizeof(err)) == 0);
    struct stat st;
    CHECK(stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700);
    CHECK(oe_store_check_writable(dir, err, sizeof(err)) == 0);
    CHECK(count_entries(dir) == 0); /* the probe is removed */

    /* write + read round trip, modes, replace, no temp files left behind */
    CHECK(oe_store_write(dir, "cert.key", "secret\n", 7, 0600, err, sizeof(err)) == 0);
    CHECK(mode_of(dir, "cert.key") == 0600);
    CHECK(oe_store_write(dir, "cert.pem", "chain", 5, 0644, err, sizeof(err)) == 0);
    CHECK(mode_of(dir, "cert.pem") == 0644);
    CHECK(oe_store_write(dir, "cert.pem", "chain2", 6, 0644, err, sizeof(err)) == 0);
    char *buf = NULL;
    size_t len = 0;
    CHECK(oe_store_read(dir, "cert.pem", 100, &buf, &len, err, sizeof(err)) == 0);
    CHECK(buf && len == 6 && strcmp(buf, "chain2") == 0);
    free(buf);
    CHECK(count_entries(dir) == 2);

    /* empty file */
    CHECK(oe_store_write(dir, "empty", "", 0, 0600, err, sizeof(err)) == 0);
    CHECK(oe_store_read(dir, "empty", 100, &buf, &len, err, sizeof(err)) == 0 && len == 0 && buf && buf[0] == 0);
    free(buf);

    /* missing file -> 1; too large -> -1 with a message */
    CHECK(oe_store_read(dir, "nope", 100, &buf, &len, err, sizeof(err)) == 1 && buf == NULL);
    CHECK(oe_store_read(dir, "cert.pem", 3, &buf, &len, err, sizeof(err)) == -1 && strstr(err, "too large"));

    /* names are one path component */
    CHECK(oe_store_write(dir, "../evil", "x", 1, 0600, err, sizeof(err)) == -1);
    CHECK(oe_store_write(dir, "", "x", 1, 0600, err, sizeof(err)) == -1);
    CHECK(oe_store_read(dir, "..", 10, &buf, &len, err, sizeof(err)) == -1);

    /* rename */
    CHECK(oe_store_write(dir, "k.next", "new", 3, 0600, err, sizeof(err)) == 0);
    CHECK(oe_store_rename(dir, "k.next", "cert.key", err, sizeof(err)) == 0);
    CHECK(oe_store_read(dir, "cert.key", 100, &buf, &len, err, sizeof(err)) == 0 && strcmp(buf, "new") == 0);
    free(buf);
    CHECK(mode_of(dir, "k.next") == 0);
    CHECK(oe_store_rename(dir, "k.next", "cert.key", err, sizeof(err)) == -1 && strstr(err, "No such file"));

    /* a directory that cannot be written: a clear message */
    err[0] = 0;
    CHECK(oe_store_check_writable("/sys/kernel", err, sizeof(err)) == -1);
    CHECK(strstr(err, "not writable") != NULL);
    if (geteuid() != 0) {
        char ro[4200];
        snprintf(ro, sizeof(ro), "%s/ro", base);
        mkdir(ro, 0500);
        CHECK(oe_store_check_writable(ro, err, sizeof(err)) == -1 && strstr(err, "Permission denied"));
        CHECK(oe_store_write(ro, "f", "x", 1, 0600, err, sizeof(err)) == -1);
        rmdir(ro);
    }
    /* a file where a directory should be */
    char file[4200];
    snprintf(file, sizeof(file), "%s/cert.pem", dir);
    CHECK(oe_store_mkdirs(file, err, sizeof(err)) == -1 && strstr(err, "not a directory"));

    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup failed\n");
    return CHECK_DONE();
}
