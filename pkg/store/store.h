/*
 * store — files under state_dir, written so that a crash or a full disk never leaves a
 * half-written file: temp file in the same directory, write, fsync, rename, fsync the
 * directory. Private keys are written 0600.
 * Must not touch: ACME or TLS logic; it moves bytes and reports errors with errno text.
 */
#ifndef OE_STORE_H
#define OE_STORE_H

#include <stddef.h>
#include <sys/types.h>

/* Creates dir (and parents) with mode 0700 if missing. */
int oe_store_mkdirs(const char *dir, char *err, size_t errlen);
#define OE_STORE_MIN_FREE (32u * 1024) /* room a certificate, its key and the state need */

/* Proves dir is writable by creating, syncing and removing a probe file, and that it has
 * at least OE_STORE_MIN_FREE bytes free. */
int oe_store_check_writable(const char *dir, char *err, size_t errlen);
/* Atomically replaces dir/name with data. */
int oe_store_write(const char *dir, const char *name, const void *data, size_t len, mode_t mode, char *err,
                   size_t errlen);
/* Atomically renames dir/from to dir/to (replacing it) and syncs the directory. */
int oe_store_rename(const char *dir, const char *from, const char *to, char *err, size_t errlen);
/* Reads dir/name (at most max bytes) into a malloc'ed NUL-terminated buffer.
 * Returns 0, 1 when the file does not exist, -1 on error. */
int oe_store_read(const char *dir, const char *name, size_t max, char **out, size_t *outlen, char *err, size_t errlen);

#endif
