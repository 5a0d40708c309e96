/* log — see log.h. */
#include "log/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096

static int log_json;
static int log_level = OE_LOG_INFO;
static const char *level_names[] = {"debug", "info", "warn", "error"};

void oe_log_setup(int json, int level)
{
    log_json = json;
    log_level = level;
}

int oe_log_level_from_name(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    if (strcmp(name, "warning") == 0)
        return OE_LOG_WARN;
    return -1;
}

const char *oe_log_level_name(int level)
{
    return level >= 0 && level < 4 ? level_names[level] : "info";
}

int oe_log_enabled(int level)
{
    return level >= log_level;
}

/* A bounded string builder: output is cut (never overflows) when a line is too long. */
typedef struct {
    char *buf;
    size_t len, cap;
} line_t;

static void put(line_t *l, const char *s, size_t n)
{
    if (l->len + n > l->cap)
        n = l->cap - l->len;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void puts_(line_t *l, const char *s)
{
    put(l, s, strlen(s));
}

/* JSON string body escaping (RFC 8259): quotes, backslash and control bytes. */
static void put_json_escaped(line_t *l, const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            put(l, esc, 2);
        } else if (c < 0x20 || c == 0x7f) {
            char esc[8];
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            puts_(l, esc);
        } else {
            put(l, (const char *)&c, 1);
        }
    }
}

/* Text values are quoted when they hold spaces, quotes or '='; control bytes are escaped
 * so a hostile path can never forge a log line. */
static void put_text_value(line_t *l, const char *s)
{
    int quote = *s == '\0' || strpbrk(s, " \"=") != NULL;
    if (quote)
        put(l, "\"", 1);
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f || (quote && (c == '"' || c == '\\'))) {
            char esc[8];
            if (c == '"' || c == '\\')
                snprintf(esc, sizeof(esc), "\\%c", c);
            else
                snprintf(esc, sizeof(esc), "\\x%02x", c);
            puts_(l, esc);
        } else {
            put(l, (const char *)&c, 1);
        }
    }
    if (quote)
        put(l, "\"", 1);
}

void oe_logv(int level, const char *event, va_list ap)
{
    if (!oe_log_enabled(level))
        return;
    char buf[LINE_MAX_BYTES];
    line_t l = {buf, 0, sizeof(buf) - 1};
    struct timeval tv;
    struct tm tm;
    char ts[40];
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%03dZ", (int)(tv.tv_usec / 1000));

    if (log_json) {
        puts_(&l, "{\"ts\":\"");
        puts_(&l, ts);
        puts_(&l, "\",\"level\":\"");
        puts_(&l, oe_log_level_name(level));
        puts_(&l, "\",\"event\":\"");
        put_json_escaped(&l, event);
        put(&l, "\"", 1);
    } else {
        puts_(&l, ts);
        put(&l, " ", 1);
        puts_(&l, oe_log_level_name(level));
        put(&l, " ", 1);
        puts_(&l, event);
    }
    const char *key;
    while ((key = va_arg(ap, const char *)) != NULL) {
        const char *val = va_arg(ap, const char *);
        if (val == NULL)
            val = "";
        if (log_json) {
            puts_(&l, ",\"");
            put_json_escaped(&l, key);
            puts_(&l, "\":\"");
            put_json_escaped(&l, val);
            put(&l, "\"", 1);
        } else {
            put(&l, " ", 1);
            puts_(&l, key);
            put(&l, "=", 1);
            put_text_value(&l, val);
        }
    }
    if (log_json)
        put(&l, "}", 1);
    l.cap = sizeof(buf); /* room kept for the newline */
    put(&l, "\n", 1);
    ssize_t w = write(STDERR_FILENO, buf, l.len);
    (void)w;
}

void oe_log(int level, const char *event, ...)
{
    va_list ap;
    va_start(ap, event);
    oe_logv(level, event, ap);
    va_end(ap);
}

void oe_logf(int level, const char *event, const char *fmt, ...)
{
    if (!oe_log_enabled(level))
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    oe_log(level, event, "msg", msg, NULL);
}
