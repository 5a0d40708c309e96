/*
 * access/auth.h — basic authentication inside the access module (auth.c); nothing outside
 * pkg/access/ includes it.
 * Owns: the htpasswd files in memory (re-read on reload), the cache of proven passwords and
 * the verifier thread. Must not touch: the request's headers or response (access.c answers).
 */
#ifndef OE_ACCESS_AUTH_H
#define OE_ACCESS_AUTH_H

#include <stddef.h>

#include "access/internal.h"
#include "h2o_compat.h"

typedef struct oe_access_authfile oe_access_authfile_t;

/* Reads and parses one htpasswd file (for the checks at start). */
oe_access_users_t *oe_access_auth_load(const char *path, char *err, size_t errlen);

oe_access_authfile_t *oe_access_authfile_open(const char *path, char *err, size_t errlen);
void oe_access_authfile_free(oe_access_authfile_t *f);
const char *oe_access_authfile_path(const oe_access_authfile_t *f);
/* Re-reads the file; on failure the users in memory stay. *users: how many now. */
int oe_access_authfile_reload(oe_access_authfile_t *f, size_t *users, char *err, size_t errlen);

/* Starts the verifier thread (once). */
int oe_access_auth_start(char *err, size_t errlen);

enum { OE_ACCESS_AUTH_OK = 1, OE_ACCESS_AUTH_PENDING = 2, OE_ACCESS_AUTH_BUSY = 3 };
typedef void (*oe_access_auth_done_cb)(h2o_req_t *req, int ok, void *data);

/* Whether user proved this password before (no hash computed; constant-time comparison). */
int oe_access_auth_proven(oe_access_authfile_t *f, const char *user, const char *password);

/* Checks user/password against f on a worker thread. OE_ACCESS_AUTH_OK: this password was
 * proven before (no hash computed). OE_ACCESS_AUTH_PENDING: the verifier computes it; done
 * runs later on this thread with the answer, unless the request is gone by then.
 * OE_ACCESS_AUTH_BUSY: too many checks waiting (answer 503). */
int oe_access_auth_check(oe_access_authfile_t *f, h2o_req_t *req, const char *user, const char *password,
                         oe_access_auth_done_cb done, void *data);

#endif
