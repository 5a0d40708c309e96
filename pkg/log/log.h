/*
 * log — one line per event on stderr, as text or JSON.
 *
 * Owns: the log level/format switches and the formatting of a line (timestamp, level,
 * event name, key/value fields). Thread-safe: each line is built in a local buffer and
 * written with one write(2).
 * Must not touch: configuration parsing, sockets, or anything that could block beyond
 * that one write.
 */
#ifndef OE_LOG_H
#define OE_LOG_H

#include <stdarg.h>

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

#endif
