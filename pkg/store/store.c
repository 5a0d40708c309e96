/*
 * store — atomic files under state_dir (see store.h).
 *
 * A write goes to a temp file in the same directory (so rename(2) is atomic), is
 * fsync'ed, renamed over the target, and then the directory itself is fsync'ed so the
 * rename survives a power cut. Every error names the path and the errno text.
 */
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

static void seterr(char *err, size_t errlen, const char *what, const char *path, int e)
{
    if (err && errlen)
        snprintf(err, errlen, "%s %s: %s", what, path, strerror(e));
}

/* A file name is one path component: no slash, not "." or "..". */
static int valid_name(const char *name)
{
    return name && *name && !strchr(name, '/') && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

static int join(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static int fsync_dir(const char *dir, char *err, size_t errlen)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        seterr(err, errlen, "cannot open directory", dir, errno);
        return -1;
    }
    if (fsync(fd) != 0 && errno != EINVAL) { /* some filesystems cannot sync a directory */
        int e = errno;
        close(fd);
        seterr(err, errlen, "cannot sync directory", dir, e);
        return -1;
    }
    close(fd);
    return 0;
}

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int oe_store_mkdirs(const char *dir, char *err, size_t errlen)
{
    char path[PATH_MAX];
    if (!dir || !*dir || strlen(dir) >= sizeof(path)) {
        snprintf(err, errlen, "state directory path is empty or too long");
        return -1;
    }
    strcpy(path, dir);
    for (char *p = path + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(path, 0700) != 0 && errno != EEXIST) {
                seterr(err, errlen, "cannot create directory", path, errno);
                return -1;
            }
            *p = c;
            if (c == '\0')
                break;
        }
    }
    struct stat st;
    if (stat(dir, &st) != 0) {
        seterr(err, errlen, "cannot stat", dir, errno);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s exists and is not a directory", dir);
        return -1;
    }
    return 0;
}

int oe_store_check_writable(const char *dir, char *err, size_t errlen)
{
    char path[PATH_MAX];
    if (join(path, sizeof(path), dir, ".write-probe-XXXXXX") != 0) {
        snprintf(err, errlen, "state directory path too long: %s", dir);
        return -1;
    }
    int fd = mkstemp(path);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen,
                 "state directory %s is not writable (%s): certificates and the ACME account could not be saved; "
                 "give the user running ott-edge write access or mount a writable volume there",
                 dir, strerror(e));
        return -1;
    }
    int rc = 0;
    struct statvfs vfs;
    if (write_all(fd, "probe\n", 6) != 0 || fsync(fd) != 0) {
        int e = errno;
        snprintf(err, errlen, "state directory %s is not writable (%s while writing a probe file)", dir, strerror(e));
        rc = -1;
    } else if (fstatvfs(fd, &vfs) == 0 && (uint64_t)vfs.f_bavail * vfs.f_frsize < OE_STORE_MIN_FREE) {
        /* a certificate ordered now could not be saved: it would spend the CA's quota for nothing */
        snprintf(err, errlen,
                 "state directory %s has less than %u KiB free: free some space before certificates can be saved", dir,
                 OE_STORE_MIN_FREE / 1024);
        rc = -1;
    }
    close(fd);
    if (unlink(path) != 0 && rc == 0) {
        seterr(err, errlen, "cannot remove probe file", path, errno);
        rc = -1;
    }
    return rc;
}

int oe_store_write(const char *dir, const char *name, const void *data, size_t len, mode_t mode, char *err,
                   size_t errlen)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    if (!valid_name(name)) {
        snprintf(err, errlen, "invalid file name \"%s\"", name ? name : "");
        return -1;
    }
    if (join(path, sizeof(path), dir, name) != 0 ||
        snprintf(tmp, sizeof(tmp), "%s/.%s.tmp-XXXXXX", dir, name) >= (int)sizeof(tmp)) {
        snprintf(err, errlen, "path too long: %s/%s", dir, name);
        return -1;
    }
    int fd = mkstemp(tmp); /* created 0600 */
    if (fd < 0) {
        seterr(err, errlen, "cannot create temp file in", dir, errno);
        return -1;
    }
    const char *step = NULL;
    if (fchmod(fd, mode) != 0)
        step = "cannot set mode of";
    else if (write_all(fd, data, len) != 0)
        step = "cannot write";
    else if (fsync(fd) != 0)
        step = "cannot sync";
    if (step) {
        int e = errno;
        close(fd);
        unlink(tmp);
        seterr(err, errlen, step, tmp, e);
        return -1;
    }
    if (close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        seterr(err, errlen, "cannot close", tmp, e);
        return -1;
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        seterr(err, errlen, "cannot rename temp file to", path, e);
        return -1;
    }
    return fsync_dir(dir, err, errlen);
}

int oe_store_rename(const char *dir, const char *from, const char *to, char *err, size_t errlen)
{
    char a[PATH_MAX], b[PATH_MAX];
    if (!valid_name(from) || !valid_name(to) || join(a, sizeof(a), dir, from) != 0 ||
        join(b, sizeof(b), dir, to) != 0) {
        snprintf(err, errlen, "invalid file name");
        return -1;
    }
    if (rename(a, b) != 0) {
        snprintf(err, errlen, "cannot rename %s to %s: %s", a, b, strerror(errno));
        return -1;
    }
    return fsync_dir(dir, err, errlen);
}

int oe_store_read(const char *dir, const char *name, size_t max, char **out, size_t *outlen, char *err, size_t errlen)
{
    char path[PATH_MAX];
    *out = NULL;
    if (outlen)
        *outlen = 0;
    if (!valid_name(name) || join(path, sizeof(path), dir, name) != 0) {
        snprintf(err, errlen, "invalid file name \"%s\"", name ? name : "");
        return -1;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 1;
        seterr(err, errlen, "cannot open", path, errno);
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        seterr(err, errlen, "cannot stat", path, e);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        snprintf(err, errlen, "%s is not a regular file", path);
        return -1;
    }
    if ((uint64_t)st.st_size > max) {
        close(fd);
        snprintf(err, errlen, "%s is too large (%lld bytes, at most %zu expected)", path, (long long)st.st_size, max);
        return -1;
    }
    size_t cap = (size_t)st.st_size + 1, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        close(fd);
        snprintf(err, errlen, "out of memory reading %s", path);
        return -1;
    }
    /* read until EOF, never past what fstat said (+1 byte to notice growth) */
    for (;;) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            free(buf);
            close(fd);
            seterr(err, errlen, "cannot read", path, e);
            return -1;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len == cap - 1)
            break;
    }
    close(fd);
    buf[len] = '\0';
    *out = buf;
    if (outlen)
        *outlen = len;
    return 0;
}
