/*
 * log — one line per event on stderr, as text or JSON.
 *
 * Owns: the log level/format switches and the formatting of a line (timestamp, level,
 * event name, key/value fields). Thread-safe: each line is built in a local buffer and
 * written with one write(2). Also: a small ring of recent events (the ones whose names
 * start with a prefix given to oe_log_remember, for the status page) and the stdio
 * stderr capture that turns what libraries print into log lines.
 * Must not touch: configuration parsing, sockets, or anything that could block beyond
 * that one write.
 */
#ifndef OE_LOG_H
#define OE_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

enum { OE_LOG_DEBUG = 0, OE_LOG_INFO = 1, OE_LOG_WARN = 2, OE_LOG_ERROR = 3 };

/* Sets the output format (0 text, 1 JSON) and the lowest level written. */
void oe_log_setup(int json, int level);
/* "debug" | "info" | "warn" | "error" -> level, or -1 if unknown. */
int oe_log_level_from_name(const char *name);
const char *oe_log_level_name(int level);
int oe_log_enabled(int level);

/*
 * Writes one event: oe_log(OE_LOG_INFO, "listening", "addr", "0.0.0.0:443", NULL).
 * After the event name come key/value pairs of strings, ended by NULL. A NULL value is
 * written as an empty string.
 */
void oe_log(int level, const char *event, ...) __attribute__((sentinel));
void oe_logv(int level, const char *event, va_list ap);

/* Convenience: one "msg" field formatted printf-style. */
void oe_logf(int level, const char *event, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- recent events ----------------------------------------------------------------------
 * The log keeps the last OE_LOG_RECENT_MAX events whose names start with a prefix given
 * to oe_log_remember() (e.g. "acme_"), whatever log.level filters out, for the status
 * page. Thread-safe; bounded (fields are cut to fit an entry). */
#define OE_LOG_RECENT_MAX 64
typedef struct oe_log_event {
    int64_t at_ms; /* wall clock, Unix ms */
    int level;
    char event[48];
    char fields[464]; /* "key\0value\0" pairs ended by an empty key (use oe_log_event_next) */
} oe_log_event_t;

/* Starts remembering the events whose names start with prefix. At most 8 prefixes; call before they happen. */
void oe_log_remember(const char *prefix);
/* Copies up to max remembered events whose names start with prefix (NULL: all), newest first; returns how many. */
size_t oe_log_recent(const char *prefix, oe_log_event_t *out, size_t max);
/* Walks an event's fields: start with *pos = 0; returns 0 with *key and *value set, or -1 at the end. */
int oe_log_event_next(const oe_log_event_t *e, size_t *pos, const char **key, const char **value);
/* The value of one field of a remembered event, or NULL. */
const char *oe_log_event_field(const oe_log_event_t *e, const char *key);

/* Routes what libraries write to stdio's stderr (libh2o prints lines such as "skipping
 * frame (type:22)") into log lines in the configured format: event "library_message",
 * field "msg". Sanitizer reports do not go through stdio and still reach fd 2 as they are.
 * Call once, after oe_log_setup. Returns 0, or -1 when the stream cannot be made. */
int oe_log_capture_stdio(void);

#endif
