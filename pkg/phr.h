/*
 * phr.h — picohttpparser's API. libh2o links picohttpparser in and exports its symbols but
 * does not install its header; these are the declarations of the version libh2o 2.2.5
 * bundles. Shared by the modules that parse HTTP/1 (http1: requests; upstream: responses).
 */
#ifndef OE_PHR_H
#define OE_PHR_H

#include <stddef.h>
#include <sys/types.h>

struct phr_header {
    const char *name; /* NULL for an obs-fold continuation line */
    size_t name_len;
    const char *value;
    size_t value_len;
};

/* Each returns the bytes consumed (the head's length), -2 when incomplete, -1 on error. */
int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len, const char **path,
                      size_t *path_len, int *minor_version, struct phr_header *headers, size_t *num_headers,
                      size_t last_len);
int phr_parse_response(const char *buf, size_t len, int *minor_version, int *status, const char **msg, size_t *msg_len,
                       struct phr_header *headers, size_t *num_headers, size_t last_len);

/* Zero-filled before use. The reserved tail covers fields later picohttpparser versions
 * append, should libh2o ever be built against one. */
struct phr_chunked_decoder {
    size_t bytes_left_in_chunk;
    char consume_trailer;
    char _hex_count;
    char _state;
    size_t _reserved[4];
};

/* Decodes chunked data in place: on return *bufsz is the decoded length; returns the
 * number of undecoded bytes left after the end of the body (>= 0) when complete, -2 when
 * more is needed, -1 on error. */
ssize_t phr_decode_chunked(struct phr_chunked_decoder *decoder, char *buf, size_t *bufsz);

#endif
